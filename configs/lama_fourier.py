"""LaMa-Fourier (27M parameters, 9 FFC residual blocks, global batch 30), the paper's Table 1.

    python -m lama_jax.main --config=configs/lama_fourier.py --workdir=/tmp/lama-fourier \
        --config.losses.hrf_weights_path=/path/to/encoder_epoch_20.pth

Expects `places365_small` prepared for tfds (ArrayRecord) or `--config.data.source=folder:DIR`.
"""

from lama_jax.config_files import load_sibling


def get_config(arg=None):
    """The base recipe unchanged."""
    return load_sibling(__file__, "base", arg)
