"""LPIPS v0.1 with the VGG16 backbone, as LaMa's evaluation computes it.

Images in [0, 1] are scaled to [-1, 1] (`normalize=True`), then by LPIPS's fixed per-channel
shift and scale, and passed through VGG16's conv layers. At each of the five stages the
features are unit-normalised over channels, their squared difference is weighted per channel
by a learned non-negative linear head (`lin{k}`), averaged over space, and the five stages
are summed.

The heads ship with this package (`lpips_vgg_heads.npz`: the v0.1 VGG weights of Richard
Zhang's PerceptualSimilarity, BSD-2-Clause, copyright (c) 2018 Richard Zhang, Phillip Isola,
Alexei A. Efros, Eli Shechtman and Oliver Wang); the VGG16 weights come from the user's
torchvision `vgg16` file.
"""

from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lama_jax.models.backbones import VGGFeatures
from lama_jax.models.variables import Variables

HEADS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lpips_vgg_heads.npz")
_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
_SCALE = np.array([0.458, 0.448, 0.450], np.float32)
_NORM_EPS = 1e-10


def default_heads() -> dict:
    """The shipped v0.1 VGG linear heads, keyed `lin{k}.model.1.weight` as in `vgg.pth`."""
    with np.load(HEADS_FILE) as data:
        return {k: data[k] for k in data.files}


def _unit_normalise(x: jax.Array) -> jax.Array:
    return x / (jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True)) + _NORM_EPS)


class LPIPS(nn.Module):
    """(a, b) [B, H, W, 3] in [0, 1] -> LPIPS distance [B]."""

    @nn.compact
    def __call__(self, a: jax.Array, b: jax.Array) -> jax.Array:
        batch = a.shape[0]
        x = (jnp.concatenate([a, b]) * 2.0 - 1.0 - _SHIFT) / _SCALE  # [2B, H, W, 3]
        distance = jnp.zeros((batch,), jnp.float32)
        for k, features in enumerate(VGGFeatures(name="vgg")(x)):
            features = _unit_normalise(features)
            diff = (features[:batch] - features[batch:]) ** 2  # [B, h, w, C]
            weighted = nn.Conv(1, (1, 1), use_bias=False, name=f"lin{k}")(diff)  # [B, h, w, 1]
            distance = distance + jnp.mean(weighted, axis=(1, 2, 3))
        return distance


def lpips(variables: Variables, a: jax.Array, b: jax.Array) -> jax.Array:
    """LPIPS distances [B] between images [B, H, W, 3] in [0, 1]."""
    return LPIPS().apply(variables, a, b)
