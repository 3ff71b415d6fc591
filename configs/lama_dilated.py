"""The Dilated generator of the paper's Table 2 ("Base, Dilated", 46M parameters, 9 multi-dilated
residual blocks), trained with LaMa-Fourier's recipe.

    python -m lama_jax.main --config=configs/lama_dilated.py --workdir=/tmp/lama-dilated \
        --config.losses.hrf_weights_path=/path/to/encoder_epoch_20.pth

Official source: configs/training/ablv2_work_md.yaml, generator
pix2pixhd_multidilated_catin_4dil_9b.yaml (MultiDilatedGlobalGenerator, comb_mode cat_in,
dilation_num 4); losses, discriminator, optimizers and data as LaMa-Fourier.
"""

import ml_collections

from configs import lama_fourier
from lama_jax.models.generator import LAMA_DILATED


def get_config(arg=None):
    """LaMa-Fourier's recipe with the multi-dilated generator."""
    config = lama_fourier.get_config(arg)
    config.generator = ml_collections.ConfigDict(LAMA_DILATED.to_dict())
    return config
