"""Refinement (official `refine_predict`): parity with the official result, both generator
kinds, the pixel budget, one compiled program per scale, and bad options."""

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lama_jax.convert import convert_generator
from lama_jax.inpaint import Inpainter
from lama_jax.models.ffc_resnet import FFCResNetConfig
from lama_jax.models.generator import build_generator, generator_input
from lama_jax.models.pconv import PConvUNetConfig
from lama_jax.models.pix2pixhd import GlobalGeneratorConfig
from lama_jax.refine import RefineOptions, ellipse, loss_mask, pyramid, resize_bilinear

REGULAR = GlobalGeneratorConfig(ngf=8, n_downsampling=2, n_blocks=2)


@pytest.fixture(scope="module")
def tiny(load_npz):
    return Inpainter(*convert_generator(load_npz("tiny_generator_state.npz")))


def _random_inpainter(config, seed=0):
    variables = build_generator(config).init(jax.random.key(seed), jnp.zeros((1, 16, 16, 4)))
    return Inpainter(config, variables)


def test_matches_the_official_refinement(tiny, load_npz):
    io = load_npz("tiny_refine_io_200x300.npz")  # three scales: 50x75, 100x150, 200x300
    refined = tiny(io["image"], io["mask"], refine=True, min_side=64)
    err = np.abs(refined - io["refined"])
    moved = np.abs(io["refined"] - io["unrefined"]).max()  # what refinement changes: ~5e-4
    assert err.max() < 1e-5 and err.mean() < 1e-7, (err.max(), err.mean())
    assert err.max() < moved / 50
    # Refinement did its work: the plain pass is as far from the official result as `moved`.
    assert np.abs(tiny(io["image"], io["mask"]) - io["refined"]).max() > moved / 2


@pytest.mark.parametrize("part_config", [REGULAR, FFCResNetConfig(ngf=8, n_downsampling=2,
                                                                  n_blocks=1)])
def test_front_then_rear_is_the_whole_generator(part_config):
    generator = build_generator(part_config)
    x = generator_input(jnp.asarray(np.random.default_rng(0).random((1, 32, 40, 3)), jnp.float32),
                        jnp.zeros((1, 32, 40, 1)))
    variables = generator.init(jax.random.key(1), x)
    front = generator.apply(variables, x, part="front")
    np.testing.assert_allclose(generator.apply(variables, front, part="rear"),
                               generator.apply(variables, x), atol=1e-6)


def test_the_regular_generator_refines():
    inpainter = _random_inpainter(REGULAR)
    rng = np.random.default_rng(0)
    image = rng.random((64, 96, 3), dtype=np.float32)
    mask = np.zeros((64, 96), np.float32)
    mask[20:44, 30:70] = 1
    plain = inpainter(image, mask)
    refined = inpainter(image, mask, refine=True, min_side=32, n_iters=4, lr=0.05)  # 2 scales
    known = mask == 0
    np.testing.assert_array_equal(refined[known], image[known])
    assert np.isfinite(refined).all() and np.abs(refined - plain)[~known].max() > 1e-4


def test_a_photo_over_the_pixel_budget_comes_back_at_its_size(tiny):
    rng = np.random.default_rng(1)
    image = rng.random((90, 120, 3), dtype=np.float32)  # 10,800 px; refined at 4,800 (60x80)
    mask = np.zeros((90, 120), np.uint8)
    mask[30:60, 40:90] = 255
    scales = pyramid(image[None], (mask > 0)[None, ..., None].astype(np.float32),
                     RefineOptions(min_side=64, px_budget=4800))
    assert [s[0].shape[1:3] for s in scales] == [(60, 80)]
    out = tiny(image, mask, refine=True, min_side=64, px_budget=4800)
    assert out.shape == image.shape
    known = mask == 0
    np.testing.assert_array_equal(out[known], image[known])


def test_pyramid_scales_and_the_loss_mask():
    hole = np.zeros((1, 200, 300, 1), np.float32)
    hole[0, 40:160, 60:240] = 1
    scales = pyramid(np.zeros((1, 200, 300, 3), np.float32), hole, RefineOptions(min_side=64))
    assert [s[1].shape[1:3] for s in scales] == [(50, 75), (100, 150), (200, 300)]
    # A halved hole keeps every pixel the blur touched: it grows, never shrinks.
    assert scales[1][1][0, 20:80, 30:120].all() and scales[1][1].sum() > 60 * 90
    compared = loss_mask(hole)  # halved (20:80, 30:120), then eroded by the 15x15 ellipse
    assert compared.shape == (1, 100, 150, 1)
    np.testing.assert_array_equal(np.argwhere(compared[0, ..., 0]).min(0), [27, 37])
    np.testing.assert_array_equal(np.argwhere(compared[0, ..., 0]).max(0), [72, 112])


def test_ellipse_is_opencvs_and_halving_averages():
    for size in (3, 7, 15, 21):
        np.testing.assert_array_equal(
            ellipse(size), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)) > 0)
    x = np.random.default_rng(0).random((1, 6, 8, 2), dtype=np.float32)
    blocks = x.reshape(1, 3, 2, 4, 2, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(resize_bilinear(jnp.asarray(x), (3, 4)), blocks, atol=1e-7)


def test_each_scale_is_one_compiled_loop(tiny, load_npz):
    io = load_npz("tiny_refine_io_200x300.npz")
    refine = tiny._refiner._refine
    tiny(io["image"], io["mask"], refine=True, min_side=64, n_iters=3)
    compiled = refine._cache_size()  # one program per refined scale (100x150, 200x300)
    tiny(io["image"], io["mask"], refine=True, min_side=64, n_iters=5, lr=0.01)
    assert refine._cache_size() == compiled == 2  # n_iters and lr are arguments, not constants
    hlo = refine.lower(tiny.variables, np.zeros((1, 104, 152, 3), np.float32),
                       np.zeros((1, 104, 152, 1), np.float32), np.zeros((1, 50, 75, 3), np.float32),
                       np.zeros((1, 50, 75, 1), np.float32), 15, np.float32(0.002),
                       size=(100, 150)).as_text()
    assert "while" in hlo


@pytest.mark.parametrize("options, message", [
    (dict(n_iters=0), "n_iters=0 must be at least 1"),
    (dict(lr=float("nan")), "lr=nan must be a positive number"),
    (dict(min_side=4), "min_side=4 must be at least 8 pixels"),
    (dict(max_scales=0), "max_scales=0 must be at least 1"),
])
def test_bad_options_are_one_line_errors(tiny, options, message):
    with pytest.raises(ValueError, match=message):
        tiny(np.zeros((16, 16, 3), np.float32), np.ones((16, 16)), refine=True, **options)


def test_a_generator_without_residual_blocks_cannot_refine():
    inpainter = _random_inpainter(PConvUNetConfig(ngf=8, n_layers=4))
    assert not inpainter.can_refine
    with pytest.raises(ValueError, match="needs a generator with residual blocks"):
        inpainter(np.zeros((16, 16, 3), np.float32), np.ones((16, 16)), refine=True)
