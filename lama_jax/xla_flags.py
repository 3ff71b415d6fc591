"""XLA settings that make LaMa fast on CPUs.

XLA:CPU's default convolution kernels are slow for LaMa's layers; its oneDNN path runs
Big LaMa inference about 1.2x faster on x86 (see experiments/bench_inference.py). The flag is
read when JAX starts its backend, so entry points call `enable_cpu_onednn()` before their
first computation. Library users can export `XLA_FLAGS=--xla_cpu_use_onednn=true` instead.
"""

from __future__ import annotations

import os
import platform

ONEDNN_FLAG = "--xla_cpu_use_onednn=true"


def enable_cpu_onednn() -> bool:
    """Adds `--xla_cpu_use_onednn=true` to XLA_FLAGS; returns whether it is now set.

    Leaves XLA_FLAGS alone where the user already chose a value for the flag, on non-x86
    machines, and with jaxlib older than 0.10 (where the flag may be unknown, which XLA treats
    as a fatal error). Has no effect once JAX's backend has started.
    """
    import jaxlib

    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_onednn" in flags:
        return ONEDNN_FLAG in flags
    major, minor = (int(p) for p in jaxlib.__version__.split(".")[:2])
    if platform.machine().lower() not in ("x86_64", "amd64") or (major, minor) < (0, 10):
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {ONEDNN_FLAG}".strip()
    return True
