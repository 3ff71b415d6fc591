"""LaMa-Regular (46M parameters, 9 residual blocks of plain 3x3 convolutions, global batch 30):
the paper's baseline without Fourier units (Table 2 "Base / Regular").

    python -m lama_jax.main --config=configs/lama_regular.py --workdir=/tmp/lama-regular \
        --config.losses.hrf_weights_path=/path/to/encoder_epoch_20.pth

Official source: configs/training/lama-regular.yaml, generator pix2pixhd_global_sigmoid.yaml
(pix2pixHD's GlobalGenerator); losses, discriminator, optimizers and data as LaMa-Fourier.
Add --config.generator.n_blocks=15 for big-lama-regular.yaml (Table 2 "Deep / Regular", 74M).
"""

import ml_collections

from configs import lama_fourier
from lama_jax.models.generator import LAMA_REGULAR


def get_config(arg=None):
    """LaMa-Fourier's recipe with pix2pixHD's GlobalGenerator in place of the FFC generator."""
    config = lama_fourier.get_config(arg)
    config.generator = ml_collections.ConfigDict(LAMA_REGULAR.to_dict())
    return config
