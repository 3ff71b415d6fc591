"""Ways to inpaint photos too large for one pass (the high-resolution strategies IOPaint offers
for LaMa), around any function that inpaints one photo.

    original  one pass over the whole photo.
    crop      when the longer side exceeds `trigger`: each hole region with `margin` pixels of
              context around it (crops that would overlap are merged into one) is inpainted on
              its own and its hole pixels are pasted back.
    resize    when the longer side exceeds `resize_limit`: a copy shrunk to that longer side
              (bicubic, antialiased) is inpainted, and its result, enlarged bicubically, fills
              the hole pixels only.

Known pixels come back bit-identical to the input in every strategy. Defaults are IOPaint's
(trigger 800, margin 128, resize limit 1280).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, List, Tuple

import jax
import numpy as np
import scipy.ndimage

STRATEGIES = ("original", "crop", "resize")
Box = Tuple[int, int, int, int]  # top, left, bottom, right (exclusive)
InpaintFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # [h, w, 3], [h, w] -> [h, w, 3]


@dataclasses.dataclass(frozen=True)
class HDStrategy:
    """A strategy and its sizes (pixels)."""

    name: str = "original"  # one of STRATEGIES
    trigger: int = 800  # crop: only photos whose longer side exceeds this are cropped
    margin: int = 128  # crop: context kept around each hole region
    resize_limit: int = 1280  # resize: the longer side of the inpainted copy

    def __post_init__(self):
        if self.name not in STRATEGIES:
            raise ValueError(f"unknown high-resolution strategy {self.name!r}; expected one of "
                             f"{', '.join(STRATEGIES)}")
        for field, least in (("trigger", 0), ("margin", 0), ("resize_limit", 8)):
            value = getattr(self, field)
            if not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"high-resolution strategy option {field}={value!r} must be a "
                                 f"whole number of pixels, at least {least}")


def _grow(lo: int, hi: int, margin: int, size: int) -> Tuple[int, int]:
    """[lo, hi) widened by `margin` each side within [0, size); what one side loses at the
    border the other side gains."""
    lo, hi = lo - margin, hi + margin
    if lo < 0:
        hi -= lo
    if hi > size:
        lo -= hi - size
    return max(lo, 0), min(hi, size)


def crop_boxes(hole: np.ndarray, margin: int) -> List[Box]:
    """Disjoint boxes around the hole's 8-connected regions of `hole` [H, W] bool, each region
    with `margin` pixels of context (near the border, more on the other side); boxes that
    would overlap are merged into their bounding box."""
    labels, _ = scipy.ndimage.label(hole, structure=np.ones((3, 3), bool))
    boxes: List[Box] = []
    for rows, cols in scipy.ndimage.find_objects(labels):
        top, bottom = _grow(rows.start, rows.stop, margin, hole.shape[0])
        left, right = _grow(cols.start, cols.stop, margin, hole.shape[1])
        box = (top, left, bottom, right)
        # Absorb every box this one overlaps (which may make it overlap more): boxes stay disjoint.
        while (hit := next((b for b in boxes if _overlap(b, box)), None)) is not None:
            boxes.remove(hit)
            box = (min(box[0], hit[0]), min(box[1], hit[1]), max(box[2], hit[2]),
                   max(box[3], hit[3]))
        boxes.append(box)
    return sorted(boxes)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _resize(x: np.ndarray, size: Tuple[int, int], method: str) -> np.ndarray:
    """[H, W, ...] resized to `size` (antialiased when shrinking)."""
    return np.asarray(jax.image.resize(x, (*size, *x.shape[2:]), method, antialias=True))


def inpaint_large(inpaint: InpaintFn, image: np.ndarray, hole: np.ndarray,
                  strategy: HDStrategy) -> np.ndarray:
    """Inpaints image [H, W, 3] float32 in [0, 1] where hole [H, W] bool is True with
    `inpaint` (a function of one photo and its hole) under `strategy`; -> [H, W, 3] float32."""
    longer = max(hole.shape)
    hole3 = hole[..., None]  # [H, W, 1]
    if strategy.name == "crop" and longer > strategy.trigger:
        result = image.copy()
        for top, left, bottom, right in crop_boxes(hole, strategy.margin):
            window = (slice(top, bottom), slice(left, right))
            filled = inpaint(image[window], hole[window])
            result[window] = np.where(hole3[window], filled, image[window])
        return result
    if strategy.name == "resize" and longer > strategy.resize_limit:
        scale = strategy.resize_limit / longer
        small = tuple(max(1, int(n * scale + 0.5)) for n in hole.shape)
        small_hole = _resize(hole.astype(np.float32), small, "linear") > 0  # every touched pixel
        filled = inpaint(np.clip(_resize(image, small, "cubic"), 0, 1), small_hole)
        enlarged = np.clip(_resize(filled, hole.shape, "cubic"), 0, 1)
        return np.where(hole3, enlarged, image).astype(np.float32)
    return np.where(hole3, inpaint(image, hole), image).astype(np.float32)
