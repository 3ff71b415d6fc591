"""Full-reference fidelity metrics: SSIM as LaMa's evaluation computes it, PSNR, masked L1.

SSIM follows `saicinpainting/evaluation/losses/ssim.py` (pytorch-ssim): an 11x11 Gaussian
window with sigma 1.5 applied per channel with ZERO 'same' padding, C1 = 0.01^2,
C2 = 0.03^2 (data range 1), averaged over channels and pixels of each image. The zero padding
makes borders count, unlike the valid-window SSIM of most libraries.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - size // 2
    g = np.exp(-(x ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).astype(np.float32)


def _blur(x: jax.Array, window: np.ndarray) -> jax.Array:
    """Separable Gaussian filter of [B, H, W, C] with zero 'same' padding."""
    k, c = len(window), x.shape[-1]
    pad = k // 2
    dn = ("NHWC", "HWIO", "NHWC")
    kh = jnp.tile(jnp.asarray(window).reshape(k, 1, 1, 1), (1, 1, 1, c))
    kw = jnp.tile(jnp.asarray(window).reshape(1, k, 1, 1), (1, 1, 1, c))
    hi = jax.lax.Precision.HIGHEST
    x = jax.lax.conv_general_dilated(x, kh, (1, 1), ((pad, pad), (0, 0)), dimension_numbers=dn,
                                     feature_group_count=c, precision=hi)
    return jax.lax.conv_general_dilated(x, kw, (1, 1), ((0, 0), (pad, pad)),
                                        dimension_numbers=dn, feature_group_count=c, precision=hi)


def ssim(a: jax.Array, b: jax.Array, window_size: int = 11) -> jax.Array:
    """Per-image SSIM [B] of images [B, H, W, C] in [0, 1]."""
    w = _gaussian_window(window_size)
    mu_a, mu_b = _blur(a, w), _blur(b, w)
    var_a = _blur(a * a, w) - mu_a ** 2
    var_b = _blur(b * b, w) - mu_b ** 2
    cov = _blur(a * b, w) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return jnp.mean(ssim_map, axis=(1, 2, 3))


def psnr(a: jax.Array, b: jax.Array) -> jax.Array:
    """Per-image PSNR [B] in dB of images in [0, 1]."""
    mse = jnp.mean((a - b) ** 2, axis=(1, 2, 3))
    return 10.0 * jnp.log10(1.0 / jnp.maximum(mse, 1e-10))


def masked_l1(a: jax.Array, b: jax.Array, mask: jax.Array) -> jax.Array:
    """Per-image mean absolute difference [B] inside the hole: images [B, H, W, C], mask
    [B, H, W, 1] (1 = hole). An image without a hole scores 0."""
    per_pixel = jnp.mean(jnp.abs(a - b), axis=-1, keepdims=True) * mask
    return jnp.sum(per_pixel, axis=(1, 2, 3)) / jnp.maximum(jnp.sum(mask, axis=(1, 2, 3)), 1.0)
