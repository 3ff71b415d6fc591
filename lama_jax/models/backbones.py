"""Frozen feature extractors used by losses and metrics.

Submodule names mirror the PyTorch state dicts so that `lama_jax.convert` maps them by name.

`ResNet50Encoder`: CSAIL's deep-stem ResNet50 encoder behind LaMa's high-receptive-field
perceptual loss (three 3x3 stem convs 3-64-64-128, 3x3 max pool). `resnet50dilated` (the
ADE20K segmentation encoder `ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth`, or
ImageNet weights) trades the stride of layers 3 and 4 for dilation (output stride 8);
`resnet50` keeps the strides. Returns the outputs of layers 1-4 (`layer3_0/downsample_conv`
is `layer3.0.downsample.0`).

`VGGFeatures`: torchvision's VGG `features` (`conv5` is `features.5`): VGG16's five stage
outputs LPIPS compares (relu1_2 ... relu5_3), or its first three, whose max pools the Partial
Convolutions loss compares; VGG19's first 13 ReLUs with average pools for LaMa's
`PerceptualLoss`.

`FIDInceptionV3`: pytorch-fid's Inception for FID (TensorFlow's 2015-12-05 graph ported to
torchvision's layout, weights `pt_inception-2015-12-05-6726825d.pth`) up to the 2048-d pool3
features. It differs from torchvision's Inception in three places, kept here: the average
pools of blocks A, C and E_1 do not count padding, and the last block (E_2) max-pools its pool
branch. Convolutions are bias-free and followed by BatchNorm with epsilon 1e-3 and ReLU.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from lama_jax.models.layers import batch_norm, lecun_normal_kernel

RESNET50_BLOCKS = (3, 4, 6, 3)


def _conv(features: int, kernel: int, stride: int = 1, dilation: int = 1, name: str = "",
          dtype=None) -> nn.Conv:
    pad = dilation * (kernel // 2)
    return nn.Conv(features, (kernel, kernel), strides=stride, padding=pad,
                   kernel_dilation=dilation, use_bias=False, dtype=dtype,
                   kernel_init=lecun_normal_kernel, name=name)


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


class ResNet50Encoder(nn.Module):
    """CSAIL's deep-stem ResNet50 encoder: [B, H, W, 3] ImageNet-normalised -> the outputs of
    layers 1-4. Dilated (`resnet50dilated`): strides 4, 8, 8, 8; plain (`resnet50`): 4, 8,
    16, 32."""

    dilated: bool = True
    dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> List[jax.Array]:
        for i, (features, stride) in enumerate([(64, 2), (64, 1), (128, 1)], start=1):
            x = _conv(features, 3, stride, name=f"conv{i}", dtype=self.dtype)(x)
            x = nn.relu(batch_norm(train, f"bn{i}", self.dtype)(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))  # [B, H/4, W/4, 128]
        outputs = []
        # (planes, stride, dilation of the first block, dilation of the others) per stage:
        # dilated, layer3 and layer4 drop their stride; their first 3x3 conv gets half the dilation.
        stages = ([(64, 1, 1, 1), (128, 2, 1, 1), (256, 1, 1, 2), (512, 1, 2, 4)] if self.dilated
                  else [(64, 1, 1, 1), (128, 2, 1, 1), (256, 2, 1, 1), (512, 2, 1, 1)])
        for s, (planes, stride, first_dilation, dilation) in enumerate(stages, start=1):
            for b in range(RESNET50_BLOCKS[s - 1]):
                x = Bottleneck(planes, stride if b == 0 else 1,
                               first_dilation if b == 0 else dilation, downsample=b == 0,
                               dtype=self.dtype, name=f"layer{s}_{b}")(x, train)
            outputs.append(x)
        return outputs


# ------------------------------------------------------------------------------------------
# VGG feature stacks (torchvision `vgg16().features` / `vgg19().features`).

# torchvision indices of the 3x3 convs, grouped by the pool after them.
VGG16_STAGES = ((0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28))
# vgg19().features up to index 29 (the ReLU after conv 28), what LaMa's PerceptualLoss runs.
VGG19_PERCEPTUAL_STAGES = ((0, 2), (5, 7), (10, 12, 14, 16), (19, 21, 23, 25), (28,))


class VGGFeatures(nn.Module):
    """A torchvision VGG `features` stack (3x3 convs with bias and ReLU, a 2x2 stride-2 pool
    between stages) over `stages` (conv indices per stage; `convN` is `features.N`):
    [B, H, W, 3] (normalised as its user trained it) -> the last ReLU of each stage, or every
    ReLU with `every_relu`. `pool` "avg" replaces the max pools, as LaMa's PerceptualLoss."""

    stages: Tuple[Tuple[int, ...], ...] = VGG16_STAGES
    pool: str = "max"
    every_relu: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> List[jax.Array]:
        pool = nn.max_pool if self.pool == "max" else nn.avg_pool
        outputs = []
        for s, stage in enumerate(self.stages):
            if s:
                x = pool(x, (2, 2), strides=(2, 2))
            for index in stage:
                x = nn.relu(nn.Conv(min(64 * 2 ** s, 512), (3, 3), padding=1,
                                    kernel_init=lecun_normal_kernel, name=f"conv{index}")(x))
                if self.every_relu:
                    outputs.append(x)  # [B, H / 2^s, W / 2^s, C_s]
            if not self.every_relu:
                outputs.append(x)
        return outputs


# ------------------------------------------------------------------------------------------
# FID Inception v3 (pytorch-fid).

INCEPTION_BN_EPSILON = 1e-3


class ConvBN(nn.Module):
    """torchvision's `BasicConv2d`: bias-free conv (`conv`), BatchNorm (`bn`), ReLU. `same`
    pads each side by half the kernel (PyTorch's `padding=k // 2`); otherwise no padding."""

    features: int
    kernel: Tuple[int, int] = (1, 1)
    stride: int = 1
    same: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        pad = [(k // 2, k // 2) for k in self.kernel] if self.same else "VALID"
        x = nn.Conv(self.features, self.kernel, strides=self.stride, padding=pad, use_bias=False,
                    kernel_init=lecun_normal_kernel, name="conv")(x)
        x = batch_norm(False, "bn", epsilon=INCEPTION_BN_EPSILON)(x)
        return nn.relu(x)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
    """3x3 stride-1 average over the valid neighbours only (TensorFlow's average pool)."""
    return nn.avg_pool(x, (3, 3), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x: jax.Array, stride: int = 2) -> jax.Array:
    pad = ((1, 1), (1, 1)) if stride == 1 else "VALID"
    return nn.max_pool(x, (3, 3), strides=(stride, stride), padding=pad)


def _chain(x: jax.Array, convs: Sequence[ConvBN]) -> jax.Array:
    for conv in convs:
        x = conv(x)
    return x


class InceptionA(nn.Module):
    """Mixed_5b/5c/5d: 1x1, 5x5, double 3x3 and pooled branches -> [.., 224 + pool_features]."""

    pool_features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b1 = ConvBN(64, name="branch1x1")(x)
        b5 = _chain(x, [ConvBN(48, name="branch5x5_1"), ConvBN(64, (5, 5), name="branch5x5_2")])
        b3 = _chain(x, [ConvBN(64, name="branch3x3dbl_1"), ConvBN(96, (3, 3), name="branch3x3dbl_2"),
                        ConvBN(96, (3, 3), name="branch3x3dbl_3")])
        bp = ConvBN(self.pool_features, name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    """Mixed_6a: grid reduction 35 -> 17, [.., 384 + 96 + C_in]."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b3 = ConvBN(384, (3, 3), stride=2, same=False, name="branch3x3")(x)
        bd = _chain(x, [ConvBN(64, name="branch3x3dbl_1"), ConvBN(96, (3, 3), name="branch3x3dbl_2"),
                        ConvBN(96, (3, 3), stride=2, same=False, name="branch3x3dbl_3")])
        return jnp.concatenate([b3, bd, _max_pool_3x3(x)], axis=-1)


class InceptionC(nn.Module):
    """Mixed_6b-6e: factorised 7x7 branches -> [.., 768]."""

    channels_7x7: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = self.channels_7x7
        b1 = ConvBN(192, name="branch1x1")(x)
        b7 = _chain(x, [ConvBN(c, name="branch7x7_1"), ConvBN(c, (1, 7), name="branch7x7_2"),
                        ConvBN(192, (7, 1), name="branch7x7_3")])
        kernels = [(7, 1), (1, 7), (7, 1), (1, 7)]
        bd = _chain(x, [ConvBN(c, name="branch7x7dbl_1")] + [
            ConvBN(192 if i == 5 else c, k, name=f"branch7x7dbl_{i}")
            for i, k in enumerate(kernels, start=2)])
        bp = ConvBN(192, name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    """Mixed_7a: grid reduction 17 -> 8, [.., 320 + 192 + C_in]."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b3 = _chain(x, [ConvBN(192, name="branch3x3_1"),
                        ConvBN(320, (3, 3), stride=2, same=False, name="branch3x3_2")])
        b7 = _chain(x, [ConvBN(192, name="branch7x7x3_1"), ConvBN(192, (1, 7), name="branch7x7x3_2"),
                        ConvBN(192, (7, 1), name="branch7x7x3_3"),
                        ConvBN(192, (3, 3), stride=2, same=False, name="branch7x7x3_4")])
        return jnp.concatenate([b3, b7, _max_pool_3x3(x)], axis=-1)


class InceptionE(nn.Module):
    """Mixed_7b/7c: expanded 1x3 + 3x1 branches -> [.., 2048]; `max_pool` for pytorch-fid's 7c."""

    max_pool: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        def split_1x3_3x1(y: jax.Array, prefix: str) -> jax.Array:
            return jnp.concatenate([ConvBN(384, (1, 3), name=f"{prefix}a")(y),
                                    ConvBN(384, (3, 1), name=f"{prefix}b")(y)], axis=-1)

        b1 = ConvBN(320, name="branch1x1")(x)
        b3 = split_1x3_3x1(ConvBN(384, name="branch3x3_1")(x), "branch3x3_2")
        bd = _chain(x, [ConvBN(448, name="branch3x3dbl_1"), ConvBN(384, (3, 3), name="branch3x3dbl_2")])
        bd = split_1x3_3x1(bd, "branch3x3dbl_3")
        pooled = _max_pool_3x3(x, stride=1) if self.max_pool else _avg_pool_3x3(x)
        bp = ConvBN(192, name="branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
    """[B, 299, 299, 3] in [-1, 1] -> pool3 features [B, 2048]."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = ConvBN(32, (3, 3), stride=2, same=False, name="Conv2d_1a_3x3")(x)  # [B, 149, 149, 32]
        x = ConvBN(32, (3, 3), same=False, name="Conv2d_2a_3x3")(x)  # [B, 147, 147, 32]
        x = ConvBN(64, (3, 3), name="Conv2d_2b_3x3")(x)
        x = _max_pool_3x3(x)  # [B, 73, 73, 64]
        x = ConvBN(80, name="Conv2d_3b_1x1")(x)
        x = ConvBN(192, (3, 3), same=False, name="Conv2d_4a_3x3")(x)  # [B, 71, 71, 192]
        x = _max_pool_3x3(x)  # [B, 35, 35, 192]
        for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
            x = InceptionA(pool_features, name=name)(x)  # [B, 35, 35, 256 / 288 / 288]
        x = InceptionB(name="Mixed_6a")(x)  # [B, 17, 17, 768]
        for name, channels in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160),
                               ("Mixed_6e", 192)):
            x = InceptionC(channels, name=name)(x)
        x = InceptionD(name="Mixed_7a")(x)  # [B, 8, 8, 1280]
        x = InceptionE(name="Mixed_7b")(x)
        x = InceptionE(max_pool=True, name="Mixed_7c")(x)  # [B, 8, 8, 2048]
        return jnp.mean(x, axis=(1, 2))
