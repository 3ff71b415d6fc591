"""Non-saturating adversarial loss with R1 regularisation (official `NonSaturatingWithR1`,
`mask_as_fake_target=True`, `allow_scale_mask=True`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def nearest_resize(mask: jax.Array, size: tuple[int, int]) -> jax.Array:
    """PyTorch `F.interpolate(mode="nearest")` of [B, H, W, C] to `size`: source index
    floor(dst * in / out)."""
    (h, w), (oh, ow) = mask.shape[1:3], size
    rows = np.minimum(np.floor(np.arange(oh) * np.float32(h / oh)).astype(int), h - 1)
    cols = np.minimum(np.floor(np.arange(ow) * np.float32(w / ow)).astype(int), w - 1)
    return mask[:, rows][:, :, cols]


def generator_loss(fake_logits: jax.Array) -> jax.Array:
    """mean(softplus(-D(fake))), not masked (the official `use_unmasked_for_gen`)."""
    return jnp.mean(jax.nn.softplus(-fake_logits))


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array, mask: jax.Array,
                       r1_penalty: jax.Array, gp_coef: float) -> jax.Array:
    """mean(softplus(-D(real)) + gp_coef * R1 + m softplus(D(fake)) + (1 - m) softplus(-D(fake))).

    `mask` [B, H, W, 1] is resized (nearest) to the logits: known pixels of the fake image
    count as real, hole pixels as fake.
    """
    m = nearest_resize(mask, fake_logits.shape[1:3])
    fake = m * jax.nn.softplus(fake_logits) + (1.0 - m) * jax.nn.softplus(-fake_logits)
    return jnp.mean(jax.nn.softplus(-real_logits) + gp_coef * r1_penalty + fake)


def r1_penalty(grad_real: jax.Array) -> jax.Array:
    """mean over the batch of ||d sum(D(real)) / d real||^2; grad_real [B, H, W, C]."""
    return jnp.mean(jnp.sum(grad_real.reshape(grad_real.shape[0], -1) ** 2, axis=1))
