"""Inference speed of Big LaMa (or another generator; random weights), batch 1, on the current
JAX backend.

    python experiments/bench_inference.py     # 256, 512, 1024 px; each spectral impl
    python experiments/bench_inference.py --sizes 256 512 --repeats 5 --impls fft
    python experiments/bench_inference.py --model pconv --sizes 512   # the PConv baseline
    python experiments/bench_inference.py --xla-defaults   # without the per-CPU XLA options

Prints a Markdown table of the median milliseconds per image (after one warm-up call that
compiles), the compile time and XLA's FLOP count of the call. The timed call is the same jitted function `Inpainter` uses,
on device-resident inputs, synchronised with `block_until_ready`.
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


def time_inpainter(inpainter: Inpainter, size: int, repeats: int) -> tuple[float, float, float]:
    """(compile + first run seconds, median seconds per image, XLA's FLOPs) at size x size."""
    rng = np.random.default_rng(0)
    image = jax.device_put(rng.random((1, size, size, 3), dtype=np.float32))
    mask = jax.device_put((rng.random((1, size, size, 1)) > 0.7).astype(np.float32))
    start = time.perf_counter()
    inpainter._apply(inpainter.variables, image, mask).block_until_ready()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        inpainter._apply(inpainter.variables, image, mask).block_until_ready()
        times.append(time.perf_counter() - start)
    flops = compiled_flops(inpainter._apply.lower(inpainter.variables, image, mask).compile())
    return first, statistics.median(times), flops


def main() -> None:
    """Runs the benchmark and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--impls", nargs="+", choices=get_args(SpectralImpl),
                        help="spectral implementations (default: all; cpu only on a CPU)")
    parser.add_argument("--model", choices=sorted(MODELS), default="big")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--repeats", type=int, default=3)
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
    print("| size | spectral impl | ms / image | first call (compile) s | GFLOP |")
    print("|---:|---|---:|---:|---:|")
    fourier = config.kind == "ffc_resnet"
    for impl in args.impls if fourier else ["fft"]:  # the others have no spectral transform
        inpainter = Inpainter(config, variables, spectral_impl=impl, dtype=dtype,
                              compiler_options={} if args.xla_defaults else None)
        print(f"# XLA options: {inpainter.compiler_options or 'default'}")
        for size in args.sizes:
            first, median, flops = time_inpainter(inpainter, size, args.repeats)
            print(f"| {size} | {impl if fourier else '-'} | {median * 1e3:.1f} | {first:.1f} "
                  f"| {flops / 1e9:.0f} |", flush=True)


if __name__ == "__main__":
    main()
