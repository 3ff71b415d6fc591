import jax
import numpy as np
import pytest

from lama_jax.models import ffc
from lama_jax.models.ffc import spectral_transform, split_channels

IMPLS = ("fft", "dft", "cpu")


def rfft2(x, impl):
    """(re, im) of the interleaved spectrum."""
    z = np.asarray(spectral_transform(impl).forward(x))
    return z[..., 0::2], z[..., 1::2]


def irfft2(re, im, size, impl):
    z = np.stack([re, im], axis=-1).reshape(*re.shape[:-1], -1)
    return spectral_transform(impl).inverse(z, size)


@pytest.mark.parametrize("h,w", [(8, 12), (7, 9), (16, 16), (6, 5)])
def test_dft_matches_fft(h, w):
    x = np.random.default_rng(0).standard_normal((2, h, w, 3)).astype(np.float32)
    re_f, im_f = rfft2(x, "fft")
    for impl in ("dft", "cpu"):
        re_d, im_d = rfft2(x, impl)
        np.testing.assert_allclose(re_d, re_f, atol=2e-5)
        np.testing.assert_allclose(im_d, im_f, atol=2e-5)
    # The inverses agree, and ortho rfft2 -> irfft2 is the identity.
    for impl in IMPLS:
        np.testing.assert_allclose(irfft2(re_f, im_f, (h, w), impl), x, atol=2e-5)


def test_dft_matches_numpy_reference():
    x = np.random.default_rng(1).standard_normal((1, 10, 14, 2))
    expected = np.fft.rfft2(x, axes=(1, 2), norm="ortho")
    re, im = rfft2(x.astype(np.float32), "dft")
    np.testing.assert_allclose(re, expected.real, atol=2e-5)
    np.testing.assert_allclose(im, expected.imag, atol=2e-5)
    spectrum = np.random.default_rng(3).standard_normal((2, 10, 8, 3, 2))
    expected = np.fft.irfft2(spectrum[..., 0] + 1j * spectrum[..., 1], s=(10, 14),
                             axes=(1, 2), norm="ortho")
    for impl in IMPLS:
        y = irfft2(*np.float32([spectrum[..., 0], spectrum[..., 1]]), (10, 14), impl)
        np.testing.assert_allclose(y, expected, atol=2e-5)


@pytest.mark.parametrize("impl", ["dft", "cpu"])
def test_inverse_ignores_imaginary_dc_like_c2r(impl):
    spec = np.random.default_rng(2).standard_normal((1, 6, 5, 1, 2)).astype(np.float32)
    re, im = spec[..., 0], spec[..., 1]
    np.testing.assert_allclose(irfft2(re, im, (6, 8), impl), irfft2(re, im, (6, 8), "fft"),
                               atol=2e-5)


def test_cpu_inverts_by_dft_up_to_its_limit_then_by_fft(monkeypatch):
    x = np.random.default_rng(4).standard_normal((1, 12, 10, 2)).astype(np.float32)
    re, im = rfft2(x, "fft")
    z = np.stack([re, im], axis=-1).reshape(1, 12, 6, 4)
    inverse = spectral_transform("cpu").inverse

    def uses_fft():
        return "fft" in str(jax.make_jaxpr(lambda z: inverse(z, (12, 10)))(z))

    assert not uses_fft()
    monkeypatch.setattr(ffc, "CPU_DFT_INVERSE_MAX_PIXELS", 12 * 10 - 1)
    assert uses_fft()
    np.testing.assert_allclose(inverse(z, (12, 10)), x, atol=2e-5)


def test_unknown_impl_is_an_error():
    with pytest.raises(ValueError, match="spectral_impl"):
        rfft2(np.zeros((1, 4, 4, 1), np.float32), "cufft")


def test_split_channels_as_official():
    assert split_channels(512, 0.75) == (128, 384)
    assert split_channels(128, 0.75) == (32, 96)
    assert split_channels(64, 0.0) == (64, 0)
