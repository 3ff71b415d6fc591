import pathlib

import pytest

from lama_jax.config_files import load_config_file
from lama_jax.model_dir import discriminator_abstract_variables, generator_abstract_variables
from lama_jax.models.discriminator import DiscriminatorConfig
from lama_jax.models.generator import generator_config_from_dict
from lama_jax.models.variables import param_count

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name,params", [("big", 50_975_875), ("lama_fourier", 27_048_835),
                                         ("lama_regular", 45_617_731)])
def test_generator_configs_give_official_sizes(name, params):
    config = load_config_file(CONFIGS / f"{name}.py")
    gen = generator_config_from_dict(config.generator.to_dict())
    assert param_count(generator_abstract_variables(gen)) == params
    disc = DiscriminatorConfig.from_dict(config.discriminator.to_dict())
    assert param_count(discriminator_abstract_variables(disc)) == 6_962_369


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.py"):
        load_config_file(tmp_path / "nope.py")
