"""Networks, optimizers and the train state pytree, built from a config.

    nets = build_networks(config)          # static: modules and optax transforms
    state = init_train_state(nets, rng, crop_size)   # or jax.eval_shape(...) for shapes only
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct

from lama_jax.errors import InputNotFoundError
from lama_jax.weights import convert_file, convert_resnet50dilated
from lama_jax.models.backbones import ResNet50Dilated
from lama_jax.models.discriminator import Discriminator, DiscriminatorConfig
from lama_jax.models.generator import build_generator, generator_config_from_dict
from lama_jax.models.variables import Variables


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
    discriminator: NetState


@dataclasses.dataclass(frozen=True)
class Networks:
    """The modules and optimizers of a training run (static, hashable)."""

    generator: nn.Module  # models.generator.build_generator
    discriminator: Discriminator
    backbone: Optional[ResNet50Dilated]  # None when the HRF perceptual loss is off
    generator_tx: optax.GradientTransformation
    discriminator_tx: optax.GradientTransformation


def _dtype(name: str):
    return {"float32": None, "bfloat16": jnp.bfloat16}[name]


def adam(lr: float, config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """PyTorch-default Adam after clipping the gradients' global norm."""
    return optax.chain(optax.clip_by_global_norm(config.clip_grad_norm),
                       optax.adam(lr, b1=config.b1, b2=config.b2, eps=config.eps))


def build_networks(config: ml_collections.ConfigDict) -> Networks:
    """Modules and optimizers from a training config (see configs/lama_fourier.py)."""
    dtype = _dtype(config.compute_dtype)
    generator = build_generator(generator_config_from_dict(config.generator.to_dict()),
                          spectral_impl=config.spectral_impl, dtype=dtype)
    discriminator = Discriminator(DiscriminatorConfig.from_dict(config.discriminator.to_dict()),
                                  dtype=dtype)
    backbone = ResNet50Dilated(dtype=dtype) if config.losses.hrf_perceptual_weight > 0 else None
    return Networks(generator, discriminator, backbone,
                    adam(config.optim.generator_lr, config.optim),
                    adam(config.optim.discriminator_lr, config.optim))


def _init_net(module: nn.Module, tx: optax.GradientTransformation, rng: jax.Array,
              x: jax.Array) -> NetState:
    variables = module.init(rng, x, train=False)
    return NetState(variables["params"], variables["batch_stats"], tx.init(variables["params"]))


def init_train_state(nets: Networks, rng: jax.Array, crop_size: int) -> TrainState:
    """Freshly initialised state (weights do not depend on `crop_size`)."""
    g_rng, d_rng = jax.random.split(rng)
    g_cfg, d_cfg = nets.generator.config, nets.discriminator.config
    g_in = jnp.zeros((1, crop_size, crop_size, g_cfg.input_nc), jnp.float32)
    d_in = jnp.zeros((1, crop_size, crop_size, d_cfg.input_nc), jnp.float32)
    return TrainState(step=jnp.zeros((), jnp.int32),
                      generator=_init_net(nets.generator, nets.generator_tx, g_rng, g_in),
                      discriminator=_init_net(nets.discriminator, nets.discriminator_tx, d_rng, d_in))


def with_weights(state: TrainState, generator_variables, discriminator_variables=None) -> TrainState:
    """`state` with (converted) weights in place of its own; optimizer states are kept."""
    cast = lambda new, old: jax.tree.map(lambda n, o: jnp.asarray(n, o.dtype), new, old)  # noqa: E731
    g = state.generator.replace(
        params=cast(generator_variables["params"], state.generator.params),
        batch_stats=cast(generator_variables["batch_stats"], state.generator.batch_stats))
    d = state.discriminator
    if discriminator_variables is not None:
        d = d.replace(params=cast(discriminator_variables["params"], d.params),
                      batch_stats=cast(discriminator_variables["batch_stats"], d.batch_stats))
    return state.replace(generator=g, discriminator=d)


def backbone_variables(nets: Networks, path: str) -> Optional[Variables]:
    """Frozen HRF perceptual backbone weights: the official `encoder_epoch_20.pth` (or an
    .npz/.safetensors state dict), or "random" (random weights, only for offline demos)."""
    if nets.backbone is None:
        return None
    if path == "random":
        logging.warning("HRF perceptual loss with a RANDOM backbone (demo only); set "
                        "--config.losses.hrf_weights_path to encoder_epoch_20.pth")
        return nets.backbone.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3)), train=False)
    if not path:
        raise InputNotFoundError(
            "the HRF perceptual loss needs the ADE20K ResNet50-dilated weights: download "
            "ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth (CSAILVision) and set "
            "--config.losses.hrf_weights_path=/path/to/encoder_epoch_20.pth")
    return convert_file(path, convert_resnet50dilated, "the ADE20K ResNet50-dilated encoder")
