"""Process settings that make LaMa fast: oneDNN kernels and a malloc that keeps XLA's buffers
on CPUs, and a persistent compilation cache.

XLA:CPU's default convolution kernels are slow for LaMa's layers; its oneDNN path runs
Big LaMa inference about 1.2x faster on x86 (see experiments/bench_inference.py). The flag is
read when JAX starts its backend, so entry points call `enable_cpu_onednn()` before their
first computation. Library users can export `XLA_FLAGS=--xla_cpu_use_onednn=true` instead.

Each call of a compiled program on the CPU allocates its buffers (hundreds of MB for Big LaMa)
and frees them when it ends; glibc hands memory this large back to the system, so the next
call takes page faults on all of it again. `keep_freed_memory()`, also before JAX starts, makes
glibc keep it for reuse (5-14 % off Big LaMa on two cores, more at small sizes). On Linux,
`GLIBC_TUNABLES=glibc.malloc.hugetlb=1` in the environment of the process puts that heap on
transparent huge pages (`huge_pages_asked`; a further 11 % at 256 px on a Zen 3).

XLA:CPU hands matrix products to YNNPACK by default. On x86 processors without AVX-512,
Eigen's products are the faster ones for LaMa's shapes (Big LaMa in float32 4-7 % faster on a
Zen 3 EPYC; with AVX-512, on a Zen 4, YNNPACK's were); `cpu_inference_options()` chooses per
machine, and `Inpainter` compiles with it.

Compiling Big LaMa for one photo size takes seconds (8-9 s at 256 px and 15-30 s at 512 px on
two CPU cores with `conv_impl="cpu"`); `enable_compilation_cache()` keeps the compiled
programs on disk so that the next process loads them instead.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from functools import lru_cache
from typing import Any, Dict, Optional

ONEDNN_FLAG = "--xla_cpu_use_onednn=true"
CACHE_ENV = "LAMA_JAX_CACHE_DIR"  # the cache folder; "" turns the cache off
DEFAULT_CACHE = os.path.join("~", ".cache", "lama_jax", "jax")
NO_YNNPACK = {"xla_cpu_experimental_ynn_fusion_type": ""}  # Eigen's matrix products instead
# The malloc settings of `keep_freed_memory`: one arena for all threads, no separate mappings
# for large blocks, freed memory never trimmed. Each as (its environment variable, its glibc
# tunable, its mallopt parameter in malloc.h, the value).
_MALLOPT = (("MALLOC_ARENA_MAX", "glibc.malloc.arena_max", -8, 1),
            ("MALLOC_MMAP_MAX_", "glibc.malloc.mmap_max", -4, 0),
            ("MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold", -1, 2 ** 31 - 1))
# glibc (2.35 and later) asks the kernel for transparent huge pages for malloc's heap with
# this tunable. It is read when the process starts, so it has to be in the environment of the
# Python process (or of `python -m lama_jax.predict`, ...), not set from Python.
HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1"


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


def cpu_inference_options(dtype: Optional[Any] = None) -> Dict[str, str]:
    """XLA options for compiling inference with compute `dtype` (None: float32) on this
    machine (`jax.jit(..., compiler_options=...)`): YNNPACK off
    (`{"xla_cpu_experimental_ynn_fusion_type": ""}`, so that Eigen computes the matrix
    products) for float32 on an x86 CPU backend without AVX-512; none on other processors and
    backends, in bfloat16 (where both ran at the same speed), or where this jaxlib does not
    know the option."""
    import jax
    import numpy as np
    if (jax.default_backend() != "cpu" or _x86_avx512() is not False
            or (dtype is not None and np.dtype(dtype) != np.float32)):
        return {}
    return dict(NO_YNNPACK) if accepts_options(NO_YNNPACK) else {}


def accepts_options(options: Dict[str, Any]) -> bool:
    """Whether this XLA compiles with the per-program `options` (`jax.jit(...,
    compiler_options=...)`); checked once per set of options."""
    return _knows_options(tuple(sorted(options.items())))


def _x86_avx512() -> Optional[bool]:
    """Whether this x86 processor has AVX-512 (its foundation, avx512f); None on other
    processors or where Linux's /proc/cpuinfo cannot tell."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), None)
    except OSError:
        return None
    return None if flags is None else "avx512f" in flags.split()


@lru_cache(maxsize=None)
def _knows_options(options: tuple) -> bool:
    """Whether XLA compiles a trivial program with `options` ((name, value) pairs): an
    option an XLA version does not know fails every compilation."""
    import jax
    import jax.numpy as jnp
    try:
        jax.jit(lambda x: x + 1).lower(jnp.zeros(())).compile(compiler_options=dict(options))
    except Exception:  # noqa: BLE001 - XLA reports an unknown option as a runtime error
        return False
    return True


def keep_freed_memory() -> bool:
    """Makes glibc's malloc keep freed memory for the next allocation instead of returning it
    to the system; returns whether the settings were applied.

    glibc maps every block above 32 MiB on its own, and gives each thread an arena that
    unmaps what it frees, so XLA:CPU's buffers are mapped afresh on every call: at 256 px Big
    LaMa takes 75 000 page faults (0.15 s of system time) per call. With one arena, no
    separate mappings and no trimming, calls after the first few take none and run 5-14 %
    faster; the process keeps its largest heap until it exits, and its peak is no higher (3.9
    against 4.1 GiB at 1024 px; experiments/RESULTS.md). Threads take their arena on their
    first allocation, so call this before JAX starts its backend. Does nothing (returns
    False) once it has started (the settings would then reach only some threads), without
    glibc, or where the user has set any of them through `MALLOC_*` environment variables or
    `GLIBC_TUNABLES` (other tunables, such as `HUGE_PAGES_TUNABLE`, are no obstacle).

    On Linux, huge pages for the heap are a further gain at 256 px: start Python with
    `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` in its environment (see `huge_pages_asked`).
    """
    # Not imported: JAX has not started. There is no public way to ask whether it has; a JAX
    # without this private function counts as started (the settings are then left alone).
    bridge = sys.modules.get("jax._src.xla_bridge")
    if ((bridge is not None and getattr(bridge, "backends_are_initialized", lambda: True)())
            or platform.libc_ver()[0] != "glibc"
            or any(env in os.environ or tunable in _tunables()
                   for env, tunable, _, _ in _MALLOPT)):
        return False
    libc = ctypes.CDLL(None)  # the process's C library
    return all(libc.mallopt(param, value) == 1 for _, _, param, value in _MALLOPT)


def _tunables() -> Dict[str, str]:
    """The glibc tunables of this process's environment, by name."""
    pairs = (item.partition("=") for item in os.environ.get("GLIBC_TUNABLES", "").split(":"))
    return {name: value for name, _, value in pairs if name}


def huge_pages_asked() -> bool:
    """Whether this process was started with glibc's malloc asked for transparent huge pages
    (`GLIBC_TUNABLES` holding `HUGE_PAGES_TUNABLE`). Big LaMa's Winograd transforms sweep
    hundreds of MB per call; on 2 MiB pages they miss the TLB less (at 256 px 627 against
    707 ms per call on two Zen 3 cores, mean of four processes each; experiments/RESULTS.md).
    The kernel gives them where transparent huge pages are on (`always` or `madvise` in
    /sys/kernel/mm/transparent_hugepage/enabled)."""
    name, _, value = HUGE_PAGES_TUNABLE.partition("=")
    return _tunables().get(name) == value


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
