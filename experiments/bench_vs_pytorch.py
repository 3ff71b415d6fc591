"""Big LaMa inference here against PyTorch on the same machine, side by side.

    pip install torch          # any recent release; the CPU build is enough
    python experiments/bench_vs_pytorch.py --sizes 256 512 --repeats 9
    python experiments/bench_vs_pytorch.py --sizes 256 512 --dtype bfloat16
    python experiments/bench_vs_pytorch.py --memory --sizes 512 1024
    python experiments/bench_vs_pytorch.py --xla-defaults   # without the per-CPU XLA options
    python experiments/bench_vs_pytorch.py --no-huge-pages  # malloc on 4 KiB pages only
    python experiments/bench_vs_pytorch.py --device gpu --sizes 256 512 1024  # one GPU

The PyTorch side is LaMa's published generator rebuilt in `lama_torch.py`, with random weights
and BatchNorm statistics that become ours through `lama_jax.convert.convert_generator`, exactly
as an official checkpoint would. The output convolution is scaled so that the sigmoid does not
saturate (random weights otherwise give logits in the hundreds, where every output is exactly
0 or 1 and any comparison passes).

Each side runs in a process of its own (so that neither framework's threads and allocations
touch the other's), started with the same malloc settings: `keep_freed_memory()`, which the
README tells a Python user of lama_jax to call and which speeds PyTorch up as well, or glibc's
defaults with `--no-keep-memory`; and transparent huge pages for the heap
(`GLIBC_TUNABLES=glibc.malloc.hugetlb=1` in both processes' environment, as the README tells a
Linux user), or not with `--no-huge-pages`. The PyTorch process imports no JAX and the JAX
process no PyTorch. Timing: each size alternates one PyTorch call (`torch.inference_mode`, eval mode,
`--threads` intra-op threads) and one `Inpainter` call as the README tells a Python user to run
it (oneDNN flag set, compiled with the options `cpu_inference_options()` picks for this processor,
or XLA's own with `--xla-defaults`), on the same random image and mask, after one warm-up call each, and
reports the medians, their ratio, the median of the ratios of the calls made one after the
other (less affected by the machine's load drifting during the run) and the largest
difference between the two outputs.
`--dtype bfloat16` runs both in bfloat16 (PyTorch under CPU autocast, the Fourier transforms in
float32 on both sides) and adds the difference from our float32 output on scikit-image's sample
photos with wide masks (the masks and photos need the data extra, `pip install -e '.[data]'`):
what bfloat16 costs in accuracy.

`--memory`: a fresh pair of processes per size, two calls each; reports the peak resident
memory of each process (weights included), or with `--device gpu` the peak GPU memory each
framework's allocator held.

`--device gpu`: both sides on the machine's first CUDA GPU (PyTorch with CUDA, jaxlib with
its CUDA plugin), JAX without preallocating GPU memory so that the two fit side by side, and
autocast on the GPU for bfloat16. Each timed call is still the whole of what a user calls:
photo and mask in from host memory, the result back in host memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile

import numpy as np

from lama_jax.xla_flags import HUGE_PAGES_TUNABLE, enable_cpu_onednn, keep_freed_memory

SIDES = ("torch", "jax")


def random_input(size: int):
    """The same random image [size, size, 3] and mask [size, size] for both sides."""
    rng = np.random.default_rng(size)
    image = rng.random((size, size, 3), dtype=np.float32)
    return image, (rng.random((size, size)) > 0.7).astype(np.float32)


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


def serve(side: str, weights: str, dtype: str, threads: int, xla_defaults: bool,
          device: str) -> None:
    """A worker process: builds one side from the state dict in `weights` and answers the
    parent's commands, one per stdin line, each with one "ok ..." stdout line:
    `run SIZE OUT` (one call on `random_input(SIZE)`, output saved to OUT; answers the
    seconds), `photos SIZE OUT` (outputs on `sample_photo_pairs(SIZE)`; the JAX side also
    saves its float32 outputs to OUT.float32.npy when `dtype` is bfloat16) and `peak` (peak
    resident GiB, or on a GPU the framework's peak GiB of GPU memory)."""
    import time

    arrays = dict(np.load(weights))
    if side == "torch":
        import torch

        import lama_torch

        torch.set_num_threads(threads)
        if device == "gpu" and not torch.cuda.is_available():
            raise SystemExit("bench_vs_pytorch: --device gpu, but PyTorch sees no CUDA GPU")
        where = torch.device("cuda" if device == "gpu" else "cpu")
        model, torch_dtype = lama_torch.from_arrays(arrays).to(where), getattr(torch, dtype)
        call = lambda image, mask: lama_torch.torch_inpaint(model, image, mask, torch_dtype)  # noqa: E731
        reference = None
        version = (f"torch {torch.__version__} on {torch.cuda.get_device_name(where)}"
                   if device == "gpu" else
                   f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    else:
        enable_cpu_onednn()  # before JAX starts
        import jax

        from lama_jax.convert import convert_generator
        from lama_jax.inpaint import Inpainter

        config, variables = convert_generator(arrays)
        options = {} if xla_defaults else None  # None: those chosen for this processor
        call = Inpainter(config, variables, dtype=None if dtype == "float32" else dtype,
                         compiler_options=options)
        reference = (Inpainter(config, variables, compiler_options=options)
                     if dtype != "float32" else None)
        if jax.default_backend() != device:
            raise SystemExit(f"bench_vs_pytorch: --device {device}, but JAX runs on "
                             f"{jax.default_backend()}")
        version = (f"jax {jax.__version__} on {jax.devices()[0].device_kind} "
                   f"(XLA options {call.compiler_options or 'default'})")
    del arrays
    print("ok", version, flush=True)
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "run":
            image, mask = random_input(int(rest[0]))
            start = time.perf_counter()
            result = call(image, mask)
            elapsed = time.perf_counter() - start
            np.save(rest[1], result)
            print("ok", elapsed, flush=True)
        elif command == "photos":
            pairs = sample_photo_pairs(int(rest[0]))
            np.save(rest[1], np.stack([call(p, h) for p, h in pairs]))
            if reference is not None:
                np.save(rest[1] + ".float32.npy", np.stack([reference(p, h) for p, h in pairs]))
            print("ok", flush=True)
        elif command == "peak":
            if device == "cpu":
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 2 ** 10
            elif side == "torch":
                peak = torch.cuda.max_memory_allocated()
            else:
                peak = jax.devices()[0].memory_stats()["peak_bytes_in_use"]
            print("ok", peak / 2 ** 30, flush=True)


class Worker:
    """The parent's handle on one `serve` process."""

    def __init__(self, side: str, weights: str, args: argparse.Namespace):
        self.side = side
        command = [sys.executable, os.path.abspath(__file__), "--serve", side, "--weights",
                   weights, "--dtype", args.dtype, "--threads", str(args.threads)]
        if args.no_keep_memory:
            command.append("--no-keep-memory")
        if args.xla_defaults:
            command.append("--xla-defaults")
        command += ["--device", args.device]
        env = dict(os.environ)
        if args.device == "cpu":  # on a machine with a GPU too
            env.update(JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
        else:  # JAX takes 75 % of the GPU's memory by default; PyTorch needs some
            env.update(JAX_PLATFORMS="cuda", XLA_PYTHON_CLIENT_PREALLOCATE="false")
        if not args.no_huge_pages:
            env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"),
                                                           HUGE_PAGES_TUNABLE]))
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=env)
        self.version = self._answer()

    def _answer(self) -> str:
        for line in self.process.stdout:
            if line.startswith("ok"):
                return line[2:].strip()
        raise SystemExit(f"bench_vs_pytorch: the {self.side} worker exited with "
                         f"{self.process.wait()}")

    def ask(self, command: str) -> str:
        """Sends one command; returns the worker's answer."""
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        """Ends the worker."""
        self.process.stdin.close()
        self.process.wait()


def main() -> None:
    """Times both sides alternately and prints the table (or, with --memory, peak memory)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="PyTorch's intra-op threads (XLA uses every core)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu",
                        help="where both sides run (gpu: the first CUDA GPU)")
    parser.add_argument("--memory", action="store_true",
                        help="peak memory per framework and size, each in its own process")
    parser.add_argument("--no-keep-memory", action="store_true",
                        help="glibc's malloc defaults on both sides (for comparison)")
    parser.add_argument("--xla-defaults", action="store_true",
                        help="compile lama_jax with XLA's default options (for comparison)")
    parser.add_argument("--no-huge-pages", action="store_true",
                        help="no transparent huge pages for malloc on either side (for "
                             "comparison)")
    parser.add_argument("--serve", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    kept = not args.no_keep_memory and keep_freed_memory()  # before either side starts
    if args.serve:
        serve(args.serve, args.weights, args.dtype, args.threads, args.xla_defaults,
              args.device)
        return

    import lama_torch

    arrays = {k: v.numpy() for k, v in lama_torch.randomise(lama_torch.LamaGenerator())
              .state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "generator.npz")
        np.savez(weights, **arrays)
        start = lambda: {side: Worker(side, weights, args) for side in SIDES}  # noqa: E731
        workers = start()
        versions = (f"{workers['torch'].version}, {workers['jax'].version}; "
                    f"{platform.machine()}, {os.cpu_count()} CPU threads; freed memory "
                    f"{'kept' if kept else 'returned'}, huge pages "
                    f"{'not asked' if args.no_huge_pages else 'asked'}")
        if args.memory:
            what = "GPU memory" if args.device == "gpu" else "resident memory"
            print(f"# Big LaMa, random weights, batch 1, {args.dtype}; {versions}; peak "
                  f"{what} of a process that loads the model and runs two calls")
            print("| size | PyTorch GiB | lama_jax GiB |")
            print("|---:|---:|---:|")
            for i, size in enumerate(args.sizes):
                if i:  # a fresh pair per size: a peak is the whole process's
                    workers = start()
                peaks = []
                for side in SIDES:
                    for _ in range(2):
                        workers[side].ask(f"run {size} {tmp}/out.npy")
                    peaks.append(float(workers[side].ask("peak")))
                    workers[side].close()
                print(f"| {size} | {peaks[0]:.2f} | {peaks[1]:.2f} |", flush=True)
            return

        print(f"# Big LaMa, random weights, batch 1, {args.dtype}; {versions}; median of "
              f"{args.repeats} alternating calls after one warm-up each")
        header = ("| size | PyTorch s | lama_jax s | PyTorch / lama_jax | paired ratios, median |"
                  " max abs diff |")
        if args.dtype != "float32":
            header += " photos: ours vs float32, max / mean | PyTorch vs float32, max / mean |"
        print(header)
        print("|---:" * (header.count("|") - 1) + "|")
        for size in args.sizes:
            outputs = {side: f"{tmp}/{side}.npy" for side in SIDES}
            for side in SIDES:  # warm-up
                workers[side].ask(f"run {size} {outputs[side]}")
            diff = float(np.abs(np.load(outputs["jax"]) - np.load(outputs["torch"])).max())
            times = {side: [] for side in SIDES}
            for _ in range(args.repeats):
                for side in SIDES:
                    times[side].append(float(workers[side].ask(f"run {size} {outputs[side]}")))
            t, j = statistics.median(times["torch"]), statistics.median(times["jax"])
            paired = statistics.median(a / b for a, b in zip(times["torch"], times["jax"]))
            row = f"| {size} | {t:.3f} | {j:.3f} | {t / j:.2f}x | {paired:.2f}x | {diff:.1e} |"
            if args.dtype != "float32":
                for side in SIDES:
                    workers[side].ask(f"photos {size} {outputs[side]}")
                exact = np.load(outputs["jax"] + ".float32.npy")  # [photos, size, size, 3]
                for side in ("jax", "torch"):
                    error = np.abs(np.load(outputs[side]) - exact)
                    row += f" {error.max():.1e} / {error.mean():.1e} |"
            print(row, flush=True)
        for worker in workers.values():
            worker.close()


if __name__ == "__main__":
    main()
