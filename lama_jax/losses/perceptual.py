"""LaMa's high-receptive-field perceptual loss (official `ResNetPL`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lama_jax.models.backbones import ResNet50Dilated
from lama_jax.models.variables import Variables

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def hrf_perceptual(backbone: ResNet50Dilated, variables: Variables, pred: jax.Array,
                   target: jax.Array) -> jax.Array:
    """SUM over the 4 stages of the frozen ResNet50-dilated of MSE(features(pred),
    features(target)); pred and target [B, H, W, 3] in [0, 1], ImageNet-normalised here.

    Both images go through the backbone as one batch (eval-mode BatchNorm: no interaction).
    """
    variables = jax.lax.stop_gradient(variables)
    x = (jnp.concatenate([pred, target], axis=0) - IMAGENET_MEAN) / IMAGENET_STD
    features = backbone.apply(variables, x, train=False)
    b = pred.shape[0]
    return sum(jnp.mean((f[:b].astype(jnp.float32) - f[b:].astype(jnp.float32)) ** 2)
               for f in features)
