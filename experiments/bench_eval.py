"""Evaluation speed: images per second of the per-image metrics (FID features of the result
and the original, LPIPS, SSIM) on the current JAX backend, with random weights.

    python experiments/bench_eval.py                          # 256 and 512 px, batch 8
    python experiments/bench_eval.py --sizes 512 --batch 32 --repeats 5

One step is `lama_jax.scoring.score_batch` on a batch split over all local devices, at the
precision the evaluation uses ("highest"), after a warm-up call that compiles. The table also
gives the host-side cost of one Fréchet distance (SciPy's square root of a 2048x2048 matrix,
paid once for the whole set and once per mask-area bin, whatever the number of images).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import numpy as np

from lama_jax.scoring import MetricNets, score_batch
from lama_jax.metrics.fid import FEATURE_DIM, frechet_distance
from lama_jax.parallel import batch_sharding, make_mesh, replicated
from lama_jax.xla_flags import enable_cpu_onednn, keep_freed_memory


def time_scoring(nets: MetricNets, size: int, batch: int, repeats: int) -> tuple[float, float]:
    """(compile + first step seconds, median seconds per step) at size x size."""
    mesh = make_mesh(devices=jax.local_devices())
    nets = jax.device_put(nets, replicated(mesh))
    rng = np.random.default_rng(0)
    images = jax.device_put([rng.random((batch, size, size, 3), dtype=np.float32)
                             for _ in range(2)] + [np.ones((batch, size, size), np.float32)],
                            batch_sharding(mesh))
    with jax.default_matmul_precision("highest"):
        start = time.perf_counter()
        jax.block_until_ready(score_batch(nets, *images))
        first = time.perf_counter() - start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(score_batch(nets, *images))
            times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def main() -> None:
    """Runs the benchmark and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--batch", type=int, default=8, help="images per step (all devices)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    enable_cpu_onednn()
    keep_freed_memory()
    device = jax.devices()[0]
    print(f"backend {jax.default_backend()} ({device.device_kind}, {jax.local_device_count()} "
          f"local devices), jax {jax.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cpus\n")
    nets = MetricNets.random()  # speed does not depend on the weights
    print("| size | batch | compile + first (s) | step (s) | images/s |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        first, step = time_scoring(nets, size, args.batch, args.repeats)
        print(f"| {size} | {args.batch} | {first:.1f} | {step:.3f} | {args.batch / step:.1f} |",
              flush=True)
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((4 * FEATURE_DIM, FEATURE_DIM)) for _ in range(2))
    start = time.perf_counter()
    frechet_distance(a, b)
    print(f"\nFréchet distance of two 8192x2048 feature sets (host, float64): "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
