"""LaMa-Fourier (27M parameters, 9 FFC residual blocks), as in the paper's Table 1.

    python -m lama_jax.main --config=configs/lama_fourier.py --workdir=/tmp/lama-fourier
"""

from lama_jax.config_files import load_sibling


def get_config(arg=None):
    """The base recipe unchanged."""
    return load_sibling(__file__, "base", arg)
