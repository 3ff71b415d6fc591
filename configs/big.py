"""Big LaMa (51M parameters, 18 FFC residual blocks; the released `big-lama` model).

    python -m lama_jax.main --config=configs/big.py --workdir=/tmp/big-lama
"""

from lama_jax.config_files import load_sibling


def get_config(arg=None):
    """LaMa-Fourier with 18 residual blocks."""
    config = load_sibling(__file__, "base", arg)
    config.generator.n_blocks = 18
    return config
