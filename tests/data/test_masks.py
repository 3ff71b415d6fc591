import json

import numpy as np
import pytest

from lama_jax.data.masks import (PRESETS, TRAIN_PRESET, BoxParams, IrregularParams, MixedParams,
                                 OutpaintingParams, box_mask, drawn_mask, irregular_mask,
                                 mixed_mask, outpainting_mask, preset)

N_MASKS = 4000  # as the official statistics


@pytest.fixture(scope="module")
def official_stats(reference):
    return json.loads((reference / "official_mask_stats.json").read_text())


# Our presets -> their entries in the official statistics (abl-02-thin-bb has none).
OFFICIAL_NAMES = {TRAIN_PRESET: "train_256", **{n: n for n in PRESETS if n.startswith("random_")}}


@pytest.mark.parametrize("name", sorted(OFFICIAL_NAMES))
def test_coverage_matches_official_statistics(official_stats, name):
    ref = official_stats[OFFICIAL_NAMES[name]]
    size, params, rng = ref["size"], preset(name), np.random.default_rng(0)
    coverage = np.array([mixed_mask(rng, size, size, params).mean() for _ in range(N_MASKS)])
    assert abs(coverage.mean() - ref["mean"]) <= 0.02
    for q in (10, 50, 90):
        assert abs(np.percentile(coverage, q) - ref[f"q{q}"]) <= 0.03, q


def test_thin_bb_is_thin_strokes_or_one_box_with_even_odds():
    params, rng = preset("abl-02-thin-bb"), np.random.default_rng(0)
    masks = [mixed_mask(rng, 256, 256, params) for _ in range(400)]

    def one_box(m):
        ys, xs = np.nonzero(m)
        return m[ys.min():ys.max() + 1, xs.min():xs.max() + 1].all()

    boxes = [m for m in masks if one_box(m)]
    assert 0.4 < len(boxes) / len(masks) < 0.6  # the official mixture renormalises 1 : 1
    assert all(30 <= m.sum(axis=0).max() <= 128 and 30 <= m.sum(axis=1).max() <= 128 for m in boxes)
    wide = [mixed_mask(rng, 256, 256, preset(TRAIN_PRESET)).mean() for _ in range(400)]
    assert np.mean([m.mean() for m in masks]) < 0.75 * np.mean(wide)


def test_masks_are_pure_functions_of_the_seed():
    params = preset(TRAIN_PRESET)
    a = [mixed_mask(np.random.default_rng(7), 256, 256, params) for _ in range(3)]
    assert all(np.array_equal(a[0], m) for m in a)
    assert a[0].dtype == np.uint8 and set(np.unique(a[0])) <= {0, 1}
    b = mixed_mask(np.random.default_rng(8), 256, 256, params)
    assert not np.array_equal(a[0], b)


def test_irregular_stroke_widths_follow_brush_width():
    thin = irregular_mask(np.random.default_rng(0), 256, 256, IrregularParams(max_width=1, min_times=3))
    thick = irregular_mask(np.random.default_rng(0), 256, 256, IrregularParams(max_width=60, min_times=3))
    assert 0 < thin.mean() < thick.mean()


def test_boxes_respect_margin_and_sizes():
    p = BoxParams(margin=10, bbox_min_size=30, bbox_max_size=40, min_times=1, max_times=1)
    for seed in range(20):
        m = box_mask(np.random.default_rng(seed), 128, 128, p)
        ys, xs = np.nonzero(m)
        assert ys.min() >= 10 and xs.min() >= 10 and ys.max() < 118 and xs.max() < 118
        assert 30 <= ys.max() - ys.min() + 1 <= 40 and 30 <= xs.max() - xs.min() + 1 <= 40
    with pytest.raises(ValueError, match="too small"):
        box_mask(np.random.default_rng(0), 40, 40, p)


def test_outpainting_masks_touch_the_border():
    p = OutpaintingParams()
    for seed in range(20):
        m = outpainting_mask(np.random.default_rng(seed), 64, 64, p)
        assert m.any()
        assert m[0].all() or m[-1].all() or m[:, 0].all() or m[:, -1].all()
        assert m.mean() < 1


def test_mixture_renormalises_and_inverts():
    only_boxes = MixedParams(irregular_proba=0, box_proba=5, box=BoxParams(min_times=1))
    m = mixed_mask(np.random.default_rng(0), 128, 128, only_boxes)
    ys, xs = np.nonzero(m)
    assert m[ys.min():ys.max() + 1, xs.min():xs.max() + 1].any()
    inverted = MixedParams(irregular_proba=0, box_proba=1, box=BoxParams(min_times=1), invert_proba=1)
    assert mixed_mask(np.random.default_rng(0), 128, 128, inverted).mean() > 0.5
    with pytest.raises(ValueError, match="unknown mask preset"):
        preset("random_huge_2048")


def test_masks_drawn_at_the_presets_size_keep_their_coverage_at_a_smaller_crop():
    # 64 px crops with masks drawn at 256 px: the same holes, a quarter of the side.
    params = PRESETS[TRAIN_PRESET]
    drawn = [drawn_mask(np.random.default_rng([9, i]), 256, params) for i in range(300)]
    small = [drawn_mask(np.random.default_rng([9, i]), 64, params, drawn_at=256)
             for i in range(300)]
    assert small[0].shape == (64, 64) and set(np.unique(small[0])) <= {0, 1}
    assert abs(np.mean([m.mean() for m in small]) - np.mean([m.mean() for m in drawn])) < 0.01
    np.testing.assert_array_equal(drawn_mask(np.random.default_rng(1), 64, params, drawn_at=64),
                                  mixed_mask(np.random.default_rng(1), 64, 64, params))
