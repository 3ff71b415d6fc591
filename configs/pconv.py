"""The Partial Convolutions baseline (Liu et al., ECCV 2018) on LaMa's data, masks and trainer.

    python -m lama_jax.main --config=configs/pconv.py --workdir=/tmp/pconv \
        --config.losses.vgg16_weights_path=/path/to/vgg16-397923af.pth
    python -m lama_jax.main --config=configs/pconv.py:finetune --workdir=/tmp/pconv-ft \
        --config.init_from=/tmp/pconv/model --config.losses.vgg16_weights_path=...
    python -m lama_jax.main --config=configs/pconv.py:demo --workdir=/tmp/pconv-demo   # CPU

Variants (join with a comma, e.g. `:demo,finetune`):
- none: the paper's first phase. Its U-Net (32.9M parameters), its loss (valid 1, hole 6,
  perceptual 0.05, style 120 + 120, total variation 0.1; VGG16 pool1-pool3 with torchvision's
  ImageNet weights), Adam at 2e-4 without clipping, no discriminator. The paper trained at
  512 px with batch 6 on its own masks; here the crops, masks and data are LaMa-Fourier's
  (256 px Places crops, `abl-04-256-mh-dist`), so that the two compare on equal terms; add
  --config.data.crop_size=512 on a source with large photos for the paper's size.
- `finetune`: the paper's second phase, Adam at 5e-5 with the encoder's BatchNorm on its
  running statistics; start it from the first phase's model with --config.init_from.
- `demo`: a 5-layer, ngf-16 U-Net on the photos bundled with scikit-image, 96 px crops, a
  random VGG16 (offline); it trains on 2 CPU cores in a few minutes.
The step counts (1M, then 500k) are our choice; the paper gives times instead (10 days of
training and 1 of fine-tuning with batch 6 on one V100).
"""

import ml_collections

from configs import lama_fourier
from lama_jax.models.generator import PCONV

VARIANTS = ("demo", "finetune")


def get_config(arg=None):
    """The Partial Convolutions recipe; `arg` lists variants, comma-separated."""
    variants = [v for v in (arg or "").split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"configs/pconv.py: unknown variant(s) {unknown}; expected some of "
                         f"{list(VARIANTS)}")
    config = lama_fourier.get_config()
    config.generator = ml_collections.ConfigDict(PCONV.to_dict())
    config.discriminator = None
    config.losses = ml_collections.ConfigDict(dict(
        kind="pconv", valid=1.0, hole=6.0, perceptual=0.05, style=120.0, tv=0.1,
        # torchvision's ImageNet VGG16 (vgg16-397923af.pth); "random" only for offline demos.
        vgg16_weights_path=""))
    config.optim = ml_collections.ConfigDict(dict(
        generator_lr=2e-4, b1=0.9, b2=0.999, eps=1e-8, clip_grad_norm=0.0,
        freeze_encoder_bn=False))
    config.batch_size = 6
    config.num_train_steps = 1_000_000

    if "finetune" in variants:
        config.optim.update(generator_lr=5e-5, freeze_encoder_bn=True)
        config.num_train_steps = 500_000
    if "demo" in variants:
        config.generator.update(ngf=16, n_layers=5)
        config.losses.vgg16_weights_path = "random"
        config.data.update(source="sample", eval_source="sample", eval_records=8, crop_size=96,
                           worker_count=0)
        config.update(batch_size=4, eval_batch_size=8, num_train_steps=60, log_every=10,
                      eval_every=30, checkpoint_every=30)
    return config
