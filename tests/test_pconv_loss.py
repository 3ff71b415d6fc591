"""The Partial Convolutions loss terms against values worked out by hand on small tensors."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from lama_jax.losses import pconv
from lama_jax.models.backbones import VGGFeatures

WEIGHTS = ml_collections.ConfigDict(dict(valid=1.0, hole=6.0, perceptual=0.05, style=120.0, tv=0.1))


def test_gram_is_normalised_by_c_h_w():
    f = np.array([[[[1.0, 2.0], [3.0, 0.0]]]], np.float32)  # [1, 1, 2, 2]: two pixels, C = 2
    # sum over pixels of f f^T = [[1 + 9, 2 + 0], [2 + 0, 4 + 0]], divided by C*H*W = 4
    np.testing.assert_allclose(pconv.gram(f)[0], [[2.5, 0.5], [0.5, 1.0]])


def test_total_variation_counts_the_one_pixel_dilation_of_the_hole():
    image = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)  # right step 1, down step 4
    hole = np.zeros((1, 4, 4, 1), np.float32)
    hole[0, 0, 0] = 1
    region = pconv.dilated_hole(hole)
    np.testing.assert_array_equal(region[0, :, :, 0], [[1, 1, 0, 0], [1, 1, 0, 0],
                                                       [0, 0, 0, 0], [0, 0, 0, 0]])
    # The 4 region pixels each have a right (1) and a down (4) neighbour: 4 * 5 / (1*4*4)
    assert float(pconv.total_variation(image, region)) == pytest.approx(20 / 16)


def test_pixel_terms_by_hand_and_feature_terms_from_the_pools():
    image = np.zeros((1, 32, 32, 3), np.float32)
    pred = np.full((1, 32, 32, 3), 0.5, np.float32)
    mask = np.zeros((1, 32, 32, 1), np.float32)
    mask[:, 8:16, 8:24] = 1  # 128 of 1024 pixels
    vgg = VGGFeatures(pconv.POOL_STAGES)
    variables = vgg.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    terms = pconv.pconv_loss_terms(WEIGHTS, vgg, variables, pred, image, mask)
    # valid: mean of 0.5 over the 896 known pixels' 3 channels out of 1024 * 3 elements
    assert float(terms["valid"]) == pytest.approx(1.0 * 0.5 * 896 / 1024)
    assert float(terms["hole"]) == pytest.approx(6.0 * 0.5 * 128 / 1024)
    # The composite is 0.5 in the hole, 0 elsewhere: its steps of 0.5 lie on the hole's border,
    # inside the dilated region: 2 x 8 rows (left and right edges) + 2 x 16 columns, 3 channels.
    assert float(terms["tv"]) == pytest.approx(0.1 * 0.5 * 48 * 3 / (3 * 32 * 32))
    comp = mask * pred + (1 - mask) * image
    pools = [np.asarray(p) for p in pconv.vgg16_pools(vgg, variables, np.concatenate([pred, comp, image]))]
    assert [p.shape[1:] for p in pools] == [(16, 16, 64), (8, 8, 128), (4, 4, 256)]

    def gram(f):
        b, h, w, c = f.shape
        f = f.reshape(b, h * w, c)
        return np.einsum("bnc,bnd->bcd", f, f) / (c * h * w)

    l1 = lambda a, b: np.abs(a - b).mean()  # noqa: E731
    perceptual = sum(l1(p[0], p[2]) + l1(p[1], p[2]) for p in pools)
    style_out = sum(l1(gram(p[:1]), gram(p[2:])) for p in pools)
    style_comp = sum(l1(gram(p[1:2]), gram(p[2:])) for p in pools)
    assert perceptual > 0 and style_out > style_comp > 0
    np.testing.assert_allclose(float(terms["perceptual"]), 0.05 * perceptual, rtol=1e-5)
    np.testing.assert_allclose(float(terms["style_out"]), 120 * style_out, rtol=1e-5)
    np.testing.assert_allclose(float(terms["style_comp"]), 120 * style_comp, rtol=1e-5)
    # Without VGG16 weights in the loss, only the pixel terms remain.
    assert set(pconv.pconv_loss_terms(WEIGHTS, None, None, pred, image, mask)) == {"valid", "hole", "tv"}
