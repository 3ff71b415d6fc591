import numpy as np

from lama_jax.convert import convert_discriminator
from lama_jax.model_dir import discriminator_abstract_variables
from lama_jax.models.discriminator import Discriminator, DiscriminatorConfig
from lama_jax.models.variables import param_count


def test_parameter_count_matches_official():
    assert param_count(discriminator_abstract_variables(DiscriminatorConfig())) == 6_962_369


def test_logits_and_features_match_official(load_npz):
    cfg, variables = convert_discriminator(load_npz("tiny_discriminator_state.npz"))
    assert cfg == DiscriminatorConfig(input_nc=3, ndf=16, n_layers=4)
    io = load_npz("tiny_discriminator_io_64.npz")
    logits, features = Discriminator(cfg).apply(variables, io["image"][None])
    np.testing.assert_allclose(logits[0], io["logits"], atol=1e-5, rtol=0)
    assert len(features) == 5
    for i, f in enumerate(features):
        np.testing.assert_allclose(f[0], io[f"feature_{i}"], atol=1e-5, rtol=0)
