"""Big LaMa (51M parameters, 18 FFC residual blocks, global batch 120; the released model).

    python -m lama_jax.main --config=configs/big.py --workdir=/tmp/big-lama \
        --config.losses.hrf_weights_path=/path/to/encoder_epoch_20.pth

The paper trained it on 8 V100s for ~240 hours on a 4.5M-image Places-Challenge subset. On a
TPU slice, add --config.spectral_impl=dft and --config.compute_dtype=bfloat16.
"""

from lama_jax.config_files import load_sibling


def get_config(arg=None):
    """LaMa-Fourier with 18 residual blocks and a batch of 120."""
    config = load_sibling(__file__, "base", arg)
    config.generator.n_blocks = 18
    config.batch_size = 120
    return config
