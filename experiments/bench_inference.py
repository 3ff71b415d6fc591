"""Big LaMa inference speed (random weights), batch 1, on the current JAX backend.

    python experiments/bench_inference.py                     # 256, 512, 1024 px; fft and dft
    python experiments/bench_inference.py --sizes 256 512 --repeats 5 --impls fft

Prints a Markdown table of the median milliseconds per image (after one warm-up call that
compiles) and the compile time. The timed call is the same jitted function `Inpainter` uses,
on device-resident inputs, synchronised with `block_until_ready`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from lama_jax.inpaint import Inpainter
from lama_jax.models.generator import BIG_LAMA, LAMA_FOURIER, build_generator
from lama_jax.xla_flags import enable_cpu_onednn


def random_variables(config, seed: int = 0):
    """Freshly initialised generator variables (weights do not depend on the input size)."""
    x = jnp.zeros((1, 64, 64, config.input_nc), jnp.float32)
    return jax.jit(lambda k: build_generator(config).init(k, x))(jax.random.key(seed))


def time_inpainter(inpainter: Inpainter, size: int, repeats: int) -> tuple[float, float]:
    """(compile + first run seconds, median seconds per image) at size x size."""
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
    return first, statistics.median(times)


def main() -> None:
    """Runs the benchmark and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--impls", nargs="+", default=["fft", "dft"], choices=["fft", "dft"])
    parser.add_argument("--model", choices=["big", "fourier"], default="big")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-onednn", action="store_true",
                        help="keep XLA:CPU's default kernels (for comparison)")
    args = parser.parse_args()
    onednn = not args.no_onednn and enable_cpu_onednn()

    config = BIG_LAMA if args.model == "big" else LAMA_FOURIER
    variables = random_variables(config)
    dtype = None if args.dtype == "float32" else jnp.bfloat16
    device = jax.devices()[0]
    print(f"# {args.model} LaMa inference, batch 1, {args.dtype}, median of {args.repeats}")
    print(f"# backend {jax.default_backend()} ({device.device_kind}), {jax.device_count()} "
          f"device(s), jax {jax.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} CPU threads, oneDNN {'on' if onednn else 'off'}, conv_impl "
          f"{'shift_sum' if jax.default_backend() == 'cpu' else 'xla'}")
    print("| size | spectral impl | ms / image | first call (compile) s |")
    print("|---:|---|---:|---:|")
    for impl in args.impls:
        inpainter = Inpainter(config, variables, spectral_impl=impl, dtype=dtype)
        for size in args.sizes:
            first, median = time_inpainter(inpainter, size, args.repeats)
            print(f"| {size} | {impl} | {median * 1e3:.1f} | {first:.1f} |", flush=True)


if __name__ == "__main__":
    main()
