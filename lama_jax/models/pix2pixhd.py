"""LaMa-Regular's generator (official `pix2pixhd.py::GlobalGenerator`): module, configuration
and official state-dict layout. Kind name "pix2pixhd_global".

LaMa-Regular (`configs/training/lama-regular.yaml`, 9 blocks; Big LaMa-Regular, 15 blocks) has
the Fourier generator's skeleton with plain convolutions that carry biases:

    reflect-pad 3, 7x7 conv-BN-ReLU 4->64                                  stem, stem_bn
    3x  3x3 stride-2 conv-BN-ReLU, zero padding 64->128->256->512          down_{i}, down_bn_{i}
    n_blocks x residual block at 512 channels:                             block_{j}
        x + BN(conv(pad(ReLU(BN(conv(pad(x))))))), no activation after the sum
    the same upsampling path and output conv as the Fourier generator      up_{i}, out_conv
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, ClassVar, Dict, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from lama_jax.errors import ConfigError
from lama_jax.models import config_fields
from lama_jax.models.layers import (ConvImpl, ModuleDef, Part, SkeletonConfig, conv_factory,
                                   decode, norm_factory, reflect_pad)
from lama_jax.models.official import (ConversionError, StateDict, StateDictLayout, module_indices,
                                      output_channels, weight)

KIND = "pix2pixhd_global"
# Settings of the Fourier generator that model directories written before the kinds had
# their own configurations stored for this kind too, always switched off.
_LEGACY_OFF = {"global_ratio": 0.0, "enable_lfu": False}


@dataclasses.dataclass(frozen=True)
class GlobalGeneratorConfig(SkeletonConfig):
    """Architecture of the regular generator; `to_dict`/`from_dict` round-trip through JSON."""

    kind: ClassVar[str] = KIND

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "GlobalGeneratorConfig":
        """Inverse of `to_dict`; unknown keys and wrongly typed values are errors naming them.
        Fourier settings are accepted only switched off (as older model directories hold)."""
        fourier = {k: v for k, v in d.items() if k in _LEGACY_OFF}
        if any(v != _LEGACY_OFF[k] for k, v in fourier.items()):
            raise ConfigError(f"generator kind {KIND!r} has no Fourier units: set "
                             f"global_ratio=0 and enable_lfu=False (got {fourier})")
        return config_fields.from_dict(
            cls, {k: v for k, v in d.items() if k != "kind" and k not in _LEGACY_OFF})


class ResnetBlock(nn.Module):
    """pix2pixHD's residual block (official `pix2pixhd.ResnetBlock`), NHWC:
    x + BN(conv(pad(ReLU(BN(conv(pad(x))))))), 3x3 convs with biases, reflect padding."""

    features: int
    conv: ModuleDef
    norm: ModuleDef
    dilation: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        d = self.dilation
        y = x
        for i in (1, 2):
            y = self.conv(self.features, 3, kernel_dilation=d, name=f"conv{i}")(reflect_pad(y, d))
            y = self.norm(name=f"bn{i}")(y)
            if i == 1:
                y = nn.relu(y)
        return x + y  # [B, h, w, C]


class GlobalGenerator(nn.Module):
    """[B, H, W, 4] (masked RGB + mask), H and W divisible by 2^n_downsampling -> [B, H, W, 3].
    Kinds with this skeleton and other residual blocks override `residual_block`."""

    config: GlobalGeneratorConfig
    conv_impl: ConvImpl = "xla"
    dtype: Optional[Any] = None  # compute dtype; parameters stay float32

    def residual_block(self, features: int, conv: ModuleDef, norm: ModuleDef,
                       name: str) -> nn.Module:
        """The residual block `name` at the bottleneck (pix2pixHD's plain one here)."""
        return ResnetBlock(features, conv, norm, self.config.block_dilation, name=name)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, part: Part = "all") -> jax.Array:
        """[B, H, W, 4] -> [B, H, W, 3]; `part="front"` stops at the first residual block and
        returns its input [B, h, w, C], which `part="rear"` takes as `x`."""
        cfg = self.config
        conv, norm = conv_factory(self.conv_impl, self.dtype), norm_factory(train, self.dtype)
        if part == "rear":
            y = x
        else:
            x = x.astype(self.dtype or jnp.float32)
            y = conv(cfg.ngf, 7, name="stem")(reflect_pad(x, 3))  # [B, H, W, ngf]
            y = nn.relu(norm(name="stem_bn")(y))
            for i in range(cfg.n_downsampling):  # zero padding, as PyTorch's default
                y = jnp.pad(y, ((0, 0), (1, 1), (1, 1), (0, 0)))
                y = conv(cfg.width(2 ** (i + 1)), 3, strides=2, name=f"down_{i}")(y)
                y = nn.relu(norm(name=f"down_bn_{i}")(y))
            if part == "front":
                return y  # [B, h, w, C]
        for j in range(cfg.n_blocks):
            y = self.residual_block(cfg.width(2 ** cfg.n_downsampling), conv, norm, f"block_{j}")(y)
        return decode(y, cfg.n_downsampling, cfg.width, cfg.output_nc, cfg.out_activation,
                      self.conv_impl, norm, self.dtype)  # [B, H, W, output_nc]


# ------------------------------------------------------------------------------------------
# The official state dict: `model` is an nn.Sequential of
#   0 ReflectionPad2d, 1 conv, 2 BN, 3 ReLU, (conv, BN, ReLU) per downsampling, the blocks,
#   (ConvTranspose, BN, ReLU) per upsampling, ReflectionPad2d, out conv, Sigmoid.

def _detect(sd: StateDict) -> bool:
    return any(re.match(r"model\.\d+\.conv_block\.5\.weight$", k) for k in sd)


def infer_skeleton(sd: StateDict, config_class: type, **settings) -> SkeletonConfig:
    """The configuration (of `config_class`, with `settings`) of an official state dict with
    GlobalGenerator's `model` Sequential, whose residual blocks have `conv_block.1.weight`."""
    stem = weight(sd, "model.1.weight")
    blocks = [i for i in module_indices(sd) if f"model.{i}.conv_block.1.weight" in sd]
    if not blocks:
        raise ConversionError("no residual block ('model.N.conv_block.1.weight') found")
    # Stem (pad, conv, BN, ReLU), then conv, BN, ReLU per downsampling.
    n_down, rest = divmod(blocks[0] - 4, 3)
    if rest or n_down < 0:
        raise ConversionError(f"unexpected GlobalGenerator layout: first residual block at "
                              f"model.{blocks[0]}")
    cfg = config_class(input_nc=int(stem.shape[1]), ngf=int(stem.shape[0]),
                       n_downsampling=n_down, n_blocks=len(blocks), **settings)
    return dataclasses.replace(
        cfg, output_nc=output_channels(sd, int(module_key("out_conv", cfg).split(".")[1])))


def module_key(name: str, cfg: SkeletonConfig) -> str:
    """Our top-level submodule -> its key in the official `model` Sequential: (conv, BN,
    ReLU) triples around the residual blocks."""
    first_up = 4 + 3 * cfg.n_downsampling + cfg.n_blocks
    if name in ("stem", "stem_bn"):
        return {"stem": "model.1", "stem_bn": "model.2"}[name]
    if name == "out_conv":
        return f"model.{first_up + 3 * cfg.n_downsampling + 1}"
    kind, i = re.fullmatch(r"(\w+?)_(\d+)", name).groups()
    if kind == "block":
        return f"model.{4 + 3 * cfg.n_downsampling + int(i)}"
    bn = 1 if kind.endswith("_bn") else 0
    return f"model.{(4 if kind.startswith('down') else first_up) + 3 * int(i) + bn}"


LAYOUT = StateDictLayout(
    "a key 'model.N.conv_block.5.weight' of LaMa-Regular's GlobalGenerator", _detect,
    lambda sd: infer_skeleton(sd, GlobalGeneratorConfig), module_key,
    # pix2pixHD's ResnetBlock: conv_block = [pad, conv, BN, ReLU, pad, conv, BN].
    rewrites=((".conv1.", ".conv_block.1."), (".bn1.", ".conv_block.2."),
              (".conv2.", ".conv_block.5."), (".bn2.", ".conv_block.6.")))
