"""The Partial Convolutions baseline (Liu et al., "Image Inpainting for Irregular Holes Using
Partial Convolutions", ECCV 2018): the layer, the U-Net and its configuration. Kind name
"pconv_unet".

`PartialConv2d` follows NVIDIA's `partialconv2d.py` (NVIDIA/partialconv): with M the validity
mask (1 = valid pixel, the opposite of LaMa's hole mask) and the window's
`sum(1)` = kernel area (x input channels for per-channel masks),

    out = (W^T (X * M)) * sum(1) / (sum(M) + 1e-8) + b   where the window saw a valid pixel,
          0                                              elsewhere,

and the mask passed on is 1 where the window saw a valid pixel. The U-Net (paper, section 4):

    8 encoder layers, stride 2: 7x7 64 (no BatchNorm), 5x5 128, 5x5 256, 3x3 512 x 5;
        partial conv, BatchNorm, ReLU                                           enc_{1..8}
    8 decoder layers: nearest upsampling x2 of features and mask, concatenation with the
        encoder's features and mask of that size (the image and its mask for the last),
        3x3 partial conv, BatchNorm, LeakyReLU 0.2; the last one 3 channels with a bias and
        no BatchNorm or activation                                              dec_{8..1}

Convolutions have no bias where BatchNorm follows. Inputs need sides divisible by
2^n_layers (256 for the paper's 8 layers). As every generator here, it maps the masked image
and the hole mask [B, H, W, 4] to an image [B, H, W, 3]; the mask is given to each channel.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from lama_jax.errors import ConfigError
from lama_jax.models.config_fields import KindConfig
from lama_jax.models.layers import lecun_normal_kernel, norm_factory

KIND = "pconv_unet"
EPSILON = 1e-8  # NVIDIA's guard in sum(1) / (sum(M) + eps)


class PartialConv2d(nn.Module):
    """(x [B, H, W, C], valid [B, H, W, C] or [B, H, W, 1]) -> (out [B, h, w, features],
    updated validity [B, h, w, features] (per-channel mask) or [B, h, w, 1] (one mask)).

    A `valid` mask with one channel is shared by every input channel (NVIDIA's
    `multi_channel=False`); with C channels each input channel has its own (`multi_channel=True`).
    """

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    use_bias: bool = True
    dtype: Optional[Any] = None

    @nn.compact
    def __call__(self, x: jax.Array, valid: jax.Array) -> Tuple[jax.Array, jax.Array]:
        k, s, p = self.kernel_size, self.stride, self.padding
        per_channel = valid.shape[-1] != 1
        window = k * k * (x.shape[-1] if per_channel else 1)  # NVIDIA's slide_winsize
        # Valid pixels under each window: the channel sum of the mask, box-summed.
        seen = jax.lax.reduce_window(
            jnp.sum(valid.astype(jnp.float32), axis=-1, keepdims=True), 0.0, jax.lax.add,
            (1, k, k, 1), (1, s, s, 1), ((0, 0), (p, p), (p, p), (0, 0)))  # [B, h, w, 1]
        updated = jnp.clip(seen, 0.0, 1.0)
        ratio = (window / (seen + EPSILON)) * updated
        out = nn.Conv(self.features, (k, k), strides=s, padding=((p, p), (p, p)), use_bias=False,
                      dtype=self.dtype, kernel_init=lecun_normal_kernel,
                      name="conv")(x * valid.astype(x.dtype))
        out = out * ratio.astype(out.dtype)
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
            out = (out + bias.astype(out.dtype)) * updated.astype(out.dtype)
        if per_channel:
            updated = jnp.broadcast_to(updated, updated.shape[:-1] + (self.features,))
        return out, updated


@dataclasses.dataclass(frozen=True)
class PConvUNetConfig(KindConfig):
    """Architecture of the Partial Convolutions U-Net; `to_dict`/`from_dict` round-trip
    through JSON. The paper's network is the default; `ngf` and `n_layers` shrink it."""

    kind: ClassVar[str] = KIND
    input_nc: int = 4  # masked RGB + hole mask, as every generator here
    output_nc: int = 3
    ngf: int = 64  # width of the first layer; doubles up to 8 * ngf
    n_layers: int = 8  # encoder layers (and decoder layers); at least 4
    out_activation: Optional[str] = None  # the paper's last layer is linear; or "sigmoid"

    def __post_init__(self):
        if self.n_layers < 4:
            raise ConfigError(f"pconv_unet needs n_layers >= 4 (got {self.n_layers})")
        if self.out_activation not in (None, "sigmoid"):
            raise ConfigError(f"pconv_unet's out_activation must be None or 'sigmoid' "
                              f"(got {self.out_activation!r})")
        if self.input_nc != 4:
            raise ConfigError(f"pconv_unet takes the masked image and the mask: input_nc must be "
                              f"4 (got {self.input_nc})")

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2 ** self.n_layers

    def encoder_layer(self, i: int) -> Tuple[int, int]:
        """(channels, kernel size) of encoder layer i (1-based)."""
        kernel = 7 if i == 1 else 5 if i <= 3 else 3
        return min(self.ngf * 2 ** (i - 1), 8 * self.ngf), kernel


class PConvUNet(nn.Module):
    """[B, H, W, 4] (masked RGB + hole mask), H and W divisible by 2^n_layers -> [B, H, W, 3].

    `freeze_encoder_bn` keeps the encoder's BatchNorm on its running statistics in training
    too (the paper's fine-tuning phase); its scale and offset still train."""

    config: PConvUNetConfig
    freeze_encoder_bn: bool = False
    dtype: Optional[Any] = None  # compute dtype; parameters stay float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        cfg = self.config
        if x.shape[1] % cfg.size_multiple or x.shape[2] % cfg.size_multiple:
            raise ConfigError(f"pconv_unet with {cfg.n_layers} layers needs input sides divisible "
                              f"by {cfg.size_multiple}; got {x.shape[1]}x{x.shape[2]}")
        x = x.astype(self.dtype or jnp.float32)
        image, hole = x[..., :-1], x[..., -1:]
        valid = jnp.broadcast_to(1.0 - hole, image.shape)  # [B, H, W, 3], 1 = known pixel
        encoder_norm = norm_factory(train and not self.freeze_encoder_bn, self.dtype)
        decoder_norm = norm_factory(train, self.dtype)

        skips = [(image, valid)]
        h, m = image, valid
        for i in range(1, cfg.n_layers + 1):
            features, k = cfg.encoder_layer(i)
            h, m = PartialConv2d(features, k, 2, k // 2, use_bias=False, dtype=self.dtype,
                                 name=f"enc_{i}")(h, m)  # [B, H / 2^i, W / 2^i, features]
            if i > 1:
                h = encoder_norm(name=f"enc_{i}_bn")(h)
            h = nn.relu(h)
            skips.append((h, m))

        for i in range(cfg.n_layers, 0, -1):
            skip_h, skip_m = skips[i - 1]
            h = jnp.concatenate([_upsample(h), skip_h], axis=-1)
            m = jnp.concatenate([_upsample(m), skip_m], axis=-1)
            last = i == 1
            features = cfg.output_nc if last else cfg.encoder_layer(i - 1)[0]
            h, m = PartialConv2d(features, 3, 1, 1, use_bias=last, dtype=self.dtype,
                                 name=f"dec_{i}")(h, m)  # [B, H / 2^(i-1), W / 2^(i-1), features]
            if not last:
                h = nn.leaky_relu(decoder_norm(name=f"dec_{i}_bn")(h), 0.2)
        h = h.astype(jnp.float32)
        return jax.nn.sigmoid(h) if cfg.out_activation == "sigmoid" else h


def _upsample(x: jax.Array) -> jax.Array:
    """Nearest-neighbour upsampling x2 of H and W: [B, h, w, C] -> [B, 2h, 2w, C]."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
