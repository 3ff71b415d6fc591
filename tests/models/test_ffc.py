import numpy as np
import pytest

from lama_jax.models.ffc import spectral_transform, split_channels


def rfft2(x, impl):
    return spectral_transform(impl).forward(x)


def irfft2(re, im, size, impl):
    return spectral_transform(impl).inverse(re, im, size)


@pytest.mark.parametrize("h,w", [(8, 12), (7, 9), (16, 16), (6, 5)])
def test_dft_matches_fft(h, w):
    x = np.random.default_rng(0).standard_normal((2, h, w, 3)).astype(np.float32)
    re_f, im_f = rfft2(x, "fft")
    re_d, im_d = rfft2(x, "dft")
    np.testing.assert_allclose(re_d, re_f, atol=2e-5)
    np.testing.assert_allclose(im_d, im_f, atol=2e-5)
    # The inverse of both agrees, and ortho rfft2 -> irfft2 is the identity.
    for impl in ("fft", "dft"):
        np.testing.assert_allclose(irfft2(re_f, im_f, (h, w), impl), x, atol=2e-5)


def test_dft_matches_numpy_reference():
    x = np.random.default_rng(1).standard_normal((1, 10, 14, 2))
    expected = np.fft.rfft2(x, axes=(1, 2), norm="ortho")
    re, im = rfft2(x.astype(np.float32), "dft")
    np.testing.assert_allclose(re, expected.real, atol=2e-5)
    np.testing.assert_allclose(im, expected.imag, atol=2e-5)


def test_inverse_ignores_imaginary_dc_like_c2r():
    spec = np.random.default_rng(2).standard_normal((1, 6, 5, 1, 2)).astype(np.float32)
    re, im = spec[..., 0], spec[..., 1]
    np.testing.assert_allclose(irfft2(re, im, (6, 8), "dft"), irfft2(re, im, (6, 8), "fft"),
                               atol=2e-5)


def test_unknown_impl_is_an_error():
    with pytest.raises(ValueError, match="spectral_impl"):
        rfft2(np.zeros((1, 4, 4, 1), np.float32), "cufft")


def test_split_channels_as_official():
    assert split_channels(512, 0.75) == (128, 384)
    assert split_channels(128, 0.75) == (32, 96)
    assert split_channels(64, 0.0) == (64, 0)
