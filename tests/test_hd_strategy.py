"""High-resolution strategies: crop touches only the hole regions, resize changes only hole
pixels, known pixels stay bit-identical, and bad options are one-line errors."""

import numpy as np
import pytest

from lama_jax.convert import convert_generator
from lama_jax.hd_strategy import HDStrategy, crop_boxes, inpaint_large
from lama_jax.inpaint import Inpainter


@pytest.fixture(scope="module")
def tiny(load_npz):
    return Inpainter(*convert_generator(load_npz("tiny_generator_state.npz")))


@pytest.fixture(scope="module")
def photo():
    """A 240x400 photo with two small holes far apart."""
    rng = np.random.default_rng(0)
    image = rng.random((240, 400, 3), dtype=np.float32)
    hole = np.zeros((240, 400), bool)
    hole[20:40, 30:60] = True
    hole[190:220, 330:350] = True
    return image, hole


def _recording(tiny, calls):
    def inpaint(image, hole):
        calls.append(image.shape[:2])
        return tiny(image, hole)
    return inpaint


def test_crop_boxes_grow_by_the_margin_and_merge_when_they_would_overlap():
    hole = np.zeros((100, 200), bool)
    hole[10:20, 10:20] = True
    hole[10:20, 60:70] = True  # 40 px from the first region
    hole[80:90, 180:190] = True
    assert crop_boxes(hole, 10) == [(0, 0, 30, 30), (0, 50, 30, 80), (70, 170, 100, 200)]
    # With 25 px of margin the first two crops would overlap: one crop holds both. What a crop
    # loses at the border it gains on the other side (60 rows, not 45).
    assert crop_boxes(hole, 25) == [(0, 0, 60, 95), (40, 140, 100, 200)]


def test_crop_inpaints_each_region_on_its_own(tiny, photo):
    image, hole = photo
    calls = []
    out = inpaint_large(_recording(tiny, calls), image, hole, HDStrategy("crop", 100, 16))
    assert calls == [(52, 62), (62, 52)]  # hole plus 16 px each side, nothing else
    np.testing.assert_array_equal(out[~hole], image[~hole])
    first = tiny(image[4:56, 14:76], hole[4:56, 14:76])
    np.testing.assert_array_equal(out[4:56, 14:76], first)
    assert np.abs(out[hole] - image[hole]).max() > 0.01  # the holes were filled


def test_resize_changes_only_hole_pixels(tiny, photo):
    image, hole = photo
    calls = []
    out = inpaint_large(_recording(tiny, calls), image, hole, HDStrategy("resize", resize_limit=200))
    assert calls == [(120, 200)]
    np.testing.assert_array_equal(out[~hole], image[~hole])
    assert out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1


def test_small_photos_and_the_original_strategy_take_one_pass(tiny, photo):
    image, hole = photo
    plain = tiny(image, hole)
    for strategy in (HDStrategy("crop", trigger=400), HDStrategy("resize", resize_limit=400),
                     HDStrategy()):
        calls = []
        np.testing.assert_array_equal(
            inpaint_large(_recording(tiny, calls), image, hole, strategy), plain)
        assert calls == [(240, 400)]


def test_the_api_takes_the_strategy(tiny, photo):
    image, hole = photo
    out = tiny((image * 255).astype(np.uint8), hole.astype(np.uint8) * 255,
               hd_strategy="crop", hd_trigger=100, crop_margin=16)
    known = (image * 255).astype(np.uint8)[~hole] / np.float32(255)
    np.testing.assert_array_equal(out[~hole], known)


@pytest.mark.parametrize("options, message", [
    (dict(hd_strategy="tile"), "unknown high-resolution strategy 'tile'"),
    (dict(crop_margin=-1), "margin=-1 must be a whole number of pixels, at least 0"),
    (dict(resize_limit=4), "resize_limit=4 must be a whole number of pixels, at least 8"),
    (dict(hd_trigger=1.5), "trigger=1.5 must be a whole number"),
])
def test_bad_options_are_one_line_errors(tiny, options, message):
    with pytest.raises(ValueError, match=message):
        tiny(np.zeros((16, 16, 3), np.float32), np.ones((16, 16)), **options)
