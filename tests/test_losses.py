import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lama_jax.weights import convert_resnet50_encoder, convert_vgg
from lama_jax.losses import adversarial, reconstruction
from lama_jax.losses.perceptual import (IMAGENET_MEAN, IMAGENET_STD, hrf_perceptual,
                                        vgg19_perceptual_terms)
from lama_jax.models.backbones import VGG19_PERCEPTUAL_STAGES, ResNet50Encoder, VGGFeatures
from lama_jax.models.variables import param_count
from tests.helpers import state_dict_from_recipe


def test_masked_l1_counts_known_pixels_only():
    pred = np.zeros((1, 1, 2, 1), np.float32)
    target = np.array([[[[1.0], [3.0]]]], np.float32)
    mask = np.array([[[[0.0], [1.0]]]], np.float32)  # second pixel is the hole
    # mean([10 * |0 - 1|, 0 * |0 - 3|]) = 5
    assert float(reconstruction.masked_l1(pred, target, mask, 10.0, 0.0)) == pytest.approx(5.0)
    assert float(reconstruction.masked_l1(pred, target, mask, 0.0, 2.0)) == pytest.approx(3.0)


def test_feature_matching_is_mean_of_layer_mses():
    fake = [np.zeros((1, 2, 2, 1), np.float32), np.zeros((1, 1, 1, 3), np.float32)]
    real = [np.full((1, 2, 2, 1), 2.0, np.float32), np.array([[[[1.0, 1.0, 4.0]]]], np.float32)]
    # layer MSEs 4 and (1 + 1 + 16) / 3 = 6 -> mean 5
    assert float(reconstruction.feature_matching(fake, real)) == pytest.approx(5.0)


def test_nearest_resize_matches_pytorch_indexing():
    x = np.arange(5, dtype=np.float32).reshape(1, 5, 1, 1)
    # torch: F.interpolate(size=3, mode="nearest") picks floor(i * 5 / 3) = 0, 1, 3
    np.testing.assert_array_equal(adversarial.nearest_resize(x, (3, 1))[0, :, 0, 0], [0, 1, 3])
    up = adversarial.nearest_resize(np.arange(2, dtype=np.float32).reshape(1, 2, 1, 1), (5, 1))
    np.testing.assert_array_equal(up[0, :, 0, 0], [0, 0, 0, 1, 1])


def test_adversarial_losses_by_hand():
    sp = lambda v: np.log1p(np.exp(v))  # noqa: E731  softplus
    fake = np.array([[[[0.5], [-1.0]]]], np.float32)  # [1, 1, 2, 1] logits
    real = np.array([[[[2.0], [0.0]]]], np.float32)
    assert float(adversarial.generator_loss(fake)) == pytest.approx((sp(-0.5) + sp(1.0)) / 2, 1e-6)
    mask = np.array([[[[1.0], [0.0]]]], np.float32)  # first logit covers the hole
    expected = np.mean([sp(-2.0) + 0.1 * 3.0 + sp(0.5), sp(0.0) + 0.1 * 3.0 + sp(1.0)])
    got = adversarial.discriminator_loss(real, fake, mask, jnp.float32(3.0), 0.1)
    assert float(got) == pytest.approx(expected, 1e-6)


def test_r1_penalty_of_a_linear_critic():
    w = np.array([1.0, -2.0, 0.5], np.float32)
    x = np.ones((4, 1, 1, 3), np.float32)
    grad = jax.grad(lambda x: jnp.sum(x * w))(x)  # d sum(D(x)) / dx = w for every image
    assert float(adversarial.r1_penalty(grad)) == pytest.approx(float(np.sum(w ** 2)))


def test_hrf_backbone_and_loss_match_official(reference, load_npz):
    sd = state_dict_from_recipe(reference / "resnet50dilated_weights_recipe.tsv", seed=2024)
    variables = convert_resnet50_encoder(sd)
    assert param_count(variables) == 23_631_808
    io = load_npz("resnet50dilated_io.npz")
    feats = ResNet50Encoder().apply(variables, (io["pred"] - IMAGENET_MEAN) / IMAGENET_STD)
    for i, f in enumerate(feats):
        ref = io[f"pred_feature_{i}"]
        assert f.shape == ref.shape
        assert float(np.abs(f - ref).max()) <= 1e-4 * float(np.abs(ref).max()) + 1e-5
    loss = hrf_perceptual(ResNet50Encoder(), variables, io["pred"], io["target"])
    assert float(loss) == pytest.approx(float(io["loss_sum_of_layer_mse"]), rel=1e-5)
    # A LaMa training checkpoint stores the same weights under loss_resnet_pl.impl.
    prefixed = convert_resnet50_encoder({f"loss_resnet_pl.impl.{k}": v for k, v in sd.items()})
    np.testing.assert_array_equal(prefixed["params"]["conv1"]["kernel"], variables["params"]["conv1"]["kernel"])



def test_plain_resnet50_backbone_and_loss_match_official(reference, load_npz):
    # Table 3's "ResNet50, not dilated": the same keys, layers 3 and 4 keep their stride.
    sd = state_dict_from_recipe(reference / "resnet50_weights_recipe.tsv", seed=2026)
    variables = convert_resnet50_encoder({**sd, "fc.weight": np.zeros((1000, 2048), np.float32),
                                          "fc.bias": np.zeros(1000, np.float32)}, dilated=False)
    io = load_npz("resnet50_io.npz")
    encoder = ResNet50Encoder(dilated=False)
    feats = encoder.apply(variables, (io["pred"] - IMAGENET_MEAN) / IMAGENET_STD)
    for i, f in enumerate(feats):
        ref = io[f"pred_feature_{i}"]
        assert f.shape == ref.shape
        assert float(np.abs(f - ref).max()) <= 1e-5 * float(np.abs(ref).max())
    loss = hrf_perceptual(encoder, variables, io["pred"], io["target"])
    assert float(loss) == pytest.approx(float(io["loss_sum_of_layer_mse"]), rel=1e-5)


def test_vgg19_perceptual_terms_match_official_with_and_without_mask(reference, load_npz):
    sd = state_dict_from_recipe(reference / "vgg19_features_weights_recipe.tsv", seed=2025)
    vgg = VGGFeatures(VGG19_PERCEPTUAL_STAGES, pool="avg", every_relu=True)
    variables = convert_vgg(sd, vgg)  # the three convs after index 29 are dropped
    io = load_npz("vgg19_perceptual_io.npz")
    masked = vgg19_perceptual_terms(vgg, variables, io["pred"], io["target"], io["mask"][..., None])
    np.testing.assert_allclose(masked, io["partial_losses"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(masked.sum(axis=1), io["loss"], rtol=1e-5)
    plain = vgg19_perceptual_terms(vgg, variables, io["pred"], io["target"])
    np.testing.assert_allclose(plain, io["partial_losses_nomask"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(plain.sum(axis=1), io["loss_nomask"], rtol=1e-5)
