"""Mask generator and input pipeline throughput on this machine.

    python experiments/bench_data.py [--masks 2000] [--batches 30]

Prints two Markdown tables: per preset, masks per second (one Python thread, the way the
official generator was measured) and the hole coverage of those masks (mean, quantiles, share
over half the image) beside the official generator's mean where the reference has it; and
training-pipeline samples per second at 256 px on the embedded sample photos with 0 and 2
worker processes.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import time

import numpy as np

from lama_jax.data.masks import PRESET_SIZES, PRESETS, TRAIN_PRESET, mixed_mask, preset
from lama_jax.data.pipeline import train_dataset
from lama_jax.data.sources import sample_photos

OFFICIAL_STATS = pathlib.Path(__file__).resolve().parents[2] / "shared/reference/official_mask_stats.json"


def masks_and_coverage(name: str, n: int) -> tuple[float, np.ndarray]:
    """(masks per second, the n masks' hole fractions) of preset `name` at its resolution."""
    size, params, rng = PRESET_SIZES[name], preset(name), np.random.default_rng(0)
    coverage = np.empty(n)
    start = time.perf_counter()
    for i in range(n):
        coverage[i] = mixed_mask(rng, size, size, params).mean()
    return n / (time.perf_counter() - start), coverage


def pipeline_samples_per_second(workers: int, batches: int, batch_size: int = 16) -> float:
    """Samples per second of the 256 px training pipeline after a 3-batch warm-up."""
    it = iter(train_dataset(sample_photos(), crop_size=256, batch_size=batch_size, seed=0,
                            masks=preset(TRAIN_PRESET), worker_count=workers))
    for _ in range(3):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    """Runs both benchmarks and prints the tables."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--masks", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=30)
    args = parser.parse_args()
    official = json.loads(OFFICIAL_STATS.read_text()) if OFFICIAL_STATS.exists() else {}
    print(f"# {platform.machine()}, {os.cpu_count()} CPU threads, Python {platform.python_version()}")
    print("| preset | masks/s (ours, 1 thread) | masks/s (official) | coverage mean (ours) "
          "| q10 / q50 / q90 | over 50 % | coverage mean (official) |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for name in PRESETS:
        ref = official.get("train_256" if name == TRAIN_PRESET else name, {})
        speed, coverage = masks_and_coverage(name, args.masks)
        quantiles = " / ".join(f"{np.percentile(coverage, q):.3f}" for q in (10, 50, 90))
        known = lambda key, spec: format(ref[key], spec) if key in ref else "-"  # noqa: E731
        print(f"| {name} | {speed:.0f} | {known('masks_per_s', '.0f')} | {coverage.mean():.3f} "
              f"| {quantiles} | {(coverage > 0.5).mean():.3f} | {known('mean', '.3f')} |",
              flush=True)
    print("\n| pipeline (256 px, sample photos, batch 16) | samples/s |")
    print("|---|---:|")
    for workers in (0, 2):
        print(f"| {workers} workers | {pipeline_samples_per_second(workers, args.batches):.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
