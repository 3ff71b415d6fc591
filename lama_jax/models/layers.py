"""Layers every LaMa network shares, with the official PyTorch semantics (NHWC).

* `batch_norm` / `norm_factory`: BatchNorm with PyTorch's epsilon 1e-5 and momentum 0.1
  (Flax momentum 0.9), running averages in eval mode.
* `reflect_pad`: PyTorch's `padding_mode='reflect'` / `ReflectionPad2d`.
* `lecun_normal_kernel`: flax's default kernel initialiser, drawn so that it compiles fast.
* `Conv` / `ConvTranspose`: convolutions with `nn.Conv`'s / `nn.ConvTranspose`'s parameters,
  computed either as XLA's convolution ops (`impl="xla"`) or, for CPU inference
  (`impl="cpu"`), by the matrix-product formulations of `conv_algorithms` that run fastest
  there.
* `SkeletonConfig` and `decode`: the settings and the upsampling path (and output convolution)
  that LaMa's generators share; `Part`: which part of such a generator a call runs.

Networks choose their parts once at the top (`conv_factory`, `norm_factory`) and hand them
down, as flax's ResNet example passes `conv` and `norm`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Literal, Optional, get_args

import flax.linen as nn
import jax
import jax.numpy as jnp

from lama_jax.models import conv_algorithms as algo
from lama_jax.models.config_fields import KindConfig

# How convolutions are computed: "xla" (XLA's convolution ops; for training and accelerators)
# or "cpu" (`conv_algorithms`' rewrites, chosen per layer; Big LaMa inference runs 2-3x faster
# with them than with "xla" on x86 CPUs, see experiments/RESULTS.md).
ConvImpl = Literal["xla", "cpu"]
CONV_IMPLS = get_args(ConvImpl)
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


# Output pixels per band of `conv_algorithms.in_row_bands` (measured on two EPYC cores, Big
# LaMa at 256, 512 and 1024 px): F(2x2) Winograd's intermediates are 4x its input, so its
# bands are small; F(4x4)'s are 2.25x and its products need rows (4x4 tiles win from 1600
# output pixels, 40x40, on). Smaller bands are not free: XLA gives every band its own
# buffers, so im2col's 9x patches in bands of 1024 px raised the peak memory at 1024 px from
# 3.85 to 4.6 GiB. A transposed convolution's band counts its input pixels.
WINOGRAD_BAND_PIXELS = {2: 1024, 4: 4096}
WINOGRAD_4X4_MIN_PIXELS = 1600
IM2COL_BAND_PIXELS = 4096
TRANSPOSED_BAND_PIXELS = 4096
XLA_BAND_PIXELS = 16384


def _xla_conv(x: jax.Array, kernel: jax.Array, stride: int, dilation: int) -> jax.Array:
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "VALID",
                                        rhs_dilation=(dilation, dilation),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _cpu_conv(x: jax.Array, kernel: jax.Array, stride: int, dilation: int) -> jax.Array:
    """The fastest formulation on XLA:CPU of a 'VALID' convolution, by its shape."""
    k, _, c_in, c_out = kernel.shape
    window = dilation * (k - 1) + 1
    if k == 1 and stride == 1:
        return x @ kernel[0, 0]
    if k == 3 and stride == 1 and dilation == 1:
        # 4x4 tiles round more (their transforms have larger weights): in bfloat16 they
        # raised the mean error of Big LaMa's outputs by 60 %, so they are for float32 and up.
        pixels = (x.shape[1] - 2) * (x.shape[2] - 2)
        wide = jnp.finfo(x.dtype).bits >= 32
        tile = 4 if wide and pixels >= WINOGRAD_4X4_MIN_PIXELS else 2
        u = algo.winograd_kernel(kernel, tile)  # once, for every band
        return algo.in_row_bands(lambda t: algo.winograd_transformed(t, u), x, 3, 1,
                                 WINOGRAD_BAND_PIXELS[tile], tile)
    if stride == 1 and c_in > c_out:
        return algo.shift_sum(x, kernel, dilation)
    if stride == 2 and c_in >= 128 and dilation == 1:
        return algo.in_row_bands(lambda t: algo.im2col(t, kernel, stride), x, k, stride,
                                 IM2COL_BAND_PIXELS)
    return algo.in_row_bands(lambda t: _xla_conv(t, kernel, stride, dilation), x, window,
                             stride, XLA_BAND_PIXELS)


def lecun_normal_kernel(key: jax.Array, shape: tuple, dtype: Any = jnp.float32) -> jax.Array:
    """flax's `nn.initializers.lecun_normal()` for a [..., C_in, C_out] kernel, drawn as one
    [prod(shape[:-1]), C_out] matrix and reshaped: the same numbers and the same fan-in
    (JAX's threefry numbers the elements in row-major order, whatever the rank), but XLA:CPU
    (jaxlib 0.10.2) compiles a draw of rank 4 in about 1.6 s against 0.2-0.5 s for rank 2:
    initialising the demo's networks compiles in half the time (experiments/RESULTS.md)."""
    matrix = (math.prod(shape[:-1]), shape[-1])
    return nn.initializers.lecun_normal()(key, matrix, dtype).reshape(shape)


def _check_impl(impl: str) -> None:
    if impl not in CONV_IMPLS:
        raise ValueError(f"unknown conv_impl {impl!r}; expected one of {CONV_IMPLS}")


class Conv(nn.Module):
    """A k x k 'VALID' convolution with `nn.Conv`'s parameters ([k, k, C_in, C_out] kernel,
    optional bias), computed by XLA's convolution (`impl="xla"`) or by the CPU rewrites
    (`impl="cpu"`: Winograd for 3x3, in float32 in 4x4 tiles on maps of 40x40 and more;
    im2col for stride 2 from 128 or more channels; shift-sum where C_in > C_out; banded XLA
    convolutions otherwise)."""

    features: int
    kernel_size: int
    strides: int = 1
    kernel_dilation: int = 1
    use_bias: bool = True
    impl: ConvImpl = "xla"
    dtype: Optional[Any] = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_impl(self.impl)
        k = self.kernel_size
        kernel = self.param("kernel", lecun_normal_kernel,
                            (k, k, x.shape[-1], self.features))
        bias = (self.param("bias", nn.initializers.zeros, (self.features,))
                if self.use_bias else None)
        dtype = self.dtype or jnp.result_type(x, kernel)
        x, kernel = x.astype(dtype), kernel.astype(dtype)
        compute = _cpu_conv if self.impl == "cpu" else _xla_conv
        y = compute(x, kernel, self.strides, self.kernel_dilation)  # [B, h, w, C_out]
        return y if bias is None else y + bias.astype(dtype)


class ConvTranspose(nn.Module):
    """PyTorch's ConvTranspose2d(3x3, stride 2, padding 1, output_padding 1), exactly 2x
    upsampling, with the parameters of flax's `nn.ConvTranspose(features, (3, 3),
    transpose_kernel=True)` (kernel [3, 3, C_out, C_in], bias [C_out]); `impl="cpu"` computes
    it by output phases, in bands of rows (`conv_algorithms.transposed_by_phases`)."""

    features: int
    impl: ConvImpl = "xla"
    dtype: Optional[Any] = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_impl(self.impl)
        kernel = self.param("kernel", lecun_normal_kernel,
                            (3, 3, self.features, x.shape[-1]))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        dtype = self.dtype or jnp.result_type(x, kernel)
        x, kernel = x.astype(dtype), kernel.astype(dtype)
        if self.impl == "cpu":
            x = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))  # the zeros below and right
            y = algo.in_row_bands(lambda t: algo.transposed_by_phases(t, kernel), x, 2, 1,
                                  TRANSPOSED_BAND_PIXELS)
        else:
            y = jax.lax.conv_transpose(x, kernel, (2, 2), ((1, 2), (1, 2)),
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                       transpose_kernel=True)
        return y + bias.astype(dtype)  # [B, 2H, 2W, C_out]


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
           out_activation: Optional[str], conv_impl: ConvImpl, norm: ModuleDef, dtype=None
           ) -> jax.Array:
    """The up path both LaMa generators end with, created in the calling module's scope:
    `n_upsampling` x (ConvTranspose 3x3 stride 2 + BN + ReLU, to `width(2^(n-i-1))` channels;
    `up_{i}`, `up_bn_{i}`), then reflect-pad 3 and a 7x7 conv with bias (`out_conv`) and the
    output activation. [B, h, w, C] -> [B, h * 2^n, w * 2^n, output_nc] float32."""
    for i in range(n_upsampling):
        y = ConvTranspose(width(2 ** (n_upsampling - i - 1)), conv_impl, dtype,
                          name=f"up_{i}")(y)
        y = nn.relu(norm(name=f"up_bn_{i}")(y))
    y = Conv(output_nc, 7, impl=conv_impl, dtype=dtype, name="out_conv")(reflect_pad(y, 3)).astype(jnp.float32)
    if out_activation == "sigmoid":
        return nn.sigmoid(y)
    if out_activation == "tanh":
        return jnp.tanh(y)
    if out_activation is not None:
        raise ValueError(f"unknown out_activation {out_activation!r}")
    return y
