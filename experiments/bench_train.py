"""Training throughput of LaMa-Fourier and Big LaMa at 256 px on the current backend.

    python experiments/bench_train.py                        # batch 2 per model (CPU-sized)
    python experiments/bench_train.py --configs big --batch 16 32 64 --dtype bfloat16   # one GPU

Times the full jitted training step (generator and discriminator updates, every loss incl.
the HRF perceptual backbone, random weights) over all local devices on a data-parallel mesh,
after one compiling call. Prints a Markdown table, one row per model and global batch: step
time, images per second, the XLA cost-analysis FLOPs of one step, on known accelerators the
fraction of the chip's dense bf16 matrix throughput that they reach, and memory per device:
XLA's estimate for the compiled step (arguments + outputs + temporaries) and, where the
backend reports it, the measured peak. A batch that does not fit gets an "out of memory" row
and the sweep goes on. `--compile-only` skips the timing (FLOPs and XLA's memory estimate of
large batches, e.g. on a CPU before booking accelerators).

Memory grows by about 1 GiB per image at 256 px (float32, XLA's estimate on CPU), so the
paper's Big LaMa batch of 120 needs several devices: the official run used 15 per GPU.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import sys
import time
from typing import Optional

import jax
import numpy as np

from lama_jax.parallel import global_batch, make_mesh, replicated
from lama_jax.state import backbone_variables, build_networks
from lama_jax.steps import compile_training
from lama_jax.xla_flags import enable_cpu_onednn
from xla_cost import compiled_flops  # experiments/xla_cost.py

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repo root: `configs`
import configs.big  # noqa: E402
import configs.lama_fourier  # noqa: E402

CONFIGS = {"big": configs.big, "lama_fourier": configs.lama_fourier}
# Dense bf16 matrix throughput per chip, FLOP/s (vendor figures).
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "TPU v4": 275e12,
             "TPU v5e": 197e12, "TPU v5p": 459e12, "TPU v6": 918e12}
GIB = 2 ** 30


def peak_flops(device_kind: str) -> Optional[float]:
    """The table's peak for this device kind, or None."""
    return next((v for k, v in PEAK_BF16.items() if k.lower() in device_kind.lower()), None)


def _measured_peak_bytes() -> Optional[int]:
    """Peak bytes in use on the first device so far, where the backend reports it."""
    stats = jax.local_devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def bench(config_name: str, batch: int, dtype: str, spectral: str, steps: int) -> dict:
    """One row: step seconds (None when `steps` is 0), FLOPs per step and memory per device."""
    config = CONFIGS[config_name].get_config()
    config.compute_dtype, config.spectral_impl = dtype, spectral
    nets = build_networks(config)
    mesh = make_mesh(-1, 1)
    program = compile_training(nets, config.losses, mesh, crop_size=256)
    shapes = {"image": (batch, 256, 256, 3), "mask": (batch, 256, 256, 1)}
    abstract_data = {k: jax.ShapeDtypeStruct(v, np.float32) for k, v in shapes.items()}
    abstract_backbone = jax.eval_shape(lambda: backbone_variables(nets, "random"))
    compiled = program.step.lower(program.abstract_state, abstract_data, abstract_backbone).compile()
    flops = compiled_flops(compiled)
    memory = compiled.memory_analysis()
    xla_bytes = (memory.argument_size_in_bytes + memory.output_size_in_bytes
                 + memory.temp_size_in_bytes - memory.alias_size_in_bytes) if memory else None
    row = {"seconds": None, "flops": flops, "xla_bytes": xla_bytes, "peak_bytes": None}
    if steps == 0:
        return row
    state = program.init(jax.random.key(0))
    backbone = jax.device_put(backbone_variables(nets, "random"), replicated(mesh))
    rng = np.random.default_rng(0)
    data = global_batch({"image": rng.random(shapes["image"], dtype=np.float32),
                         "mask": (rng.random(shapes["mask"]) > 0.6).astype(np.float32)}, mesh)
    state, metrics = compiled(state, data, backbone)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        state, metrics = compiled(state, data, backbone)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    return {**row, "seconds": statistics.median(times), "peak_bytes": _measured_peak_bytes()}


def _gib(n: Optional[int]) -> str:
    return "-" if n is None else f"{n / GIB:.1f}"


def main() -> None:
    """Runs the benchmark and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=["lama_fourier", "big"])
    parser.add_argument("--batch", type=int, nargs="+", default=[2],
                        help="global batch sizes to sweep")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--spectral", choices=["fft", "dft"], default="fft")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (median)")
    parser.add_argument("--compile-only", action="store_true",
                        help="compile and report FLOPs and XLA's memory estimate; run nothing")
    args = parser.parse_args()
    enable_cpu_onednn()
    kind = jax.devices()[0].device_kind
    peak = peak_flops(kind)
    print(f"# training step, 256 px, {args.dtype}, spectral {args.spectral}; "
          f"{jax.device_count()} x {kind} ({jax.default_backend()}), jax {jax.__version__}, "
          f"{platform.machine()}, {os.cpu_count()} CPU threads")
    print("| model | batch | step s | images/s | TFLOP / step | % of bf16 peak "
          "| XLA GiB / device | peak GiB / device |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.configs:
        for batch in args.batch:
            try:
                r = bench(name, batch, args.dtype, args.spectral,
                          0 if args.compile_only else args.steps)
            except jax.errors.JaxRuntimeError as e:
                if "RESOURCE_EXHAUSTED" not in str(e):
                    raise
                print(f"| {name} | {batch} | out of memory | | | | | |", flush=True)
                continue
            s = r["seconds"]
            util = f"{100 * r['flops'] / s / (peak * jax.device_count()):.1f}" if peak and s else "-"
            timing = f"{s:.3f} | {batch / s:.2f}" if s else "- | -"
            print(f"| {name} | {batch} | {timing} "
                  f"| {r['flops'] / 1e12:.3f} | {util} | {_gib(r['xla_bytes'])} "
                  f"| {_gib(r['peak_bytes'])} |", flush=True)


if __name__ == "__main__":
    main()
