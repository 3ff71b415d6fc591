import pathlib
import subprocess
import sys

import pytest

from configs import big, lama_dilated, lama_fourier, lama_regular
from lama_jax.model_dir import discriminator_abstract_variables, generator_abstract_variables
from lama_jax.models.discriminator import DiscriminatorConfig
from lama_jax.models.generator import generator_config_from_dict
from lama_jax.models.variables import param_count


@pytest.mark.parametrize("config_file,params", [(big, 50_975_875), (lama_fourier, 27_048_835),
                                                (lama_regular, 45_617_731),
                                                (lama_dilated, 45_645_379)])
def test_generator_configs_give_official_sizes(config_file, params):
    config = config_file.get_config()
    gen = generator_config_from_dict(config.generator.to_dict())
    assert param_count(generator_abstract_variables(gen)) == params
    disc = DiscriminatorConfig.from_dict(config.discriminator.to_dict())
    assert param_count(discriminator_abstract_variables(disc)) == 6_962_369


@pytest.mark.parametrize("where,expected", [
    ("repo", "nope.py: no such config file"),
    ("variant", "name a row, e.g. configs/ablations.py:t2_dilated"),
    ("elsewhere", "cannot import 'configs'; run from the repository root")])
def test_bad_config_file_is_one_line(tmp_path, where, expected):
    root = pathlib.Path(big.__file__).resolve().parents[1]
    config = {"repo": "nope.py", "variant": "configs/ablations.py:nope",
              "elsewhere": str(root / "configs" / "big.py")}[where]
    cwd = tmp_path if where == "elsewhere" else root
    result = subprocess.run([sys.executable, "-m", "lama_jax.main", f"--config={config}",
                             f"--workdir={tmp_path / 'w'}"], cwd=cwd, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("lama_jax.main: error: --config: ")
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "w").exists()
