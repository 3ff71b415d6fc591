"""PatchGAN discriminator (official `pix2pixhd.py::NLayerDiscriminator`), NHWC.

    model0: 4x4 conv stride 2 (pad 2) + LeakyReLU(0.2)                 ndf
    model1..n_layers-1: 4x4 conv stride 2 + BN + LeakyReLU           min(2 nf, 512)
    model{n_layers}: 4x4 conv stride 1 + BN + LeakyReLU                min(2 nf, 512)
    model{n_layers+1}: 4x4 conv stride 1 -> 1 logit channel

All convs have biases and zero padding 2. The activations of model0..model{n_layers} are the
features of the feature-matching loss. `LAYOUT` maps it to the official state dict.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Dict, List, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from lama_jax.models import config_fields
from lama_jax.models.layers import batch_norm, lecun_normal_kernel
from lama_jax.models.official import ConversionError, StateDict, StateDictLayout, weight


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
    """Architecture of the PatchGAN discriminator."""

    input_nc: int = 3
    ndf: int = 64
    n_layers: int = 4

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-serialisable dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "DiscriminatorConfig":
        """Inverse of `to_dict`; unknown keys and wrongly typed values are errors naming them."""
        return config_fields.from_dict(cls, d)


class Discriminator(nn.Module):
    """[B, H, W, 3] -> (logits [B, h, w, 1], [feature_0, ..., feature_{n_layers}])."""

    config: DiscriminatorConfig = DiscriminatorConfig()
    dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> Tuple[jax.Array, List[jax.Array]]:
        cfg = self.config
        x = x.astype(self.dtype or jnp.float32)
        features = []
        nf = cfg.ndf
        for n in range(cfg.n_layers + 1):
            stride = 2 if n < cfg.n_layers else 1
            if n > 0:
                nf = min(nf * 2, 512)
            x = nn.Conv(nf, (4, 4), strides=stride, padding=2, dtype=self.dtype,
                        kernel_init=lecun_normal_kernel, name=f"model{n}_conv")(x)
            if n > 0:
                x = batch_norm(train, f"model{n}_bn", self.dtype)(x)
            x = nn.leaky_relu(x, 0.2)
            features.append(x)
        logits = nn.Conv(1, (4, 4), strides=1, padding=2, dtype=self.dtype,
                         kernel_init=lecun_normal_kernel,
                         name=f"model{cfg.n_layers + 1}_conv")(x)
        return logits.astype(jnp.float32), features


# ------------------------------------------------------------------------------------------
# The official state dict: `model{n}` are nn.Sequential (conv, BN, LeakyReLU) per layer.

def _infer_config(sd: StateDict) -> DiscriminatorConfig:
    if "model0.0.weight" not in sd:
        raise ConversionError("no discriminator found: expected the key 'model0.0.weight'")
    first = weight(sd, "model0.0.weight")
    n_models = len({k.split(".")[0] for k in sd if re.match(r"model\d+\.", k)})
    return DiscriminatorConfig(input_nc=int(first.shape[1]), ndf=int(first.shape[0]),
                               n_layers=n_models - 2)


def _module_key(name: str, cfg: DiscriminatorConfig) -> str:
    """Our submodule (`model3_bn`) -> the official one (`model3.1`)."""
    block, part = name.split("_")
    return f"{block}.{ {'conv': 0, 'bn': 1}[part] }"


LAYOUT = StateDictLayout("the key 'model0.0.weight' of the NLayerDiscriminator",
                         lambda sd: "model0.0.weight" in sd, _infer_config, _module_key)
