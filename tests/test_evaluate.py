import json
import shutil

import jax
import numpy as np
import pytest
from PIL import Image

from lama_jax.convert import convert_checkpoint
from lama_jax.evaluate import main
from lama_jax.scoring import (MetricNets, area_bins, bin_names, lpips_fid100_f1, score_batch,
                              summarize)
from lama_jax.images import read_image
from lama_jax.metrics.fid import frechet_distance, pool3_features
from lama_jax.metrics.fidelity import ssim
from lama_jax.metrics.lpips import lpips
from lama_jax.model_dir import save_model
from tests.helpers import write_torch_state_dict

SIZE = 64
# Hole areas 2%, 12%, 22%, 39%, 49%, 61% of 64x64: one image per bin, so that only the total
# needs FID's 2048x2048 matrix square root (15 s on two cores); summarize's test covers bins.
HOLE_SIDES = (10, 22, 30, 40, 45, 50)


@pytest.fixture(scope="module")
def weights(tmp_path_factory, inception_state_dict, vgg16_state_dict):
    """pytorch-fid's and torchvision's files as torch.save writes them (random weights)."""
    folder = tmp_path_factory.mktemp("weights")
    write_torch_state_dict(folder / "pt_inception.pth", inception_state_dict)
    write_torch_state_dict(folder / "vgg16.pth",
                           {f"features.{k}": v for k, v in vgg16_state_dict.items()})
    return {"inception": str(folder / "pt_inception.pth"), "vgg": str(folder / "vgg16.pth")}


@pytest.fixture(scope="module")
def eval_set(tmp_path_factory):
    """A tiny evaluation set in the official layout, and noisy 'predictions' named after the
    masks (one in a sub-folder)."""
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    for i, side in enumerate(HOLE_SIDES):
        sub = "sub/" if i == 5 else ""
        (root / "data" / sub).mkdir(parents=True, exist_ok=True)
        (root / "preds" / sub).mkdir(parents=True, exist_ok=True)
        image = (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8)
        mask = np.zeros((SIZE, SIZE), np.uint8)
        mask[:side, :side] = 255
        noisy = np.clip(image + rng.integers(-40, 40, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(root / "data" / f"{sub}im{i}.png")
        Image.fromarray(mask).save(root / "data" / f"{sub}im{i}_mask000.png")
        Image.fromarray(noisy).save(root / "preds" / f"{sub}im{i}_mask000.png")
    return root


def _args(data, output, weights, *more):
    return ["--data", str(data), "--output", str(output), "--inception-weights",
            weights["inception"], "--lpips-weights", weights["vgg"], *map(str, more)]


def test_area_bins_follow_the_official_evaluator():
    areas = np.array([0.0, 0.05, 0.0999, 0.1, 0.5, 0.95, 1.0])
    np.testing.assert_array_equal(area_bins(areas), [0, 0, 0, 1, 5, 9, 9])
    assert bin_names()[:2] == ["0-10%", "10-20%"] and bin_names()[-1] == "90-100%"


def test_summary_totals_and_bins():
    rng = np.random.default_rng(1)
    n = 40
    per_image = {"area": np.repeat([0.05, 0.35, 0.45], [20, 19, 1]).astype(np.float32),
                 "ssim": rng.random(n), "lpips": rng.random(n),
                 "features_predicted": rng.standard_normal((n, 4)),
                 "features_target": rng.standard_normal((n, 4)) + 0.5}
    summary = summarize(per_image)
    assert summary["images"] == n
    assert summary["fid"] == pytest.approx(frechet_distance(per_image["features_predicted"],
                                                            per_image["features_target"]))
    assert summary["lpips"] == pytest.approx(per_image["lpips"].mean())
    assert summary["lpips_fid100_f1"] == pytest.approx(
        lpips_fid100_f1(summary["lpips"], summary["fid"]))
    assert [(b["area"], b["images"]) for b in summary["bins"]] == [
        ("0-10%", 20), ("30-40%", 19), ("40-50%", 1)]
    assert summary["bins"][1]["ssim"] == pytest.approx(per_image["ssim"][20:39].mean())
    assert summary["bins"][2]["fid"] is None  # undefined for one image, as officially (NaN)


def test_scoring_without_networks_gives_pixel_metrics_only():
    target = np.full((2, 16, 16, 3), 0.5, np.float32)
    predicted, hole = target.copy(), np.zeros((2, 16, 16), np.float32)
    hole[:, :8] = 1  # the top half
    predicted[0, :8] += 0.2  # wrong in the hole by 0.2
    scores = jax.device_get(score_batch(MetricNets(None, None), predicted, target, hole))
    assert set(scores) == {"ssim", "psnr", "hole_l1"}
    np.testing.assert_allclose(scores["hole_l1"], [0.2, 0.0], atol=1e-6)
    np.testing.assert_allclose(scores["psnr"][0], 10 * np.log10(1 / (0.5 * 0.04)), rtol=1e-5)
    summary = summarize({"area": np.full(2, 0.5), **scores}, bins=0)
    assert summary["fid"] is None and summary["lpips"] is None
    assert summary["lpips_fid100_f1"] is None
    assert summary["hole_l1"] == pytest.approx(0.1)


# Six images give singular 2048x2048 covariances: SciPy warns, as it does for pytorch-fid.
SINGULAR_COVARIANCES = pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")


@SINGULAR_COVARIANCES
def test_cli_scores_predictions_like_the_library(eval_set, weights, tmp_path, capsys,
                                                 inception_variables, lpips_variables):
    out = tmp_path / "report"
    assert main(_args(eval_set / "data", out, weights, "--predictions", eval_set / "preds")) == 0
    names = [f"{'sub/' if i == 5 else ''}im{i}" for i in range(len(HOLE_SIDES))]
    images = np.stack([read_image(str(eval_set / "data" / f"{n}.png"))[0] for n in names])
    preds = np.stack([read_image(str(eval_set / "preds" / f"{n}_mask000.png"))[0] for n in names])
    report = json.loads((out / "metrics.json").read_text())
    assert report["images"] == len(names)
    assert report["ssim"] == pytest.approx(float(np.mean(ssim(preds, images))), rel=1e-5)
    assert report["lpips"] == pytest.approx(
        float(np.mean(jax.jit(lpips)(lpips_variables, preds, images))), rel=1e-5)
    features = jax.jit(pool3_features)(inception_variables, np.concatenate([preds, images]))
    expected_fid = frechet_distance(features[:len(names)], features[len(names):])
    assert report["fid"] == pytest.approx(expected_fid, rel=1e-4, abs=1e-4)
    assert [(b["area"], b["images"], b["fid"]) for b in report["bins"]] == [
        (area, 1, None) for area in ("0-10%", "10-20%", "20-30%", "30-40%", "40-50%", "60-70%")]
    table = (out / "metrics.md").read_text()
    assert "| Method | FID ↓ | LPIPS ↓ | SSIM ↑ |" in table and "| 60-70% | 1 |" in table
    assert (out / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| preds |" in capsys.readouterr().out


@SINGULAR_COVARIANCES
def test_cli_inpaints_with_a_model_then_scores_what_it_wrote(eval_set, weights, tmp_path,
                                                            reference, capsys):
    model = tmp_path / "tiny-lama"
    save_model(str(model), convert_checkpoint(str(reference / "tiny_best.ckpt")))
    out = tmp_path / "report"
    assert main(_args(eval_set / "data", out, weights, "--model", model)) == 0
    written = sorted(p.relative_to(out / "predictions").as_posix()
                     for p in (out / "predictions").rglob("*.png"))
    assert written == sorted(f"{'sub/' if i == 5 else ''}im{i}_mask000.png"
                             for i in range(len(HOLE_SIDES)))
    # Scoring the written results as predictions gives the same report.
    again = tmp_path / "again"
    assert main(_args(eval_set / "data", again, weights, "--predictions", out / "predictions")) == 0
    first, second = (json.loads((d / "metrics.json").read_text()) for d in (out, again))
    assert {k: v for k, v in first.items() if k != "method"} == \
        {k: v for k, v in second.items() if k != "method"}
    # A second run into the same folder keeps what is there.
    before = (out / "metrics.json").read_bytes()
    capsys.readouterr()
    assert main(_args(eval_set / "data", out, weights, "--model", model)) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    assert (out / "metrics.json").read_bytes() == before


def _break_set(kind, eval_set, tmp_path):
    data, preds = tmp_path / "data", tmp_path / "preds"
    shutil.copytree(eval_set / "data", data)
    shutil.copytree(eval_set / "preds", preds)
    if kind == "photo without mask":
        (data / "im1_mask000.png").unlink()
        return data, preds, "im1.png: no mask found"
    if kind == "prediction of the wrong size":
        Image.new("RGB", (32, 48)).save(preds / "im2_mask000.png")
        return data, preds, "im2_mask000.png: is 32x48 but"
    (preds / "im3_mask000.png").unlink()
    return data, preds, "im3_mask000.png: no prediction for"


@pytest.mark.parametrize("kind", ["photo without mask", "prediction of the wrong size",
                                  "missing prediction"])
def test_bad_sets_fail_before_loading_anything(kind, eval_set, tmp_path, capsys):
    data, preds, message = _break_set(kind, eval_set, tmp_path)
    # The weight files do not exist: the set is checked before they are read.
    missing = {"inception": str(tmp_path / "none.pth"), "vgg": str(tmp_path / "none.pth")}
    assert main(_args(data, tmp_path / "out", missing, "--predictions", preds)) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert all(line.startswith("lama_jax.evaluate: error: ") for line in err.splitlines())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["missing", "corrupt", "not inception"])
def test_bad_weight_files_fail_on_one_line(kind, eval_set, weights, tmp_path, capsys):
    bad = {"missing": tmp_path / "nope.pth", "corrupt": tmp_path / "corrupt.pth",
           "not inception": weights["vgg"]}[kind]
    (tmp_path / "corrupt.pth").write_bytes(np.random.default_rng(0).bytes(1000))
    expected = {"missing": "no such file", "corrupt": "not a PyTorch",
                "not inception": "does not hold pytorch-fid's Inception weights"}[kind]
    args = _args(eval_set / "data", tmp_path / "out", dict(weights, inception=str(bad)),
                 "--predictions", eval_set / "preds")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and str(bad) in err and expected in err
    assert not (tmp_path / "out").exists()
