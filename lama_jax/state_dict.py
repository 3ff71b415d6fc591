"""Reading PyTorch-style state dicts into numpy without executing pickled code.

Supported files: PyTorch's zip serialisation (`torch.save` since 1.6: `.ckpt`, `.pth`, `.pt`,
including PyTorch Lightning checkpoints), `.npz` and `.safetensors`. Neither torch nor
omegaconf is needed.

A PyTorch file is a pickle whose globals are resolved by a restricted unpickler: tensor
rebuild functions and storages are read as numpy arrays, plain containers are allowed, and
the classes of known configuration libraries (omegaconf, Lightning's attribute dicts, ...) are
loaded as inert placeholders whose constructors run nothing. Any other global (`os.system`,
`builtins.eval`, ...) makes the load fail with `UnsafeCheckpointError` before it is called.

Crafted files are read defensively: every tensor's offset, size and stride must lie inside its
storage (no view ever reaches past the stored bytes), every storage must hold whole elements,
and no archive member may expand more than `max_expansion` times its compressed size (zip
bombs). A file that breaks one of these is refused with a `CheckpointError` naming the key.
"""

from __future__ import annotations

import collections
import os
import pickle
import zipfile
import zlib
from typing import Any, Dict, Mapping

import ml_dtypes
import numpy as np

from lama_jax.errors import LamaJaxError

StateDict = Dict[str, np.ndarray]

# A compressed archive member may expand at most this many times (members under
# `_SMALL_MEMBER_BYTES` are not limited). torch.save stores members uncompressed and real
# weights deflate by less than 2x, so only a crafted file comes near it.
MAX_EXPANSION = 100
_SMALL_MEMBER_BYTES = 1 << 24


class CheckpointError(LamaJaxError, ValueError):
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


class _BadTensor:
    """Stands for a tensor record that cannot be rebuilt safely; `reason` says why. Refused
    by `load_state_dict` with the key it is stored under."""

    def __init__(self, reason: str):
        self.reason = reason


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _rebuild_tensor(storage, offset, size, stride, *unused):
    """The tensor `storage[offset + sum(i * stride)]` for every index `i` within `size`,
    copied out of the storage; a `_BadTensor` unless the whole extent lies inside it."""
    if isinstance(storage, _BadTensor):
        return storage
    if not isinstance(storage, np.ndarray):
        return _BadTensor(f"its storage is a {type(storage).__name__}, not tensor data")
    size, stride = tuple(size or ()), tuple(stride or ())
    if not (_is_int(offset) and all(map(_is_int, size + stride)) and len(size) == len(stride)):
        return _BadTensor(f"malformed layout (offset {offset!r}, size {size!r}, stride {stride!r})")
    if offset < 0 or min(size + stride, default=0) < 0:
        return _BadTensor(f"negative offset, size or stride ({offset}, {size}, {stride})")
    if 0 in size:
        return np.zeros(size, storage.dtype)
    if np.prod(size, dtype=object) > storage.size:
        return _BadTensor(f"size {size} has more elements than its storage holds "
                          f"({storage.size}): overlapping strides are not state-dict data")
    needed = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if needed > storage.size:
        return _BadTensor(f"size {size} with stride {stride} at offset {offset} needs {needed} "
                          f"elements but its storage holds {storage.size}")
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=tuple(s * itemsize for s in stride))
    return np.array(view)  # a copy: nothing refers to the storage afterwards


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
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise UnsafeCheckpointError(f"{self._path}: unsupported persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if key not in self._storages:
            dtype = np.dtype(storage_type.dtype if isinstance(storage_type, _StorageType)
                             else np.uint8)
            member = f"{self._prefix}data/{key}"
            try:
                raw = _read_member(self._archive, member, self._path)
            except KeyError:
                self._storages[key] = _BadTensor(f"its storage {member} is not in the archive")
                return self._storages[key]
            if len(raw) % dtype.itemsize:
                self._storages[key] = _BadTensor(
                    f"its storage {member} holds {len(raw)} bytes, not a whole number of "
                    f"{dtype.name} elements ({dtype.itemsize} bytes each)")
            else:
                self._storages[key] = np.frombuffer(raw, dtype=dtype)
        return self._storages[key]


def _check_expansion(archive: zipfile.ZipFile, path: str, max_expansion: float) -> None:
    """Refuses an archive with a member that would expand more than `max_expansion` times."""
    for info in archive.infolist():
        limit = max(max_expansion * info.compress_size, _SMALL_MEMBER_BYTES)
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > limit:
            raise CheckpointError(
                f"{path}: member {info.filename} would expand from {info.compress_size} to "
                f"{info.file_size} bytes, more than {max_expansion:g} times (raise "
                f"max_expansion if the file is trusted)")


def _read_member(archive: zipfile.ZipFile, name: str, path: str) -> bytes:
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
        raise CheckpointError(f"{path}: corrupt archive member {name} ({e})") from None


def _load_torch_zip(path: str, max_expansion: float) -> Any:
    with zipfile.ZipFile(path) as archive:
        _check_expansion(archive, path, max_expansion)
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (no single data.pkl inside)")
        prefix = pickles[0][: -len("data.pkl")]
        with archive.open(pickles[0]) as f:
            try:
                return _RestrictedUnpickler(f, archive, prefix, path).load()
            except CheckpointError:
                raise
            except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError,
                    IndexError, AttributeError, zipfile.BadZipFile, zlib.error) as e:
                # A malformed pickle fails inside pickle's own opcodes with any of these.
                raise CheckpointError(f"{path}: corrupt PyTorch checkpoint ({e})") from None


def load_pickle_payload(path: str, max_expansion: float = MAX_EXPANSION) -> Any:
    """The unpickled object of a PyTorch zip file, tensors as numpy arrays (a tensor that
    cannot be rebuilt safely is a placeholder that `load_state_dict` refuses)."""
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(2)
        if head[:1] == b"\x80":
            raise CheckpointError(
                f"{path}: legacy (pre-1.6) PyTorch serialisation is not supported; re-save it "
                f"with torch.save(obj, path) from PyTorch >= 1.6")
        raise CheckpointError(f"{path}: not a PyTorch, .npz or .safetensors file")
    return _load_torch_zip(path, max_expansion)


def _flatten(obj: Mapping, path: str, prefix: str = "") -> StateDict:
    out: StateDict = {}
    for k, v in obj.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, path, f"{prefix}{k}."))
        elif isinstance(v, _BadTensor):
            raise CheckpointError(f"{path}: tensor {prefix}{k}: {v.reason}; refusing the file")
        elif isinstance(v, np.ndarray):
            out[f"{prefix}{k}"] = v
    return out


def load_state_dict(path: str, max_expansion: float = MAX_EXPANSION) -> StateDict:
    """Flat `{key: array}` from a PyTorch file, a Lightning checkpoint, `.npz` or `.safetensors`.

    For a Lightning checkpoint the entries of its `state_dict` are returned; for other pickled
    dicts, every nested array, keyed by its dotted path. Archive members (PyTorch zip, `.npz`)
    may expand at most `max_expansion` times their compressed size.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npz":
            with zipfile.ZipFile(path) as archive:
                _check_expansion(archive, path, max_expansion)
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        if ext == ".safetensors":
            from safetensors.numpy import load_file
            return load_file(path)
    except CheckpointError:
        raise
    except Exception as e:  # numpy and safetensors raise several types for corrupt files
        raise CheckpointError(f"{path}: cannot read ({e})") from None
    try:
        payload = load_pickle_payload(path, max_expansion)
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path}: cannot read ({e})") from None
    if isinstance(payload, Mapping) and isinstance(payload.get("state_dict"), Mapping):
        payload = payload["state_dict"]
    if not isinstance(payload, Mapping):
        raise CheckpointError(f"{path}: holds a {type(payload).__name__}, not a state dict")
    return _flatten(payload, path)
