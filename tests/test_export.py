"""Export: the StableHLO and SavedModel artifacts, loaded back without lama_jax's model code,
give `Inpainter`'s results; symbolic sizes where the generator allows them; one-line errors."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf

from lama_jax import export
from lama_jax.convert import convert_checkpoint
from lama_jax.inpaint import Inpainter
from lama_jax.model_dir import Model, save_model
from lama_jax.models.generator import build_generator
from lama_jax.models.multidilated import MultiDilatedConfig
from lama_jax.models.pconv import PConvUNetConfig
from lama_jax.models.pix2pixhd import GlobalGeneratorConfig


@pytest.fixture(scope="module")
def models(reference, tmp_path_factory):
    """A Fourier model directory (the official tiny checkpoint) and a regular one."""
    root = tmp_path_factory.mktemp("models")
    save_model(str(root / "fourier"), convert_checkpoint(str(reference / "tiny_best.ckpt")))
    regular = GlobalGeneratorConfig(ngf=8, n_downsampling=3, n_blocks=1)
    variables = build_generator(regular).init(jax.random.key(0), jnp.zeros((1, 16, 16, 4)))
    save_model(str(root / "regular"), Model(regular, variables))
    return root


def _photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), np.float32)
    mask[h // 4: h // 2, w // 3: 2 * w // 3] = 1
    return rng.random((h, w, 3), dtype=np.float32), mask


def _load_and_call(path, fmt, image, mask):
    """What a user without lama_jax's model code runs."""
    if fmt == "stablehlo":
        with open(path, "rb") as f:
            return np.asarray(jax.export.deserialize(f.read()).call(image, mask))
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    return serve(image=tf.constant(image), mask=tf.constant(mask))["inpainted"].numpy()


@pytest.mark.parametrize("fmt", export.FORMATS)
@pytest.mark.parametrize("impl", ["fft", "dft"])
def test_a_fourier_model_round_trips_at_its_size(models, tmp_path, fmt, impl):
    path = tmp_path / "artifact"
    assert export.main(["--model", str(models / "fourier"), "--output", str(path),
                        "--format", fmt, "--size", "60x90", "--spectral-impl", impl]) == 0
    image, mask = _photo(60, 90)
    expected = Inpainter.load(str(models / "fourier"), spectral_impl=impl)(image, mask)
    np.testing.assert_allclose(_load_and_call(path, fmt, image, mask), expected, atol=1e-5)


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_a_model_without_fourier_units_takes_any_size(models, tmp_path, fmt):
    path = tmp_path / "artifact"
    assert export.main(["--model", str(models / "regular"), "--output", str(path),
                        "--format", fmt]) == 0
    inpainter = Inpainter.load(str(models / "regular"))
    for h, w in [(37, 45), (64, 80)]:  # padded inside the artifact to 40x48 and not at all
        image, mask = _photo(h, w, seed=h)
        np.testing.assert_allclose(_load_and_call(path, fmt, image, mask),
                                   inpainter(image, mask), atol=1e-5)


@pytest.mark.parametrize("config", [MultiDilatedConfig(ngf=8, n_blocks=1),
                                    PConvUNetConfig(ngf=8, n_layers=4)])
def test_the_baselines_export_at_one_size(config):
    side = max(64, config.min_side)
    variables = build_generator(config).init(jax.random.key(0), jnp.zeros((1, side, side, 4)))
    with pytest.raises(export.ExportError, match="checks its input size"):
        export.export_stablehlo(config, variables, None)
    image, mask = _photo(config.min_side + 5, config.min_side + 19)
    exported = export.export_stablehlo(config, variables, image.shape[:2])
    np.testing.assert_allclose(exported.call(image, mask), Inpainter(config, variables)(image, mask),
                               atol=1e-5)


def test_bad_exports_are_one_line_errors_and_keep_what_exists(models, tmp_path, capsys):
    def run(*flags):
        code = export.main(["--model", str(models / "fourier")] + list(flags))
        err = capsys.readouterr().err.strip()
        assert code == 1 and err.count("\n") == 0, err
        return err

    assert "add --size HxW" in run("--output", str(tmp_path / "a"))
    assert "each side must be at least 16 px" in run("--output", str(tmp_path / "a"),
                                                     "--size", "8x64")
    assert not (tmp_path / "a").exists()
    kept = tmp_path / "kept.stablehlo"
    kept.write_bytes(b"mine")
    assert "pass --overwrite" in run("--output", str(kept), "--size", "64x64")
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    assert "not a SavedModel folder" in run("--output", str(folder), "--size", "64x64",
                                            "--format", "saved_model", "--overwrite")
    assert kept.read_bytes() == b"mine" and os.listdir(folder) == ["holiday.jpg"]
    assert sorted(os.listdir(tmp_path)) == ["kept.stablehlo", "photos"]  # no staging left
    with pytest.raises(SystemExit):
        export.main(["--model", str(models / "fourier"), "--output", "x", "--size", "big"])
