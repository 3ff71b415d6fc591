"""The process settings that the inference tools make: the persistent compilation cache, a
malloc that keeps freed memory, and the XLA options chosen per processor."""

import os
import platform
import subprocess
import sys

import jax
import pytest

from lama_jax import xla_flags
from lama_jax.xla_flags import NO_YNNPACK, cpu_inference_options, keep_freed_memory


@pytest.mark.parametrize("env,expected", [
    ({"LAMA_JAX_CACHE_DIR": "{tmp}/cache"}, "{tmp}/cache"),
    ({"LAMA_JAX_CACHE_DIR": ""}, "None"),
    ({"LAMA_JAX_CACHE_DIR": "{tmp}/cache", "JAX_COMPILATION_CACHE_DIR": "{tmp}/theirs"},
     "{tmp}/theirs")])
def test_compilation_cache_folder(tmp_path, env, expected):
    # In a fresh process: the setting is global to JAX.
    env = {k: v.format(tmp=tmp_path) for k, v in env.items()}
    base = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    code = ("from lama_jax.xla_flags import enable_compilation_cache as e; import jax; "
            "print(e(), jax.config.jax_compilation_cache_dir)")
    out = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    folder, configured = out.stdout.split()
    assert folder == expected.format(tmp=tmp_path)
    assert configured == (folder if folder != "None" else "None")


# A jitted call with a 64 MiB buffer (a cumulative sum), above glibc's 32 MiB limit for heap
# blocks; prints whether the settings were made and the page faults of each call.
_FAULTS_PER_CALL = """
import resource, sys
from lama_jax.xla_flags import keep_freed_memory
kept = sys.argv[1] == "keep" and keep_freed_memory()
import jax, jax.numpy as jnp
sample = jax.jit(lambda x: jnp.cumsum(x)[::4096])
x = jnp.ones(16 * 2 ** 20)
faults = []
for _ in range(30):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    sample(x).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(kept, *faults)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")
def test_freed_memory_is_kept_for_the_next_call():
    base = {k: v for k, v in os.environ.items()
            if not (k.startswith("MALLOC_") or k == "GLIBC_TUNABLES")}
    runs = {}
    for mode in ("keep", "return"):
        out = subprocess.run([sys.executable, "-c", _FAULTS_PER_CALL, mode], env=base,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        kept, *faults = out.stdout.split()
        runs[mode] = (kept, [int(f) for f in faults])
    # glibc's defaults map the buffer afresh on every call (about 18 000 pages of 4 KiB).
    # Kept, the heap grows for the first calls (7 to 13 of them here: freed blocks and the
    # next call's buffers interleave) and then serves nearly every call from memory it
    # already has (of the last 15, 13 to 15 took no fault in six runs).
    returned, kept = runs["return"], runs["keep"]
    assert returned[0] == "False" and min(returned[1]) > 10000
    assert kept[0] == "True" and kept[1][-15:].count(0) >= 8


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")
@pytest.mark.parametrize("tunables,kept,huge", [
    ("glibc.malloc.hugetlb=1", True, True),  # huge pages alone: the settings still apply
    ("glibc.malloc.hugetlb=0:glibc.elision.enable=1", True, False),
    ("glibc.malloc.hugetlb=1:glibc.malloc.arena_max=4", False, True),  # the user's own
    ("glibc.malloc.trim_threshold=1", False, False)])
def test_freed_memory_beside_the_users_tunables(tunables, kept, huge):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["GLIBC_TUNABLES"] = tunables
    out = subprocess.run([sys.executable, "-c", "from lama_jax import xla_flags as f; "
                          "print(f.keep_freed_memory(), f.huge_pages_asked())"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [str(kept), str(huge)]


def test_freed_memory_is_left_alone_once_jax_has_started():
    jax.devices()  # JAX's threads now have their arenas
    assert not keep_freed_memory()


@pytest.mark.parametrize("avx512,expected", [(False, NO_YNNPACK), (True, {}), (None, {})])
def test_cpu_inference_options_by_processor(monkeypatch, avx512, expected):
    # YNNPACK off only on x86 processors known to lack AVX-512 (and only where XLA knows the
    # option: this jaxlib does).
    monkeypatch.setattr(xla_flags, "_x86_avx512", lambda: avx512)
    assert cpu_inference_options() == cpu_inference_options("float32") == expected
    assert cpu_inference_options("bfloat16") == {}  # the same speed either way


def test_unknown_xla_options_are_detected():
    assert xla_flags._knows_options(tuple(NO_YNNPACK.items()))
    assert not xla_flags._knows_options((("xla_cpu_no_such_option", "1"),))
