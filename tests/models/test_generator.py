import re

import jax
import numpy as np
import pytest

from lama_jax.convert import convert_generator
from lama_jax.model_dir import generator_abstract_variables
from lama_jax.models.ffc_resnet import FFCResNetConfig
from lama_jax.models.generator import (BIG_LAMA, LAMA_FOURIER, build_generator,
                                       generator_config_from_dict, generator_input)
from lama_jax.models.variables import abstract_variables, param_count

TOL = 1e-4  # the bound; we reach ~1e-7


def test_parameter_counts_match_official():
    assert param_count(generator_abstract_variables(BIG_LAMA)) == 50_975_875
    assert param_count(generator_abstract_variables(LAMA_FOURIER)) == 27_048_835


def test_ffc_variants_without_global_channels_build():
    local_only = FFCResNetConfig(n_blocks=9, global_ratio=0.0)
    dilated = FFCResNetConfig(n_blocks=9, global_ratio=0.0, block_dilation=2)
    for cfg in (local_only, dilated):
        v = generator_abstract_variables(cfg)
        assert "convg2g" not in str(jax.tree_util.tree_structure(v))
        # Two bias-free 3x3 512->512 convs per block dominate: about 46M.
        assert 45e6 < param_count(v) < 47e6
    out = jax.eval_shape(lambda v, x: build_generator(dilated).apply(v, x),
                         generator_abstract_variables(dilated),
                         jax.ShapeDtypeStruct((2, 64, 96, 4), np.float32))
    assert out.shape == (2, 64, 96, 3)


def _stage_outputs(cfg, variables, x, impl):
    """Every top-level layer's output, keyed like the fixture's stage_NN."""
    _, state = build_generator(cfg, spectral_impl=impl).apply(
        variables, x, capture_intermediates=True, mutable=["intermediates"])
    inter = state["intermediates"]
    get = lambda name: inter[name]["__call__"][0]  # noqa: E731
    stages = {"stage_01_l": get("stem")[0]}
    names = [f"down_{i}" for i in range(cfg.n_downsampling)] + \
        [f"block_{j}" for j in range(cfg.n_blocks)]
    for idx, name in enumerate(names, start=2):
        local, glob = get(name)
        stages[f"stage_{idx:02d}_l"] = local
        if glob is not None:
            stages[f"stage_{idx:02d}_g"] = glob
    idx = 2 + len(names)
    stages[f"stage_{idx:02d}"] = np.concatenate(get(names[-1]), axis=-1)
    for i in range(cfg.n_downsampling):
        bn = get(f"up_bn_{i}")
        stages[f"stage_{idx + 1 + 3 * i:02d}"] = get(f"up_{i}")
        stages[f"stage_{idx + 2 + 3 * i:02d}"] = bn
        stages[f"stage_{idx + 3 + 3 * i:02d}"] = np.maximum(bn, 0)
    last = idx + 3 * cfg.n_downsampling
    stages[f"stage_{last + 2:02d}"] = get("out_conv")
    return stages


@pytest.mark.parametrize("impl", ["fft", "dft"])
def test_stage_by_stage_on_60x90(load_npz, impl):
    cfg, variables = convert_generator(load_npz("tiny_generator_state.npz"))
    io = load_npz("tiny_io_60x90_stages.npz")
    stages = _stage_outputs(cfg, variables, io["stage_00"][3:-3, 3:-3][None], impl)
    assert len(stages) >= 20
    for name, ours in stages.items():
        np.testing.assert_allclose(np.asarray(ours)[0], io[name], atol=TOL, rtol=0, err_msg=name)
    out = build_generator(cfg, spectral_impl=impl).apply(variables, io["stage_00"][3:-3, 3:-3][None])
    np.testing.assert_allclose(out[0], io["predicted_padded"], atol=TOL, rtol=0)


@pytest.mark.parametrize("fixture,io_name", [("tiny_generator_state.npz", "tiny_io_250x300.npz"),
                                             ("tiny_lfu_generator_state.npz", "tiny_lfu_io_128x128.npz")])
@pytest.mark.parametrize("impl,conv_impl", [("fft", "xla"), ("dft", "xla"), ("fft", "cpu"),
                                            ("cpu", "cpu")])
def test_generator_matches_official(load_npz, fixture, io_name, impl, conv_impl):
    cfg, variables = convert_generator(load_npz(fixture))
    io = load_npz(io_name)
    hp, wp = io["predicted_padded"].shape[:2]
    h, w = io["image"].shape[:2]
    pad = ((0, hp - h), (0, wp - w))
    image = np.pad(io["image"], pad + ((0, 0),), mode="symmetric")
    mask = np.pad(io["mask"], pad, mode="symmetric")[..., None]
    out = build_generator(cfg, spectral_impl=impl, conv_impl=conv_impl).apply(
        variables, generator_input(image[None], mask[None]))
    err = float(np.abs(np.asarray(out[0]) - io["predicted_padded"]).max())
    assert err <= TOL, err


@pytest.mark.parametrize("fixture,io_name", [("tiny_generator_state.npz", "tiny_io_250x300.npz"),
                                             ("tiny_lfu_generator_state.npz", "tiny_lfu_io_128x128.npz")])
def test_cpu_convolutions_keep_official_outputs_within_1e_5(load_npz, fixture, io_name):
    cfg, variables = convert_generator(load_npz(fixture))
    io = load_npz(io_name)
    x = generator_input(io["image"][None, :128, :128], io["mask"][None, :128, :128, None])
    a = build_generator(cfg, conv_impl="xla").apply(variables, x)
    for spectral_impl in ("fft", "cpu"):  # the second: what `Inpainter` runs on a CPU
        b = build_generator(cfg, spectral_impl, conv_impl="cpu").apply(variables, x)
        assert float(np.abs(np.asarray(a) - np.asarray(b)).max()) <= 1e-5, spectral_impl


@pytest.mark.parametrize("ngf,n_downsampling,height,width", [
    (64, 3, 64, 72),    # Big LaMa itself: every branch of the CPU rewrites
    (256, 1, 136, 136),  # its residual blocks' widths on 68x68 maps: Winograd in 4x4 tiles
])
def test_cpu_convolutions_agree_at_big_lama_widths(ngf, n_downsampling, height, width):
    # Big LaMa's block widths (512 channels, 384 global), two blocks, raw logits: random
    # weights give logits in the hundreds, so the bound is relative to their scale.
    cfg = generator_config_from_dict({**BIG_LAMA.to_dict(), "n_blocks": 2, "ngf": ngf,
                                      "n_downsampling": n_downsampling,
                                      "out_activation": None})
    x = np.random.default_rng(0).random((1, height, width, 4), dtype=np.float32)
    variables = build_generator(cfg).init(jax.random.key(0), x)
    a, b = (np.asarray(jax.jit(build_generator(cfg, impl, conv_impl=conv_impl).apply)(variables, x))
            for impl, conv_impl in (("fft", "xla"), ("cpu", "cpu")))
    assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()


def test_conv_impls_agree_on_dilated_variant():
    cfg = FFCResNetConfig(ngf=8, n_blocks=1, global_ratio=0.0, block_dilation=2)
    x = np.random.default_rng(0).random((1, 32, 40, 4), dtype=np.float32)
    variables = build_generator(cfg).init(jax.random.key(0), x)
    a = build_generator(cfg, conv_impl="xla").apply(variables, x)
    b = build_generator(cfg, conv_impl="cpu").apply(variables, x)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_local_fourier_unit_needs_square_maps(load_npz):
    cfg, variables = convert_generator(load_npz("tiny_lfu_generator_state.npz"))
    with pytest.raises(ValueError, match="square"):
        build_generator(cfg).apply(variables, np.zeros((1, 64, 96, 4), np.float32))


def test_bfloat16_compute_keeps_float32_params():
    cfg = FFCResNetConfig(ngf=8, n_blocks=1)
    v = abstract_variables(build_generator(cfg, dtype="bfloat16"), (1, 32, 32, 4))
    assert {leaf.dtype for leaf in jax.tree.leaves(v)} == {np.dtype("float32")}


@pytest.mark.parametrize("kind", ["ffc_resnet", "pix2pixhd_global"])
def test_bfloat16_compute_runs_convolutions_in_bfloat16_and_ffts_in_float32(kind):
    cfg = generator_config_from_dict({"kind": kind, "ngf": 8, "n_blocks": 1,
                                      "global_ratio": 0.75 if kind == "ffc_resnet" else 0.0})
    model = build_generator(cfg, dtype="bfloat16")
    x = jax.ShapeDtypeStruct((1, 32, 32, 4), np.float32)
    hlo = jax.jit(model.apply).lower(abstract_variables(model, x.shape), x).as_text()
    result_types = lambda op: re.findall(  # noqa: E731
        rf"stablehlo\.{op}\b.*-> tensor<[0-9x]*x(.+)>$", hlo, re.MULTILINE)
    convs, ffts = result_types("convolution"), result_types("fft")
    assert convs and set(convs) == {"bf16"}
    assert set(ffts) == ({"f32", "complex<f32>"} if kind == "ffc_resnet" else set())
