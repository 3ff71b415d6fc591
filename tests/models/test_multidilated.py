"""Table 2's Dilated generator against the official MultiDilatedGlobalGenerator, stage by stage."""

import jax
import numpy as np
import pytest

from lama_jax.convert import convert_generator
from lama_jax.errors import ConfigError
from lama_jax.inpaint import Inpainter
from lama_jax.model_dir import generator_abstract_variables
from lama_jax.models.generator import LAMA_DILATED, build_generator, generator_input
from lama_jax.models.layers import conv_factory
from lama_jax.models.multidilated import MultiDilatedConfig, MultidilatedConv
from lama_jax.models.variables import param_count
from tests.helpers import state_dict_from_key_table

# Our submodule -> the official `model[NN]` whose output it is (ReLUs and pads have no module).
STAGES = {"stem": 1, "stem_bn": 2, "down_0": 4, "down_bn_0": 5, "down_1": 7, "down_bn_1": 8,
          "down_2": 10, "down_bn_2": 11, "block_0": 13, "block_1": 14, "up_0": 15, "up_bn_0": 16,
          "up_1": 18, "up_bn_1": 19, "up_2": 21, "up_bn_2": 22, "out_conv": 25}


@pytest.fixture(scope="module")
def tiny(load_npz):
    return convert_generator(load_npz("tiny_dilated_generator_state.npz"))


def _padded(x, shape):
    return np.pad(x, [(0, n - m) for n, m in zip(shape, x.shape)], "symmetric")


@pytest.mark.parametrize("fixture", ["tiny_dilated_io_76x100.npz", "tiny_dilated_io_66x90.npz"])
def test_matches_the_official_generator_stage_by_stage(tiny, load_npz, fixture):
    cfg, variables = tiny
    assert cfg == MultiDilatedConfig(ngf=16, n_blocks=2, dilation_num=4)
    io = load_npz(fixture)
    padded = io["predicted_padded"].shape[:2]
    x = generator_input(_padded(io["image"], (*padded, 3))[None],
                        _padded(io["mask"], padded)[None, ..., None])
    out, state = build_generator(cfg).apply(variables, x, capture_intermediates=True,
                                            mutable=["intermediates"])
    np.testing.assert_allclose(out[0], io["predicted_padded"], atol=1e-6)
    if "stage_00" in io:
        for name, index in STAGES.items():
            ours = state["intermediates"][name]["__call__"][0][0]
            theirs = io[f"stage_{index:02d}"]
            scale = np.abs(theirs).max()
            np.testing.assert_allclose(ours, theirs, atol=1e-5 * scale, err_msg=name)
    result = Inpainter(cfg, variables)(io["image"], io["mask"])
    np.testing.assert_allclose(result, io["inpainted"], atol=1e-6)


def test_blocks_use_dilations_1_2_4_8_on_channel_quarters(tiny):
    _, variables = tiny
    block = variables["params"]["block_0"]["conv1"]
    assert sorted(block) == ["dil_0", "dil_1", "dil_2", "dil_3"]
    assert {v["kernel"].shape for v in block.values()} == {(3, 3, 32, 128)}  # a quarter of 128 in
    # One channel per group, each conv's top-left tap only, from group g to output channel g:
    # an impulse in channel g comes out shifted by the group's dilation 2^g.
    conv = MultidilatedConv(4, 4, conv_factory("xla"))
    params = jax.tree.map(np.zeros_like, conv.init(jax.random.key(0), np.zeros((1, 20, 20, 4)))["params"])
    for g in range(4):
        params[f"dil_{g}"]["kernel"][0, 0, 0, g] = 1.0
    for g in range(4):
        x = np.zeros((1, 32, 32, 4), np.float32)
        x[0, 16, 16, g] = 1  # far enough from the border that no reflection reaches it
        y = np.asarray(conv.apply({"params": params}, x))
        assert np.argwhere(y).tolist() == [[0, 16 + 2 ** g, 16 + 2 ** g, g]]


def test_full_size_parameters_equal_the_official_key_table(reference):
    sd = state_dict_from_key_table(reference / "dilated_generator_keys.tsv")
    official = sum(int(np.prod(v.shape)) for k, v in sd.items()
                   if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert param_count(generator_abstract_variables(LAMA_DILATED)) == official == 45_645_379


def test_bad_settings_and_small_inputs_are_refused():
    with pytest.raises(ConfigError, match="do not split"):
        MultiDilatedConfig(ngf=16, dilation_num=3)
    with pytest.raises(ConfigError, match="block_dilation"):
        MultiDilatedConfig(block_dilation=2)
    assert MultiDilatedConfig().min_side == 72
    with pytest.raises(ConfigError, match="at least|more than 8 px"):
        jax.eval_shape(lambda: build_generator(MultiDilatedConfig(ngf=8, n_blocks=1)).init(
            jax.random.key(0), np.zeros((1, 64, 64, 4), np.float32)))
