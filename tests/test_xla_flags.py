"""The persistent compilation cache that the command-line tools turn on."""

import os
import subprocess
import sys

import pytest


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
