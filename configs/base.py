"""LaMa-Fourier, the paper's base model: the recipe every other config starts from.

Not run directly: `configs/lama_fourier.py`, `configs/big.py`, `configs/demo.py` and the
ablations load it with `load_base()` and change what differs.
"""

import ml_collections


def get_config(arg=None):
    """The official LaMa-Fourier generator and discriminator (configs/training/lama-fourier.yaml)."""
    del arg
    config = ml_collections.ConfigDict()
    # FFCResNetGenerator kwargs (lama_jax.models.generator.GeneratorConfig).
    config.generator = ml_collections.ConfigDict(dict(
        input_nc=4, output_nc=3, ngf=64, n_downsampling=3, n_blocks=9, global_ratio=0.75,
        enable_lfu=False, block_dilation=1, max_features=1024, out_activation="sigmoid"))
    # NLayerDiscriminator kwargs (lama_jax.models.discriminator.DiscriminatorConfig).
    config.discriminator = ml_collections.ConfigDict(dict(input_nc=3, ndf=64, n_layers=4))
    # "fft" (jnp.fft) or "dft" (dense DFT matrix products; faster on TPU).
    config.spectral_impl = "fft"
    # Compute dtype of convolutions: "float32" or "bfloat16" (parameters and FFTs stay float32).
    config.compute_dtype = "float32"
    return config
