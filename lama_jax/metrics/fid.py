"""Fréchet Inception Distance as LaMa's evaluation (pytorch-fid) computes it.

Images in [0, 1] are resized to 299x299 with PyTorch's bilinear interpolation
(`align_corners=False`, no antialiasing, also when shrinking), scaled to [-1, 1] and passed
through `FIDInceptionV3` to its 2048-d pool3 features. The distance between two feature sets is
computed on the host in float64 with SciPy's matrix square root, exactly as the official code:
when the product of the covariances is singular, `eps` is added to both diagonals; a
significant imaginary part of the square root is an error.
"""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
from scipy import linalg

from lama_jax.models.backbones import FIDInceptionV3
from lama_jax.models.variables import Variables

INCEPTION_SIZE = 299
FEATURE_DIM = 2048


def bilinear_matrix(out_size: int, in_size: int) -> np.ndarray:
    """[out, in] weights of PyTorch's 1-D bilinear resize with `align_corners=False`."""
    scale = in_size / out_size
    src = np.maximum((np.arange(out_size) + 0.5) * scale - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = src - lo
    weights = np.zeros((out_size, in_size), np.float64)
    np.add.at(weights, (np.arange(out_size), lo), 1.0 - frac)
    np.add.at(weights, (np.arange(out_size), hi), frac)
    return weights.astype(np.float32)


def inception_input(images: jax.Array) -> jax.Array:
    """[B, H, W, 3] in [0, 1] -> [B, 299, 299, 3] in [-1, 1], as pytorch-fid prepares them."""
    _, h, w, _ = images.shape
    rows, cols = bilinear_matrix(INCEPTION_SIZE, h), bilinear_matrix(INCEPTION_SIZE, w)
    hi = jax.lax.Precision.HIGHEST
    x = jnp.einsum("oh,bhwc->bowc", rows, images, precision=hi)  # [B, 299, W, 3]
    x = jnp.einsum("pw,bowc->bopc", cols, x, precision=hi)  # [B, 299, 299, 3]
    return 2.0 * x - 1.0


def pool3_features(variables: Variables, images: jax.Array) -> jax.Array:
    """pytorch-fid's pool3 features [B, 2048] of images [B, H, W, 3] in [0, 1]."""
    return FIDInceptionV3().apply(variables, inception_input(images))


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray, eps: float = 1e-6) -> float:
    """FID between two feature sets [N, D] and [M, D] (float64, as pytorch-fid)."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        logging.warning("FID: NaN or infinite features (a diverged model?); FID is NaN")
        return float("nan")  # scipy's sqrtm would not return on them
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(sigma_a.dot(sigma_b))
    if not np.isfinite(covmean).all():
        logging.warning("FID: singular product of covariances; adding %g to their diagonals", eps)
        offset = np.eye(sigma_a.shape[0]) * eps
        covmean = linalg.sqrtm((sigma_a + offset).dot(sigma_b + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-2):
            raise ValueError(f"FID: the matrix square root has an imaginary component of up to "
                             f"{np.max(np.abs(covmean.imag)):.3g}")
        covmean = covmean.real
    diff = mu_a - mu_b
    return float(diff.dot(diff) + np.trace(sigma_a) + np.trace(sigma_b) - 2 * np.trace(covmean))
