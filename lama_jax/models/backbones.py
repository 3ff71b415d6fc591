"""Frozen feature extractors used by losses and metrics.

`ResNet50Dilated`: the ADE20K segmentation encoder `resnet50dilated` (CSAILVision, file
`ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth`) behind LaMa's high-receptive-field
perceptual loss: a deep-stem ResNet50 (three 3x3 stem convs 3-64-64-128, 3x3 max pool) whose
layers 3 and 4 trade their stride for dilation (output stride 8). Returns the outputs of
layers 1-4. Submodule names mirror the PyTorch state dict (`layer3_0/downsample_conv` for
`layer3.0.downsample.0`).
"""

from __future__ import annotations

from typing import List, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from lama_jax.models.ffc import batch_norm

RESNET50_BLOCKS = (3, 4, 6, 3)


def _conv(features: int, kernel: int, stride: int = 1, dilation: int = 1, name: str = "",
          dtype=None) -> nn.Conv:
    pad = dilation * (kernel // 2)
    return nn.Conv(features, (kernel, kernel), strides=stride, padding=pad,
                   kernel_dilation=dilation, use_bias=False, dtype=dtype, name=name)


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3 conv); `dilation` replaces the stride in the
    dilated stages exactly as CSAIL's `_nostride_dilate`."""

    planes: int
    stride: int = 1
    dilation: int = 1
    downsample: bool = False
    dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        y = nn.relu(batch_norm(train, "bn1", self.dtype)(_conv(self.planes, 1, name="conv1", dtype=self.dtype)(x)))
        y = _conv(self.planes, 3, self.stride, self.dilation, "conv2", self.dtype)(y)
        y = nn.relu(batch_norm(train, "bn2", self.dtype)(y))
        y = batch_norm(train, "bn3", self.dtype)(_conv(4 * self.planes, 1, name="conv3", dtype=self.dtype)(y))
        if self.downsample:
            x = _conv(4 * self.planes, 1, self.stride, name="downsample_conv", dtype=self.dtype)(x)
            x = batch_norm(train, "downsample_bn", self.dtype)(x)
        return nn.relu(x + y)


class ResNet50Dilated(nn.Module):
    """[B, H, W, 3] ImageNet-normalised -> [layer1 (H/4), layer2 (H/8), layer3 (H/8), layer4 (H/8)]."""

    dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> List[jax.Array]:
        for i, (features, stride) in enumerate([(64, 2), (64, 1), (128, 1)], start=1):
            x = _conv(features, 3, stride, name=f"conv{i}", dtype=self.dtype)(x)
            x = nn.relu(batch_norm(train, f"bn{i}", self.dtype)(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))  # [B, H/4, W/4, 128]
        outputs = []
        # (planes, stride, dilation of the first block, dilation of the others) per stage:
        # layer3 and layer4 drop their stride; their first 3x3 conv gets half the dilation.
        stages = [(64, 1, 1, 1), (128, 2, 1, 1), (256, 1, 1, 2), (512, 1, 2, 4)]
        for s, (planes, stride, first_dilation, dilation) in enumerate(stages, start=1):
            for b in range(RESNET50_BLOCKS[s - 1]):
                x = Bottleneck(planes, stride if b == 0 else 1,
                               first_dilation if b == 0 else dilation, downsample=b == 0,
                               dtype=self.dtype, name=f"layer{s}_{b}")(x, train)
            outputs.append(x)
        return outputs
