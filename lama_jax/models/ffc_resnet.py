"""LaMa's Fourier generator (official `ffc.py::FFCResNetGenerator`): module, configuration and
official state-dict layout. Kind name "ffc_resnet".

Layout for `ngf=64, n_downsampling=3` (Big LaMa / LaMa-Fourier):

    reflect-pad 3, 7x7 FFC-BN-ReLU 4->64                                   stem
    3x  3x3 stride-2 FFC-BN-ReLU 64->128->256->512 (the last one splits     down_{i}
        its output into 128 local + 384 global channels)
    n_blocks x FFC ResNet block at 512 channels (global ratio 0.75)          block_{j}
    concat(local, global)
    3x  ConvTranspose(3x3, stride 2) + BN + ReLU 512->256->128->64          up_{i}, up_bn_{i}
    reflect-pad 3, 7x7 conv 64->3 with bias, sigmoid                        out_conv

Variants are settings: `enable_lfu` turns on the local Fourier unit, `block_dilation` dilates
the residual blocks' 3x3 convs, and `global_ratio=0` gives a regular-convolution network with
this layout (a ReLU after each block's second BN, reflect-padded downsampling, no biases).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, ClassVar, Optional, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from lama_jax.models.ffc import (FFCParts, FFCResnetBlock, LocalGlobal, SpectralImpl, ffc_bn_act,
                                 spectral_transform)
from lama_jax.models.layers import (ConvImpl, Part, SkeletonConfig, conv_factory, decode,
                                   norm_factory, reflect_pad)
from lama_jax.models.official import (ConversionError, StateDict, StateDictLayout, module_indices,
                                      output_channels, weight)

KIND = "ffc_resnet"


@dataclasses.dataclass(frozen=True)
class FFCResNetConfig(SkeletonConfig):
    """Architecture of the Fourier generator; `to_dict`/`from_dict` round-trip through JSON."""

    kind: ClassVar[str] = KIND
    global_ratio: float = 0.75
    enable_lfu: bool = False


class FFCResNetGenerator(nn.Module):
    """[B, H, W, 4] (masked RGB + mask), H and W divisible by 2^n_downsampling -> [B, H, W, 3]."""

    config: FFCResNetConfig
    spectral_impl: SpectralImpl = "fft"
    conv_impl: ConvImpl = "xla"
    dtype: Optional[Any] = None  # compute dtype; parameters stay float32

    @nn.compact
    def __call__(self, x: Union[jax.Array, LocalGlobal], train: bool = False,
                 part: Part = "all") -> Union[jax.Array, LocalGlobal]:
        """[B, H, W, 4] -> [B, H, W, 3]; `part="front"` stops at the first residual block and
        returns its input (local [B, h, w, C_l], global [B, h, w, C_g] or None), which
        `part="rear"` takes as `x`."""
        cfg = self.config
        conv, norm = conv_factory(self.conv_impl, self.dtype), norm_factory(train, self.dtype)
        parts = FFCParts(conv, norm, spectral_transform(self.spectral_impl), self.dtype)
        if part == "rear":
            feats = x
        else:
            x = x.astype(self.dtype or jnp.float32)
            # [B, H+6, W+6, Cin] -> [B, H, W, ngf]
            feats = ffc_bn_act(cfg.ngf, 7, 0.0, parts, "stem")((reflect_pad(x, 3), None))
            for i in range(cfg.n_downsampling):
                last = i == cfg.n_downsampling - 1
                feats = ffc_bn_act(cfg.width(2 ** (i + 1)), 3, cfg.global_ratio if last else 0.0,
                                   parts, f"down_{i}", stride=2, padding=1)(feats)
            if part == "front":
                return feats
        for j in range(cfg.n_blocks):
            feats = FFCResnetBlock(cfg.width(2 ** cfg.n_downsampling), cfg.global_ratio, parts,
                                   cfg.block_dilation, cfg.enable_lfu, name=f"block_{j}")(feats)
        y = jnp.concatenate([f for f in feats if f is not None], axis=-1)  # [B, h, w, C_l + C_g]
        return decode(y, cfg.n_downsampling, cfg.width, cfg.output_nc, cfg.out_activation,
                      self.conv_impl, norm, self.dtype)  # [B, H, W, output_nc]


# ------------------------------------------------------------------------------------------
# The official state dict: `model` is an nn.Sequential of
#   0 ReflectionPad2d, 1 stem, 2.. downsamplings, blocks, ConcatTupleLayer,
#   (ConvTranspose, BN, ReLU) per upsampling, ReflectionPad2d, out conv, Sigmoid.

def _detect(sd: StateDict) -> bool:
    return "model.1.ffc.convl2l.weight" in sd


def _infer_config(sd: StateDict) -> FFCResNetConfig:
    stem = weight(sd, "model.1.ffc.convl2l.weight")
    indices = module_indices(sd)
    n_down = sum(1 for i in indices if f"model.{i}.ffc.convl2l.weight" in sd and i >= 2)
    blocks = [i for i in indices if any(k.startswith(f"model.{i}.conv1.ffc.") for k in sd)]
    if not blocks:
        raise ConversionError("no residual blocks found (keys 'model.N.conv1.ffc.*')")
    first = f"model.{blocks[0]}.conv1.ffc."
    dim = weight(sd, first + "convl2l.weight").shape[1] + (
        weight(sd, first + "convg2l.weight").shape[1] if first + "convg2l.weight" in sd else 0)
    global_channels = (weight(sd, first + "convl2g.weight").shape[0]
                       if first + "convl2g.weight" in sd else 0)
    cfg = FFCResNetConfig(input_nc=int(stem.shape[1]), ngf=int(stem.shape[0]),
                          n_downsampling=n_down, n_blocks=len(blocks),
                          global_ratio=global_channels / dim,
                          enable_lfu=first + "convg2g.lfu.conv_layer.weight" in sd)
    return dataclasses.replace(
        cfg, output_nc=output_channels(sd, int(_module_key("out_conv", cfg).split(".")[1])))


def _module_key(name: str, cfg: FFCResNetConfig) -> str:
    """Our top-level submodule -> its key in the official `model` Sequential."""
    first_up = 2 + cfg.n_downsampling + cfg.n_blocks + 1  # after the ConcatTupleLayer
    if name == "stem":
        return "model.1"
    if name == "out_conv":
        return f"model.{first_up + 3 * cfg.n_downsampling + 1}"
    kind, i = re.fullmatch(r"(\w+?)_(\d+)", name).groups()
    offsets = {"down": 2, "block": 2 + cfg.n_downsampling}
    if kind in offsets:
        return f"model.{offsets[kind] + int(i)}"
    return f"model.{first_up + 3 * int(i) + (1 if kind == 'up_bn' else 0)}"


LAYOUT = StateDictLayout(
    "the key 'model.1.ffc.convl2l.weight' of LaMa's FFCResNetGenerator", _detect, _infer_config, _module_key,
    # Our submodule names are PyTorch's except where PyTorch uses nn.Sequential indices.
    rewrites=((".convg2g.conv1.", ".convg2g.conv1.0."), (".convg2g.bn1.", ".convg2g.conv1.1."),
              (".downsample_conv.", ".downsample.0."), (".downsample_bn.", ".downsample.1.")))
