"""Big LaMa (51M parameters, 18 FFC residual blocks, global batch 120; the released model).

    python -m lama_jax.main --config=configs/big.py --workdir=/tmp/big-lama \
        --config.losses.hrf_weights_path=/path/to/encoder_epoch_20.pth

Official source: configs/training/big-lama.yaml (LaMa-Fourier's recipe with these changes). The
paper trained it on 8 V100s for ~240 hours on a 4.5M-image Places-Challenge subset. On a TPU
slice, add --config.spectral_impl=dft and --config.compute_dtype=bfloat16.
"""

import ml_collections

from configs import lama_fourier
from lama_jax.models.generator import BIG_LAMA


def get_config(arg=None):
    """LaMa-Fourier with 18 residual blocks and a batch of 120."""
    config = lama_fourier.get_config(arg)
    config.generator = ml_collections.ConfigDict(BIG_LAMA.to_dict())
    config.batch_size = 120
    return config
