"""The Dilated generator of the paper's Table 2 (official `pix2pixhd.py::MultiDilatedGlobalGenerator`
with `multidilation_kwargs: {comb_mode: cat_in, dilation_num: 4}`): module, configuration and
official state-dict layout. Kind name "pix2pixhd_multidilated".

LaMa-Regular's skeleton (`pix2pixhd.GlobalGenerator`: stem, zero-padded downsampling, the same
upsampling path and output conv) with multi-dilated residual blocks:

    x + BN(md_conv(ReLU(BN(md_conv(x)))))                                   block_{j}

where `md_conv` (official `MultidilatedConv`, "cat_in" mode) splits its C input channels into
`dilation_num` equal groups; group i goes through a 3x3 convolution with bias, dilation 2^i and
reflect padding 2^i, to all C output channels, and the results are summed. The largest
dilation needs a bottleneck side above 2^(dilation_num - 1): 72 px inputs and more for the
paper's setting (3 downsamplings, 4 dilations).
"""

from __future__ import annotations

import dataclasses
import re
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from lama_jax.errors import ConfigError
from lama_jax.models.layers import ModuleDef, SkeletonConfig, reflect_pad
from lama_jax.models.official import StateDict, StateDictLayout
from lama_jax.models.pix2pixhd import GlobalGenerator, infer_skeleton, module_key

KIND = "pix2pixhd_multidilated"


@dataclasses.dataclass(frozen=True)
class MultiDilatedConfig(SkeletonConfig):
    """Architecture of the Dilated generator; `to_dict`/`from_dict` round-trip through JSON."""

    kind: ClassVar[str] = KIND
    dilation_num: int = 4  # dilations 1, 2, ..., 2^(dilation_num - 1) in every block conv

    def __post_init__(self):
        if self.dilation_num < 1 or self.width(2 ** self.n_downsampling) % self.dilation_num:
            raise ConfigError(f"{KIND}: the bottleneck's {self.width(2 ** self.n_downsampling)} "
                              f"channels do not split into dilation_num={self.dilation_num} groups")
        if self.block_dilation != 1:
            raise ConfigError(f"{KIND}: the blocks' dilations come from dilation_num; "
                              f"block_dilation must be 1 (got {self.block_dilation})")

    @property
    def min_side(self) -> int:
        """The smallest input height and width: the bottleneck must exceed the largest
        dilation (72 px for 3 downsamplings and 4 dilations)."""
        return (2 ** (self.dilation_num - 1) + 1) * self.size_multiple


class MultidilatedConv(nn.Module):
    """"cat_in" multi-dilated 3x3 convolution: [B, h, w, C] -> [B, h, w, features]."""

    features: int
    dilation_num: int
    conv: ModuleDef

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        largest = 2 ** (self.dilation_num - 1)
        if min(x.shape[1:3]) <= largest:
            raise ConfigError(f"{KIND}: dilation {largest} needs a bottleneck of more than "
                              f"{largest} px per side, got {x.shape[1]}x{x.shape[2]}: use larger "
                              f"inputs ({largest + 1} x 2^n_downsampling px or more)")
        groups = jnp.split(x, self.dilation_num, axis=-1)  # [B, h, w, C / dilation_num] each
        return sum(self.conv(self.features, 3, kernel_dilation=2 ** i, name=f"dil_{i}")(
            reflect_pad(g, 2 ** i)) for i, g in enumerate(groups))


class MultidilatedResnetBlock(nn.Module):
    """x + BN(md_conv(ReLU(BN(md_conv(x))))), NHWC (official `MultidilatedResnetBlock`)."""

    features: int
    dilation_num: int
    conv: ModuleDef
    norm: ModuleDef

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = x
        for i in (1, 2):
            y = MultidilatedConv(self.features, self.dilation_num, self.conv, name=f"conv{i}")(y)
            y = self.norm(name=f"bn{i}")(y)
            if i == 1:
                y = nn.relu(y)
        return x + y  # [B, h, w, C]


class MultiDilatedGenerator(GlobalGenerator):
    """[B, H, W, 4] (masked RGB + mask), H and W divisible by 2^n_downsampling and large
    enough for the largest dilation -> [B, H, W, 3]."""

    config: MultiDilatedConfig

    def residual_block(self, features: int, conv: ModuleDef, norm: ModuleDef,
                       name: str) -> nn.Module:
        """A multi-dilated residual block."""
        return MultidilatedResnetBlock(features, self.config.dilation_num, conv, norm, name=name)


# ------------------------------------------------------------------------------------------
# The official state dict: GlobalGenerator's `model` Sequential, whose blocks hold
#   conv_block = [MultidilatedConv (convs.0..), BN, ReLU, MultidilatedConv, BN].

def _detect(sd: StateDict) -> bool:
    return any(re.match(r"model\.\d+\.conv_block\.0\.convs\.0\.weight$", k) for k in sd)


def _infer_config(sd: StateDict) -> MultiDilatedConfig:
    first = min(int(m.group(1)) for k in sd
                if (m := re.match(r"model\.(\d+)\.conv_block\.0\.convs\.0\.weight$", k)))
    dilation_num = len({k for k in sd if re.match(rf"model\.{first}\.conv_block\.0\.convs\.\d+\.weight$", k)})
    return infer_skeleton(sd, MultiDilatedConfig, dilation_num=dilation_num)


LAYOUT = StateDictLayout(
    "a key 'model.N.conv_block.0.convs.0.weight' of the Dilated MultiDilatedGlobalGenerator",
    _detect, _infer_config, module_key,
    rewrites=((".conv1.dil_", ".conv_block.0.convs."), (".bn1.", ".conv_block.1."),
              (".conv2.dil_", ".conv_block.3.convs."), (".bn2.", ".conv_block.4.")))
