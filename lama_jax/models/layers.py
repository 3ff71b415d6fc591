"""Layers every LaMa network shares, with the official PyTorch semantics (NHWC).

* `batch_norm` / `norm_factory`: BatchNorm with PyTorch's epsilon 1e-5 and momentum 0.1
  (Flax momentum 0.9), running averages in eval mode.
* `reflect_pad`: PyTorch's `padding_mode='reflect'` / `ReflectionPad2d`.
* `Conv`: a 'VALID' convolution with `nn.Conv`'s parameters, computed either as XLA's
  convolution (`impl="xla"`) or, where that is slow on CPUs, as one matrix product and a sum
  of shifted slices (`impl="shift_sum"`).
* `SkeletonConfig` and `decode`: the settings and the upsampling path (and output convolution)
  that LaMa's generators share; `Part`: which part of such a generator a call runs.

Networks choose their parts once at the top (`conv_factory`, `norm_factory`) and hand them
down, as flax's ResNet example passes `conv` and `norm`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Literal, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from lama_jax.models.config_fields import KindConfig

# How stride-1 convolutions with more input than output channels are computed: "xla" (a
# convolution op) or "shift_sum" (2-10x faster for them in CPU inference; its backward pass
# is slow, so training uses "xla").
ConvImpl = Literal["xla", "shift_sum"]
ModuleDef = Callable[..., nn.Module]
# What one call of an encoder-blocks-decoder generator computes: the whole network ("all"),
# its front (the input -> the features entering the first residual block) or its rear (those
# features -> the output). Refinement (`lama_jax.refine`) optimises the features in between.
Part = Literal["all", "front", "rear"]

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # PyTorch's momentum 0.1, in Flax's convention


def batch_norm(train: bool, name: str, dtype=None, epsilon: float = BN_EPSILON) -> nn.BatchNorm:
    """BatchNorm with PyTorch's defaults; running averages in eval mode."""
    return norm_factory(train, dtype, epsilon)(name=name)


def norm_factory(train: bool, dtype=None, epsilon: float = BN_EPSILON) -> ModuleDef:
    """`norm(name=...)` -> a BatchNorm with PyTorch's defaults, in train or eval mode."""
    return functools.partial(nn.BatchNorm, use_running_average=not train, momentum=BN_MOMENTUM,
                             epsilon=epsilon, dtype=dtype)


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
    """Reflect-pads H and W of an NHWC array (PyTorch `padding_mode='reflect'`)."""
    if pad == 0:
        return x
    return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


class Conv(nn.Module):
    """A k x k 'VALID' convolution with `nn.Conv`'s parameters ([k, k, C_in, C_out] kernel,
    optional bias).

    With `impl="shift_sum"`, a stride-1 convolution with more input than output channels is
    one matrix product to k*k*C_out channels followed by a sum of k*k shifted slices of the
    result: XLA:CPU's convolution kernels run LaMa's 384->128 and 64->3 layers at a third of
    matmul speed, as a matmul with N = k*k*C_out they run at full speed.
    """

    features: int
    kernel_size: int
    strides: int = 1
    kernel_dilation: int = 1
    use_bias: bool = True
    impl: ConvImpl = "xla"
    dtype: Optional[Any] = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, d = self.kernel_size, self.kernel_dilation
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (k, k, x.shape[-1], self.features))
        bias = (self.param("bias", nn.initializers.zeros, (self.features,))
                if self.use_bias else None)
        dtype = self.dtype or jnp.result_type(x, kernel)
        x, kernel = x.astype(dtype), kernel.astype(dtype)
        if self.impl == "shift_sum" and self.strides == 1 and x.shape[-1] > self.features:
            taps = jnp.einsum("bhwc,ijcd->bhwijd", x, kernel)  # [B, H, W, k, k, C_out]
            h, w = x.shape[1] - d * (k - 1), x.shape[2] - d * (k - 1)
            y = sum(taps[:, i * d:i * d + h, j * d:j * d + w, i, j]
                    for i in range(k) for j in range(k))  # [B, h, w, C_out]
        elif self.impl in ("xla", "shift_sum"):
            y = jax.lax.conv_general_dilated(
                x, kernel, (self.strides, self.strides), "VALID", rhs_dilation=(d, d),
                dimension_numbers=("NHWC", "HWIO", "NHWC"))
        else:
            raise ValueError(f"unknown conv_impl {self.impl!r}; expected 'xla' or 'shift_sum'")
        return y if bias is None else y + bias.astype(dtype)


def conv_factory(impl: ConvImpl = "xla", dtype=None) -> ModuleDef:
    """`conv(features, kernel_size, ..., name=...)` -> a `Conv` computed by `impl`."""
    return functools.partial(Conv, impl=impl, dtype=dtype)


@dataclasses.dataclass(frozen=True)
class SkeletonConfig(KindConfig):
    """Settings of LaMa's encoder-blocks-decoder generators that every kind has; a kind's
    configuration extends it and sets `kind`."""

    input_nc: int = 4
    output_nc: int = 3
    ngf: int = 64
    n_downsampling: int = 3
    n_blocks: int = 9
    block_dilation: int = 1
    max_features: int = 1024
    out_activation: Optional[str] = "sigmoid"  # "sigmoid", "tanh" or None

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2 ** self.n_downsampling

    def width(self, mult: int) -> int:
        """Channels at `mult` times the base width, capped at `max_features`."""
        return min(self.max_features, self.ngf * mult)


def decode(y: jax.Array, n_upsampling: int, width: Callable[[int], int], output_nc: int,
           out_activation: Optional[str], conv: ModuleDef, norm: ModuleDef, dtype=None
           ) -> jax.Array:
    """The up path both LaMa generators end with, created in the calling module's scope:
    `n_upsampling` x (ConvTranspose 3x3 stride 2 + BN + ReLU, to `width(2^(n-i-1))` channels;
    `up_{i}`, `up_bn_{i}`), then reflect-pad 3 and a 7x7 conv with bias (`out_conv`) and the
    output activation. [B, h, w, C] -> [B, h * 2^n, w * 2^n, output_nc] float32."""
    for i in range(n_upsampling):
        # PyTorch ConvTranspose2d(k=3, s=2, padding=1, output_padding=1): exactly 2x.
        y = nn.ConvTranspose(width(2 ** (n_upsampling - i - 1)), (3, 3), strides=(2, 2),
                             padding=((1, 2), (1, 2)), transpose_kernel=True, dtype=dtype,
                             name=f"up_{i}")(y)
        y = nn.relu(norm(name=f"up_bn_{i}")(y))
    y = conv(output_nc, 7, name="out_conv")(reflect_pad(y, 3)).astype(jnp.float32)
    if out_activation == "sigmoid":
        return nn.sigmoid(y)
    if out_activation == "tanh":
        return jnp.tanh(y)
    if out_activation is not None:
        raise ValueError(f"unknown out_activation {out_activation!r}")
    return y
