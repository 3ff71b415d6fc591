"""LaMa's multi-scale refinement for large photos (official `saicinpainting/evaluation/
refinement.py::refine_predict`, used by `bin/predict.py` with `refine=True`).

A single pass of the generator leaves blur and repeated texture in big holes of big photos.
Refinement inpaints a small copy of the photo first and then, at each larger scale, adjusts
the generator's features so that the result agrees with the smaller scale's result:

1. Pyramid: the photo (first shrunk to `px_budget` pixels if larger) and its hole, halved
   `n_scales - 1` times by a 5x5 Gaussian blur (sigma 1, reflect border) and bilinear resizing;
   n_scales = min(1 + round(log2(min(H, W) / min_side)), max_scales). A halved hole keeps every
   pixel the blur touched.
2. The smallest scale is inpainted in one pass.
3. At each larger scale the generator is split before its first residual block. The front
   runs once; its output features are optimised with Adam (`lr`) for `n_iters - 1` steps on
   mean|pred - image| over the known pixels plus mean|down(pred) - smaller result| over the
   hole, halved and eroded by a 15x15 ellipse (down = blur and halve). The rear's prediction
   after the last step fills the hole, and that result is the next scale's reference.

Every scale is reflect-padded to the generator's size multiple (the official refinement pads
so; plain prediction pads symmetrically). Each scale's optimisation is one compiled program
(`jax.lax.fori_loop` over the Adam steps), compiled once per padded size.

Where we differ: a photo over `px_budget` is refined at the reduced size, as officially, but
the result comes back at the input's size (the refined hole resized up bilinearly, the known
pixels the input's own); the official code returns the reduced image. The official code
reports a NaN loss where an eroded hole is empty; we count that term as 0, which leaves the
gradient the same.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import List, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.ndimage

from lama_jax.models.ffc import LocalGlobal
from lama_jax.models.generator import composite, generator_input
from lama_jax.models.variables import Variables

Features = Union[jax.Array, LocalGlobal]
HOLE_EPS = 1e-8  # the official threshold: a (blurred, resized) mask value >= this is hole
EROSION_SIZE = 15  # the loss mask's elliptical structuring element (official 15x15)


@dataclasses.dataclass(frozen=True)
class RefineOptions:
    """The official refiner's settings (`configs/prediction/default.yaml`, `refiner:`)."""

    n_iters: int = 15  # forward passes per scale; the features take n_iters - 1 Adam steps
    lr: float = 0.002  # Adam's learning rate on the features
    min_side: int = 512  # no scale's shorter side much below this (>= min_side / sqrt(2))
    max_scales: int = 3  # at most this many scales, the full size included
    px_budget: int = 1_800_000  # larger photos are refined at this many pixels

    def __post_init__(self):
        checks = [("n_iters", self.n_iters >= 1, "at least 1"),
                  ("lr", self.lr > 0 and math.isfinite(self.lr), "a positive number"),
                  ("min_side", self.min_side >= 8, "at least 8 pixels"),
                  ("max_scales", self.max_scales >= 1, "at least 1"),
                  ("px_budget", self.px_budget >= 64 * 64, "at least 4096 pixels")]
        for name, ok, must in checks:
            if not ok:
                raise ValueError(f"refinement option {name}={getattr(self, name)!r} must be {must}")


# ------------------------------------------------------------------------------------------
# Resampling with the official semantics (PyTorch/kornia), as pure functions of NHWC arrays.

def _gaussian_taps(size: int = 5, sigma: float = 1.0) -> np.ndarray:
    x = np.arange(size, dtype=np.float32) - size // 2
    taps = np.exp(-x ** 2 / np.float32(2 * sigma ** 2))
    return (taps / taps.sum()).astype(np.float32)  # [size]


def blur(x: jax.Array) -> jax.Array:
    """kornia's `gaussian_blur2d(x, (5, 5), (1, 1))` of [B, H, W, C] (H, W >= 3): the 5-tap
    Gaussian along the width, then along the height, reflect-padded."""
    taps = _gaussian_taps()
    x = jnp.pad(x, ((0, 0), (0, 0), (2, 2), (0, 0)), mode="reflect")
    w = x.shape[2] - 4
    x = sum(t * x[:, :, i:i + w] for i, t in enumerate(taps))
    x = jnp.pad(x, ((0, 0), (2, 2), (0, 0), (0, 0)), mode="reflect")
    h = x.shape[1] - 4
    return sum(t * x[:, i:i + h] for i, t in enumerate(taps))  # [B, H, W, C]


def _bilinear_taps(n_in: int, n_out: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray,
                                                    np.ndarray]:
    """PyTorch's bilinear source indices and weights (align_corners=False, no antialias)."""
    scale = np.float32(n_in) / np.float32(n_out)
    src = np.maximum((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale
                     - np.float32(0.5), np.float32(0))
    lo = src.astype(np.int32)
    hi = np.minimum(lo + 1, n_in - 1)
    w_hi = src - lo.astype(np.float32)
    return lo, hi, np.float32(1) - w_hi, w_hi


def resize_bilinear(x: jax.Array, size: Tuple[int, int]) -> jax.Array:
    """`F.interpolate(x, size, mode="bilinear", align_corners=False)` of [B, H, W, C]
    -> [B, size[0], size[1], C], in PyTorch's order of operations (width, then height)."""
    lo, hi, w_lo, w_hi = _bilinear_taps(x.shape[2], size[1])
    x = x[:, :, lo] * w_lo[:, None] + x[:, :, hi] * w_hi[:, None]
    lo, hi, w_lo, w_hi = _bilinear_taps(x.shape[1], size[0])
    return w_lo[:, None, None] * x[:, lo] + w_hi[:, None, None] * x[:, hi]


def pyrdown(x: jax.Array) -> jax.Array:
    """One pyramid step: blur, then bilinear resizing to half the size (rounded down)."""
    return resize_bilinear(blur(x), (x.shape[1] // 2, x.shape[2] // 2))


def ellipse(size: int = EROSION_SIZE) -> np.ndarray:
    """OpenCV's `getStructuringElement(MORPH_ELLIPSE, (size, size))` for odd `size`, as bools."""
    r = size // 2
    rows = np.arange(size) - r
    half = np.rint(r * np.sqrt((r * r - rows ** 2) / (r * r))).astype(int)  # [size]
    return np.abs(np.arange(size)[None] - r) <= half[:, None]


def loss_mask(hole: np.ndarray) -> np.ndarray:
    """The pixels of a scale's hole [1, h, w, 1] {0, 1} compared with the smaller scale's
    result: the hole halved bilinearly (no blur), kept where wholly hole, then eroded by the
    ellipse (the border does not erode) -> [1, h // 2, w // 2, 1] {0, 1}."""
    half = np.asarray(resize_bilinear(jnp.asarray(hole), (hole.shape[1] // 2,
                                                          hole.shape[2] // 2)))
    inside = half[0, ..., 0] >= np.float32(1 - HOLE_EPS)
    eroded = scipy.ndimage.binary_erosion(inside, ellipse(), border_value=1)
    return eroded.astype(np.float32)[None, ..., None]


def pyramid(image: np.ndarray, hole: np.ndarray, options: RefineOptions
            ) -> List[Tuple[np.ndarray, np.ndarray]]:
    """The (image [1, h, w, 3], hole [1, h, w, 1]) scales of a photo [1, H, W, 3] and its hole
    {0, 1}, smallest first; the largest is the photo, shrunk to `px_budget` pixels if bigger."""
    h, w = image.shape[1:3]
    if h * w > options.px_budget:
        ratio = math.sqrt(options.px_budget / (h * w))
        h, w = int(h * ratio), int(w * ratio)
        image = np.asarray(resize_bilinear(jnp.asarray(image), (h, w)))
        hole = (np.asarray(resize_bilinear(jnp.asarray(hole), (h, w))) > HOLE_EPS)
        hole = hole.astype(np.float32)
    n_scales = min(1 + int(round(max(0.0, math.log2(min(h, w) / options.min_side)))),
                   options.max_scales)
    scales = [(image, hole)]
    for _ in range(n_scales - 1):
        image, hole = scales[-1]
        smaller_hole = np.asarray(pyrdown(jnp.asarray(hole))) >= np.float32(HOLE_EPS)
        scales.append((np.asarray(pyrdown(jnp.asarray(image))),
                       smaller_hole.astype(np.float32)))
    return scales[::-1]


# ------------------------------------------------------------------------------------------
# One scale: a compiled program each.

def _masked_mean_abs(a: jax.Array, b: jax.Array, where: jax.Array) -> jax.Array:
    """mean |a - b| over the elements where `where` [B, H, W, 1] is 1 (all channels); 0 if
    there are none."""
    where = jnp.broadcast_to(where, a.shape)
    return jnp.sum(jnp.abs(a - b) * where) / jnp.maximum(jnp.sum(where), 1.0)


def _inpaint_scale(generator: nn.Module, variables: Variables, image: jax.Array,
                   hole: jax.Array) -> jax.Array:
    """The smallest scale: one pass. image [1, Hp, Wp, 3], hole [1, Hp, Wp, 1] -> [1, Hp, Wp, 3]."""
    return composite(image, hole, generator.apply(variables, generator_input(image, hole)))


def _refine_scale(generator: nn.Module, variables: Variables, image: jax.Array, hole: jax.Array,
                  reference: jax.Array, compared: jax.Array, n_iters: jax.Array, lr: jax.Array,
                  size: Tuple[int, int]) -> jax.Array:
    """A larger scale: image [1, Hp, Wp, 3] and hole [1, Hp, Wp, 1] padded from `size` (h, w);
    reference [1, h//2, w//2, 3], the smaller scale's result, compared with the prediction
    where `compared` [1, h//2, w//2, 1] is 1. Returns the composited [1, Hp, Wp, 3]."""
    h, w = size
    front = generator.apply(variables, generator_input(image, hole), part="front")

    def predict(features: Features) -> jax.Array:
        return generator.apply(variables, features, part="rear")  # [1, Hp, Wp, 3]

    def loss(features: Features) -> jax.Array:
        predicted = predict(features)
        return (_masked_mean_abs(predicted, image, 1.0 - hole)
                + _masked_mean_abs(pyrdown(predicted[:, :h, :w]), reference, compared))

    optimizer = optax.adam(lr)  # PyTorch's Adam defaults: betas (0.9, 0.999), eps 1e-8

    def step(_, carry):
        features, state = carry
        updates, state = optimizer.update(jax.grad(loss)(features), state)
        return optax.apply_updates(features, updates), state

    features, _ = jax.lax.fori_loop(0, n_iters - 1, step, (front, optimizer.init(front)))
    return composite(image, hole, predict(features))


def _reflect_pad(x: np.ndarray, modulo: int) -> np.ndarray:
    """Reflect-pads [B, H, W, C] at the bottom and right to multiples of `modulo`."""
    return np.pad(x, ((0, 0), (0, -x.shape[1] % modulo), (0, -x.shape[2] % modulo), (0, 0)),
                  mode="reflect")


class Refiner:
    """Refinement with one generator (a LaMa kind that takes `part=`, see
    `lama_jax.models.layers.Part`); compiled programs are kept per padded size."""

    def __init__(self, generator: nn.Module, size_multiple: int):
        self.size_multiple = size_multiple
        self._inpaint = jax.jit(functools.partial(_inpaint_scale, generator))
        self._refine = jax.jit(functools.partial(_refine_scale, generator),
                               static_argnames="size")

    def __call__(self, variables: Variables, image: np.ndarray, hole: np.ndarray,
                 options: RefineOptions) -> np.ndarray:
        """Refined inpainting of image [H, W, 3] float32 in [0, 1] where hole [H, W] is 1;
        returns the composited [H, W, 3] (at the input's size, see the module docstring)."""
        scales = pyramid(image[None], hole[None, ..., None].astype(np.float32), options)
        result = None
        for scale_image, scale_hole in scales:
            h, w = scale_image.shape[1:3]
            padded = [_reflect_pad(x, self.size_multiple) for x in (scale_image, scale_hole)]
            if result is None:
                out = self._inpaint(variables, *padded)
            else:
                out = self._refine(variables, *padded, result, loss_mask(scale_hole),
                                   options.n_iters, np.float32(options.lr), size=(h, w))
            result = np.asarray(out)[:, :h, :w]  # [1, h, w, 3]
        if result.shape[1:3] != image.shape[:2]:  # refined within px_budget: back to full size
            result = np.asarray(resize_bilinear(jnp.asarray(result), image.shape[:2]))
            result = np.where(hole[None, ..., None] > 0, result, image[None])
        return result[0]
