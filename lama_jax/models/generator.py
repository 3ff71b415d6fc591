"""LaMa's generators: the Fourier one (official `FFCResNetGenerator`) and the regular one
(official `pix2pixhd.GlobalGenerator`), selected by `GeneratorConfig.kind`.

Layout of `kind="ffc_resnet"`, for `ngf=64, n_downsampling=3` (Big LaMa / LaMa-Fourier):

    reflect-pad 3, 7x7 FFC-BN-ReLU 4->64                                   stem
    3x  3x3 stride-2 FFC-BN-ReLU 64->128->256->512 (the last one splits     down_{i}
        its output into 128 local + 384 global channels)
    n_blocks x FFC ResNet block at 512 channels (global ratio 0.75)          block_{j}
    concat(local, global)
    3x  ConvTranspose(3x3, stride 2) + BN + ReLU 512->256->128->64          up_{i}
    reflect-pad 3, 7x7 conv 64->3 with bias, sigmoid                        out_conv

`kind="pix2pixhd_global"` (LaMa-Regular: `configs/training/lama-regular.yaml`, 9 blocks;
Big LaMa-Regular, 15 blocks) has the same skeleton with plain convolutions that carry biases:
a 7x7 conv-BN-ReLU stem, zero-padded stride-2 conv-BN-ReLU downsamplings, and residual blocks
of reflect-pad, 3x3 conv, BN, ReLU, reflect-pad, 3x3 conv, BN, added to the input with no
activation after the sum. The upsampling path and output conv are the same.

Variants are parameters, not copies: `enable_lfu` turns on the local Fourier unit,
`block_dilation` dilates the residual blocks' 3x3 convs (either kind; the paper's "Dilated"
row used another, multi-dilated generator that is not ported), and an FFC generator with
`global_ratio=0` is a regular-convolution network with the FFC blocks' layout (a ReLU after
each block's second BN, reflect-padded downsampling, no biases).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from lama_jax.models import config_fields
from lama_jax.models.ffc import (ConvImpl, FFCBNAct, FFCResnetBlock, ShiftSumConv, SpectralImpl,
                                 batch_norm, reflect_pad)


KINDS = ("ffc_resnet", "pix2pixhd_global")


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of a LaMa generator; `to_dict`/`from_dict` round-trip through JSON.

    `global_ratio` and `enable_lfu` belong to `kind="ffc_resnet"` and must stay 0 and False
    for `kind="pix2pixhd_global"`.
    """

    kind: str = "ffc_resnet"  # or "pix2pixhd_global" (LaMa-Regular)
    input_nc: int = 4
    output_nc: int = 3
    ngf: int = 64
    n_downsampling: int = 3
    n_blocks: int = 18
    global_ratio: float = 0.75
    enable_lfu: bool = False
    block_dilation: int = 1
    max_features: int = 1024
    out_activation: Optional[str] = "sigmoid"  # "sigmoid", "tanh" or None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown generator kind {self.kind!r}; expected one of {KINDS}")
        if self.kind == "pix2pixhd_global" and (self.global_ratio or self.enable_lfu):
            raise ValueError("generator kind 'pix2pixhd_global' has no Fourier units: set "
                             "global_ratio=0 and enable_lfu=False")

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-serialisable dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "GeneratorConfig":
        """Inverse of `to_dict`; unknown keys and wrongly typed values are errors naming them."""
        return config_fields.from_dict(cls, d)


BIG_LAMA = GeneratorConfig(n_blocks=18)
LAMA_FOURIER = GeneratorConfig(n_blocks=9)
LAMA_REGULAR = GeneratorConfig(kind="pix2pixhd_global", n_blocks=9, global_ratio=0.0)


class ResnetBlock(nn.Module):
    """pix2pixHD's residual block (official `pix2pixhd.ResnetBlock`), NHWC:
    x + BN(conv(pad(ReLU(BN(conv(pad(x))))))), 3x3 convs with biases, reflect padding."""

    features: int
    dilation: int = 1
    dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        d = self.dilation
        y = x
        for i in (1, 2):
            y = nn.Conv(self.features, (3, 3), padding="VALID", kernel_dilation=d,
                        dtype=self.dtype, name=f"conv{i}")(reflect_pad(y, d))
            y = batch_norm(train, f"bn{i}", self.dtype)(y)
            if i == 1:
                y = nn.relu(y)
        return x + y  # [B, h, w, C]


class Generator(nn.Module):
    """LaMa generator: [B, H, W, 4] (masked RGB + mask), H and W divisible by 2^n_down -> [B, H, W, 3]."""

    config: GeneratorConfig
    spectral_impl: SpectralImpl = "fft"
    conv_impl: ConvImpl = "xla"
    dtype: Optional[jnp.dtype] = None  # compute dtype; parameters stay float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        cfg = self.config
        x = x.astype(self.dtype or jnp.float32)

        if cfg.kind == "ffc_resnet":
            y = self._ffc_encoder(x, train)
        else:
            y = self._pix2pixhd_encoder(x, train)
        # y: [B, H / 2^n, W / 2^n, width(2^n)]

        for i in range(cfg.n_downsampling):
            features = self._width(2 ** (cfg.n_downsampling - i - 1))
            # PyTorch ConvTranspose2d(k=3, s=2, padding=1, output_padding=1): exactly 2x.
            y = nn.ConvTranspose(features, (3, 3), strides=(2, 2), padding=((1, 2), (1, 2)),
                                 transpose_kernel=True, dtype=self.dtype, name=f"up_{i}")(y)
            y = nn.relu(batch_norm(train, f"up_bn_{i}", self.dtype)(y))
        y = reflect_pad(y, 3)
        if self.conv_impl == "shift_sum":  # 64 -> 3 channels: ~10x faster on CPU (inference)
            y = ShiftSumConv(cfg.output_nc, 7, use_bias=True, dtype=self.dtype, name="out_conv")(y)
        else:
            y = nn.Conv(cfg.output_nc, (7, 7), padding="VALID", dtype=self.dtype, name="out_conv")(y)
        y = y.astype(jnp.float32)
        if cfg.out_activation == "sigmoid":
            y = nn.sigmoid(y)
        elif cfg.out_activation == "tanh":
            y = jnp.tanh(y)
        elif cfg.out_activation is not None:
            raise ValueError(f"unknown out_activation {cfg.out_activation!r}")
        return y  # [B, H, W, output_nc]

    def _width(self, mult: int) -> int:
        return min(self.config.max_features, self.config.ngf * mult)

    def _ffc_encoder(self, x: jax.Array, train: bool) -> jax.Array:
        """Stem, downsamplings and FFC blocks of `FFCResNetGenerator`: [B, H, W, Cin] ->
        [B, h, w, C_local + C_global], local channels first."""
        cfg = self.config
        ffc = dict(spectral_impl=self.spectral_impl, conv_impl=self.conv_impl, dtype=self.dtype)
        # [B, H+6, W+6, Cin] -> [B, H, W, ngf]
        feats = FFCBNAct(cfg.ngf, 7, name="stem", **ffc)((reflect_pad(x, 3), None), train)
        for i in range(cfg.n_downsampling):
            last = i == cfg.n_downsampling - 1
            feats = FFCBNAct(self._width(2 ** (i + 1)), 3, 0.0, cfg.global_ratio if last else 0.0,
                             stride=2, padding=1, name=f"down_{i}", **ffc)(feats, train)
        for j in range(cfg.n_blocks):
            feats = FFCResnetBlock(self._width(2 ** cfg.n_downsampling), cfg.global_ratio,
                                   cfg.block_dilation, cfg.enable_lfu, name=f"block_{j}",
                                   **ffc)(feats, train)
        return jnp.concatenate([f for f in feats if f is not None], axis=-1)

    def _pix2pixhd_encoder(self, x: jax.Array, train: bool) -> jax.Array:
        """Stem, downsamplings and residual blocks of pix2pixHD's `GlobalGenerator`:
        [B, H, W, Cin] -> [B, h, w, C]."""
        cfg = self.config
        y = nn.Conv(cfg.ngf, (7, 7), padding="VALID", dtype=self.dtype, name="stem")(
            reflect_pad(x, 3))  # [B, H, W, ngf]
        y = nn.relu(batch_norm(train, "stem_bn", self.dtype)(y))
        for i in range(cfg.n_downsampling):  # zero padding, as PyTorch's default
            y = nn.Conv(self._width(2 ** (i + 1)), (3, 3), strides=2, padding=((1, 1), (1, 1)),
                        dtype=self.dtype, name=f"down_{i}")(y)
            y = nn.relu(batch_norm(train, f"down_bn_{i}", self.dtype)(y))
        for j in range(cfg.n_blocks):
            y = ResnetBlock(self._width(2 ** cfg.n_downsampling), cfg.block_dilation,
                            self.dtype, name=f"block_{j}")(y, train)
        return y


def generator_input(image: jax.Array, mask: jax.Array) -> jax.Array:
    """Official generator input: concat(image * (1 - mask), mask) -> [B, H, W, 4]."""
    return jnp.concatenate([image * (1.0 - mask), mask], axis=-1)


def composite(image: jax.Array, mask: jax.Array, predicted: jax.Array) -> jax.Array:
    """Keeps known pixels and takes the prediction in the hole (mask 1 = hole)."""
    return mask * predicted + (1.0 - mask) * image
