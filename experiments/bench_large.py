"""Large photos with Big LaMa (random weights) on the current JAX backend: the
high-resolution strategies, refinement, and the exported artifacts.

    python experiments/bench_large.py strategies   # a 3000x4000 photo, four holes far apart
    python experiments/bench_large.py refine       # refinement of a 1000x1500 photo
    python experiments/bench_large.py export       # StableHLO / SavedModel at 256 and 512 px

Each measurement runs in its own process, so its peak resident memory (ru_maxrss) is its own;
times are wall-clock seconds of one call including compilation ("first") and of a second call
("again"; refinement, minutes long on a CPU, is called once). A run whose XLA buffers alone would exceed --max-gib is not started: the table
gives XLA's estimate instead. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from bench_inference import random_variables  # experiments/bench_inference.py
from lama_jax.export import export_stablehlo, save_saved_model
from lama_jax.inpaint import Inpainter
from lama_jax.models.generator import BIG_LAMA
from lama_jax.xla_flags import enable_cpu_onednn, keep_freed_memory

GIB = 2 ** 30


def photo(h: int, w: int, holes: int) -> tuple[np.ndarray, np.ndarray]:
    """A random photo and `holes` boxes of a 20th of its area each, in far-apart cells."""
    rng = np.random.default_rng(0)
    image = rng.random((h, w, 3), dtype=np.float32)
    mask = np.zeros((h, w), np.float32)
    cells = [(0.2, 0.2), (0.2, 0.7), (0.7, 0.25), (0.7, 0.75)][:holes]
    bh, bw = int(h / np.sqrt(20)), int(w / np.sqrt(20))
    for cy, cx in cells:
        top, left = int(cy * h - bh / 2), int(cx * w - bw / 2)
        mask[max(top, 0):top + bh, max(left, 0):left + bw] = 1
    return image, mask


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # kB on Linux


def _timed(fn, calls: int = 2) -> tuple[float, float]:
    """(first, again) seconds of `calls` calls of `fn` (again: NaN for one call)."""
    times = [float("nan")] * 2
    for i in range(calls):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    return times[0], times[1]


def _xla_gib(inpainter: Inpainter, shape: tuple[int, int]) -> float:
    """XLA's estimate of one plain pass's buffers (arguments, outputs, temporaries) at `shape`
    padded, in GiB."""
    h, w = (-(-n // inpainter.modulo) * inpainter.modulo for n in shape)
    compiled = inpainter._apply.lower(inpainter.variables, jnp.zeros((1, h, w, 3)),
                                      jnp.zeros((1, h, w, 1))).compile()
    memory = compiled.memory_analysis()
    return (memory.temp_size_in_bytes + memory.argument_size_in_bytes
            + memory.output_size_in_bytes) / GIB


def measure(kind: str, arg: str, max_gib: float) -> dict:
    """One measurement in this process (see `main`)."""
    inpainter = Inpainter(BIG_LAMA, random_variables(BIG_LAMA))
    calls = 2
    if kind == "strategy":
        image, mask = photo(3000, 4000, 4)
        options = dict(hd_strategy=arg)
        if arg == "original" and (need := _xla_gib(inpainter, image.shape[:2])) > max_gib:
            return {"skipped": f"XLA needs {need:.0f} GiB"}
    elif kind == "refine":
        image, mask = photo(1000, 1500, 2)
        options = dict(refine=arg == "refine")
        calls = 1 if options["refine"] else 2
    else:  # export: arg = "format:size"
        fmt, size = arg.split(":")
        image, mask = photo(int(size), int(size), 1)
        return _measure_export(inpainter, fmt, image, mask)
    first, again = _timed(lambda: inpainter(image, mask, **options), calls)
    return {"first": first, "again": again, "peak_gib": _peak_gib()}


def _measure_export(inpainter: Inpainter, fmt: str, image: np.ndarray, mask: np.ndarray) -> dict:
    size = image.shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "artifact")
        start = time.perf_counter()
        if fmt == "stablehlo":
            with open(path, "wb") as f:
                f.write(export_stablehlo(BIG_LAMA, inpainter.variables, size).serialize())
            artifact_mb = os.path.getsize(path) / 2 ** 20
            with open(path, "rb") as f:
                exported = jax.export.deserialize(f.read())
            call = lambda: np.asarray(exported.call(image, mask))  # noqa: E731
        elif fmt == "saved_model":
            import tensorflow as tf
            save_saved_model(path, BIG_LAMA, inpainter.variables, size)
            artifact_mb = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path)
                              for f in fs) / 2 ** 20
            serve = tf.saved_model.load(path).signatures["serving_default"]
            call = lambda: serve(image=tf.constant(image), mask=tf.constant(mask))[  # noqa: E731
                "inpainted"].numpy()
        else:  # the Inpainter itself, for comparison
            artifact_mb = float("nan")
            call = lambda: inpainter(image, mask)  # noqa: E731
        made = time.perf_counter() - start
        first, _ = _timed(call)
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            call()
            runs.append(time.perf_counter() - start)
    return {"export_s": made, "artifact_mb": artifact_mb, "first": first,
            "median": statistics.median(runs), "peak_gib": _peak_gib()}


def _child(kind: str, arg: str, max_gib: float) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, arg, "--max-gib",
                          str(max_gib)], capture_output=True, text=True)
    if out.returncode:
        return {"skipped": f"exit {out.returncode}: " + (out.stderr.strip().splitlines()
                                                         or ["?"])[-1][:80]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fmt(result: dict, *keys: str) -> str:
    if "skipped" in result:
        return " | ".join([result["skipped"]] + ["-"] * (len(keys) - 1))
    return " | ".join("-" if result[k] != result[k] else  # NaN: not measured
                      f"{result[k]:.1f}" if k != "peak_gib" else f"{result[k]:.2f}" for k in keys)


def main() -> None:
    """Runs the chosen benchmark, one process per row, and prints its table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", choices=["strategies", "refine", "export"])
    parser.add_argument("--child", nargs=2, metavar=("KIND", "ARG"), help=argparse.SUPPRESS)
    parser.add_argument("--max-gib", type=float, default=20.0,
                        help="do not start a run whose XLA buffers would exceed this")
    args = parser.parse_args()
    enable_cpu_onednn()
    keep_freed_memory()
    if args.child:
        print(json.dumps(measure(*args.child, args.max_gib)))
        return
    print(f"# Big LaMa (random weights), {jax.default_backend()} "
          f"({jax.devices()[0].device_kind}), jax {jax.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} CPU threads; seconds, peak resident GiB of the process")
    if args.what == "strategies":
        print("| 3000x4000, 4 holes of 5 % | first call s | second call s | peak GiB |")
        print("|---|---:|---:|---:|")
        for strategy in ("resize", "crop", "original"):
            result = _child("strategy", strategy, args.max_gib)
            print(f"| {strategy} | {_fmt(result, 'first', 'again', 'peak_gib')} |", flush=True)
    elif args.what == "refine":
        print("| 1000x1500, 2 holes of 5 % | first call s | second call s | peak GiB |")
        print("|---|---:|---:|---:|")
        for mode in ("plain", "refine"):
            result = _child("refine", mode, args.max_gib)
            print(f"| {mode} | {_fmt(result, 'first', 'again', 'peak_gib')} |", flush=True)
    else:
        print("| form | size | export s | artifact MiB | first call s | median s | peak GiB |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for size in (256, 512):
            for fmt in ("inpainter", "stablehlo", "saved_model"):
                result = _child("export", f"{fmt}:{size}", args.max_gib)
                print(f"| {fmt} | {size} | "
                      f"{_fmt(result, 'export_s', 'artifact_mb', 'first', 'median', 'peak_gib')} |",
                      flush=True)


if __name__ == "__main__":
    main()
