"""LaMa-Fourier (27M parameters, 9 FFC residual blocks, global batch 30), the paper's Table 1,
and the recipe every other config starts from (`from configs import lama_fourier`).

    python -m lama_jax.main --config=configs/lama_fourier.py --workdir=/tmp/lama-fourier \
        --config.losses.hrf_weights_path=/path/to/encoder_epoch_20.pth

Official sources: configs/training/lama-fourier.yaml, generator/ffc_resnet_075.yaml,
discriminator/pix2pixhd_nlayer.yaml, optimizers/default_optimizers.yaml, trainer
any_gpu_large_ssim_ddp_final.yaml, data/abl-04-256-mh-dist.yaml. Expects `places365_small`
prepared for tfds (ArrayRecord) or `--config.data.source=folder:DIR`.
"""

import ml_collections

from lama_jax.models.discriminator import DiscriminatorConfig
from lama_jax.models.generator import LAMA_FOURIER


def get_config(arg=None):
    """The official LaMa-Fourier recipe (global batch 30, 1M steps, Places 256 crops)."""
    del arg
    c = ml_collections.ConfigDict()
    # The architectures are the model code's presets (a generator config holds its "kind";
    # each kind takes its own settings, see lama_jax.models.generator.KINDS).
    c.generator = ml_collections.ConfigDict(LAMA_FOURIER.to_dict())
    c.discriminator = ml_collections.ConfigDict(DiscriminatorConfig().to_dict())
    c.spectral_impl = "fft"  # "dft" (DFT matrix products) is faster on TPU
    c.compute_dtype = "float32"  # or "bfloat16" (parameters and FFTs stay float32)

    c.losses = ml_collections.ConfigDict(dict(
        kind="lama",  # LaMa's adversarial objective (configs/pconv.py: "pconv")
        l1_weight_known=10.0, l1_weight_missing=0.0,
        adversarial_weight=10.0, r1_gp_coef=0.001,
        feature_matching_weight=100.0,
        hrf_perceptual_weight=30.0,
        hrf_arch="resnet50dilated",  # or "resnet50" (Table 3)
        # ADE20K ResNet50-dilated encoder_epoch_20.pth (CSAILVision); required when the
        # weight is > 0; "random" only for offline demos.
        hrf_weights_path="",
        # Table 3's VGG19 loss (official `PerceptualLoss`), off in LaMa (0.3 in its row: the
        # official 0.03 on a sum over 10 images per GPU); torchvision's vgg19-dcbb9e9d.pth.
        vgg19_perceptual_weight=0.0,
        vgg19_weights_path=""))
    c.optim = ml_collections.ConfigDict(dict(
        generator_lr=1e-3, discriminator_lr=1e-4, b1=0.9, b2=0.999, eps=1e-8, clip_grad_norm=1.0))

    c.data = ml_collections.ConfigDict(dict(
        source="tfds:places365_small", split="train", data_dir="",
        crop_size=256, mask_preset="abl-04-256-mh-dist", worker_count=8,
        # Draw masks at this side and resize them to the crop (0: at the crop size); the
        # presets' pixel sizes are for 256 px crops.
        mask_size=0,
        eval_source="tfds:places365_small", eval_split="validation", eval_records=200,
        eval_mask_preset="random_thick_256"))

    c.seed = 0
    c.batch_size = 30  # global, over all devices and hosts
    c.eval_batch_size = 8
    c.num_train_steps = 1_000_000  # 40 epochs x 25,000 steps
    c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1))
    c.log_every = 100
    c.eval_every = 25_000
    c.checkpoint_every = 5_000
    c.keep_checkpoints = 3
    c.init_from = ""  # a model directory (python -m lama_jax.convert) to fine-tune from
    return c
