"""LaMa's perceptual losses: the high-receptive-field one (official `ResNetPL`) and the VGG19
one of Table 3 (official `PerceptualLoss`)."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from lama_jax.models.backbones import ResNet50Encoder, VGGFeatures
from lama_jax.models.variables import Variables

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def hrf_perceptual(backbone: ResNet50Encoder, variables: Variables, pred: jax.Array,
                   target: jax.Array) -> jax.Array:
    """SUM over the 4 stages of the frozen CSAIL ResNet50 of MSE(features(pred),
    features(target)); pred and target [B, H, W, 3] in [0, 1], ImageNet-normalised here.

    Both images go through the backbone as one batch (eval-mode BatchNorm: no interaction).
    """
    variables = jax.lax.stop_gradient(variables)
    x = (jnp.concatenate([pred, target], axis=0) - IMAGENET_MEAN) / IMAGENET_STD
    features = backbone.apply(variables, x, train=False)
    b = pred.shape[0]
    return sum(jnp.mean((f[:b].astype(jnp.float32) - f[b:].astype(jnp.float32)) ** 2)
               for f in features)


def vgg19_perceptual_terms(backbone: VGGFeatures, variables: Variables, pred: jax.Array,
                           target: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
    """The VGG19 loss's terms [B, 13] (official `PerceptualLoss`; the loss of a sample is
    their sum, and the official trainer sums it over the batch): at each of the 13 ReLUs of the
    frozen average-pooled VGG19, the squared difference of the features of pred and target
    [B, H, W, 3] in [0, 1] (ImageNet-normalised here), times 1 - mask where a hole `mask`
    [B, H, W, 1] is given (resized bilinearly to the ReLU's size without antialiasing, as
    PyTorch's `interpolate`), averaged over channels and pixels."""
    variables = jax.lax.stop_gradient(variables)
    x = (jnp.concatenate([pred, target], axis=0) - IMAGENET_MEAN) / IMAGENET_STD
    b = pred.shape[0]
    terms = []
    for f in backbone.apply(variables, x):  # [2B, h, w, C]
        diff = (f[:b].astype(jnp.float32) - f[b:].astype(jnp.float32)) ** 2
        if mask is not None:
            size = (b, *f.shape[1:3], 1)
            diff = diff * (1.0 - jax.image.resize(mask, size, "bilinear", antialias=False))
        terms.append(jnp.mean(diff, axis=(1, 2, 3)))
    return jnp.stack(terms, axis=1)
