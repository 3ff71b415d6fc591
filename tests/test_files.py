import os
import stat

from lama_jax.convert import convert_checkpoint
from lama_jax.files import full_path, is_remote, staging_dir, write_atomic
from lama_jax.model_dir import save_model


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_writes_get_the_usual_permissions(tmp_path, reference):
    # tempfile's files and folders are private (0600 / 0700); results and models are not.
    umask = os.umask(0o022)
    os.umask(umask)
    write_atomic(str(tmp_path / "a" / "result.png"), b"data")
    assert (tmp_path / "a" / "result.png").read_bytes() == b"data"
    assert _mode(tmp_path / "a" / "result.png") == 0o666 & ~umask
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["result.png"]  # no leftovers
    assert _mode(staging_dir(str(tmp_path), ".x-")) == 0o777 & ~umask
    save_model(str(tmp_path / "model"), convert_checkpoint(str(reference / "tiny_best.ckpt")))
    assert _mode(tmp_path / "model") == 0o777 & ~umask


def test_cloud_storage_paths_are_told_from_local_ones(tmp_path):
    assert is_remote("gs://bucket/run") and is_remote("s3://bucket/run")
    assert not is_remote(str(tmp_path)) and not is_remote("runs/demo")
    assert full_path("gs://bucket/run") == "gs://bucket/run"  # no local absolute path
    assert full_path("runs/demo") == os.path.abspath("runs/demo")
