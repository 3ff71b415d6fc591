"""Loading experiment config files (`configs/*.py`) by path, so that one can build on another."""

from __future__ import annotations

import importlib.util
import pathlib

import ml_collections

from lama_jax.errors import InputNotFoundError


def load_config_file(path: str | pathlib.Path, arg=None) -> ml_collections.ConfigDict:
    """`get_config(arg)` of the config file at `path`."""
    path = pathlib.Path(path)
    spec = importlib.util.spec_from_file_location(f"lama_jax_config_{path.stem}", path)
    if spec is None or not path.is_file():
        raise InputNotFoundError(f"{path}: no such config file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def load_sibling(this_file: str, name: str, arg=None) -> ml_collections.ConfigDict:
    """`get_config(arg)` of `name.py` in the folder of `this_file` (a config's `__file__`)."""
    return load_config_file(pathlib.Path(this_file).with_name(f"{name}.py"), arg)
