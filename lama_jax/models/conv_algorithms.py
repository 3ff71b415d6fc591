"""Convolutions rewritten as matrix products, for fast inference on CPUs.

XLA:CPU runs a convolution op at full matrix-product speed only for some channel counts; for
most of LaMa's layers it does much better when the same arithmetic is written as one large
matrix product plus cheap rearrangements of the data. Each function here computes exactly
what the convolution it names computes (up to float rounding) and has the same arguments as
the matching `jax.lax` call; `layers.Conv` and `layers.ConvTranspose` pick one per layer when
built with `impl="cpu"`. They are for inference: their gradients are correct but slower than
XLA's own.

* `shift_sum`: any stride-1 k x k convolution as x @ [C, k*k*D] and a sum of k*k shifted
  slices; best where C > D (LaMa's 384->128 and 64->3 layers).
* `winograd_3x3`: a stride-1 3x3 convolution by Winograd's minimal filtering (Lavin and Gray,
  2016) in 2x2 output tiles, F(2x2, 3x3): 16 matrix products with 4/9 of the direct method's
  multiplications, or in 4x4 tiles, F(4x4, 3x3): 36 products with 1/4 of them
  (`winograd_kernel` + `winograd_transformed` when the kernel serves several bands). 4x4
  tiles pay off on maps of 40x40 and more (Big LaMa's residual blocks from 320 px photos on):
  below that their products have too few rows.
* `im2col`: any convolution as one matrix product of its patches; best for LaMa's stride-2
  layers with 128 or more input channels.
* `transposed_by_phases`: PyTorch's 3x3 stride-2 ConvTranspose2d (padding 1, output padding 1)
  as one matrix product and a sum of shifted slices per output phase.

Big feature maps are best computed in bands of output rows (`in_row_bands`): each band's
intermediate products then stay in the CPU's caches (at 512 px, banding halves the time of the
residual blocks' Winograd convolutions and of the 7x7 stem, and takes a third off the
transposed and strided convolutions).

All arrays are NHWC, kernels HWIO ([k, k, C, D]) and 'VALID' (pad before calling).
"""

from __future__ import annotations

import functools
import operator
from typing import Callable, List

import jax
import jax.numpy as jnp
import numpy as np

# Winograd's F(m x m, 3x3) by tile size m: input transform B^T [n, n], kernel transform G
# [n, 3] and output transform A^T [m, n] (n = m + 2), from the interpolation points 0, 1, -1
# (m = 2) and 0, 1, -1, 2, -1/2 (m = 4; the points 0, 1, -1, 2, -2 or 0, 1, -1, 1/2, -1/2
# give float32 errors 2-3x larger). B^T's and A^T's entries are exact in binary floating point.
_WINOGRAD = {
    2: (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]),
        np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]]),
        np.array([[1, 1, 1, 0], [0, 1, -1, -1]])),
    4: (np.array([[1, 3 / 2, -2, -3 / 2, 1, 0], [0, -1, -5 / 2, -1 / 2, 1, 0],
                  [0, 1, 1 / 2, -5 / 2, 1, 0], [0, -1 / 2, -1, 1 / 2, 1, 0],
                  [0, 2, -1, -2, 1, 0], [0, 1, 3 / 2, -2, -3 / 2, 1]]),
        np.array([[1, 0, 0], [-1 / 3, -1 / 3, -1 / 3], [1 / 3, -1 / 3, 1 / 3],
                  [1 / 15, 2 / 15, 4 / 15], [-16 / 15, 8 / 15, -4 / 15], [0, 0, 1]]),
        np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -1 / 2, 0], [0, 1, 1, 4, 1 / 4, 0],
                  [0, 1, -1, 8, -1 / 8, 1]])),
}
WINOGRAD_TILES = tuple(_WINOGRAD)


def shift_sum(x: jax.Array, kernel: jax.Array, dilation: int = 1) -> jax.Array:
    """Stride-1 'VALID' convolution [B, H, W, C] * [k, k, C, D] -> [B, h, w, D] as one matrix
    product to k*k*D channels and a sum of k*k shifted slices of it."""
    k, d = kernel.shape[0], dilation
    taps = jnp.einsum("bhwc,ijcd->bhwijd", x, kernel)  # [B, H, W, k, k, D]
    h, w = x.shape[1] - d * (k - 1), x.shape[2] - d * (k - 1)
    return sum(taps[:, i * d:i * d + h, j * d:j * d + w, i, j]
               for i in range(k) for j in range(k))  # [B, h, w, D]


def _combine(v: List[jax.Array], matrix: np.ndarray) -> List[jax.Array]:
    """`matrix` [p, q] applied to a list of q arrays: p weighted sums of them (zero weights
    skipped, weights of +-1 without a multiplication)."""
    out = []
    for row in matrix:
        terms = [v[r] if c == 1 else -v[r] if c == -1 else v[r] * float(c)
                 for r, c in enumerate(row) if c != 0]
        out.append(functools.reduce(operator.add, terms))
    return out


def _stack2(parts: List[List[jax.Array]], axis: int = 0) -> jax.Array:
    """`parts` (p lists of q equal arrays) stacked into one array with new axes p and q at
    `axis`. Stacked in two levels, not as one stack of p*q: XLA:CPU fuses a concatenation
    of up to 8 operands with the computations that produce them, so each level is one fusion
    and the result is written once, where a stack of 9 or more operands gets a fusion per
    operand and a copy of them all (for Big LaMa at 256 px: 62 operations per residual
    block instead of 114, and 4-5 % faster on two cores)."""
    return jnp.stack([jnp.stack(row, axis=axis) for row in parts], axis=axis)


def winograd_kernel(kernel: jax.Array, tile: int = 2) -> jax.Array:
    """The kernel [3, 3, C, D] in the domain of Winograd's F(tile x tile, 3x3): [n*n, C, D]
    with n = tile + 2 (G k G^T per channel pair). Compute it once per convolution, not once
    per band."""
    g = _WINOGRAD[tile][1]
    gg = jnp.asarray(np.kron(g, g), kernel.dtype)  # [n*n, 9]
    return (gg @ kernel.reshape(9, -1)).reshape(gg.shape[0], kernel.shape[2], -1)


def winograd_transformed(x: jax.Array, u: jax.Array) -> jax.Array:
    """Stride-1 'VALID' 3x3 convolution [B, H, W, C] -> [B, H-2, W-2, D] with a kernel already
    in the Winograd domain (`u` = `winograd_kernel(kernel, tile)`, [n*n, C, D], n = tile + 2):
    the output in tile x tile blocks, each from an n x n input block, by n*n matrix products
    [blocks, C] @ [C, D]: (n / tile)^2 multiplications per output pixel and channel pair (4
    for tile 2, 2.25 for tile 4) instead of the direct method's 9."""
    n = round(u.shape[0] ** 0.5)
    m = n - 2
    bt, _, at = _WINOGRAD[m]
    b, height, width, c = x.shape
    h, w = height - 2, width - 2
    th, tw = -(-h // m), -(-w // m)  # tiles; a side that is no multiple of m is padded
    x = jnp.pad(x, ((0, 0), (0, m * th - h), (0, m * tw - w), (0, 0)))
    rows = _combine([x[:, r:r + m * th:m] for r in range(n)], bt)  # n x [B, th, W', C]
    if m > 2:
        # Kept in memory: fused into the n*n outputs below, every row combination would be
        # recomputed for each of them (F(4x4) up to 20 % slower); F(2x2)'s are cheaper to redo.
        rows = jax.lax.optimization_barrier(rows)
    v = _stack2([_combine([row[:, :, s:s + m * tw:m] for s in range(n)], bt)
                 for row in rows])  # [n, n, B, th, tw, C]
    prods = jax.lax.dot_general(v.reshape(n * n, b * th * tw, c), u,
                                (((2,), (1,)), ((0,), (0,))))  # [n*n, B*th*tw, D]
    aa = jnp.asarray(np.kron(at, at), prods.dtype)  # [m*m, n*n]
    y = (aa @ prods.reshape(n * n, -1)).reshape(m, m, b, th, tw, -1)  # [m, m, B, th, tw, D]
    y = y.transpose(2, 3, 0, 4, 1, 5).reshape(b, m * th, m * tw, -1)
    return y[:, :h, :w]


def winograd_3x3(x: jax.Array, kernel: jax.Array, tile: int = 2) -> jax.Array:
    """Stride-1 'VALID' 3x3 convolution [B, H, W, C] * [3, 3, C, D] -> [B, H-2, W-2, D] by
    Winograd's F(tile x tile, 3x3), tile 2 or 4 (`winograd_kernel`, then
    `winograd_transformed`)."""
    return winograd_transformed(x, winograd_kernel(kernel, tile))


def im2col(x: jax.Array, kernel: jax.Array, stride: int = 1) -> jax.Array:
    """'VALID' convolution with `stride` [B, H, W, C] * [k, k, C, D] -> [B, h, w, D] as one
    matrix product of its k*k input patches, gathered on channels ([B, h, w, k*k*C]), with the
    kernel as a [k*k*C, D] matrix; best for strided layers with many input channels (the
    patches take k*k times the input's memory, so run it in bands)."""
    k, s = kernel.shape[0], stride
    h, w = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    patches = _stack2([[x[:, i:i + s * (h - 1) + 1:s, j:j + s * (w - 1) + 1:s] for j in range(k)]
                       for i in range(k)], axis=3)  # [B, h, w, k, k, C]
    patches = patches.reshape(*patches.shape[:3], -1)  # [B, h, w, k*k*C]
    return patches @ kernel.reshape(-1, kernel.shape[-1])  # [B, h, w, D]


def transposed_by_phases(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """PyTorch's ConvTranspose2d(3x3, stride 2, padding 1, output_padding 1) of a [B, h, w, C]
    map, given it with one row of zeros added at the bottom and one column at the right
    ([B, h+1, w+1, C]; a 'VALID' operation with a 2x2 window, so `in_row_bands` can split it),
    -> [B, 2h, 2w, D], with flax's `nn.ConvTranspose(..., transpose_kernel=True)` kernel
    [3, 3, D, C]. Output pixel 2m + a takes kernel row 1 from input row m when a = 0, rows 2
    and 0 from input rows m and m + 1 when a = 1 (likewise for columns): one matrix product to
    9*D channels, four sums of shifted slices, one interleave."""
    b, h, w, c = x.shape[0], x.shape[1] - 1, x.shape[2] - 1, x.shape[3]
    weights = kernel.transpose(3, 0, 1, 2).reshape(c, -1)  # [C, 3*3*D]
    taps = (x @ weights).reshape(b, h + 1, w + 1, 3, 3, -1)  # [B, h+1, w+1, 3, 3, D]

    def phase(a: int, c_: int) -> jax.Array:
        rows = [(1, 0)] if a == 0 else [(2, 0), (0, 1)]  # (kernel row, input offset)
        cols = [(1, 0)] if c_ == 0 else [(2, 0), (0, 1)]
        return sum(taps[:, dy:dy + h, dx:dx + w, ky, kx] for ky, dy in rows for kx, dx in cols)

    y = jnp.stack([jnp.stack([phase(a, c_) for c_ in (0, 1)], axis=3) for a in (0, 1)],
                  axis=2)  # [B, h, 2, w, 2, D]
    return y.reshape(b, 2 * h, 2 * w, -1)


def in_row_bands(conv: Callable[[jax.Array], jax.Array], x: jax.Array, window: int,
                 stride: int, band_pixels: int, row_multiple: int = 1) -> jax.Array:
    """`conv(x)` for a 'VALID' convolution with a `window`-row receptive field and `stride`,
    computed on bands of about `band_pixels` output pixels each (whole rows, a multiple of
    `row_multiple`: Winograd's tile, so that no band but the last needs padding) and
    concatenated: [B, H, W, C] -> [B, h, w, D]."""
    h = (x.shape[1] - window) // stride + 1
    w = (x.shape[2] - window) // stride + 1
    rows = max(1, band_pixels // w)
    if rows >= h:
        return conv(x)
    rows = -(-rows // row_multiple) * row_multiple
    bands = [conv(x[:, r * stride:(min(r + rows, h) - 1) * stride + window])
             for r in range(0, h, rows)]
    return jnp.concatenate(bands, axis=1)
