"""Self-describing model directories: architecture (JSON) plus weights (Flax msgpack).

    DIR/lama_jax_model.json     {"format": ..., "generator": {...}, "discriminator": {...}|null, ...}
    DIR/generator.msgpack       {"params": ..., "batch_stats": ...}
    DIR/discriminator.msgpack   optional, same layout

`python -m lama_jax.convert` writes them from official checkpoints; training exports them;
`Inpainter.load` reads them. Writes are atomic: the directory is assembled under a temporary
name beside the target and renamed into place. A directory in cloud storage (`gs://...`,
where folders cannot be renamed) is assembled locally and uploaded file by file, the manifest
removed first and written last, so that a reader never pairs a manifest with other weights.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Any, Dict, List, Optional

import jax
import numpy as np
from flax import serialization

from lama_jax.errors import LamaJaxError
from lama_jax.files import is_remote, staging_dir
from lama_jax.models.discriminator import Discriminator, DiscriminatorConfig
from lama_jax.models.generator import GeneratorConfig, build_generator, generator_config_from_dict
from lama_jax.models.variables import Variables, abstract_variables, mismatches

MANIFEST = "lama_jax_model.json"
FORMAT = "lama_jax.model/1"
MODEL_FILES = (MANIFEST, "generator.msgpack", "discriminator.msgpack")
# Input shapes used to build abstract variables (weights do not depend on the spatial size).
GENERATOR_PROBE_SIDE = 64  # or the generator's smallest input side where that is larger
DISCRIMINATOR_PROBE_HW = (64, 64)


class ModelDirError(LamaJaxError, ValueError):
    """A model directory that cannot be read or written; the message names the path."""


@dataclasses.dataclass
class Model:
    """A generator (and optionally a discriminator) with their variables."""

    generator_config: GeneratorConfig
    generator_variables: Variables
    discriminator_config: Optional[DiscriminatorConfig] = None
    discriminator_variables: Optional[Variables] = None
    metadata: Dict[str, Any] = dataclasses.field(default_factory=dict)


def generator_abstract_variables(config: GeneratorConfig) -> Variables:
    """Abstract variables of a generator with this architecture."""
    side = max(GENERATOR_PROBE_SIDE, config.min_side)
    return abstract_variables(build_generator(config), (1, side, side, config.input_nc))


def discriminator_abstract_variables(config: DiscriminatorConfig) -> Variables:
    """Abstract variables of a discriminator with this architecture."""
    return abstract_variables(Discriminator(config),
                              (1, *DISCRIMINATOR_PROBE_HW, config.input_nc))


def _to_numpy(tree: Any) -> Any:
    return jax.tree.map(lambda a: np.asarray(a), tree)


def _check_replaceable(directory: str, overwrite: bool, has_manifest: bool,
                       names: List[str]) -> None:
    """Raises `ModelDirError` unless the existing `directory` (holding files `names`) may be
    replaced by a model: only with `overwrite`, and only a model directory and nothing else."""
    if not overwrite:
        raise ModelDirError(f"{directory}: already exists; choose a new path or pass --overwrite")
    if not has_manifest:
        raise ModelDirError(f"{directory}: exists and is not a lama_jax model directory; "
                            f"refusing to replace it")
    foreign = sorted(set(names) - set(MODEL_FILES))
    if foreign:
        raise ModelDirError(f"{directory}: also holds {', '.join(foreign[:3])}"
                            + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
                            + ", which replacing the model directory would delete; "
                              "move them out or choose another path")


def _upload(staged: str, directory: str, overwrite: bool) -> None:
    """Copies the local model directory `staged` to the cloud-storage `directory`."""
    from etils import epath

    target = epath.Path(directory)
    if target.exists():
        _check_replaceable(directory, overwrite, (target / MANIFEST).exists(),
                           [p.name for p in target.iterdir()])
        (target / MANIFEST).unlink(missing_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    names = os.listdir(staged)
    for stale in set(MODEL_FILES) - set(names):
        (target / stale).unlink(missing_ok=True)
    for name in sorted(names, key=lambda n: n == MANIFEST):  # the manifest last
        with open(os.path.join(staged, name), "rb") as f:
            (target / name).write_bytes(f.read())


def save_model(directory: str, model: Model, overwrite: bool = False) -> None:
    """Writes `model` to `directory` (a local path or a `gs://` URI) atomically.

    An existing directory is replaced only with `overwrite=True` and only if it is itself a
    model directory; anything else that exists at the path is left alone and reported.
    """
    if is_remote(directory):
        with tempfile.TemporaryDirectory() as local:
            save_model(os.path.join(local, "model"), model)
            _upload(os.path.join(local, "model"), directory, overwrite)
        return
    directory = os.path.abspath(directory)
    if os.path.lexists(directory):
        has_manifest = os.path.isfile(os.path.join(directory, MANIFEST))
        _check_replaceable(directory, overwrite, has_manifest,
                           os.listdir(directory) if has_manifest else [])
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    staging = staging_dir(parent, prefix=f".{os.path.basename(directory)}.tmp-")
    try:
        manifest = {
            "format": FORMAT,
            "generator": model.generator_config.to_dict(),
            "discriminator": (model.discriminator_config.to_dict()
                              if model.discriminator_config else None),
            "metadata": model.metadata,
        }
        with open(os.path.join(staging, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2)
        parts = {"generator": model.generator_variables,
                 "discriminator": model.discriminator_variables}
        for name, variables in parts.items():
            if variables is not None:
                with open(os.path.join(staging, f"{name}.msgpack"), "wb") as f:
                    f.write(serialization.msgpack_serialize(_to_numpy(variables)))
        if os.path.lexists(directory):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(directory)}.old-", dir=parent)
            os.rename(directory, os.path.join(old, "model"))
            os.rename(staging, directory)
            shutil.rmtree(old)
        else:
            os.rename(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _read_bytes(path: str) -> bytes:
    """A local or cloud-storage file's contents; `FileNotFoundError` when it is missing."""
    if not is_remote(path):
        with open(path, "rb") as f:
            return f.read()
    from etils import epath

    remote = epath.Path(path)
    if not remote.exists():
        raise FileNotFoundError(path)
    return remote.read_bytes()


def _read_variables(path: str, expected: Variables) -> Variables:
    try:
        variables = serialization.msgpack_restore(_read_bytes(path))
    except FileNotFoundError:
        raise ModelDirError(f"{path}: missing") from None
    except Exception as e:  # msgpack raises several types on corrupt data
        raise ModelDirError(f"{path}: corrupt weights file ({e})") from None
    problems = mismatches(expected, variables)
    if problems:
        raise ModelDirError(f"{path}: weights do not match the architecture in {MANIFEST}: "
                            + "; ".join(problems))
    return variables


def _config(manifest_path: str, manifest: Dict[str, Any], name: str, from_dict):
    """The architecture under `manifest[name]`, or a `ModelDirError` saying what is wrong."""
    entry = manifest.get(name)
    if not isinstance(entry, dict):
        raise ModelDirError(f"{manifest_path}: '{name}' must be an object of architecture "
                            f"settings, not {json.dumps(entry)[:60]}")
    try:
        return from_dict(entry)
    except (TypeError, ValueError, KeyError) as e:
        raise ModelDirError(f"{manifest_path}: invalid '{name}' architecture ({e})") from None


def load_model(directory: str) -> Model:
    """Reads a model directory written by `save_model` (a local path or a `gs://` URI),
    checking every weight's shape."""
    manifest_path = os.path.join(directory, MANIFEST)
    try:
        manifest = json.loads(_read_bytes(manifest_path))
    except FileNotFoundError:
        raise ModelDirError(f"{directory}: not a lama_jax model directory (no {MANIFEST}); "
                            f"convert an official checkpoint with python -m lama_jax.convert") from None
    except json.JSONDecodeError as e:
        raise ModelDirError(f"{manifest_path}: invalid JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise ModelDirError(f"{manifest_path}: holds a JSON {type(manifest).__name__}, not the "
                            f"manifest object")
    if manifest.get("format") != FORMAT:
        raise ModelDirError(f"{manifest_path}: unsupported format {manifest.get('format')!r}, "
                            f"expected {FORMAT!r}")
    gen_cfg = _config(manifest_path, manifest, "generator", generator_config_from_dict)
    gen_vars = _read_variables(os.path.join(directory, "generator.msgpack"),
                               generator_abstract_variables(gen_cfg))
    disc_cfg = disc_vars = None
    if manifest.get("discriminator"):
        disc_cfg = _config(manifest_path, manifest, "discriminator", DiscriminatorConfig.from_dict)
        disc_vars = _read_variables(os.path.join(directory, "discriminator.msgpack"),
                                    discriminator_abstract_variables(disc_cfg))
    metadata = manifest.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelDirError(f"{manifest_path}: 'metadata' must be an object")
    return Model(gen_cfg, gen_vars, disc_cfg, disc_vars, metadata)
