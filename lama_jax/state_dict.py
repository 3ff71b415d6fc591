"""Reading PyTorch-style state dicts into numpy without executing pickled code.

Supported files: PyTorch's zip serialisation (`torch.save` since 1.6: `.ckpt`, `.pth`, `.pt`,
including PyTorch Lightning checkpoints), `.npz` and `.safetensors`. Neither torch nor
omegaconf is needed.

A PyTorch file is a pickle whose globals are resolved by a restricted unpickler: tensor
rebuild functions and storages are read as numpy arrays, plain containers are allowed, and
the classes of known configuration libraries (omegaconf, Lightning's attribute dicts, ...) are
loaded as inert placeholders whose constructors run nothing. Any other global (`os.system`,
`builtins.eval`, ...) makes the load fail with `UnsafeCheckpointError` before it is called.
"""

from __future__ import annotations

import collections
import os
import pickle
import zipfile
from typing import Any, Dict, Mapping

import ml_dtypes
import numpy as np

StateDict = Dict[str, np.ndarray]


class CheckpointError(ValueError):
    """A file that cannot be read as a state dict; the message names the file."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle that references code outside the allow-list."""


_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_TORCH_DTYPES = {
    "float64": np.float64, "float32": np.float32, "float16": np.float16,
    "bfloat16": ml_dtypes.bfloat16, "int64": np.int64, "int32": np.int32, "int16": np.int16,
    "int8": np.int8, "uint8": np.uint8, "bool": np.bool_,
}
# Modules whose classes only describe data (configs, hyper-parameter containers) in training
# checkpoints. They are replaced by `_Inert`, so nothing of theirs is imported or executed.
_INERT_MODULE_PREFIXES = ("omegaconf", "pytorch_lightning.utilities", "lightning.pytorch.utilities",
                          "lightning_fabric.utilities", "typing", "pathlib", "argparse")


class _StorageType:
    """Stands for `torch.FloatStorage` & co. in persistent ids."""

    def __init__(self, dtype):
        self.dtype = dtype


class _Inert:
    """Placeholder for a data-only class; accepts any constructor arguments and state."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __call__(self, *args, **kwargs):
        return _Inert()


def _rebuild_tensor(storage, offset, size, stride, *unused) -> np.ndarray:
    if not size:
        return storage[offset:offset + 1].reshape(()).copy()
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * itemsize for s in stride))
    return np.ascontiguousarray(view)


def _rebuild_parameter(data, *unused):
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, path: str):
        super().__init__(file)
        self._archive, self._prefix, self._path = archive, prefix, path
        self._storages: Dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        allowed = {
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
            ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("collections", "defaultdict"): collections.defaultdict,
            ("builtins", "dict"): dict, ("__builtin__", "dict"): dict,
            ("builtins", "list"): list, ("__builtin__", "list"): list,
            ("builtins", "set"): set, ("builtins", "tuple"): tuple,
            ("builtins", "int"): int, ("builtins", "float"): float,
            ("builtins", "bool"): bool, ("builtins", "str"): str,
            ("builtins", "slice"): slice, ("torch", "Size"): tuple,
        }
        if (module, name) in allowed:
            return allowed[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "torch" and name in _TORCH_DTYPES:
            return _TORCH_DTYPES[name]
        if module.startswith(_INERT_MODULE_PREFIXES):
            return _Inert
        raise UnsafeCheckpointError(
            f"{self._path}: refusing to load: the pickle references {module}.{name}, which is "
            f"not tensor data (the file may run code when loaded with torch.load)")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel)
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise UnsafeCheckpointError(f"{self._path}: unsupported persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if key not in self._storages:
            dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else np.uint8
            raw = self._archive.read(f"{self._prefix}data/{key}")
            self._storages[key] = np.frombuffer(raw, dtype=dtype)
        return self._storages[key]


def _load_torch_zip(path: str) -> Any:
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (no single data.pkl inside)")
        prefix = pickles[0][: -len("data.pkl")]
        with archive.open(pickles[0]) as f:
            try:
                return _RestrictedUnpickler(f, archive, prefix, path).load()
            except (pickle.UnpicklingError, EOFError, KeyError) as e:
                raise CheckpointError(f"{path}: corrupt PyTorch checkpoint ({e})") from None


def load_pickle_payload(path: str) -> Any:
    """The unpickled object of a PyTorch zip file, tensors as numpy arrays."""
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(2)
        if head[:1] == b"\x80":
            raise CheckpointError(
                f"{path}: legacy (pre-1.6) PyTorch serialisation is not supported; re-save it "
                f"with torch.save(obj, path) from PyTorch >= 1.6")
        raise CheckpointError(f"{path}: not a PyTorch, .npz or .safetensors file")
    return _load_torch_zip(path)


def _flatten(obj: Mapping, prefix: str = "") -> StateDict:
    out: StateDict = {}
    for k, v in obj.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        elif isinstance(v, np.ndarray):
            out[f"{prefix}{k}"] = v
    return out


def load_state_dict(path: str) -> StateDict:
    """Flat `{key: array}` from a PyTorch file, a Lightning checkpoint, `.npz` or `.safetensors`.

    For a Lightning checkpoint the entries of its `state_dict` are returned; for other pickled
    dicts, every nested array, keyed by its dotted path.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        if ext == ".safetensors":
            from safetensors.numpy import load_file
            return load_file(path)
    except Exception as e:  # numpy and safetensors raise several types for corrupt files
        raise CheckpointError(f"{path}: cannot read ({e})") from None
    try:
        payload = load_pickle_payload(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path}: cannot read ({e})") from None
    if isinstance(payload, Mapping) and isinstance(payload.get("state_dict"), Mapping):
        payload = payload["state_dict"]
    if not isinstance(payload, Mapping):
        raise CheckpointError(f"{path}: holds a {type(payload).__name__}, not a state dict")
    return _flatten(payload)
