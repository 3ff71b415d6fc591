import subprocess
import sys

import numpy as np
import pytest

from lama_jax.state_dict import (CheckpointError, UnsafeCheckpointError, load_pickle_payload,
                                 load_state_dict)
from tests.helpers import malicious_pickle, write_torch_zip


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
