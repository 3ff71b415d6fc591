"""LaMa's generator in PyTorch (NCHW, the official module names), for benchmarks against it.

FFCResNetGenerator (reflect-padded FFC convolutions, the spectral transform with rfftn/irfftn
"ortho", Big LaMa's 18 blocks by default), written for `bench_vs_pytorch.py` from the paper's
description and the official state-dict layout, not copied from the official code; it
reproduces the official `tiny_io_250x300` fixture to 6e-8. Its state dict converts with
`lama_jax.convert.convert_generator`, exactly as an official checkpoint would.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class FourierUnit(nn.Module):
    """rfft2 -> 1x1 conv-BN-ReLU on [real, imag] interleaved per channel -> irfft2."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * channels, 2 * channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels)

    def forward(self, x):
        b, c, h, w = x.shape
        f = torch.fft.rfftn(x.float(), dim=(-2, -1), norm="ortho")  # float32 under autocast
        f = torch.stack((f.real, f.imag), dim=2).reshape(b, 2 * c, h, -1)  # [B, 2C, H, Wf]
        f = torch.relu(self.bn(self.conv_layer(f))).float().reshape(b, c, 2, h, -1)
        return torch.fft.irfftn(torch.complex(f[:, :, 0], f[:, :, 1]), s=(h, w),
                                dim=(-2, -1), norm="ortho")


class SpectralTransform(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(cin, cout // 2, 1, bias=False),
                                   nn.BatchNorm2d(cout // 2), nn.ReLU())
        self.fu = FourierUnit(cout // 2)
        self.conv2 = nn.Conv2d(cout // 2, cout, 1, bias=False)

    def forward(self, x):
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


class FFC(nn.Module):
    """Local/global convolution paths; missing channel groups are None."""

    def __init__(self, cin, cout, k, ratio_gin, ratio_gout, stride=1, padding=0):
        super().__init__()
        in_g, out_g = int(cin * ratio_gin), int(cout * ratio_gout)
        in_l, out_l = cin - in_g, cout - out_g

        def conv(a, b):
            return (nn.Conv2d(a, b, k, stride, padding, bias=False, padding_mode="reflect")
                    if a and b else None)

        self.convl2l, self.convl2g, self.convg2l = conv(in_l, out_l), conv(in_l, out_g), conv(in_g, out_l)
        self.convg2g = SpectralTransform(in_g, out_g) if in_g and out_g else None

    def forward(self, x):
        x_l, x_g = x

        def run(module, inp):
            return None if module is None or inp is None else module(inp)

        def add(a, b):
            return b if a is None else (a if b is None else a + b)

        return (add(run(self.convl2l, x_l), run(self.convg2l, x_g)),
                add(run(self.convl2g, x_l), run(self.convg2g, x_g)))


class FFCBNAct(nn.Module):
    def __init__(self, cin, cout, k, ratio_gin, ratio_gout, **kw):
        super().__init__()
        self.ffc = FFC(cin, cout, k, ratio_gin, ratio_gout, **kw)
        out_g = int(cout * ratio_gout)
        self.bn_l = nn.BatchNorm2d(cout - out_g) if cout - out_g else None
        self.bn_g = nn.BatchNorm2d(out_g) if out_g else None

    def forward(self, x):
        x_l, x_g = self.ffc(x)
        return (None if x_l is None else torch.relu(self.bn_l(x_l)),
                None if x_g is None else torch.relu(self.bn_g(x_g)))


class FFCResnetBlock(nn.Module):
    def __init__(self, dim, ratio):
        super().__init__()
        self.conv1 = FFCBNAct(dim, dim, 3, ratio, ratio, padding=1)
        self.conv2 = FFCBNAct(dim, dim, 3, ratio, ratio, padding=1)

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        return tuple(a + b for a, b in zip(x, y))


class Concat(nn.Module):
    def forward(self, x):
        return torch.cat([t for t in x if t is not None], dim=1)


class LamaGenerator(nn.Module):
    """FFCResNetGenerator (Big LaMa by default): its `model` Sequential has the official
    indices, so `state_dict()` has the official keys."""

    def __init__(self, ngf=64, n_downsampling=3, n_blocks=18, ratio=0.75, max_features=1024):
        super().__init__()
        width = lambda m: min(max_features, ngf * m)  # noqa: E731
        layers = [nn.ReflectionPad2d(3), FFCBNAct(4, ngf, 7, 0, 0)]
        for i in range(n_downsampling):
            last = i == n_downsampling - 1
            layers.append(FFCBNAct(width(2 ** i), width(2 ** (i + 1)), 3, 0,
                                   ratio if last else 0, stride=2, padding=1))
        layers += [FFCResnetBlock(width(2 ** n_downsampling), ratio) for _ in range(n_blocks)]
        layers.append(Concat())
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            layers += [nn.ConvTranspose2d(width(mult), width(mult // 2), 3, 2, 1,
                                          output_padding=1),
                       nn.BatchNorm2d(width(mult // 2)), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Sigmoid()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        y = self.model[1]((self.model[0](x), None))  # the stem takes a (local, global) pair
        for layer in list(self.model)[2:]:
            y = layer(y)
        return y  # [B, 3, H, W]


def randomise(model, seed=0):
    """Random weights and BatchNorm statistics, as a trained model has; the output convolution
    is then scaled so that the logits of a random input have standard deviation 2."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0, (2 / fan_in) ** 0.5, generator=g)
                if m.bias is not None:
                    m.bias.normal_(0, 0.1, generator=g)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.normal_(1, 0.1, generator=g)
                m.bias.normal_(0, 0.1, generator=g)
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(1, 1.2, generator=g)
        model.eval()
        out_conv = model.model[-2]
        sigmoid, model.model[-1] = model.model[-1], nn.Identity()
        logits = model(torch.rand(1, 4, 64, 64, generator=g))
        model.model[-1] = sigmoid
        out_conv.weight.mul_(2 / logits.std())
        out_conv.bias.zero_()
    return model


def torch_inpaint(model, image, mask, dtype=torch.float32):
    """Official predict on an already 8-divisible photo: masked input, composite, on the
    model's device (image [H, W, 3] and mask [H, W] numpy in, [H, W, 3] numpy out)."""
    device = next(model.parameters()).device
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype,
                                                 enabled=dtype != torch.float32):
        x = torch.from_numpy(image).to(device).permute(2, 0, 1)[None]  # [1, 3, H, W]
        m = torch.from_numpy(mask).to(device)[None, None]  # [1, 1, H, W]
        pred = model(torch.cat([x * (1 - m), m], dim=1)).float()
        return (m * pred + (1 - m) * x)[0].permute(1, 2, 0).cpu().numpy()


def from_arrays(arrays: dict) -> LamaGenerator:
    """Big LaMa in eval mode with the weights of a state dict of numpy arrays."""
    model = LamaGenerator()
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()})
    return model.eval()
