"""LaMa's mask generators as functions of (rng, height, width, params) -> [H, W] uint8 {0, 1}.

Algorithms and presets follow the official `saicinpainting/training/data/masks.py` and
`configs/training/data/abl-04-256-mh-dist.yaml`, `configs/data_gen/random_*.yaml`:

* irregular: `times` strokes of 1-5 segments each; each segment turns by a random angle
  (0.01 + {0..max_angle-1} radians, mirrored on even strokes), has length 10 + {0..max_len-1}
  and brush width 5 + {0..max_width-1}, and is drawn with `cv2.line` (OpenCV's thick lines,
  round caps), the end point clipped to the image;
* box: `times` rectangles of side bbox_min_size..bbox_max_size at least `margin` from the
  border;
* outpainting: strips along the borders;
* mixed: one of the above, chosen with renormalised probabilities.

As the official code calls them through its (un-ramped) generator wrappers, an irregular mask
has up to `max_times + 1` strokes and a box side up to `bbox_max_size` inclusive; we reproduce
that, and the coverage statistics match the official ones (tests/data/test_masks.py).
Randomness comes only from the `numpy.random.Generator` passed in, so a mask is a pure
function of its seed.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional

import cv2
import numpy as np

from lama_jax.errors import ConfigError

Mask = np.ndarray  # [H, W] uint8, 1 = hole


@dataclasses.dataclass(frozen=True)
class IrregularParams:
    """Wide irregular strokes (official `irregular_kwargs`)."""

    max_angle: int = 4
    max_len: int = 60
    max_width: int = 20
    min_times: int = 0
    max_times: int = 10


@dataclasses.dataclass(frozen=True)
class BoxParams:
    """Random rectangles (official `box_kwargs`)."""

    margin: int = 10
    bbox_min_size: int = 30
    bbox_max_size: int = 100
    min_times: int = 0
    max_times: int = 3


@dataclasses.dataclass(frozen=True)
class OutpaintingParams:
    """Border strips (official `OutpaintingMaskGenerator`); probabilities per side."""

    min_padding_percent: float = 0.04
    max_padding_percent: float = 0.25
    left_padding_prob: float = 0.5
    top_padding_prob: float = 0.5
    right_padding_prob: float = 0.5
    bottom_padding_prob: float = 0.5


@dataclasses.dataclass(frozen=True)
class MixedParams:
    """A mixture of generators (official `MixedMaskGenerator`); probabilities renormalised."""

    irregular_proba: float = 1 / 3
    irregular: IrregularParams = IrregularParams()
    box_proba: float = 1 / 3
    box: BoxParams = BoxParams()
    outpainting_proba: float = 0.0
    outpainting: OutpaintingParams = OutpaintingParams()
    invert_proba: float = 0.0


def irregular_mask(rng: np.random.Generator, height: int, width: int,
                   p: IrregularParams) -> Mask:
    """Wide irregular strokes drawn with OpenCV's thick lines."""
    mask = np.zeros((height, width), np.uint8)
    times = int(rng.integers(p.min_times, p.max_times + 2))  # official wrapper: max_times + 1
    if times == 0:
        return mask
    starts = rng.integers(0, (width, height), size=(times, 2))  # (x, y) per stroke
    segments = 1 + rng.integers(0, 5, size=times)
    angles = 0.01 + rng.integers(0, p.max_angle, size=(times, 5))
    lengths = 10 + rng.integers(0, p.max_len, size=(times, 5))
    widths = 5 + rng.integers(0, p.max_width, size=(times, 5))
    for i in range(times):
        x, y = int(starts[i, 0]), int(starts[i, 1])
        for j in range(int(segments[i])):
            angle = 2 * 3.1415926 - angles[i, j] if i % 2 == 0 else angles[i, j]
            # int32 truncation towards zero, then clipping to [0, size], as the official code.
            end_x = min(max(int(np.int32(x + lengths[i, j] * np.sin(angle))), 0), width)
            end_y = min(max(int(np.int32(y + lengths[i, j] * np.cos(angle))), 0), height)
            cv2.line(mask, (x, y), (end_x, end_y), 1, int(widths[i, j]))
            x, y = end_x, end_y
    return mask


def box_mask(rng: np.random.Generator, height: int, width: int, p: BoxParams) -> Mask:
    """Random axis-aligned rectangles."""
    mask = np.zeros((height, width), np.uint8)
    # Official wrapper: sides drawn from [bbox_min_size, bbox_max_size] inclusive.
    max_size = min(p.bbox_max_size + 1, height - 2 * p.margin, width - 2 * p.margin)
    if max_size <= p.bbox_min_size:
        raise ConfigError(f"a {height}x{width} image is too small for boxes of at least "
                         f"{p.bbox_min_size} px with a {p.margin} px margin")
    for _ in range(int(rng.integers(p.min_times, p.max_times + 1))):
        box_w, box_h = (int(v) for v in rng.integers(p.bbox_min_size, max_size, size=2))
        x = int(rng.integers(p.margin, width - p.margin - box_w + 1))
        y = int(rng.integers(p.margin, height - p.margin - box_h + 1))
        mask[y:y + box_h, x:x + box_w] = 1
    return mask


def outpainting_mask(rng: np.random.Generator, height: int, width: int,
                     p: OutpaintingParams) -> Mask:
    """Strips along the left, top, right and bottom borders, each with its probability;
    at least one side is always masked."""
    mask = np.zeros((height, width), np.uint8)

    def fraction(size: int) -> float:
        lo, hi = int(p.min_padding_percent * size), int(p.max_padding_percent * size)
        return int(rng.integers(lo, hi)) / size

    # As the official code: left/right strip widths are drawn relative to the height and
    # top/bottom ones relative to the width (identical for square images).
    left, top, right, bottom = fraction(height), fraction(width), fraction(height), fraction(width)
    strips = [(slice(None), slice(0, int(left * width))),
              (slice(0, int(top * height)), slice(None)),
              (slice(None), slice(int((1 - right) * width), None)),
              (slice(int((1 - bottom) * height), None), slice(None))]
    probs = np.array([p.left_padding_prob, p.top_padding_prob, p.right_padding_prob,
                      p.bottom_padding_prob])
    chosen = rng.random(4) < probs
    if not chosen.any():
        chosen[rng.choice(4, p=probs / probs.sum())] = True
    for strip, on in zip(strips, chosen):
        if on:
            mask[strip] = 1
    return mask


def mixed_mask(rng: np.random.Generator, height: int, width: int, p: MixedParams) -> Mask:
    """One mask from the mixture `p`."""
    kinds = [(p.irregular_proba, lambda: irregular_mask(rng, height, width, p.irregular)),
             (p.box_proba, lambda: box_mask(rng, height, width, p.box)),
             (p.outpainting_proba, lambda: outpainting_mask(rng, height, width, p.outpainting))]
    kinds = [(proba, draw) for proba, draw in kinds if proba > 0]
    probas = np.array([proba for proba, _ in kinds])
    mask = kinds[int(rng.choice(len(kinds), p=probas / probas.sum()))][1]()
    if p.invert_proba > 0 and rng.random() < p.invert_proba:
        mask = 1 - mask
    return mask


def drawn_mask(rng: np.random.Generator, size: int, p: MixedParams, drawn_at: int = 0) -> Mask:
    """A square mask [size, size] from the mixture `p`, drawn at side `drawn_at` (0: `size`)
    and resized to `size` (a pixel becomes a hole where holes cover at least half of it), so
    that a preset's strokes and boxes, given in pixels for `drawn_at`, keep their proportion
    to an image of another size."""
    if drawn_at in (0, size):
        return mixed_mask(rng, size, size, p)
    mask = mixed_mask(rng, drawn_at, drawn_at, p).astype(np.float32)
    resized = cv2.resize(mask, (size, size),
                         interpolation=cv2.INTER_AREA if drawn_at > size else cv2.INTER_NEAREST)
    return (resized >= 0.5).astype(np.uint8)


def _eval_preset(irregular: IrregularParams, box: Optional[BoxParams]) -> MixedParams:
    return MixedParams(irregular_proba=1.0, irregular=irregular,
                       box_proba=0.3 if box else 0.0, box=box or BoxParams())


# Named exactly as the official configs; sizes are the evaluation resolution.
PRESETS: Dict[str, MixedParams] = {
    # configs/training/data/abl-04-256-mh-dist.yaml: 50% irregular, 50% boxes.
    "abl-04-256-mh-dist": MixedParams(
        irregular_proba=1.0, irregular=IrregularParams(4, 200, 100, 1, 5),
        box_proba=1.0, box=BoxParams(10, 30, 150, 1, 4)),
    # configs/training/data/abl-02-thin-bb.yaml (Table 4's narrow training masks, after DeepFill
    # v2's): thin strokes or one box, with equal chance.
    "abl-02-thin-bb": MixedParams(
        irregular_proba=1.0, irregular=IrregularParams(4, 80, 40, 4, 12),
        box_proba=1.0, box=BoxParams(0, 30, 128, 1, 1)),
    "random_thin_256": _eval_preset(IrregularParams(4, 40, 10, 4, 50), None),
    "random_medium_256": _eval_preset(IrregularParams(4, 100, 50, 4, 5), BoxParams(0, 10, 50, 1, 5)),
    "random_thick_256": _eval_preset(IrregularParams(4, 200, 100, 1, 5), BoxParams(10, 30, 150, 1, 3)),
    "random_thin_512": _eval_preset(IrregularParams(4, 100, 20, 4, 70), None),
    "random_medium_512": _eval_preset(IrregularParams(4, 200, 100, 4, 10), BoxParams(0, 30, 150, 1, 5)),
    "random_thick_512": _eval_preset(IrregularParams(4, 450, 250, 1, 5), BoxParams(10, 30, 300, 1, 4)),
}
TRAIN_PRESET = "abl-04-256-mh-dist"
EVAL_PRESET_SIZES = {name: int(name.rsplit("_", 1)[1]) for name in PRESETS if name.startswith("random_")}
# The resolution each preset was made for: the training presets' crops are 256 px.
PRESET_SIZES = {**{name: 256 for name in PRESETS}, **EVAL_PRESET_SIZES}


def preset(name: str) -> MixedParams:
    """The parameters of a named official preset."""
    if name not in PRESETS:
        raise ConfigError(f"unknown mask preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]
