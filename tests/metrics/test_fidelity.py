import numpy as np
import pytest

from lama_jax.metrics.fidelity import masked_l1, psnr, ssim


def test_ssim_matches_official_zero_padded_window(load_npz):
    io = load_npz("ssim_io.npz")
    np.testing.assert_allclose(ssim(io["image0"], io["image1"]), io["ssim_per_image"], atol=1e-5)
    assert float(ssim(io["image0"], io["image0"])[0]) == pytest.approx(1.0, abs=1e-6)


def test_psnr_by_hand():
    a = np.zeros((1, 4, 4, 3), np.float32)
    assert float(psnr(a, a + 0.1)[0]) == pytest.approx(20.0, abs=1e-4)


def test_masked_l1_averages_inside_the_hole_only():
    a = np.zeros((2, 2, 2, 3), np.float32)
    b = a.copy()
    b[0, 0, 0] = [0.3, 0.6, 0.9]  # a hole pixel: mean abs difference 0.6
    b[0, 1, 1] = 1.0  # a known pixel: ignored
    mask = np.zeros((2, 2, 2, 1), np.float32)
    mask[0, 0, :] = 1.0  # two hole pixels in image 0; image 1 has no hole
    np.testing.assert_allclose(masked_l1(a, b, mask), [0.3, 0.0], atol=1e-7)
