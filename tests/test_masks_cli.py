import numpy as np
import pytest
from PIL import Image

from lama_jax import masks


def _photos(root):
    root.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(root / "wide.jpg")
    (root / "sub").mkdir()
    Image.fromarray(rng.integers(0, 256, (500, 260, 3), dtype=np.uint8)).save(root / "sub" / "tall.png")
    Image.fromarray(rng.integers(0, 256, (100, 120), dtype=np.uint8)).save(root / "small.png")
    return root


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_writes_official_layout_deterministically(tmp_path):
    photos = _photos(tmp_path / "photos")
    args = ["--images", str(photos), "--preset", "random_thick_256", "--seed", "0"]
    assert masks.main(args + ["--output", str(tmp_path / "a")]) == 0
    assert masks.main(args + ["--output", str(tmp_path / "b")]) == 0
    a = _files(tmp_path / "a")
    assert set(a) == {"wide.png", "wide_mask000.png", "sub/tall.png", "sub/tall_mask000.png",
                      "small.png", "small_mask000.png"}
    assert a == _files(tmp_path / "b")
    for name in ("wide", "sub/tall", "small"):
        image = np.asarray(Image.open(tmp_path / "a" / f"{name}.png"))
        mask = np.asarray(Image.open(tmp_path / "a" / f"{name}_mask000.png"))
        assert image.shape == (256, 256, 3) and mask.shape == (256, 256)
        assert set(np.unique(mask)) <= {0, 255} and 0 < (mask > 0).mean() <= 0.5
    assert masks.main(args[:-1] + ["1", "--output", str(tmp_path / "c")]) == 0
    assert _files(tmp_path / "c") != a


def test_refuses_to_overwrite_or_write_into_the_input(tmp_path, capsys):
    photos = _photos(tmp_path / "photos")
    args = ["--images", str(photos), "--preset", "random_thin_256"]
    assert masks.main(args + ["--output", str(photos / "eval")]) == 1
    assert "inside the input folder" in capsys.readouterr().err
    out = tmp_path / "out"
    assert masks.main(args + ["--output", str(out)]) == 0
    before = _files(out)
    capsys.readouterr()
    # A rerun keeps what exists, says so and succeeds.
    assert masks.main(args + ["--output", str(out), "--seed", "5"]) == 0
    assert "kept 3 existing" in capsys.readouterr().err
    assert _files(out) == before


def test_negative_seed_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        masks.main(["--images", str(tmp_path), "--preset", "random_thin_256",
                    "--output", str(tmp_path / "o"), "--seed", "-1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--seed: '-1' is not a non-negative integer" in err and "Traceback" not in err


def test_corrupt_photo_is_reported_and_others_written(tmp_path, capsys):
    photos = _photos(tmp_path / "photos")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 nope")
    assert masks.main(["--images", str(photos), "--preset", "random_medium_256",
                       "--output", str(tmp_path / "out")]) == 1
    err = [l for l in capsys.readouterr().err.splitlines() if "error:" in l]
    assert len(err) == 1 and "broken.jpg" in err[0]
    assert len(_files(tmp_path / "out")) == 6
