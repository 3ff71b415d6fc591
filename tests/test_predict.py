import numpy as np
import pytest
from PIL import Image

from lama_jax import Inpainter, convert, predict
from lama_jax.images import read_image, to_uint8


@pytest.fixture(scope="module")
def model_dir(reference, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "tiny"
    assert convert.main(["--checkpoint", str(reference / "tiny_best.ckpt"), "--output", str(out)]) == 0
    return out


def _save(path, array, mode=None):
    Image.fromarray(array, mode).save(path)


def _rgb8(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _mask8(h, w):
    m = np.zeros((h, w), np.uint8)
    m[h // 4: h // 2, w // 3: w // 2] = 255
    return m


def test_official_checkpoint_end_to_end_through_cli(model_dir, load_npz, tmp_path, capsys):
    io = load_npz("tiny_io_250x300.npz")
    data = tmp_path / "data"
    data.mkdir()
    image8 = to_uint8(io["image"] + 0.5 / 255)  # rounded to 8 bits
    _save(data / "scene.png", image8)
    _save(data / "scene_mask000.png", (io["mask"] * 255).astype(np.uint8))
    out = tmp_path / "out"
    assert predict.main(["--model", str(model_dir), "--input", str(data), "--output", str(out)]) == 0
    result = np.asarray(Image.open(out / "scene_mask000.png"))
    expected = Inpainter.load(str(model_dir))(image8, io["mask"])
    np.testing.assert_array_equal(result, to_uint8(expected))
    # Against the official output on the unquantised photo: within the 8-bit rounding of the input.
    assert np.abs(result / 255.0 - io["inpainted"]).max() < 3 / 255
    assert "wrote 1 image" in capsys.readouterr().err


def test_rgba_grayscale_16bit_and_exif_rotated(model_dir, tmp_path):
    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    rgba = np.concatenate([_rgb8(40, 56), np.full((40, 56, 1), 77, np.uint8)], -1)
    _save(data / "rgba.png", rgba)
    _save(data / "gray.png", _rgb8(40, 56)[..., 0])
    Image.fromarray(_rgb8(40, 56)[..., 0].astype(np.uint16) * 257).save(data / "deep.png")
    # A 56x40 JPEG stored sideways: EXIF orientation 6 means "rotate 90 degrees clockwise".
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_rgb8(56, 40)).save(data / "phone.jpg", exif=exif)
    assert read_image(str(data / "phone.jpg"))[0].shape == (40, 56, 3)
    for name in ("rgba", "gray", "deep", "phone"):
        _save(data / f"{name}_mask000.png", _mask8(40, 56))
    assert predict.main(["--model", str(model_dir), "--input", str(data), "--output", str(out)]) == 0
    result = np.asarray(Image.open(out / "rgba_mask000.png"))
    assert result.shape == (40, 56, 4) and (result[..., 3] == 77).all()
    for name in ("gray", "deep", "phone"):
        assert np.asarray(Image.open(out / f"{name}_mask000.png")).shape == (40, 56, 3)


def test_single_photo_mode(model_dir, tmp_path):
    _save(tmp_path / "photo.png", _rgb8(30, 45))
    _save(tmp_path / "hole.png", _mask8(30, 45))
    out = tmp_path / "results"
    assert predict.main(["--model", str(model_dir), "--input", str(tmp_path / "photo.png"),
                         "--mask", str(tmp_path / "hole.png"), "--output", str(out)]) == 0
    assert np.asarray(Image.open(out / "photo.png")).shape == (30, 45, 3)
    # The existing result is kept unless --overwrite.
    assert predict.main(["--model", str(model_dir), "--input", str(tmp_path / "photo.png"),
                         "--mask", str(tmp_path / "hole.png"), "--output", str(out)]) == 1
    assert predict.main(["--model", str(model_dir), "--input", str(tmp_path / "photo.png"),
                         "--mask", str(tmp_path / "hole.png"), "--output", str(out),
                         "--overwrite"]) == 0


def test_bad_files_are_reported_and_the_rest_processed(model_dir, tmp_path, capsys):
    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    _save(data / "good.png", _rgb8(32, 32))
    _save(data / "good_mask000.png", _mask8(32, 32))
    _save(data / "lonely.png", _rgb8(32, 32))                   # no mask
    _save(data / "small.png", _rgb8(32, 32))
    _save(data / "small_mask000.png", _mask8(16, 16))            # mask of another size
    (data / "broken.png").write_bytes(b"\x89PNG not really")     # unreadable
    _save(data / "broken_mask000.png", _mask8(32, 32))
    _save(data / "orphan_mask000.png", _mask8(32, 32))           # mask without photo
    assert predict.main(["--model", str(model_dir), "--input", str(data), "--output", str(out)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 4
    for name, problem in [("lonely.png", "no mask"), ("small_mask000.png", "mask is 16x16"),
                          ("broken.png", "cannot read"), ("orphan_mask000.png", "no photo")]:
        assert any(name in e and problem in e for e in errors), (name, errors)
    assert sorted(p.name for p in out.iterdir()) == ["good_mask000.png"]


def test_output_inside_input_folder_is_refused(model_dir, tmp_path, capsys):
    _save(tmp_path / "a.png", _rgb8(16, 16))
    _save(tmp_path / "a_mask000.png", _mask8(16, 16))
    before = sorted(p.name for p in tmp_path.iterdir())
    for target in (tmp_path, tmp_path / "sub"):
        assert predict.main(["--model", str(model_dir), "--input", str(tmp_path),
                             "--output", str(target)]) == 1
        assert "inside the input folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_missing_model_is_one_line(tmp_path, capsys):
    _save(tmp_path / "a.png", _rgb8(16, 16))
    _save(tmp_path / "m.png", _mask8(16, 16))
    assert predict.main(["--model", str(tmp_path / "nope"), "--input", str(tmp_path / "a.png"),
                         "--mask", str(tmp_path / "m.png"), "--output", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope" in err and "not a lama_jax model directory" in err
