"""The LaMa generator (official `FFCResNetGenerator`) and its ablation variants.

Layout, for `ngf=64, n_downsampling=3` (Big LaMa / LaMa-Fourier):

    reflect-pad 3, 7x7 FFC-BN-ReLU 4->64                                   stem
    3x  3x3 stride-2 FFC-BN-ReLU 64->128->256->512 (the last one splits     down_{i}
        its output into 128 local + 384 global channels)
    n_blocks x FFC ResNet block at 512 channels (global ratio 0.75)          block_{j}
    concat(local, global)
    3x  ConvTranspose(3x3, stride 2) + BN + ReLU 512->256->128->64          up_{i}
    reflect-pad 3, 7x7 conv 64->3 with bias, sigmoid                        out_conv

Variants are parameters, not copies: `global_ratio=0` gives LaMa-Regular (plain 3x3 convs in
the residual blocks), `global_ratio=0` with `block_dilation>1` the dilated-convolution
ablation, `enable_lfu` turns on the local Fourier unit.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from lama_jax.models.ffc import (ConvImpl, FFCBNAct, FFCResnetBlock, ShiftSumConv, SpectralImpl,
                                 batch_norm, reflect_pad)


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of a LaMa generator; `to_dict`/`from_dict` round-trip through JSON."""

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

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-serialisable dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "GeneratorConfig":
        """Inverse of `to_dict`; unknown keys are an error naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown generator config keys {unknown}; expected some of {sorted(names)}")
        return cls(**d)


BIG_LAMA = GeneratorConfig(n_blocks=18)
LAMA_FOURIER = GeneratorConfig(n_blocks=9)


class Generator(nn.Module):
    """LaMa generator: [B, H, W, 4] (masked RGB + mask), H and W divisible by 2^n_down -> [B, H, W, 3]."""

    config: GeneratorConfig
    spectral_impl: SpectralImpl = "fft"
    conv_impl: ConvImpl = "xla"
    dtype: Optional[jnp.dtype] = None  # compute dtype; parameters stay float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        cfg = self.config
        width = lambda mult: min(cfg.max_features, cfg.ngf * mult)  # noqa: E731
        ffc = dict(spectral_impl=self.spectral_impl, conv_impl=self.conv_impl, dtype=self.dtype)
        x = x.astype(self.dtype or jnp.float32)

        # [B, H+6, W+6, Cin] -> [B, H, W, ngf]
        feats = FFCBNAct(cfg.ngf, 7, name="stem", **ffc)((reflect_pad(x, 3), None), train)
        for i in range(cfg.n_downsampling):
            last = i == cfg.n_downsampling - 1
            feats = FFCBNAct(width(2 ** (i + 1)), 3, 0.0, cfg.global_ratio if last else 0.0,
                             stride=2, padding=1, name=f"down_{i}", **ffc)(feats, train)
        bottleneck = width(2 ** cfg.n_downsampling)
        for j in range(cfg.n_blocks):
            feats = FFCResnetBlock(bottleneck, cfg.global_ratio, cfg.block_dilation,
                                   cfg.enable_lfu, name=f"block_{j}", **ffc)(feats, train)
        # [B, h, w, C_local + C_global], local channels first
        y = jnp.concatenate([f for f in feats if f is not None], axis=-1)

        for i in range(cfg.n_downsampling):
            features = min(cfg.max_features, int(cfg.ngf * 2 ** (cfg.n_downsampling - i) / 2))
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


def generator_input(image: jax.Array, mask: jax.Array) -> jax.Array:
    """Official generator input: concat(image * (1 - mask), mask) -> [B, H, W, 4]."""
    return jnp.concatenate([image * (1.0 - mask), mask], axis=-1)


def composite(image: jax.Array, mask: jax.Array, predicted: jax.Array) -> jax.Array:
    """Keeps known pixels and takes the prediction in the hole (mask 1 = hole)."""
    return mask * predicted + (1.0 - mask) * image
