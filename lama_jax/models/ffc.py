"""Fast Fourier Convolution (Chi et al. 2020) as LaMa uses it, in Flax Linen (NHWC).

Semantics follow the official `saicinpainting/training/modules/ffc.py` so that converted
PyTorch weights compute the same function:

* every FFC convolution is bias-free and reflect-padded;
* the Fourier unit interleaves real and imaginary parts per channel
  (`[c0.re, c0.im, c1.re, c1.im, ...]`) before its 1x1 conv, BatchNorm and ReLU;
* BatchNorm uses PyTorch's epsilon 1e-5 and momentum 0.1 (Flax momentum 0.9).

Three implementations of the orthonormal 2-D real FFT (`Spectral`) are chosen by name once, at
the top of a network (`spectral_transform`): `"fft"` (`jnp.fft.rfft2` / `irfft2`), `"dft"`
(dense DFT matrix products, which map onto the matrix units of a TPU where XLA's FFT is slow
and the feature maps are small) and `"cpu"` (XLA's FFT forward, the DFT products back on maps
of up to 64x64, where XLA:CPU's inverse FFT is the slower one). The blocks receive it, with
the convolution and the normalisation, as `FFCParts`.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, NamedTuple, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lama_jax.models.layers import ModuleDef, lecun_normal_kernel, reflect_pad

SpectralImpl = Literal["fft", "dft", "cpu"]
# A feature map split into its local and global channel groups. Either may be None when the
# layer has no channels of that kind (the official code uses the integer 0 for "absent").
LocalGlobal = Tuple[Optional[jax.Array], Optional[jax.Array]]


# ------------------------------------------------------------------------------------------
# The orthonormal 2-D real FFT over H and W, three implementations.

def _dft_matrices(h: int, w: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The orthonormal DFT matrices of the DFT products, real and imaginary parts stacked:

    * forward along W (real -> half spectrum), e^{-2 pi i k w / W} / sqrt(W): [2Wf, W], the
      real rows first;
    * the full DFT along H, e^{-2 pi i u h / H} / sqrt(H) (symmetric): [2H, H], likewise;
    * the C2R inverse along W, Hermitian weights 1 for DC and Nyquist and 2 elsewhere, and
      e^{+2 pi i k w / W} / sqrt(W): [2, Wf, W]. The sine terms vanish for DC and Nyquist,
      so their imaginary parts are ignored exactly as a C2R transform ignores them.

    Built with numpy in float64 at trace time (shapes are static) and rounded to float32, so
    they are constants of the compiled program.
    """
    wf = w // 2 + 1
    ang_w = 2.0 * np.pi * np.outer(np.arange(wf), np.arange(w)) / w  # [Wf, W]
    ang_h = 2.0 * np.pi * np.outer(np.arange(h), np.arange(h)) / h  # [H, H]
    forward_w = np.concatenate([np.cos(ang_w), -np.sin(ang_w)]) / np.sqrt(w)
    full_h = np.concatenate([np.cos(ang_h), -np.sin(ang_h)]) / np.sqrt(h)
    weight = np.full((wf, 1), 2.0)
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    inverse_w = weight * np.stack([np.cos(ang_w), -np.sin(ang_w)]) / np.sqrt(w)
    return tuple(np.asarray(m, np.float32) for m in (forward_w, full_h, inverse_w))


_HIGHEST = jax.lax.Precision.HIGHEST


def _fft_forward(x: jax.Array) -> jax.Array:
    f = jnp.fft.rfft2(x, axes=(1, 2), norm="ortho")  # [B, H, Wf, C] complex
    b, h, wf, c = f.shape
    return jnp.stack([jnp.real(f), jnp.imag(f)], axis=-1).reshape(b, h, wf, 2 * c)


def _fft_inverse(z: jax.Array, size: Tuple[int, int]) -> jax.Array:
    b, h, wf, c2 = z.shape
    z = z.reshape(b, h, wf, c2 // 2, 2)
    return jnp.fft.irfft2(jax.lax.complex(z[..., 0], z[..., 1]), s=size, axes=(1, 2),
                          norm="ortho")


def _dft_forward(x: jax.Array) -> jax.Array:
    """The forward as two matrix products: along W one real product with [Re; Im] of the
    half-spectrum matrix, then along H the full complex DFT as one real product of [Re; Im]
    of its matrix with both parts of the first, and one transposition of the result."""
    b, h, w, c = x.shape
    forward_w, full_h, _ = _dft_matrices(h, w)
    wf = forward_w.shape[0] // 2
    a = jax.lax.dot_general(jnp.asarray(forward_w), x, (((1,), (2,)), ((), ())),
                            precision=_HIGHEST)  # [2Wf, B, H, C]
    r = jax.lax.dot_general(jnp.asarray(full_h), a, (((1,), (2,)), ((), ())),
                            precision=_HIGHEST)  # [2H, 2Wf, B, C]
    r = r.reshape(2, h, 2, wf, b, c)  # [Re/Im of the matrix, H, re/im, Wf, B, C]
    re = r[0, :, 0] - r[1, :, 1]  # [H, Wf, B, C]
    im = r[0, :, 1] + r[1, :, 0]
    return jnp.stack([re, im], axis=-1).transpose(2, 0, 1, 3, 4).reshape(b, h, wf, 2 * c)


def _dft_inverse(z: jax.Array, size: Tuple[int, int]) -> jax.Array:
    """The inverse as two matrix products, with no transposition of the spectrum: along H the
    full complex DFT as one real product of [Re; Im] of the (symmetric) forward matrix [2H, H]
    with the interleaved spectrum, then C2R along W as one product over (re/im, frequency)."""
    h, w = size
    b, _, wf, c = z.shape[0], z.shape[1], z.shape[2], z.shape[3] // 2
    _, full_h, inverse_w = _dft_matrices(h, w)
    s = jax.lax.dot_general(jnp.asarray(full_h), z.reshape(b, h, wf, c, 2),
                            (((1,), (1,)), ((), ())), precision=_HIGHEST)  # [2H, B, Wf, C, 2]
    s = s.reshape(2, h, b, wf, c, 2)  # [Re/Im of the matrix, H, B, Wf, C, re/im]
    # Inverse along H (the conjugate matrix): b = (Re + i Im)^* (re + i im).
    b_re = s[0, ..., 0] + s[1, ..., 1]  # [H, B, Wf, C]
    b_im = s[0, ..., 1] - s[1, ..., 0]
    # C2R along W: Re(sum_k weight_k X_k e^{+2 pi i k w / W}) / sqrt(W).
    y = jax.lax.dot_general(jnp.stack([b_re, b_im]), jnp.asarray(inverse_w),
                            (((0, 3), (0, 1)), ((), ())), precision=_HIGHEST)  # [H, B, C, W]
    return y.transpose(1, 0, 3, 2)  # [B, H, W, C]


# The largest map (H * W) on which the "cpu" implementation inverts by DFT products: they take
# 0.64 against 1.08 ms (32x32, 192 channels) and 3.6 against 4.8 ms (64x64) on two Zen 3 cores;
# at 128x128 XLA's FFT is faster (25 against 31 ms). The forward FFT is as fast or faster at
# every size. See experiments/RESULTS.md.
CPU_DFT_INVERSE_MAX_PIXELS = 64 * 64


def _cpu_inverse(z: jax.Array, size: Tuple[int, int]) -> jax.Array:
    small = size[0] * size[1] <= CPU_DFT_INVERSE_MAX_PIXELS
    return (_dft_inverse if small else _fft_inverse)(z, size)


class Spectral(NamedTuple):
    """One implementation of the orthonormal real 2-D FFT over H and W, on spectra with real
    and imaginary parts interleaved per channel (`[c0.re, c0.im, c1.re, ...]`, the Fourier
    unit's layout, as in the official model).

    forward: [B, H, W, C] -> [B, H, W//2+1, 2C];
    inverse: ([B, H, W//2+1, 2C], (H, W)) -> [B, H, W, C].
    """

    forward: Callable[[jax.Array], jax.Array]
    inverse: Callable[[jax.Array, Tuple[int, int]], jax.Array]


SPECTRAL = {"fft": Spectral(_fft_forward, _fft_inverse),
            "dft": Spectral(_dft_forward, _dft_inverse),
            "cpu": Spectral(_fft_forward, _cpu_inverse)}


def spectral_transform(impl: SpectralImpl) -> Spectral:
    """The implementation named `impl` ("fft", "dft" or "cpu")."""
    if impl not in SPECTRAL:
        raise ValueError(f"unknown spectral_impl {impl!r}; expected one of {sorted(SPECTRAL)}")
    return SPECTRAL[impl]


# ------------------------------------------------------------------------------------------
# Modules. Their parts (convolution, normalisation, FFT) come from the network at the top.

class FFCParts(NamedTuple):
    """What an FFC network is built from, chosen once at its top and handed down:
    `conv(features, kernel_size, strides=, kernel_dilation=, use_bias=, name=)` (see
    `layers.conv_factory`), `norm(name=)` (see `layers.norm_factory`), the `spectral`
    transform and the compute `dtype` of the pointwise products."""

    conv: ModuleDef
    norm: ModuleDef
    spectral: Spectral
    dtype: Optional[Any] = None


class Conv1x1(nn.Module):
    """Bias-free 1x1 convolution as a plain matrix product over channels.

    Parameters are laid out as `nn.Conv`'s ([1, 1, in, out]); a dot is cheaper than a
    convolution call on CPU and the same on accelerators.
    """

    features: int
    dtype: Optional[Any] = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", lecun_normal_kernel,
                            (1, 1, x.shape[-1], self.features))
        dtype = self.dtype or x.dtype
        return jnp.einsum("...c,cd->...d", x.astype(dtype), kernel[0, 0].astype(dtype))


class FourierUnit(nn.Module):
    """Global mixing in the frequency domain: rfft2 -> 1x1 conv-BN-ReLU -> irfft2."""

    features: int
    parts: FFCParts

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _, h, w, _ = x.shape
        # The transform always runs in float32, whatever the compute dtype.
        y = self.parts.spectral.forward(x.astype(jnp.float32))  # [B, H, Wf, 2C] interleaved
        y = Conv1x1(2 * self.features, self.parts.dtype, name="conv_layer")(y)
        y = nn.relu(self.parts.norm(name="bn")(y))  # [B, H, Wf, 2C']
        return self.parts.spectral.inverse(y.astype(jnp.float32), (h, w))  # [B, H, W, C']


class SpectralTransform(nn.Module):
    """The global-to-global path of an FFC: 1x1 conv-BN-ReLU, Fourier unit(s), 1x1 conv.

    With `enable_lfu`, the local Fourier unit also runs on the first quarter of the channels
    cut into 2x2 spatial tiles stacked on channels, and its output is tiled back 2x2, as the
    official code does (which requires square feature maps with an even side).
    """

    features: int
    parts: FFCParts
    stride: int = 1
    enable_lfu: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.stride == 2:
            x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        hidden = self.features // 2
        x = Conv1x1(hidden, self.parts.dtype, name="conv1")(x)
        x = nn.relu(self.parts.norm(name="bn1")(x))  # [B, H, W, C/2]
        out = x + FourierUnit(hidden, self.parts, name="fu")(x)
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
            xs = FourierUnit(hidden, self.parts, name="lfu")(xs)
            out = out + jnp.tile(xs, (1, 2, 2, 1))  # [B, H, W, C]
        return Conv1x1(self.features, self.parts.dtype, name="conv2")(out)


def split_channels(channels: int, ratio: float) -> Tuple[int, int]:
    """(local, global) channel counts of a feature map with `ratio` of global channels."""
    global_channels = int(channels * ratio)
    return channels - global_channels, global_channels


class FFC(nn.Module):
    """Fast Fourier Convolution: four paths between local and global channel groups.

    out_local = l2l(x_local) + g2l(x_global); out_global = l2g(x_local) + g2g(x_global),
    where g2g is the `SpectralTransform` and the other three are reflect-padded, bias-free
    convolutions. `ratio_gout` is the fraction of global output channels; which inputs exist
    is read from the input pair.
    """

    features: int
    kernel_size: int
    ratio_gout: float
    parts: FFCParts
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    enable_lfu: bool = False

    @nn.compact
    def __call__(self, x: LocalGlobal) -> LocalGlobal:
        x_l, x_g = x
        out_cl, out_cg = split_channels(self.features, self.ratio_gout)

        def conv(features, inp, name):
            if inp is None:
                return None
            return self.parts.conv(features, self.kernel_size, strides=self.stride,
                                   kernel_dilation=self.dilation, use_bias=False,
                                   name=name)(reflect_pad(inp, self.padding))

        def add(a, b):
            return b if a is None else (a if b is None else a + b)

        out_l = out_g = None
        if out_cl:
            out_l = add(conv(out_cl, x_l, "convl2l"), conv(out_cl, x_g, "convg2l"))
        if out_cg:
            g2g = None
            if x_g is not None:
                g2g = SpectralTransform(out_cg, self.parts, self.stride, self.enable_lfu,
                                        name="convg2g")(x_g)
            out_g = add(conv(out_cg, x_l, "convl2g"), g2g)
        return out_l, out_g


class FFCBNAct(nn.Module):
    """An `FFC` followed by BatchNorm (the FFC's `parts.norm`) and ReLU applied separately to
    its local and global outputs (`bn_l`, `bn_g`)."""

    ffc: FFC

    @nn.compact
    def __call__(self, x: LocalGlobal) -> LocalGlobal:
        x_l, x_g = self.ffc(x)
        norm = self.ffc.parts.norm
        if x_l is not None:
            x_l = nn.relu(norm(name="bn_l")(x_l))
        if x_g is not None:
            x_g = nn.relu(norm(name="bn_g")(x_g))
        return x_l, x_g


def ffc_bn_act(features: int, kernel_size: int, ratio_gout: float, parts: FFCParts,
               name: str, **ffc_fields) -> FFCBNAct:
    """`FFCBNAct(FFC(...))` named `name`, its FFC named `ffc` (the official layout). The FFC
    is made unbound (`parent=None`) so that the FFCBNAct adopts it under its field name."""
    return FFCBNAct(FFC(features, kernel_size, ratio_gout, parts, **ffc_fields, parent=None),
                    name=name)


class FFCResnetBlock(nn.Module):
    """Two 3x3 FFC-BN-ReLU layers with identity shortcuts on both channel groups.

    The shortcut is added after the second layer's activation, with no activation after the
    sum, exactly as the official block. `dilation` > 1 gives the dilated-convolution ablation.
    """

    features: int
    ratio: float
    parts: FFCParts
    dilation: int = 1
    enable_lfu: bool = False

    @nn.compact
    def __call__(self, x: LocalGlobal) -> LocalGlobal:
        y = x
        for name in ("conv1", "conv2"):
            y = ffc_bn_act(self.features, 3, self.ratio, self.parts, name,
                           padding=self.dilation, dilation=self.dilation,
                           enable_lfu=self.enable_lfu)(y)
        return tuple(None if a is None else a + b for a, b in zip(x, y))
