"""Fast Fourier Convolution (Chi et al. 2020) as LaMa uses it, in Flax Linen (NHWC).

Semantics follow the official `saicinpainting/training/modules/ffc.py` so that converted
PyTorch weights compute the same function:

* every FFC convolution is bias-free and reflect-padded;
* the Fourier unit interleaves real and imaginary parts per channel
  (`[c0.re, c0.im, c1.re, c1.im, ...]`) before its 1x1 conv, BatchNorm and ReLU;
* BatchNorm uses PyTorch's epsilon 1e-5 and momentum 0.1 (Flax momentum 0.9).

Two implementations of the orthonormal 2-D real FFT are selectable by `spectral_impl`:
`"fft"` (`jnp.fft.rfft2` / `irfft2`) and `"dft"` (dense DFT matrix products, which map onto
the matrix units of a TPU where XLA's FFT is slow and the feature maps are small).
"""

from __future__ import annotations

from typing import Literal, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

SpectralImpl = Literal["fft", "dft"]
# How stride-1 convolutions with more input than output channels are computed: "xla" (a
# convolution op) or "shift_sum" (`ShiftSumConv`: 2-10x faster for them in CPU inference; its
# backward pass is slow, so training uses "xla").
ConvImpl = Literal["xla", "shift_sum"]
# A feature map split into its local and global channel groups. Either may be None when the
# layer has no channels of that kind (the official code uses the integer 0 for "absent").
LocalGlobal = Tuple[Optional[jax.Array], Optional[jax.Array]]

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # PyTorch's momentum 0.1, in Flax's convention


def batch_norm(train: bool, name: str, dtype=None, epsilon: float = BN_EPSILON) -> nn.BatchNorm:
    """BatchNorm with PyTorch's defaults; running averages in eval mode."""
    return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                        epsilon=epsilon, dtype=dtype, name=name)


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
    """Reflect-pads H and W of an NHWC array (PyTorch `padding_mode='reflect'`)."""
    if pad == 0:
        return x
    return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


# ------------------------------------------------------------------------------------------
# The orthonormal 2-D real FFT over H and W, two implementations.

def _dft_matrices(h: int, w: int):
    """Real and imaginary parts of the orthonormal DFT matrices used by the "dft" impl.

    Built with numpy in float64 at trace time (shapes are static), so they are constants of
    the compiled program.
    """
    wf = w // 2 + 1
    # Forward along W (real -> half spectrum): e^{-2 pi i k w / W} / sqrt(W), [W, Wf].
    ang_w = 2.0 * np.pi * np.outer(np.arange(w), np.arange(wf)) / w
    fw_re, fw_im = np.cos(ang_w) / np.sqrt(w), -np.sin(ang_w) / np.sqrt(w)
    # Full DFT along H: e^{-2 pi i u h / H} / sqrt(H), [H, H] (symmetric).
    ang_h = 2.0 * np.pi * np.outer(np.arange(h), np.arange(h)) / h
    fh_re, fh_im = np.cos(ang_h) / np.sqrt(h), -np.sin(ang_h) / np.sqrt(h)
    # Inverse along W (half spectrum -> real, C2R): Hermitian weights 1 for DC and Nyquist,
    # 2 elsewhere; the sine terms vanish for DC and Nyquist, so their imaginary parts are
    # ignored exactly as a C2R transform ignores them. [Wf, W].
    weight = np.full(wf, 2.0)
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    iw_re = weight[:, None] * np.cos(ang_w.T) / np.sqrt(w)
    iw_im = -weight[:, None] * np.sin(ang_w.T) / np.sqrt(w)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    return tuple(map(f32, (fw_re, fw_im, fh_re, fh_im, iw_re, iw_im)))


_HIGHEST = jax.lax.Precision.HIGHEST


def rfft2(x: jax.Array, impl: SpectralImpl) -> Tuple[jax.Array, jax.Array]:
    """Orthonormal real 2-D FFT over axes (1, 2) of [B, H, W, C] -> (re, im), [B, H, W//2+1, C]."""
    if impl == "fft":
        f = jnp.fft.rfft2(x, axes=(1, 2), norm="ortho")
        return jnp.real(f), jnp.imag(f)
    if impl != "dft":
        raise ValueError(f"unknown spectral_impl {impl!r}; expected 'fft' or 'dft'")
    _, h, w, _ = x.shape
    fw_re, fw_im, fh_re, fh_im, _, _ = _dft_matrices(h, w)
    ein = lambda s, a, b: jnp.einsum(s, a, b, precision=_HIGHEST)  # noqa: E731
    a_re = ein("bhwc,wk->bhkc", x, fw_re)  # [B, H, Wf, C]
    a_im = ein("bhwc,wk->bhkc", x, fw_im)
    re = ein("uh,bhkc->bukc", fh_re, a_re) - ein("uh,bhkc->bukc", fh_im, a_im)
    im = ein("uh,bhkc->bukc", fh_re, a_im) + ein("uh,bhkc->bukc", fh_im, a_re)
    return re, im


def irfft2(re: jax.Array, im: jax.Array, size: Tuple[int, int], impl: SpectralImpl) -> jax.Array:
    """Inverse of `rfft2`: half spectrum [B, H, W//2+1, C] -> real [B, H, W, C] of `size`."""
    if impl == "fft":
        return jnp.fft.irfft2(jax.lax.complex(re, im), s=size, axes=(1, 2), norm="ortho")
    if impl != "dft":
        raise ValueError(f"unknown spectral_impl {impl!r}; expected 'fft' or 'dft'")
    h, w = size
    _, _, fh_re, fh_im, iw_re, iw_im = _dft_matrices(h, w)
    ein = lambda s, a, b: jnp.einsum(s, a, b, precision=_HIGHEST)  # noqa: E731
    # Inverse full DFT along H: conjugate of the (symmetric) forward matrix.
    b_re = ein("uh,bukc->bhkc", fh_re, re) + ein("uh,bukc->bhkc", fh_im, im)
    b_im = ein("uh,bukc->bhkc", fh_re, im) - ein("uh,bukc->bhkc", fh_im, re)
    # C2R along W: Re(sum_k weight_k X_k e^{+2 pi i k w / W}) / sqrt(W).
    return ein("bhkc,kw->bhwc", b_re, iw_re) + ein("bhkc,kw->bhwc", b_im, iw_im)


# ------------------------------------------------------------------------------------------
# Modules.

class Conv1x1(nn.Module):
    """Bias-free 1x1 convolution as a plain matrix product over channels.

    Parameters are laid out as `nn.Conv`'s ([1, 1, in, out]); a dot is cheaper than a
    convolution call on CPU and the same on accelerators.
    """

    features: int
    dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (1, 1, x.shape[-1], self.features))
        dtype = self.dtype or x.dtype
        return jnp.einsum("...c,cd->...d", x.astype(dtype), kernel[0, 0].astype(dtype))


class FourierUnit(nn.Module):
    """Global mixing in the frequency domain: rfft2 -> 1x1 conv-BN-ReLU -> irfft2."""

    features: int
    spectral_impl: SpectralImpl = "fft"
    dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        b, h, w, c = x.shape
        # The transform always runs in float32, whatever the compute dtype.
        re, im = rfft2(x.astype(jnp.float32), self.spectral_impl)  # [B, H, Wf, C] each
        wf = re.shape[2]
        y = jnp.stack([re, im], axis=-1).reshape(b, h, wf, 2 * c)  # [B, H, Wf, 2C] interleaved
        y = Conv1x1(2 * self.features, self.dtype, name="conv_layer")(y)
        y = nn.relu(batch_norm(train, "bn", self.dtype)(y))
        y = y.astype(jnp.float32).reshape(b, h, wf, self.features, 2)  # [B, H, Wf, C', 2]
        return irfft2(y[..., 0], y[..., 1], (h, w), self.spectral_impl)  # [B, H, W, C']


class ShiftSumConv(nn.Module):
    """A k x k 'VALID' convolution computed as one matrix product to k*k*C_out channels
    followed by a sum of k*k shifted slices of the result.

    Same parameters as `nn.Conv` ([k, k, C_in, C_out] kernel, optional bias). XLA:CPU's
    convolution kernels are slow when C_in > C_out (LaMa's 384->128 and 64->3 layers run at a
    third of matmul speed); as a matmul with N = k*k*C_out they run at full speed.
    """

    features: int
    kernel_size: int
    dilation: int = 1
    use_bias: bool = False
    dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, d = self.kernel_size, self.dilation
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (k, k, x.shape[-1], self.features))
        dtype = self.dtype or x.dtype
        taps = jnp.einsum("bhwc,ijcd->bhwijd", x.astype(dtype), kernel.astype(dtype))
        h, w = x.shape[1] - d * (k - 1), x.shape[2] - d * (k - 1)
        y = sum(taps[:, i * d:i * d + h, j * d:j * d + w, i, j]
                for i in range(k) for j in range(k))  # [B, h, w, C_out]
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(dtype)
        return y


class SpectralTransform(nn.Module):
    """The global-to-global path of an FFC: 1x1 conv-BN-ReLU, Fourier unit(s), 1x1 conv.

    With `enable_lfu`, the local Fourier unit also runs on the first quarter of the channels
    cut into 2x2 spatial tiles stacked on channels, and its output is tiled back 2x2, as the
    official code does (which requires square feature maps with an even side).
    """

    features: int
    stride: int = 1
    enable_lfu: bool = False
    spectral_impl: SpectralImpl = "fft"
    dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if self.stride == 2:
            x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        hidden = self.features // 2
        x = Conv1x1(hidden, self.dtype, name="conv1")(x)
        x = nn.relu(batch_norm(train, "bn1", self.dtype)(x))  # [B, H, W, C/2]
        out = x + FourierUnit(hidden, self.spectral_impl, self.dtype, name="fu")(x, train)
        if self.enable_lfu:
            _, h, w, c = x.shape
            if h != w or h % 2:
                raise ValueError(
                    f"the local Fourier unit needs square feature maps with an even side "
                    f"(as in the official model), got {h}x{w}; use square inputs")
            s = h // 2
            xs = x[..., : c // 4]  # [B, H, W, C/4]
            xs = jnp.concatenate([xs[:, :s], xs[:, s:]], axis=-1)  # [B, H/2, W, C/2]
            xs = jnp.concatenate([xs[:, :, :s], xs[:, :, s:]], axis=-1)  # [B, H/2, W/2, C]
            xs = FourierUnit(hidden, self.spectral_impl, self.dtype, name="lfu")(xs, train)
            out = out + jnp.tile(xs, (1, 2, 2, 1))  # [B, H, W, C]
        return Conv1x1(self.features, self.dtype, name="conv2")(out)


def split_channels(channels: int, ratio: float) -> Tuple[int, int]:
    """(local, global) channel counts of a feature map with `ratio` of global channels."""
    global_channels = int(channels * ratio)
    return channels - global_channels, global_channels


class FFC(nn.Module):
    """Fast Fourier Convolution: four paths between local and global channel groups.

    out_local = l2l(x_local) + g2l(x_global); out_global = l2g(x_local) + g2g(x_global),
    where g2g is the `SpectralTransform` and the other three are reflect-padded convs.
    """

    features: int
    kernel_size: int
    ratio_gin: float
    ratio_gout: float
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    enable_lfu: bool = False
    spectral_impl: SpectralImpl = "fft"
    conv_impl: ConvImpl = "xla"
    dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: LocalGlobal, train: bool = False) -> LocalGlobal:
        x_l, x_g = x
        out_cl, out_cg = split_channels(self.features, self.ratio_gout)

        def conv(features, inp, name):
            k, inp = self.kernel_size, reflect_pad(inp, self.padding)
            if self.conv_impl == "shift_sum" and self.stride == 1 and inp.shape[-1] > features:
                return ShiftSumConv(features, k, self.dilation, dtype=self.dtype, name=name)(inp)
            return nn.Conv(features, (k, k), strides=self.stride, padding="VALID",
                           kernel_dilation=self.dilation, use_bias=False, dtype=self.dtype,
                           name=name)(inp)

        def add(a, b):
            return b if a is None else (a if b is None else a + b)

        out_l = out_g = None
        if out_cl:
            out_l = add(conv(out_cl, x_l, "convl2l") if x_l is not None else None,
                        conv(out_cl, x_g, "convg2l") if x_g is not None else None)
        if out_cg:
            g2g = None
            if x_g is not None:
                g2g = SpectralTransform(out_cg, self.stride, self.enable_lfu, self.spectral_impl,
                                        self.dtype, name="convg2g")(x_g, train)
            out_g = add(conv(out_cg, x_l, "convl2g") if x_l is not None else None, g2g)
        return out_l, out_g


class FFCBNAct(nn.Module):
    """FFC followed by BatchNorm and ReLU applied separately to the local and global outputs."""

    features: int
    kernel_size: int
    ratio_gin: float = 0.0
    ratio_gout: float = 0.0
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    enable_lfu: bool = False
    spectral_impl: SpectralImpl = "fft"
    conv_impl: ConvImpl = "xla"
    dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: LocalGlobal, train: bool = False) -> LocalGlobal:
        x_l, x_g = FFC(self.features, self.kernel_size, self.ratio_gin, self.ratio_gout,
                       self.stride, self.padding, self.dilation, self.enable_lfu,
                       self.spectral_impl, self.conv_impl, self.dtype, name="ffc")(x, train)
        if x_l is not None:
            x_l = nn.relu(batch_norm(train, "bn_l", self.dtype)(x_l))
        if x_g is not None:
            x_g = nn.relu(batch_norm(train, "bn_g", self.dtype)(x_g))
        return x_l, x_g


class FFCResnetBlock(nn.Module):
    """Two 3x3 FFC-BN-ReLU layers with identity shortcuts on both channel groups.

    The shortcut is added after the second layer's activation, with no activation after the
    sum, exactly as the official block. `dilation` > 1 gives the dilated-convolution ablation.
    """

    features: int
    ratio: float = 0.75
    dilation: int = 1
    enable_lfu: bool = False
    spectral_impl: SpectralImpl = "fft"
    conv_impl: ConvImpl = "xla"
    dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: LocalGlobal, train: bool = False) -> LocalGlobal:
        def layer(name):
            return FFCBNAct(self.features, 3, self.ratio, self.ratio, padding=self.dilation,
                            dilation=self.dilation, enable_lfu=self.enable_lfu,
                            spectral_impl=self.spectral_impl, conv_impl=self.conv_impl,
                            dtype=self.dtype, name=name)

        y = layer("conv2")(layer("conv1")(x, train), train)
        return tuple(None if a is None else a + b for a, b in zip(x, y))
