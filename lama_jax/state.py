"""Networks, optimizers and the train state pytree, built from a config.

    nets = build_networks(config)          # static: modules and optax transforms
    state = init_train_state(nets, rng, crop_size)   # or jax.eval_shape(...) for shapes only
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct

from lama_jax.errors import ConfigError, InputNotFoundError
from lama_jax.losses.pconv import POOL_STAGES
from lama_jax.models.backbones import VGG19_PERCEPTUAL_STAGES, ResNet50Encoder, VGGFeatures
from lama_jax.models.discriminator import Discriminator, DiscriminatorConfig
from lama_jax.models.generator import build_generator, generator_config_from_dict
from lama_jax.models.variables import Variables
from lama_jax.state_dict import StateDict
from lama_jax.weights import convert_file, convert_resnet50_encoder, convert_vgg


@struct.dataclass
class NetState:
    """One network's trainable parameters, BatchNorm statistics and optimizer state."""

    params: Any
    batch_stats: Any
    opt_state: Any

    @property
    def variables(self):
        """The `{"params", "batch_stats"}` dict that `Module.apply` takes."""
        return {"params": self.params, "batch_stats": self.batch_stats}


@struct.dataclass
class TrainState:
    """Everything a training step reads and writes; `step` counts completed steps."""

    step: jax.Array
    generator: NetState
    discriminator: Optional[NetState]  # None for a generator-only objective


@dataclasses.dataclass(frozen=True)
class Backbone:
    """The frozen network of a perceptual loss and where its weights come from."""

    module: nn.Module
    term: str  # the loss term it serves: "hrf_perceptual", "vgg19_perceptual" or "pconv"
    weights_key: str  # the key of `config.losses` that holds the weights' path
    what: str  # the weights, for error messages
    convert: Callable[[StateDict], Variables]
    random_init: Callable[[], Variables]  # random weights, only for offline demos


@dataclasses.dataclass(frozen=True)
class Networks:
    """The modules and optimizers of a training run (static, hashable). A generator-only
    objective (`losses.kind` "pconv") has no discriminator."""

    generator: nn.Module  # models.generator.build_generator
    discriminator: Optional[Discriminator]
    backbone: Optional[Backbone]  # None when the perceptual loss is off
    generator_tx: optax.GradientTransformation
    discriminator_tx: Optional[optax.GradientTransformation]


def _dtype(name: str):
    return {"float32": None, "bfloat16": jnp.bfloat16}[name]


def adam(lr: float, config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """PyTorch-default Adam, after clipping the gradients' global norm to `clip_grad_norm`
    (0: no clipping)."""
    adam_tx = optax.adam(lr, b1=config.b1, b2=config.b2, eps=config.eps)
    if not config.clip_grad_norm:
        return adam_tx
    return optax.chain(optax.clip_by_global_norm(config.clip_grad_norm), adam_tx)


# losses.hrf_arch -> whether CSAIL's ResNet50 encoder is dilated.
HRF_ARCHS = {"resnet50dilated": True, "resnet50": False}


def _vgg_backbone(module: VGGFeatures, term: str, weights_key: str, what: str) -> Backbone:
    return Backbone(module, term, weights_key, what, functools.partial(convert_vgg, module=module),
                    lambda: jax.jit(module.init)(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))


def _lama_backbone(losses: ml_collections.ConfigDict, dtype) -> Optional[Backbone]:
    """The backbone of LaMa's perceptual loss: the HRF one (CSAIL ResNet50, Table 3's first
    three rows), the VGG19 one (its fourth) or none."""
    if losses.hrf_perceptual_weight > 0 and losses.vgg19_perceptual_weight > 0:
        raise ConfigError("losses: use one perceptual loss at a time (hrf_perceptual_weight or "
                          "vgg19_perceptual_weight), as the paper's rows do")
    if losses.vgg19_perceptual_weight > 0:
        return _vgg_backbone(VGGFeatures(VGG19_PERCEPTUAL_STAGES, pool="avg", every_relu=True),
                             "vgg19_perceptual", "vgg19_weights_path",
                             "torchvision's ImageNet VGG19 (vgg19-dcbb9e9d.pth)")
    if losses.hrf_perceptual_weight <= 0:
        return None
    if losses.hrf_arch not in HRF_ARCHS:
        raise ConfigError(f"losses.hrf_arch must be one of {sorted(HRF_ARCHS)}, got "
                          f"{losses.hrf_arch!r}")
    module = ResNet50Encoder(dilated=HRF_ARCHS[losses.hrf_arch], dtype=dtype)
    return Backbone(
        module, "hrf_perceptual", "hrf_weights_path",
        "CSAIL's ResNet50 encoder weights (the ADE20K ade20k-resnet50dilated-ppm_deepsup/"
        "encoder_epoch_20.pth, or resnet50-imagenet.pth)",
        functools.partial(convert_resnet50_encoder, dilated=module.dilated),
        lambda: jax.jit(module.init)(jax.random.key(0), jnp.zeros((1, 64, 64, 3))))


def build_networks(config: ml_collections.ConfigDict) -> Networks:
    """Modules and optimizers from a training config (see configs/lama_fourier.py and
    configs/pconv.py)."""
    dtype = _dtype(config.compute_dtype)
    generator = build_generator(generator_config_from_dict(config.generator.to_dict()),
                                spectral_impl=config.spectral_impl, dtype=dtype,
                                freeze_encoder_bn=config.optim.get("freeze_encoder_bn", False))
    generator_tx = adam(config.optim.generator_lr, config.optim)
    if config.losses.kind == "pconv":  # its VGG16 runs in float32
        backbone = None
        if config.losses.perceptual or config.losses.style:
            backbone = _vgg_backbone(VGGFeatures(POOL_STAGES), "pconv", "vgg16_weights_path",
                                     "torchvision's ImageNet VGG16 (vgg16-397923af.pth)")
        return Networks(generator, None, backbone, generator_tx, None)
    if config.losses.kind != "lama":
        raise ConfigError(f"unknown losses.kind {config.losses.kind!r}; expected 'lama' or 'pconv'")
    discriminator = Discriminator(DiscriminatorConfig.from_dict(config.discriminator.to_dict()),
                                  dtype=dtype)
    return Networks(generator, discriminator, _lama_backbone(config.losses, dtype), generator_tx,
                    adam(config.optim.discriminator_lr, config.optim))


def _init_net(module: nn.Module, tx: optax.GradientTransformation, rng: jax.Array,
              x: jax.Array) -> NetState:
    variables = module.init(rng, x, train=False)
    return NetState(variables["params"], variables["batch_stats"], tx.init(variables["params"]))


def init_train_state(nets: Networks, rng: jax.Array, crop_size: int) -> TrainState:
    """Freshly initialised state (weights do not depend on `crop_size`)."""
    g_rng, d_rng = jax.random.split(rng)
    g_in = jnp.zeros((1, crop_size, crop_size, nets.generator.config.input_nc), jnp.float32)
    discriminator = None
    if nets.discriminator is not None:
        d_in = jnp.zeros((1, crop_size, crop_size, nets.discriminator.config.input_nc))
        discriminator = _init_net(nets.discriminator, nets.discriminator_tx, d_rng, d_in)
    return TrainState(step=jnp.zeros((), jnp.int32),
                      generator=_init_net(nets.generator, nets.generator_tx, g_rng, g_in),
                      discriminator=discriminator)


def with_weights(state: TrainState, generator_variables, discriminator_variables=None) -> TrainState:
    """`state` with (converted) weights in place of its own; optimizer states are kept."""
    cast = lambda new, old: jax.tree.map(lambda n, o: jnp.asarray(n, o.dtype), new, old)  # noqa: E731
    g = state.generator.replace(
        params=cast(generator_variables["params"], state.generator.params),
        batch_stats=cast(generator_variables["batch_stats"], state.generator.batch_stats))
    d = state.discriminator
    if discriminator_variables is not None and d is not None:
        d = d.replace(params=cast(discriminator_variables["params"], d.params),
                      batch_stats=cast(discriminator_variables["batch_stats"], d.batch_stats))
    return state.replace(generator=g, discriminator=d)


def backbone_variables(nets: Networks, path: str) -> Optional[Variables]:
    """The frozen perceptual-loss backbone's weights, read from `path` (a PyTorch checkpoint or
    an .npz/.safetensors state dict), or random ones for `path` "random" (offline demos only);
    None without a perceptual loss."""
    backbone = nets.backbone
    if backbone is None:
        return None
    if path == "random":
        logging.warning("perceptual loss with a RANDOM backbone (demo only); set "
                        "--config.losses.%s to %s", backbone.weights_key, backbone.what)
        return backbone.random_init()
    if not path:
        raise InputNotFoundError(f"the perceptual loss needs {backbone.what}: download it and "
                                 f"set --config.losses.{backbone.weights_key}=/path/to/it")
    return convert_file(path, backbone.convert, backbone.what)
