"""LaMa's generators, registered by kind name, and what every generator shares.

    kind                      module                   architecture
    "ffc_resnet"              models/ffc_resnet.py     LaMa-Fourier, Big LaMa (FFCResNetGenerator)
    "pix2pixhd_global"        models/pix2pixhd.py      LaMa-Regular (pix2pixHD's GlobalGenerator)
    "pix2pixhd_multidilated"  models/multidilated.py   Table 2's Dilated generator
    "pconv_unet"              models/pconv.py          the Partial Convolutions baseline (U-Net)

Each kind's module holds its Flax module, its configuration (a `config_fields.KindConfig`:
`kind`, `size_multiple`, `min_side`, `to_dict`, `from_dict`) and, for the official LaMa kinds,
the official state-dict layout (`LAYOUT`). A new kind is one new module plus its line in
`KINDS`. Model directories and training configs store a
configuration as a dict with its "kind"; `generator_config_from_dict` reads it back and
`build_generator` builds the module of a configuration.

Every generator maps [B, H, W, 4] (the masked image and the mask, `generator_input`) to
[B, H, W, 3] (in [0, 1] for LaMa's sigmoid output), H and W divisible by the configuration's
`size_multiple`. LaMa's kinds with residual blocks (`has_parts`) can also run their front or
rear alone (`part=`, see `layers.Part`), which refinement needs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, NamedTuple, Optional, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from lama_jax.errors import ConfigError
from lama_jax.models import ffc_resnet, multidilated, pconv, pix2pixhd
from lama_jax.models.ffc import SpectralImpl
from lama_jax.models.ffc_resnet import FFCResNetConfig, FFCResNetGenerator
from lama_jax.models.layers import ConvImpl
from lama_jax.models.official import StateDictLayout
from lama_jax.models.multidilated import MultiDilatedConfig, MultiDilatedGenerator
from lama_jax.models.pconv import PConvUNet, PConvUNetConfig
from lama_jax.models.pix2pixhd import GlobalGenerator, GlobalGeneratorConfig

GeneratorConfig = Union[FFCResNetConfig, GlobalGeneratorConfig, MultiDilatedConfig,
                        PConvUNetConfig]


class GeneratorKind(NamedTuple):
    """A registered generator architecture."""

    config: type
    module: type
    layout: Optional[StateDictLayout]  # None: no official checkpoint to convert


KINDS: Dict[str, GeneratorKind] = {
    ffc_resnet.KIND: GeneratorKind(FFCResNetConfig, FFCResNetGenerator, ffc_resnet.LAYOUT),
    pix2pixhd.KIND: GeneratorKind(GlobalGeneratorConfig, GlobalGenerator, pix2pixhd.LAYOUT),
    multidilated.KIND: GeneratorKind(MultiDilatedConfig, MultiDilatedGenerator,
                                     multidilated.LAYOUT),
    pconv.KIND: GeneratorKind(PConvUNetConfig, PConvUNet, None),
}

# The paper's named architectures; the training recipes in configs/ take theirs from here.
LAMA_FOURIER = FFCResNetConfig(n_blocks=9)
BIG_LAMA = FFCResNetConfig(n_blocks=18)
LAMA_REGULAR = GlobalGeneratorConfig(n_blocks=9)
LAMA_DILATED = MultiDilatedConfig(n_blocks=9)  # Table 2's "Dilated" row
PCONV = PConvUNetConfig()  # the paper's U-Net (Liu et al. 2018)


def generator_kind(name: str) -> GeneratorKind:
    """The registered kind `name`; `ConfigError` naming the known ones otherwise."""
    if name not in KINDS:
        raise ConfigError(f"unknown generator kind {name!r}; expected one of {sorted(KINDS)}")
    return KINDS[name]


def generator_config_from_dict(d: Dict[str, Any]) -> GeneratorConfig:
    """The configuration stored as `d` (`to_dict` of any kind's configuration; without a
    "kind", the Fourier generator's)."""
    return generator_kind(d.get("kind", ffc_resnet.KIND)).config.from_dict(d)


def has_parts(config: GeneratorConfig) -> bool:
    """Whether the generator of `config` splits at its first residual block (`part=`)."""
    return issubclass(generator_kind(config.kind).module, (FFCResNetGenerator, GlobalGenerator))


def build_generator(config: GeneratorConfig, spectral_impl: SpectralImpl = "fft",
                    conv_impl: ConvImpl = "xla", dtype: Optional[Any] = None,
                    freeze_encoder_bn: bool = False) -> nn.Module:
    """The Flax module of `config`'s kind. `spectral_impl` (for kinds with Fourier units),
    `conv_impl` (for LaMa's kinds) and the compute `dtype` (parameters stay float32) choose
    how it computes; `freeze_encoder_bn` (for kinds that have it) keeps the encoder's
    BatchNorm on its running statistics while training."""
    module = generator_kind(config.kind).module
    options = {"spectral_impl": spectral_impl, "conv_impl": conv_impl, "dtype": dtype,
               "freeze_encoder_bn": freeze_encoder_bn}
    fields = {f.name for f in dataclasses.fields(module)}
    return module(config, **{k: v for k, v in options.items() if k in fields})


def generator_input(image: jax.Array, mask: jax.Array) -> jax.Array:
    """Official generator input: concat(image * (1 - mask), mask) -> [B, H, W, 4]."""
    return jnp.concatenate([image * (1.0 - mask), mask], axis=-1)


def composite(image: jax.Array, mask: jax.Array, predicted: jax.Array) -> jax.Array:
    """Keeps known pixels and takes the prediction in the hole (mask 1 = hole)."""
    return mask * predicted + (1.0 - mask) * image
