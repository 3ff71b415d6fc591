"""The CPU rewrites of convolutions compute what XLA's convolution ops compute."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lama_jax.models import conv_algorithms as algo
from lama_jax.models.layers import Conv, ConvTranspose

TOL = 1e-5


def _xla(x, kernel, stride=1, dilation=1):
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "VALID",
                                        rhs_dilation=(dilation, dilation),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _random(shape, seed, scale=1.0):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32) * scale


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=TOL, rtol=TOL)


@pytest.mark.parametrize("tile", algo.WINOGRAD_TILES)
def test_winograd_transforms_compute_a_correlation(tile):
    # In exact arithmetic (float64 here) A^T [(G g) * (B^T d)] is the 'VALID' correlation of
    # n = tile + 2 inputs d with 3 taps g: Winograd's identity, which both tiles rely on.
    bt, g, at = algo._WINOGRAD[tile]
    rng = np.random.default_rng(tile)
    d, taps = rng.standard_normal(tile + 2), rng.standard_normal(3)
    expected = np.correlate(d, taps, mode="valid")
    np.testing.assert_allclose(at @ ((g @ taps) * (bt @ d)), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("tile", algo.WINOGRAD_TILES)
@pytest.mark.parametrize("height,width", [(10, 10), (9, 12), (7, 5), (13, 11)])
def test_winograd_matches_convolution(height, width, tile):
    # Output sides that are no multiple of the tile exercise the padded last tiles.
    x, kernel = _random((2, height, width, 5), 0), _random((3, 3, 5, 7), 1, 0.2)
    _close(algo.winograd_3x3(x, kernel, tile), _xla(x, kernel))


@pytest.mark.parametrize("k,dilation", [(3, 1), (7, 1), (3, 2)])
def test_shift_sum_matches_convolution(k, dilation):
    x, kernel = _random((1, 16, 13, 6), 2), _random((k, k, 6, 3), 3, 0.2)
    _close(algo.shift_sum(x, kernel, dilation), _xla(x, kernel, dilation=dilation))


@pytest.mark.parametrize("size,k,stride", [(9, 3, 2), (10, 3, 2), (17, 3, 2), (12, 5, 1)])
def test_im2col_matches_convolution(size, k, stride):
    x, kernel = _random((2, size, size + 2, 4), 4), _random((k, k, 4, 6), 5, 0.2)
    _close(algo.im2col(x, kernel, stride), _xla(x, kernel, stride=stride))


def test_transposed_by_phases_matches_flax_conv_transpose():
    x = _random((2, 5, 7, 6), 6)
    layer = nn.ConvTranspose(4, (3, 3), strides=(2, 2), padding=((1, 2), (1, 2)),
                             transpose_kernel=True, use_bias=False)
    kernel = layer.init(jax.random.key(7), x)["params"]["kernel"]
    padded = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
    expected = layer.apply({"params": {"kernel": kernel}}, x)  # [2, 10, 14, 4]
    _close(algo.transposed_by_phases(padded, kernel), expected)
    # In bands of 2 input rows: each band's last input row belongs to the next band too.
    banded = algo.in_row_bands(lambda t: algo.transposed_by_phases(t, kernel), padded, 2, 1, 14)
    _close(banded, expected)


@pytest.mark.parametrize("stride,window", [(1, 3), (2, 3), (1, 7)])
def test_row_bands_give_the_whole_convolution(stride, window):
    x, kernel = _random((1, 23, 9, 3), 8), _random((window, window, 3, 2), 9, 0.2)
    whole = _xla(x, kernel, stride)
    # 20 output pixels per band: bands of 2 or 4 rows, the last one shorter.
    banded = algo.in_row_bands(lambda t: _xla(t, kernel, stride), x, window, stride, 20)
    assert banded.shape == whole.shape
    _close(banded, whole)


@pytest.mark.parametrize("features,kernel_size,strides,dilation,channels,height,width", [
    (6, 3, 1, 1, 5, 40, 40),   # Winograd in 2x2 tiles, in bands (38x38 outputs)
    (6, 3, 1, 1, 5, 70, 70),   # Winograd in 4x4 tiles, in bands of 60 rows (68x68 outputs)
    (3, 7, 1, 1, 8, 70, 40),   # shift-sum: more input than output channels
    (8, 7, 1, 1, 4, 70, 40),   # banded XLA convolution (the stem)
    (6, 3, 2, 1, 128, 70, 40),  # stride 2 by im2col (in bands at this size)
    (8, 3, 2, 1, 4, 70, 40),   # stride 2, few channels: banded XLA convolution
    (4, 3, 1, 2, 4, 70, 40),   # dilated
    (5, 1, 1, 1, 4, 70, 40),   # 1x1: a matrix product
])
def test_cpu_conv_matches_xla_conv(features, kernel_size, strides, dilation, channels, height,
                                   width):
    x = _random((1, height, width, channels), 10)
    xla = Conv(features, kernel_size, strides, dilation, impl="xla")
    variables = xla.init(jax.random.key(11), x)
    cpu = Conv(features, kernel_size, strides, dilation, impl="cpu")
    _close(cpu.apply(variables, x), xla.apply(variables, x))


def test_conv_transpose_has_flax_parameters_and_outputs():
    x = _random((1, 6, 5, 8), 12)
    ours = ConvTranspose(4)
    flax_layer = nn.ConvTranspose(4, (3, 3), strides=(2, 2), padding=((1, 2), (1, 2)),
                                  transpose_kernel=True)
    variables = flax_layer.init(jax.random.key(13), x)
    assert (jax.tree.map(jnp.shape, ours.init(jax.random.key(13), x))
            == jax.tree.map(jnp.shape, variables))
    variables = jax.tree.map(lambda p: p + 0.1, variables)  # a non-zero bias
    expected = flax_layer.apply(variables, x)
    for impl in ("xla", "cpu"):
        _close(ConvTranspose(4, impl=impl).apply(variables, x), expected)


def test_unknown_impl_is_refused():
    with pytest.raises(ValueError, match="unknown conv_impl 'shift_sum'"):
        Conv(4, 3, impl="shift_sum").init(jax.random.key(0), jnp.ones((1, 8, 8, 2)))


@pytest.mark.parametrize("dtype,products", [(jnp.float32, 36), (jnp.bfloat16, 16)])
def test_large_maps_take_4x4_tiles_in_float32_only(dtype, products):
    # 68x68 outputs: 4x4 tiles (36 products) in float32; bfloat16 keeps 2x2 tiles (16), whose
    # transforms round less.
    conv = Conv(6, 3, impl="cpu", dtype=dtype)
    x = jnp.zeros((1, 70, 70, 5), jnp.float32)
    variables = conv.init(jax.random.key(0), x)
    jaxpr = jax.make_jaxpr(conv.apply)(variables, x)
    batches = {eqn.outvars[0].aval.shape[0] for eqn in jaxpr.eqns
               if eqn.primitive.name == "dot_general" and eqn.params["dimension_numbers"][1][0]}
    assert batches == {products}
