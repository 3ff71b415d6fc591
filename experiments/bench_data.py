"""Mask generator and input pipeline throughput on this machine.

    python experiments/bench_data.py [--masks 2000] [--batches 30]

Prints two Markdown tables: masks per second per preset (one Python thread, the way the
official generator was measured), and training-pipeline samples per second at 256 px on the
embedded sample photos with 0 and 2 worker processes.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import time

import numpy as np

from lama_jax.data.masks import PRESETS, TRAIN_PRESET, mixed_mask, preset
from lama_jax.data.pipeline import train_dataset
from lama_jax.data.sources import sample_photos

OFFICIAL_STATS = pathlib.Path(__file__).resolve().parents[2] / "shared/reference/official_mask_stats.json"


def masks_per_second(name: str, n: int) -> float:
    """Masks per second of preset `name` at its resolution (256 for training)."""
    size = 256 if name == TRAIN_PRESET else int(name.rsplit("_", 1)[1])
    params, rng = preset(name), np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(n):
        mixed_mask(rng, size, size, params)
    return n / (time.perf_counter() - start)


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
    print("| preset | masks/s (ours, 1 thread) | masks/s (official OpenCV generator) |")
    print("|---|---:|---:|")
    for name in PRESETS:
        ref = official.get("train_256" if name == TRAIN_PRESET else name, {}).get("masks_per_s")
        print(f"| {name} | {masks_per_second(name, args.masks):.0f} | "
              f"{f'{ref:.0f}' if ref else '-'} |", flush=True)
    print("\n| pipeline (256 px, sample photos, batch 16) | samples/s |")
    print("|---|---:|")
    for workers in (0, 2):
        print(f"| {workers} workers | {pipeline_samples_per_second(workers, args.batches):.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
