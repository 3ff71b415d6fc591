"""Inference speed of Big LaMa (or another generator; random weights), batch 1, on the current
JAX backend.

    python experiments/bench_inference.py     # 256, 512, 1024 px; each spectral impl
    python experiments/bench_inference.py --sizes 256 512 --repeats 9 --impls cpu fft
    python experiments/bench_inference.py --model pconv --sizes 512   # the PConv baseline
    python experiments/bench_inference.py --xla-defaults   # without the per-CPU XLA options

Prints a Markdown table of the median milliseconds per image (after one warm-up call that
compiles), the compile time and XLA's FLOP count of the call. The timed call is the same jitted
function `Inpainter` uses, on device-resident inputs, synchronised with `block_until_ready`.
At each size the spectral implementations are compiled first and then called in turn, one call
each per round, so that a drift of the machine's speed during the run reaches all of them alike;
the last column is the median over rounds of the first implementation's time over this one's
(above 1: this one is faster).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import get_args

import jax
import jax.numpy as jnp
import numpy as np

from lama_jax.inpaint import Inpainter
from lama_jax.models.ffc import SpectralImpl
from lama_jax.models.generator import BIG_LAMA, LAMA_FOURIER, LAMA_REGULAR, PCONV, build_generator
from lama_jax.models.variables import param_count
from lama_jax.xla_flags import enable_cpu_onednn, huge_pages_asked, keep_freed_memory
from xla_cost import compiled_flops  # experiments/xla_cost.py

MODELS = {"big": BIG_LAMA, "fourier": LAMA_FOURIER, "regular": LAMA_REGULAR, "pconv": PCONV}


def random_variables(config, seed: int = 0):
    """Freshly initialised generator variables (weights do not depend on the input size)."""
    side = max(64, config.min_side)
    x = jnp.zeros((1, side, side, config.input_nc), jnp.float32)
    return jax.jit(lambda k: build_generator(config).init(k, x))(jax.random.key(seed))


def time_inpainters(inpainters: list[Inpainter], size: int, repeats: int
                    ) -> list[tuple[float, float, float, float]]:
    """Per inpainter at size x size: (compile + first run seconds, median seconds per image,
    median paired ratio of the first inpainter's time to this one's, XLA's FLOPs).

    The inpainters are compiled first, then called in turn `repeats` times."""
    rng = np.random.default_rng(0)
    image = jax.device_put(rng.random((1, size, size, 3), dtype=np.float32))  # [1, S, S, 3]
    mask = jax.device_put((rng.random((1, size, size, 1)) > 0.7).astype(np.float32))

    def seconds(inpainter: Inpainter) -> float:
        start = time.perf_counter()
        inpainter._apply(inpainter.variables, image, mask).block_until_ready()
        return time.perf_counter() - start

    firsts = [seconds(inpainter) for inpainter in inpainters]
    rounds = [[seconds(inpainter) for inpainter in inpainters] for _ in range(repeats)]
    rows = []
    for i, inpainter in enumerate(inpainters):
        flops = compiled_flops(inpainter._apply.lower(inpainter.variables, image, mask).compile())
        rows.append((firsts[i], statistics.median(r[i] for r in rounds),
                     statistics.median(r[0] / r[i] for r in rounds), flops))
    return rows


def main() -> None:
    """Runs the benchmark and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--impls", nargs="+", choices=get_args(SpectralImpl),
                        help="spectral implementations (default: all; cpu only on a CPU)")
    parser.add_argument("--model", choices=sorted(MODELS), default="big")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-onednn", action="store_true",
                        help="keep XLA:CPU's default kernels (for comparison)")
    parser.add_argument("--no-keep-memory", action="store_true",
                        help="leave glibc's malloc as it is (for comparison)")
    parser.add_argument("--xla-defaults", action="store_true",
                        help="compile with XLA's default options, not those chosen for this "
                             "processor (for comparison)")
    args = parser.parse_args()
    onednn = not args.no_onednn and enable_cpu_onednn()
    kept = not args.no_keep_memory and keep_freed_memory()  # both before JAX starts
    if args.impls is None:
        args.impls = [i for i in get_args(SpectralImpl)
                      if i != "cpu" or jax.default_backend() == "cpu"]

    config = MODELS[args.model]
    variables = random_variables(config)
    dtype = None if args.dtype == "float32" else jnp.bfloat16
    device = jax.devices()[0]
    print(f"# {args.model} ({config.kind}, {param_count(variables):,} parameters) inference, "
          f"batch 1, {args.dtype}, median of {args.repeats}")
    print(f"# backend {jax.default_backend()} ({device.device_kind}), {jax.device_count()} "
          f"device(s), jax {jax.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} CPU threads, oneDNN {'on' if onednn else 'off'}, freed memory "
          f"{'kept' if kept else 'returned'}, huge pages "
          f"{'asked' if huge_pages_asked() else 'not asked'}"
          + (f", conv_impl {'cpu' if jax.default_backend() == 'cpu' else 'xla'}"
             if config.kind != "pconv_unet" else ""))
    fourier = config.kind == "ffc_resnet"
    impls = args.impls if fourier else ["fft"]  # the others have no spectral transform
    inpainters = [Inpainter(config, variables, spectral_impl=impl, dtype=dtype,
                            compiler_options={} if args.xla_defaults else None)
                  for impl in impls]
    print(f"# XLA options: {inpainters[0].compiler_options or 'default'}")
    print(f"| size | spectral impl | ms / image | first call (compile) s | GFLOP "
          f"| paired ratio to {impls[0] if fourier else '-'} |")
    print("|---:|---|---:|---:|---:|---:|")
    for size in args.sizes:
        for impl, (first, median, ratio, flops) in zip(
                impls, time_inpainters(inpainters, size, args.repeats)):
            print(f"| {size} | {impl if fourier else '-'} | {median * 1e3:.1f} | {first:.1f} "
                  f"| {flops / 1e9:.0f} | {ratio:.3f} |", flush=True)


if __name__ == "__main__":
    main()
