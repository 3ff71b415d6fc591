"""Shared test set-up: programs compiled at LLVM -O1, 8 simulated CPU devices, and the official
reference fixtures."""

import os
import tempfile

from tests.helpers import TEST_XLA_FLAGS

# Must happen before JAX starts its backend: LLVM optimisation level 1 (see
# helpers.TEST_XLA_FLAGS), 8 simulated devices, and the CPU kernels the command-line tools use.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" {TEST_XLA_FLAGS}"
                           + " --xla_force_host_platform_device_count=8").strip()

from lama_jax.xla_flags import enable_cpu_onednn  # noqa: E402

enable_cpu_onednn()

import jax  # noqa: E402

# Training tests compile the same step in several runs (straight, interrupted, resumed): the
# persistent compilation cache turns the repeats into loads.
jax.config.update("jax_compilation_cache_dir",
                  os.path.join(tempfile.gettempdir(), "lama_jax_test_jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

import pathlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REFERENCE = pathlib.Path(os.environ.get(
    "LAMA_JAX_REFERENCE", pathlib.Path(__file__).resolve().parents[2] / "shared" / "reference"))


@pytest.fixture(scope="session")
def reference() -> pathlib.Path:
    """Folder of the official implementation's fixtures (../shared/reference)."""
    if not (REFERENCE / "README.md").is_file():
        pytest.fail(f"reference fixtures not found at {REFERENCE}; set LAMA_JAX_REFERENCE")
    return REFERENCE


@pytest.fixture(scope="session")
def load_npz(reference):
    """Loads a fixture .npz as a dict of arrays."""
    def load(name):
        with np.load(reference / name) as data:
            return dict(data)
    return load


@pytest.fixture(scope="session")
def inception_state_dict(reference):
    """pytorch-fid's FID Inception with the reference's random weights (seed 7)."""
    from tests.helpers import state_dict_from_recipe
    return state_dict_from_recipe(reference / "fid_inception_weights_recipe.tsv", seed=7)


@pytest.fixture(scope="session")
def inception_variables(inception_state_dict):
    from lama_jax.weights import convert_fid_inception
    return convert_fid_inception(inception_state_dict)


@pytest.fixture(scope="session")
def vgg16_state_dict(reference):
    """torchvision `vgg16().features` with the reference's random weights (seed 11)."""
    from tests.helpers import state_dict_from_recipe
    return state_dict_from_recipe(reference / "lpips_vgg16_features_weights_recipe.tsv", seed=11)


@pytest.fixture(scope="session")
def lpips_variables(vgg16_state_dict):
    from lama_jax.weights import convert_lpips
    from lama_jax.metrics.lpips import default_heads
    return convert_lpips(vgg16_state_dict, default_heads())
