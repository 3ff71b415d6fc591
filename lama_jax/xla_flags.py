"""XLA settings that make LaMa fast: oneDNN kernels on CPUs, and a persistent compilation cache.

XLA:CPU's default convolution kernels are slow for LaMa's layers; its oneDNN path runs
Big LaMa inference about 1.2x faster on x86 (see experiments/bench_inference.py). The flag is
read when JAX starts its backend, so entry points call `enable_cpu_onednn()` before their
first computation. Library users can export `XLA_FLAGS=--xla_cpu_use_onednn=true` instead.

Compiling Big LaMa for one photo size takes seconds (4 s at 256 px, 7 s at 512 px on two
CPU cores); `enable_compilation_cache()` keeps the compiled programs on disk so that the next
process loads them instead.
"""

from __future__ import annotations

import os
import platform
from typing import Optional

ONEDNN_FLAG = "--xla_cpu_use_onednn=true"
CACHE_ENV = "LAMA_JAX_CACHE_DIR"  # the cache folder; "" turns the cache off
DEFAULT_CACHE = os.path.join("~", ".cache", "lama_jax", "jax")


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


def enable_compilation_cache() -> Optional[str]:
    """Turns on JAX's persistent compilation cache in `$LAMA_JAX_CACHE_DIR` (default
    `~/.cache/lama_jax/jax`; an empty value turns it off) for programs that take a second or
    more to compile; returns the folder, or None when off. A cache folder the user already gave
    JAX (`JAX_COMPILATION_CACHE_DIR`) is kept."""
    import jax

    if jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir
    path = os.path.expanduser(os.environ.get(CACHE_ENV, DEFAULT_CACHE))
    if not path:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return path
