"""The Partial Convolutions loss (Liu et al. 2018, section 3.3):

    L = valid * L_valid + hole * L_hole + perceptual * L_perceptual
        + style * (L_style_out + L_style_comp) + tv * L_tv

with the paper's weights 1, 6, 0.05, 120 and 0.1 (another common variant uses style 240 and
tv 2). With the ground truth I_gt, the output I_out and the composite I_comp (known pixels of
I_gt, the output in the hole), and Psi_p the VGG16 pool1-pool3 features of an image
(ImageNet-normalised, frozen ImageNet weights):

    L_valid, L_hole   mean |I_out - I_gt| over all elements, times the known / hole mask
    L_perceptual      sum_p mean |Psi_p(I_out) - Psi_p(I_gt)| + mean |Psi_p(I_comp) - Psi_p(I_gt)|
    L_style_x         sum_p mean |G_p(I_x) - G_p(I_gt)|, G_p = Psi_p^T Psi_p / (C_p H_p W_p)
    L_tv              total variation of I_comp over the one-pixel dilation P of the hole:
                      (sum_{(i,j) in P} |I(i,j+1) - I(i,j)| + |I(i+1,j) - I(i,j)|) / (C H W),
                      averaged over the batch

Masks follow LaMa's convention here (1 = hole).
"""

from __future__ import annotations

from typing import Dict, List, Optional

import jax
import jax.numpy as jnp
import flax.linen as nn
import ml_collections

from lama_jax.losses.perceptual import IMAGENET_MEAN, IMAGENET_STD
from lama_jax.models.backbones import VGG16_STAGES, VGGFeatures
from lama_jax.models.variables import Variables

# VGG16's first three stages, whose max pools are pool1, pool2 and pool3.
POOL_STAGES = VGG16_STAGES[:3]


def vgg16_pools(backbone: VGGFeatures, variables: Variables, images: jax.Array
                ) -> List[jax.Array]:
    """pool1-pool3 of the frozen VGG16 for images [B, H, W, 3] in [0, 1]:
    [B, H / 2^p, W / 2^p, C_p] for p = 1, 2, 3."""
    x = (images - IMAGENET_MEAN) / IMAGENET_STD
    relus = backbone.apply(jax.lax.stop_gradient(variables), x)
    return [nn.max_pool(r, (2, 2), strides=(2, 2)).astype(jnp.float32) for r in relus]


def gram(features: jax.Array) -> jax.Array:
    """Gram matrices normalised by C*H*W: [B, H, W, C] -> [B, C, C]."""
    b, h, w, c = features.shape
    f = features.reshape(b, h * w, c)
    return jnp.einsum("bnc,bnd->bcd", f, f) / (c * h * w)


def dilated_hole(mask: jax.Array) -> jax.Array:
    """The one-pixel (3x3) dilation of the hole: mask [B, H, W, 1] in {0, 1} -> same shape."""
    return jax.lax.reduce_window(mask, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 1, 1, 1),
                                 "SAME")


def total_variation(image: jax.Array, region: jax.Array) -> jax.Array:
    """Sum of the right and down neighbour differences |I(i,j+1) - I(i,j)| and
    |I(i+1,j) - I(i,j)| of image [B, H, W, C] over the pixels (i, j) of `region`
    [B, H, W, 1], divided by C*H*W and averaged over the batch."""
    b, h, w, c = image.shape
    right = jnp.abs(image[:, :, 1:] - image[:, :, :-1]) * region[:, :, :-1]
    down = jnp.abs(image[:, 1:] - image[:, :-1]) * region[:, :-1]
    return (jnp.sum(right) + jnp.sum(down)) / (b * c * h * w)


def pconv_loss_terms(weights: ml_collections.ConfigDict, backbone: Optional[VGGFeatures],
                     variables: Optional[Variables], pred: jax.Array, image: jax.Array,
                     mask: jax.Array) -> Dict[str, jax.Array]:
    """The weighted terms of the loss (their sum is the loss) for the output `pred`, the ground
    truth `image` [B, H, W, 3] and the hole `mask` [B, H, W, 1] (1 = hole). `weights` has
    `valid`, `hole`, `perceptual`, `style` and `tv`; without a `backbone` (both VGG weights
    0) the perceptual and style terms are left out."""
    pred = pred.astype(jnp.float32)
    comp = mask * pred + (1.0 - mask) * image
    error = jnp.abs(pred - image)
    terms = {"valid": weights.valid * jnp.mean((1.0 - mask) * error),
             "hole": weights.hole * jnp.mean(mask * error),
             "tv": weights.tv * total_variation(comp, dilated_hole(mask))}
    if backbone is None:
        return terms
    b = image.shape[0]
    pools = vgg16_pools(backbone, variables, jnp.concatenate([pred, comp, image], axis=0))
    out_f, comp_f, gt_f = zip(*[(p[:b], p[b:2 * b], p[2 * b:]) for p in pools])
    l1 = lambda x, y: jnp.mean(jnp.abs(x - y))  # noqa: E731
    terms["perceptual"] = weights.perceptual * sum(l1(o, g) + l1(c, g)
                                                   for o, c, g in zip(out_f, comp_f, gt_f))
    terms["style_out"] = weights.style * sum(l1(gram(o), gram(g)) for o, g in zip(out_f, gt_f))
    terms["style_comp"] = weights.style * sum(l1(gram(c), gram(g)) for c, g in zip(comp_f, gt_f))
    return terms
