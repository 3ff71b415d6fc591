"""Big LaMa inference here against PyTorch on the same machine, side by side.

    pip install torch          # any recent release; the CPU build is enough
    python experiments/bench_vs_pytorch.py --sizes 256 512 --repeats 5
    python experiments/bench_vs_pytorch.py --sizes 256 512 --dtype bfloat16
    python experiments/bench_vs_pytorch.py --memory --sizes 512 1024

The PyTorch side is LaMa's published generator (FFCResNetGenerator: reflect-padded FFC
convolutions, the spectral transform with rfftn/irfftn "ortho", Big LaMa's 18 blocks), written
for this script from the paper's description and the official state-dict layout, not copied
from the official code. Its random weights and BatchNorm statistics become ours through
`lama_jax.convert.convert_generator`, exactly as an official checkpoint would. The output
convolution is scaled so that the sigmoid does not saturate (random weights otherwise give
logits in the hundreds, where every output is exactly 0 or 1 and any comparison passes).

Timing: each size alternates one PyTorch call (`torch.inference_mode`, eval mode) and one
`Inpainter` call, as the README tells a Python user to run it (oneDNN flag set), on a random
image and mask, and reports the medians and their ratio, with the largest difference between
the two outputs. `--dtype bfloat16` runs both in bfloat16 (PyTorch under CPU autocast, the
Fourier transforms in float32 on both sides) and adds the difference from our float32 output on
scikit-image's sample photos with wide masks: what bfloat16 costs in accuracy.

`--memory`: each framework and size in its own process, one warm-up call and one timed call;
reports the peak resident memory of the process (weights included).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn


# ------------------------------------------------------------------------------------------
# LaMa's generator in PyTorch (NCHW), with the official module names.

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
    """Official predict on an already 8-divisible photo: masked input, composite."""
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype,
                                                 enabled=dtype != torch.float32):
        x = torch.from_numpy(image).permute(2, 0, 1)[None]
        m = torch.from_numpy(mask)[None, None]
        pred = model(torch.cat([x * (1 - m), m], dim=1)).float()
        return (m * pred + (1 - m) * x)[0].permute(1, 2, 0).numpy()


def sample_photo_pairs(size: int, count: int = 4):
    """`count` of scikit-image's colour sample photos cropped and resized to size x size, each
    with a wide mask of LaMa's training mixture: [(image [size, size, 3], mask [size, size])]."""
    from PIL import Image

    from lama_jax.data.masks import mixed_mask, preset
    from lama_jax.data.sources import sample_photos
    from lama_jax.images import to_rgb_float

    pairs = []
    photos = [r["image"] for r in sample_photos(("astronaut", "chelsea", "coffee", "rocket"))]
    for i, photo in enumerate(photos[:count]):
        side = min(photo.shape[:2])
        photo = Image.fromarray(photo[:side, :side]).resize((size, size), Image.BICUBIC)
        mask = mixed_mask(np.random.default_rng(i), size, size, preset("abl-04-256-mh-dist"))
        pairs.append((to_rgb_float(photo)[0], np.asarray(mask, np.float32).reshape(size, size)))
    return pairs


# The lama_jax side of `--memory`, run without importing torch (whose import alone holds
# about 0.5 GiB): random Big LaMa weights, two calls of the Inpainter.
_JAX_MEMORY = """
import resource, sys
from lama_jax.xla_flags import enable_cpu_onednn
enable_cpu_onednn()
import numpy as np
sys.path.insert(0, sys.argv[3])
from bench_inference import random_variables  # experiments/bench_inference.py
from lama_jax.inpaint import Inpainter
from lama_jax.models.generator import BIG_LAMA
size, dtype = int(sys.argv[1]), sys.argv[2]
inpainter = Inpainter(BIG_LAMA, random_variables(BIG_LAMA),
                      dtype=None if dtype == "float32" else dtype)
rng = np.random.default_rng(0)
image = rng.random((size, size, 3), dtype=np.float32)
mask = (rng.random((size, size)) > 0.7).astype(np.float32)
for _ in range(2):
    inpainter(image, mask)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20)
"""


def peak_memory(side: str, size: int, dtype: str) -> float:
    """Peak resident GiB of a process that builds one side and runs it twice at `size`."""
    if side == "jax":
        command = [sys.executable, "-c", _JAX_MEMORY, str(size), dtype,
                   os.path.dirname(os.path.abspath(__file__))]
    else:
        command = [sys.executable, __file__, "--sizes", str(size), "--dtype", dtype,
                   "--only", "torch"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    """Times both sides alternately and prints the table (or, with --memory, peak memory)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="PyTorch's intra-op threads (XLA uses every core)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--memory", action="store_true",
                        help="peak memory per framework and size, each in its own process")
    parser.add_argument("--only", choices=["torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch_dtype = getattr(torch, args.dtype)
    model = randomise(LamaGenerator())
    rng = np.random.default_rng(0)
    if args.only:  # the PyTorch side of --memory, without JAX in the process
        image = rng.random((args.sizes[0], args.sizes[0], 3), dtype=np.float32)
        mask = (rng.random(image.shape[:2]) > 0.7).astype(np.float32)
        for _ in range(2):
            torch_inpaint(model, image, mask, torch_dtype)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20)  # KiB -> GiB
        return

    from lama_jax.xla_flags import enable_cpu_onednn

    enable_cpu_onednn()  # before JAX starts
    import jax

    from lama_jax.convert import convert_generator
    from lama_jax.inpaint import Inpainter

    versions = (f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
                f"jax {jax.__version__}; {platform.machine()}, {os.cpu_count()} CPU threads")
    if args.memory:
        print(f"# Big LaMa, random weights, batch 1, {args.dtype}; {versions}; peak resident "
              f"memory of a process that loads the model and runs two calls")
        print("| size | PyTorch GiB | lama_jax GiB |")
        print("|---:|---:|---:|")
        for size in args.sizes:
            t, j = (peak_memory(side, size, args.dtype) for side in ("torch", "jax"))
            print(f"| {size} | {t:.2f} | {j:.2f} |", flush=True)
        return

    state = {k: v.numpy() for k, v in model.state_dict().items()}
    config, variables = convert_generator(state)
    inpainter = Inpainter(config, variables, dtype=None if args.dtype == "float32" else args.dtype)
    calls = {"torch": lambda im, m: torch_inpaint(model, im, m, torch_dtype),
             "jax": lambda im, m: inpainter(im, m)}
    print(f"# Big LaMa, random weights, batch 1, {args.dtype}; {versions}; median of "
          f"{args.repeats} alternating calls after one warm-up each")
    header = "| size | PyTorch s | lama_jax s | PyTorch / lama_jax | max abs diff |"
    if args.dtype != "float32":
        header += " photos: ours vs float32, max / mean | PyTorch vs float32, max / mean |"
    print(header)
    print("|---:" * (header.count("|") - 1) + "|")
    reference = Inpainter(config, variables) if args.dtype != "float32" else None
    for size in args.sizes:
        image = rng.random((size, size, 3), dtype=np.float32)
        mask = (rng.random((size, size)) > 0.7).astype(np.float32)
        ours, theirs = calls["jax"](image, mask), calls["torch"](image, mask)  # warm-up
        diff = float(np.abs(ours - theirs).max())
        times = {"torch": [], "jax": []}
        for _ in range(args.repeats):
            for side, call in calls.items():
                start = time.perf_counter()
                call(image, mask)
                times[side].append(time.perf_counter() - start)
        t, j = statistics.median(times["torch"]), statistics.median(times["jax"])
        row = f"| {size} | {t:.3f} | {j:.3f} | {t / j:.2f}x | {diff:.1e} |"
        if reference is not None:
            errors = {"jax": [], "torch": []}
            for photo, hole in sample_photo_pairs(size):
                exact = reference(photo, hole)
                for side in errors:
                    errors[side].append(np.abs(calls[side](photo, hole) - exact))
            row += "".join(f" {max(e.max() for e in errors[side]):.1e} / "
                           f"{np.mean([e.mean() for e in errors[side]]):.1e} |"
                           for side in ("jax", "torch"))
        print(row, flush=True)


if __name__ == "__main__":
    main()
