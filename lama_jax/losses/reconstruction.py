"""Pixel and feature-matching losses."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp


def masked_l1(pred: jax.Array, target: jax.Array, mask: jax.Array, weight_known: float,
              weight_missing: float) -> jax.Array:
    """mean(|pred - target| * (mask * weight_missing + (1 - mask) * weight_known)).

    pred, target [B, H, W, C]; mask [B, H, W, 1], 1 = hole. LaMa uses weight_known 10 and
    weight_missing 0: the L1 term only supervises the known pixels.
    """
    weights = mask * weight_missing + (1.0 - mask) * weight_known
    return jnp.mean(jnp.abs(pred - target) * weights)


def feature_matching(fake_features: Sequence[jax.Array],
                     real_features: Sequence[jax.Array]) -> jax.Array:
    """Mean over the discriminator's layers of the MSE between fake and real features."""
    return jnp.mean(jnp.stack([jnp.mean((f - r) ** 2)
                               for f, r in zip(fake_features, real_features)]))
