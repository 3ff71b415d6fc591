import os
import subprocess
import sys

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


def test_single_photo_mode(model_dir, tmp_path, capsys):
    _save(tmp_path / "photo.png", _rgb8(30, 45))
    _save(tmp_path / "hole.png", _mask8(30, 45))
    out = tmp_path / "results"
    assert predict.main(["--model", str(model_dir), "--input", str(tmp_path / "photo.png"),
                         "--mask", str(tmp_path / "hole.png"), "--output", str(out)]) == 0
    assert np.asarray(Image.open(out / "photo.png")).shape == (30, 45, 3)
    # The existing result is kept unless --overwrite; the rerun says so and succeeds.
    assert predict.main(["--model", str(model_dir), "--input", str(tmp_path / "photo.png"),
                         "--mask", str(tmp_path / "hole.png"), "--output", str(out)]) == 0
    assert "wrote 0 image(s)" in capsys.readouterr().err.splitlines()[-1]
    assert predict.main(["--model", str(model_dir), "--input", str(tmp_path / "photo.png"),
                         "--mask", str(tmp_path / "hole.png"), "--output", str(out),
                         "--overwrite"]) == 0


def test_refinement_and_strategies_from_the_command_line(model_dir, tmp_path, capsys):
    photo, hole = _rgb8(96, 128), _mask8(96, 128)
    _save(tmp_path / "photo.png", photo)
    _save(tmp_path / "hole.png", hole)
    inpainter = Inpainter.load(str(model_dir))
    for flags, options in [
            (["--refine", "--refine-min-side", "32", "--refine-n-iters", "3"],
             dict(refine=True, min_side=32, n_iters=3)),
            (["--hd-strategy", "crop", "--hd-trigger", "64", "--hd-crop-margin", "8"],
             dict(hd_strategy="crop", hd_trigger=64, crop_margin=8))]:
        out = tmp_path / flags[0].strip("-")
        assert predict.main(["--model", str(model_dir), "--input", str(tmp_path / "photo.png"),
                             "--mask", str(tmp_path / "hole.png"), "--output", str(out)]
                            + flags) == 0, capsys.readouterr().err
        np.testing.assert_array_equal(np.asarray(Image.open(out / "photo.png")),
                                      to_uint8(inpainter(photo, hole, **options)))


@pytest.mark.parametrize("flags, message", [
    (["--refine-n-iters", "0"], "n_iters=0 must be at least 1"),
    (["--hd-crop-margin", "-5"], "margin=-5 must be a whole number of pixels"),
    (["--refine-px-budget", "100"], "px_budget=100 must be at least 4096 pixels"),
])
def test_bad_large_photo_options_are_one_line(model_dir, tmp_path, capsys, flags, message):
    _save(tmp_path / "a.png", _rgb8(16, 16))
    _save(tmp_path / "m.png", _mask8(16, 16))
    assert predict.main(["--model", str(model_dir), "--input", str(tmp_path / "a.png"),
                         "--mask", str(tmp_path / "m.png"), "--output", str(tmp_path / "o")]
                        + flags) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err
    assert not (tmp_path / "o").exists()


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


def _pair(folder, name, h=32, w=32, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    _save(folder / f"{name}.png", _rgb8(h, w, seed))
    _save(folder / f"{name}_mask000.png", _mask8(h, w))


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_result_never_lands_on_another_jobs_input(model_dir, tmp_path, capsys):
    # --output is an ancestor of --input, whose sub-folder has the input's own name: the
    # result of x/x/a_mask000.png would be written over x/a_mask000.png.
    data = tmp_path / "x"
    _pair(data, "a")
    _pair(data / "x", "a", seed=1)
    before = _tree(tmp_path)
    assert predict.main(["--model", str(model_dir), "--input", str(data), "--output",
                         str(tmp_path), "--overwrite"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "would overwrite an input of this run" in err
    assert _tree(tmp_path) == before


def test_folder_links_are_not_followed(tmp_path):
    data = tmp_path / "in"
    _pair(data, "a")
    os.symlink(data, data / "loop")                # a loop
    (data / "sub").mkdir()
    os.symlink(data, data / "sub" / "back")         # a second loop through a sub-folder
    os.symlink(tmp_path, data / "outside")          # a link out of the tree
    # predict and evaluate (folder_jobs) and masks and training (ImageFolder) list the same way.
    code = ("import sys; from lama_jax.jobs import folder_jobs; "
            "from lama_jax.data.sources import ImageFolder; "
            "jobs, errors = folder_jobs(sys.argv[1], 'out'); "
            "print(len(jobs), len(errors), len(ImageFolder(sys.argv[1]).paths))")
    done = subprocess.run([sys.executable, "-c", code, str(data)], capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.split() == ["1", "0", "2"]


def test_uppercase_extensions_are_paired(model_dir, tmp_path):
    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    _save(data / "IMG_1.JPG", _rgb8(24, 32))
    _save(data / "IMG_1_mask000.png", _mask8(24, 32))
    _save(data / "IMG_2.Png", _rgb8(24, 32))
    _save(data / "IMG_2_MASK000.PNG", _mask8(24, 32))  # not an official mask name: no job
    (data / "IMG_2_MASK000.PNG").rename(data / "IMG_2_mask000.PNG")
    assert predict.main(["--model", str(model_dir), "--input", str(data), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["IMG_1_mask000.png", "IMG_2_mask000.PNG"]


def test_nan_or_out_of_range_known_pixels_are_refused(model_dir, tmp_path, capsys):
    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    hole = _mask8(16, 16)
    for name, value, where in [("nan", np.nan, (0, 0)), ("inf", np.inf, (1, 2)),
                               ("bright", 1.5, (3, 3)), ("hole_nan", np.nan, (5, 7))]:
        pixels = np.random.default_rng(0).random((16, 16), dtype=np.float32)
        pixels[where] = value
        Image.fromarray(pixels, "F").save(data / f"{name}.tif")
        _save(data / f"{name}_mask000.png", hole)
    assert hole[5, 7] and not hole[0, 0]  # (5, 7) lies in the hole: its NaN is harmless
    assert predict.main(["--model", str(model_dir), "--input", str(data), "--output", str(out)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 3 and all("NaN, infinite or outside [0, 1]" in e for e in errors)
    assert sorted(p.name for p in out.iterdir()) == ["hole_nan_mask000.png"]
    assert np.isfinite(np.asarray(Image.open(out / "hole_nan_mask000.png"), np.float32)).all()
    inpainter = Inpainter.load(str(model_dir))
    with pytest.raises(ValueError, match=r"1 known pixel\(s\) .* row 0, column 1"):
        inpainter(np.pad(np.full((1, 1, 3), -0.2, np.float32), ((0, 15), (1, 14), (0, 0))),
                  hole)


def test_one_bad_file_does_not_stop_a_folder_run(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    data, out = tmp_path / "in", tmp_path / "out"
    _pair(data, "fine")               # 32x32: 1024 pixels, under the limit of 1100
    _pair(data, "huge", 48, 48)       # 2304 pixels: over 2x the limit, refused by Pillow
    _pair(data, "big", 40, 40)        # 1600 pixels: over the limit, refused by its header
    _pair(data / "sub", "blocked")    # out/sub is a file, so its result cannot be written
    _pair(data / "dir", "taken")
    out.mkdir()
    (out / "sub").write_text("a file where a folder should be")
    (out / "dir" / "taken_mask000.png").mkdir(parents=True)  # a folder where the result goes
    args = ["--model", str(model_dir), "--input", str(data), "--output", str(out),
            "--max-pixels", "1100"]
    assert predict.main(args + ["--overwrite"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 4, errors
    for name, problem in [("huge.png", "pixel limit"), ("big.png", "over the limit of 1100"),
                          ("sub/blocked_mask000.png", "cannot write"),
                          ("taken_mask000.png", "cannot write")]:
        assert any(name in e and problem in e for e in errors), (name, errors)
    assert (out / "fine_mask000.png").is_file() and (out / "sub").read_text().startswith("a file")
    # A rerun without --overwrite keeps what exists and says how many results it kept.
    (out / "sub").unlink()
    (out / "dir" / "taken_mask000.png").rmdir()
    assert predict.main(args[:-2]) == 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "wrote 4 image(s)" in last and "kept 1 existing" in last, last
