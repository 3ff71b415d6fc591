"""The Partial Convolutions baseline: NVIDIA's layer semantics, the paper's U-Net, mask
propagation, and the generator-kind plumbing (model directories, Inpainter)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lama_jax.data.masks import mixed_mask, preset
from lama_jax.errors import ConfigError
from lama_jax.inpaint import Inpainter
from lama_jax.model_dir import Model, generator_abstract_variables, load_model, save_model
from lama_jax.models.generator import PCONV, build_generator, generator_config_from_dict, generator_input
from lama_jax.models.pconv import PartialConv2d, PConvUNetConfig
from lama_jax.models.variables import param_count

LAYERS = {"mc_k7s2p3_nobias": (7, 2, 3), "mc_k3s1p1_bias": (3, 1, 1), "sc_k5s2p2_bias": (5, 2, 2)}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_partial_conv_matches_nvidia(load_npz, name):
    io = load_npz("pconv_io.npz")
    k, s, p = LAYERS[name]
    weight = io[f"{name}/weight_OIHW"]
    has_bias = f"{name}/bias" in io
    # The fixture's masks: 1 = valid; per-channel masks, or the first channel as the one mask.
    valid = io["mask_valid"] if name.startswith("mc") else io["mask_valid"][..., :1]
    params = {"conv": {"kernel": weight.transpose(2, 3, 1, 0)}}
    if has_bias:
        params["bias"] = io[f"{name}/bias"]
    out, updated = PartialConv2d(weight.shape[0], k, s, p, use_bias=has_bias).apply(
        {"params": params}, io["input"], valid)
    expected = io[f"{name}/output"]
    # Float32 rounding only: the order of the sums differs between CPUs (2.4e-7 of the
    # outputs' scale on an AVX2 machine); a wrong mask ratio or window is off by far more.
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6 * np.abs(expected).max())
    np.testing.assert_array_equal(updated, io[f"{name}/update_mask"])


def test_parameter_count_of_the_papers_unet():
    # By hand: encoder convs 9,408 + 204,800 + 819,200 + 1,179,648 + 4 x 2,359,296 and their
    # BatchNorms 256 + 512 + 1,024 + 4 x 1,024; decoder convs 4 x 4,718,592 (1024->512) +
    # 1,769,472 (768->256) + 442,368 (384->128) + 110,592 (192->64) + 1,809 (67->3) + 3 bias,
    # BatchNorms 4 x 1,024 + 512 + 256 + 128.
    assert param_count(generator_abstract_variables(PCONV)) == 32_859_732


def test_hole_shrinks_layer_by_layer_and_vanishes_at_the_bottleneck():
    params = preset("random_thick_256")
    hole = np.stack([mixed_mask(np.random.default_rng(i), 256, 256, params)
                     for i in range(4)])[..., None].astype(np.float32)
    assert hole.mean() > 0.1
    image = np.random.default_rng(0).random((4, 256, 256, 3), np.float32)
    model = build_generator(PCONV)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 256, 256, 4)))
    _, state = model.apply(variables, generator_input(image, hole),
                           capture_intermediates=lambda m, _: isinstance(m, PartialConv2d),
                           mutable=["intermediates"])
    layers = state["intermediates"]
    hole_fraction = [float(1 - layers[f"enc_{i}"]["__call__"][0][1].mean()) for i in range(1, 9)]
    first_empty = next(i for i, f in enumerate(hole_fraction) if f == 0)
    assert all(a > b for a, b in zip(hole_fraction[:first_empty], hole_fraction[1:first_empty + 1]))
    assert hole_fraction[-1] == 0 and first_empty < 7, hole_fraction
    # The decoder's masks are the union of what upsampling and the skips see: all valid.
    assert all(float(layers[f"dec_{i}"]["__call__"][0][1].min()) == 1 for i in range(1, 9))


def test_config_checks_and_round_trip():
    small = PConvUNetConfig(ngf=8, n_layers=4)
    assert small.size_multiple == 16
    assert generator_config_from_dict(small.to_dict()) == small
    with pytest.raises(ConfigError, match="n_layers >= 4"):
        PConvUNetConfig(n_layers=3)
    with pytest.raises(ConfigError, match="out_activation"):
        PConvUNetConfig(out_activation="tanh")


def test_model_directory_and_inpainter_take_the_kind(tmp_path):
    config = PConvUNetConfig(ngf=8, n_layers=4)
    variables = build_generator(config).init(jax.random.key(1), jnp.zeros((1, 16, 16, 4)))
    save_model(str(tmp_path / "m"), Model(config, variables))
    inpainter = Inpainter.load(str(tmp_path / "m"))
    image = np.random.default_rng(0).random((37, 50, 3), np.float32)
    mask = np.zeros((37, 50), np.float32)
    mask[10:20, 5:30] = 1
    out = inpainter(image, mask)  # padded to 48 x 64 (multiples of 16) and cropped back
    assert out.shape == image.shape and np.isfinite(out).all()
    np.testing.assert_array_equal(out[mask == 0], image[mask == 0])
    assert load_model(str(tmp_path / "m")).generator_config == config
