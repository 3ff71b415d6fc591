"""A small LaMa that trains on a laptop CPU in a few minutes, on photos bundled with scikit-image.

    python -m lama_jax.main --config=configs/demo.py --workdir=/tmp/lama-demo

Expect about a minute of compilation, then ~2 s per step on 2 CPU cores (60 steps); losses, a validation grid (TensorBoard:
`tensorboard --logdir /tmp/lama-demo`) and a model directory `/tmp/lama-demo/model` that
`python -m lama_jax.predict` can use. Runs offline: the HRF perceptual loss uses a random
backbone here (the real one needs encoder_epoch_20.pth, see configs/big.py).
"""

from configs import lama_fourier


def get_config(arg=None):
    """The LaMa recipe at toy size: ngf 16, 2 residual blocks, 96 px crops, batch 4."""
    config = lama_fourier.get_config(arg)
    config.generator.update(ngf=16, n_blocks=2)
    config.discriminator.ndf = 16
    config.losses.hrf_weights_path = "random"
    config.data.update(source="sample", eval_source="sample", eval_records=8, crop_size=96,
                       worker_count=0)
    config.batch_size = 4
    config.eval_batch_size = 8
    config.num_train_steps = 60
    config.log_every = 10
    config.eval_every = 30
    config.checkpoint_every = 30
    return config
