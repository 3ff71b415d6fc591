"""Procedural images of periodic structures, for checking the paper's claim that Fourier units
fill large holes in periodic patterns better (the ablation issue's CPU study).

Four kinds, each at a random period, orientation, pair of colours and shading, with mild
noise: sinusoidal gratings, checkerboards, brick walls (offset rows of bricks with mortar
joints) and dot lattices. An image is a pure function of (seed, index) and its size: the
period is a fraction of the image side, so a larger rendering shows the same picture in more
detail. Hard edges are antialiased by 2x supersampling.

    source = PeriodicImages(count=10_000, size=256, seed=0)   # a source for the pipeline
    image = periodic_image(np.random.default_rng(0), 64)      # [64, 64, 3] uint8
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

KINDS = ("grating", "checkerboard", "bricks", "dots")


def _pattern(kind: str, u: np.ndarray, v: np.ndarray, period: float,
             rng: np.random.Generator) -> np.ndarray:
    """Pattern value in [0, 1] at rotated coordinates (u, v) [H, W] in pixels."""
    if kind == "grating":
        return 0.5 + 0.5 * np.sin(2 * np.pi * u / period)
    if kind == "checkerboard":
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float64)
    if kind == "bricks":
        course = period / 2  # brick height
        row = np.floor(v / course)
        along = (u / period + 0.5 * (row % 2)) % 1.0
        across = (v / course) % 1.0
        mortar = rng.uniform(0.06, 0.12)
        return ((along > mortar) & (across > 2 * mortar)).astype(np.float64)
    radius = rng.uniform(0.2, 0.4) * period  # dots
    du, dv = u % period - period / 2, v % period - period / 2
    return (du * du + dv * dv < radius * radius).astype(np.float64)


def periodic_image(rng: np.random.Generator, size: int, kind: Optional[str] = None) -> np.ndarray:
    """One random periodic image [size, size, 3] uint8, of `kind` (one of `KINDS`; random
    when None)."""
    drawn = KINDS[int(rng.integers(len(KINDS)))]
    kind = kind or drawn
    period = rng.uniform(1 / 16, 1 / 4) * size
    angle = rng.uniform(0, np.pi)
    colours = rng.uniform(0, 1, (2, 3))
    shade_angle, shade = rng.uniform(0, 2 * np.pi), rng.uniform(-0.3, 0.3)
    noise_seed = int(rng.integers(2 ** 31))
    # 2x supersampling: pixel centres of a grid twice as fine, averaged back.
    grid = (np.arange(2 * size) + 0.5) / 2
    y, x = np.meshgrid(grid, grid, indexing="ij")
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    t = _pattern(kind, u, v, period, rng)[..., None]  # [2S, 2S, 1]
    image = colours[0] * (1 - t) + colours[1] * t
    ramp = (x * np.cos(shade_angle) + y * np.sin(shade_angle)) / size - 0.5
    image = image * (1 + shade * ramp)[..., None]
    image = image.reshape(size, 2, size, 2, 3).mean(axis=(1, 3))  # [S, S, 3]
    image = image + np.random.default_rng(noise_seed).normal(0, 0.02, image.shape)
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


class PeriodicImages:
    """A source of `count` periodic images of `size` px: record i is a pure function of
    (seed, i). Different seeds give disjoint draws (use one for training, another held out)."""

    def __init__(self, count: int, size: int = 256, seed: int = 0):
        self.count, self.size, self.seed = count, size, seed

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Dict:
        if not 0 <= index < self.count:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        return {"image": periodic_image(rng, self.size), "name": f"periodic {self.seed}/{index}"}
