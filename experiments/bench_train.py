"""Training throughput of LaMa-Fourier and Big LaMa at 256 px on the current backend.

    python experiments/bench_train.py                        # batch 2 per model (CPU-sized)
    python experiments/bench_train.py --batch 120 --dtype bfloat16 --spectral dft   # accelerator

Times the full jitted training step (generator and discriminator updates, every loss incl.
the HRF perceptual backbone, random weights) over all local devices on a data-parallel mesh,
after one compiling call. Prints a Markdown table: step time, images per second, the XLA
cost-analysis FLOPs of one step and, on known accelerators, the fraction of the chip's dense
bf16 matrix throughput that they reach.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import time

import jax
import numpy as np

from lama_jax.config_files import load_config_file
from lama_jax.parallel import global_batch, make_mesh, replicated
from lama_jax.state import build_networks
from lama_jax.train import backbone_variables, compile_training
from lama_jax.xla_flags import enable_cpu_onednn

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"
# Dense bf16 matrix throughput per chip, FLOP/s (vendor figures).
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "TPU v4": 275e12,
             "TPU v5e": 197e12, "TPU v5p": 459e12, "TPU v6": 918e12}


def peak_flops(device_kind: str):
    """The table's peak for this device kind, or None."""
    return next((v for k, v in PEAK_BF16.items() if k.lower() in device_kind.lower()), None)


def bench(config_name: str, batch: int, dtype: str, spectral: str, steps: int):
    """(step seconds, images/s, FLOPs per step) of one config."""
    config = load_config_file(CONFIGS / f"{config_name}.py")
    config.compute_dtype, config.spectral_impl = dtype, spectral
    nets = build_networks(config)
    mesh = make_mesh(-1, 1)
    program = compile_training(nets, config.losses, mesh, crop_size=256)
    state, step = program.init(jax.random.key(0)), program.step
    backbone = jax.device_put(backbone_variables(nets, "random"), replicated(mesh))
    rng = np.random.default_rng(0)
    data = global_batch({"image": rng.random((batch, 256, 256, 3), dtype=np.float32),
                         "mask": (rng.random((batch, 256, 256, 1)) > 0.6).astype(np.float32)}, mesh)
    compiled = step.lower(state, data, backbone).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", float("nan"))) if cost else float("nan")
    state, metrics = step(state, data, backbone)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        state, metrics = step(state, data, backbone)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return seconds, batch / seconds, flops


def main() -> None:
    """Runs the benchmark and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["lama_fourier", "big"])
    parser.add_argument("--batch", type=int, default=2, help="global batch")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--spectral", choices=["fft", "dft"], default="fft")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    enable_cpu_onednn()
    kind = jax.devices()[0].device_kind
    peak = peak_flops(kind)
    print(f"# training step, 256 px, global batch {args.batch}, {args.dtype}, spectral "
          f"{args.spectral}; {jax.device_count()} x {kind} ({jax.default_backend()}), "
          f"jax {jax.__version__}, {platform.machine()}, {os.cpu_count()} CPU threads")
    print("| model | step s | images/s | TFLOP / step | % of bf16 peak |")
    print("|---|---:|---:|---:|---:|")
    for name in args.configs:
        seconds, ips, flops = bench(name, args.batch, args.dtype, args.spectral, args.steps)
        util = f"{100 * flops / seconds / (peak * jax.device_count()):.1f}" if peak else "-"
        print(f"| {name} | {seconds:.3f} | {ips:.2f} | {flops / 1e12:.3f} | {util} |", flush=True)


if __name__ == "__main__":
    main()
