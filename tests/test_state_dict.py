import subprocess
import sys
import zipfile

import numpy as np
import pytest

from lama_jax.state_dict import (CheckpointError, UnsafeCheckpointError, load_pickle_payload,
                                 load_state_dict)
from tests.helpers import (malicious_pickle, torch_dict_pickle, torch_tensor_pickle,
                           write_torch_zip)


def test_lightning_checkpoint_reads_without_torch_or_omegaconf(reference, load_npz):
    sd = load_state_dict(str(reference / "tiny_best.ckpt"))
    gen = load_npz("tiny_generator_state.npz")
    disc = load_npz("tiny_discriminator_state.npz")
    assert set(sd) == {f"generator.{k}" for k in gen} | {f"discriminator.{k}" for k in disc}
    for k, v in gen.items():
        np.testing.assert_array_equal(sd[f"generator.{k}"], v)
    payload = load_pickle_payload(str(reference / "tiny_best.ckpt"))
    assert payload["global_step"] == 1234
    assert "omegaconf" not in sys.modules and "torch" not in sys.modules


def test_pickle_that_would_run_a_command_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    write_torch_zip(path, malicious_pickle(f"touch {marker}"))
    with pytest.raises(UnsafeCheckpointError, match=r"evil\.ckpt: refusing to load.*system"):
        load_state_dict(str(path))
    assert not marker.exists()


def _unicode(s: str) -> bytes:
    return b"X" + len(s).to_bytes(4, "little") + s.encode()


def test_strided_and_offset_tensors(tmp_path):
    # Hand-written protocol-2 pickle as torch.save writes a transposed view:
    # {"w": _rebuild_tensor_v2(storage 0 (8 floats), offset 2, size (3, 2), stride (1, 3), ...)}
    pid = (b"(" + _unicode("storage") + b"ctorch\nFloatStorage\n" + _unicode("0")
           + _unicode("cpu") + b"K\x08tQ")
    args = b"(" + pid + b"K\x02(K\x03K\x02t(K\x01K\x03t\x89Nt"
    data = (b"\x80\x02}" + _unicode("w") + b"ctorch._utils\n_rebuild_tensor_v2\n" + args
            + b"Rs.")
    storage = np.arange(8, dtype=np.float32)
    write_torch_zip(tmp_path / "t.pth", data, {"0": storage})
    w = load_state_dict(str(tmp_path / "t.pth"))["w"]
    np.testing.assert_array_equal(w, storage[2:].reshape(2, 3).T)


@pytest.mark.parametrize("offset,size,stride,storage_bytes,match", [
    (0, (2, 2), (8, 1), 32, r"needs 10 elements but its storage holds 8"),  # larger than storage
    (6, (3,), (1,), 32, r"needs 9 elements"),  # offset pushes the end out
    (0, (2, 3), (1, 1 << 20), 32, r"needs \d+ elements"),  # a stride that jumps out
    (0, (1 << 20, 1 << 20), (0, 0), 32, r"more elements than its storage"),  # stride-0 blow-up
    (-4, (2,), (1,), 32, r"negative offset"),  # reading before the storage
    (0, (2,), (-1,), 32, r"negative"),
    (0, (2,), (1,), 30, r"30 bytes, not a whole number of float32"),  # torn storage
])
def test_crafted_tensors_that_reach_outside_their_storage_are_refused(
        tmp_path, offset, size, stride, storage_bytes, match):
    path = tmp_path / "crafted.ckpt"
    items = [torch_tensor_pickle("ok", "0", "FloatStorage", 4, 0, (4,), (1,)),
             torch_tensor_pickle("model.evil", "1", "FloatStorage", 8, offset, size, stride)]
    write_torch_zip(path, torch_dict_pickle(items),
                    {"0": np.ones(4, np.float32), "1": np.ones(storage_bytes, np.uint8)})
    with pytest.raises(CheckpointError, match=rf"crafted\.ckpt: tensor model\.evil: .*{match}"):
        load_state_dict(str(path))


def test_a_tensor_whose_storage_is_missing_is_refused(tmp_path):
    path = tmp_path / "t.pth"
    write_torch_zip(path, torch_dict_pickle(
        [torch_tensor_pickle("w", "7", "FloatStorage", 4, 0, (4,), (1,))]))
    with pytest.raises(CheckpointError, match=r"t\.pth: tensor w: its storage .*data/7 is not"):
        load_state_dict(str(path))


def test_compressed_members_may_not_expand_without_bound(tmp_path):
    # 24 MiB of zeros deflate to ~24 KB: a 1000x expansion, over the default cap of 100x.
    zeros = np.zeros(6 << 20, np.float32)
    bomb = tmp_path / "bomb.ckpt"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", torch_dict_pickle(
            [torch_tensor_pickle("w", "0", "FloatStorage", zeros.size, 0, zeros.shape, (1,))]))
        z.writestr("archive/data/0", zeros.tobytes())
    with pytest.raises(CheckpointError, match=r"bomb\.ckpt: member archive/data/0 would expand"):
        load_state_dict(str(bomb))
    assert load_state_dict(str(bomb), max_expansion=10_000)["w"].shape == zeros.shape
    np.savez_compressed(tmp_path / "bomb.npz", w=zeros)
    with pytest.raises(CheckpointError, match=r"bomb\.npz: member w\.npy would expand"):
        load_state_dict(str(tmp_path / "bomb.npz"))


def test_npz_and_safetensors(tmp_path):
    from safetensors.numpy import save_file
    arrays = {"a.weight": np.ones((2, 3), np.float32), "b": np.arange(4, dtype=np.int64)}
    np.savez(tmp_path / "x.npz", **arrays)
    save_file(arrays, str(tmp_path / "x.safetensors"))
    for name in ("x.npz", "x.safetensors"):
        got = load_state_dict(str(tmp_path / name))
        assert set(got) == set(arrays)
        np.testing.assert_array_equal(got["a.weight"], arrays["a.weight"])


@pytest.mark.parametrize("content,match", [(b"not a checkpoint", "not a PyTorch"),
                                           (b"\x80\x02legacy", "legacy")])
def test_unreadable_files_name_the_file(tmp_path, content, match):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"bad\.pth: .*{match}"):
        load_state_dict(str(path))
    with pytest.raises(CheckpointError, match="no such file"):
        load_state_dict(str(tmp_path / "missing.ckpt"))
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"bad\.npz: cannot read"):
        load_state_dict(str(tmp_path / "bad.npz"))


def test_inference_conversion_and_evaluation_import_without_tensorflow_or_torch():
    code = ("import sys, lama_jax, lama_jax.convert, lama_jax.predict, lama_jax.evaluate; "
            "bad = [m for m in ('tensorflow', 'torch', 'omegaconf') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
