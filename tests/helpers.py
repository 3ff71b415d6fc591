"""Small builders shared by tests."""

import io
import pickle
import zipfile

import numpy as np

# LLVM's optimisation level 1 for every program the tests compile, in this process
# (conftest.py) and in those the tests start: the suite compiles hundreds of programs and runs
# each a few times on small inputs. On two cores, at -O1 XLA:CPU compiled the tiny training
# step in 13.5 s instead of 20.5 and its initialisation in 4.4 s instead of 16.3, with the step
# as fast as at XLA's default level; -O0 compiled faster still but ran 2-3x slower
# (tests/test_refine.py: 127 s at -O0, 47 s at -O1, 74 s at the default). The tools and
# benchmarks keep XLA's default.
TEST_XLA_FLAGS = "--xla_backend_optimization_level=1"


def write_torch_zip(path, payload_pickle: bytes, storages=None, root="archive"):
    """A file laid out like `torch.save`'s zip format around a given data.pkl."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{root}/data.pkl", payload_pickle)
        z.writestr(f"{root}/version", "3\n")
        for key, array in (storages or {}).items():
            z.writestr(f"{root}/data/{key}", np.ascontiguousarray(array).tobytes())


def state_dict_from_key_table(tsv_path):
    """Zero tensors with the shapes listed in a reference `*_keys.tsv` (cheap: lazily zeroed)."""
    sd = {}
    with open(tsv_path) as f:
        next(f)
        for line in f:
            key, shape, dtype, *_ = line.rstrip("\n").split("\t")
            dims = () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))
            sd[key] = np.zeros(dims, np.int64 if dtype == "int64" else np.float32)
    return sd


class _RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import os
        return os.system, (self.command,)


def malicious_pickle(command: str) -> bytes:
    """A pickle that runs `command` through os.system when loaded by plain pickle/torch.load."""
    buf = io.BytesIO()
    pickle.dump({"state_dict": {"x": _RunsCommand(command)}}, buf, protocol=2)
    return buf.getvalue()


def state_dict_from_recipe(tsv_path, seed):
    """Random weights rebuilt from a reference `*_weights_recipe.tsv` (rules in its README)."""
    rng = np.random.default_rng(seed)
    rules = {
        "normal*sqrt(2/fan_in)": lambda s: rng.standard_normal(s) * np.sqrt(2 / np.prod(s[1:])),
        "normal*sqrt(1/fan_in)": lambda s: rng.standard_normal(s) * np.sqrt(1 / s[1]),
        "1+0.1*normal": lambda s: 1 + 0.1 * rng.standard_normal(s),
        "0.1*normal": lambda s: 0.1 * rng.standard_normal(s),
        "1+0.2*uniform": lambda s: 1 + 0.2 * rng.random(s),
    }
    sd = {}
    with open(tsv_path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            key, shape, dtype, rule = line.rstrip("\n").split("\t")[:4]
            dims = tuple(int(s) for s in shape.split("x")) if shape else ()
            if rule == "zeros":
                sd[key] = np.zeros(dims, np.int64 if dtype == "int64" else np.float32)
            else:
                sd[key] = rules[rule](dims).astype(np.float32)
    return sd


def _pickle_str(s: str) -> bytes:
    return b"X" + len(s.encode()).to_bytes(4, "little") + s.encode()  # BINUNICODE


def _pickle_ints(values) -> bytes:
    return b"(" + b"".join(b"J" + int(v).to_bytes(4, "little", signed=True) for v in values) + b"t"


def torch_tensor_pickle(key: str, storage: str, kind: str, numel: int, offset: int,
                        size, stride) -> bytes:
    """`key: _rebuild_tensor_v2(<storage `storage` of type torch.`kind`>, offset, size,
    stride, False, None)` as one protocol-2 dict item; nothing checks that it is consistent."""
    pid = (b"(" + _pickle_str("storage") + f"ctorch\n{kind}\n".encode() + _pickle_str(storage)
           + _pickle_str("cpu") + _pickle_ints([numel])[1:-1] + b"tQ")
    offset_bytes = b"J" + int(offset).to_bytes(4, "little", signed=True)
    args = (b"(" + pid + offset_bytes + _pickle_ints(size) + _pickle_ints(stride)
            + b"\x89Nt")  # requires_grad False, backward hooks None
    return _pickle_str(key) + b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R"


def torch_dict_pickle(items) -> bytes:
    """A protocol-2 data.pkl holding a dict of `torch_tensor_pickle` items."""
    return b"\x80\x02}(" + b"".join(items) + b"u."


def write_torch_state_dict(path, sd):
    """`sd` ({key: float32 or int64 array}) written as `torch.save(state_dict, path)` writes it:
    a protocol-2 data.pkl of `_rebuild_tensor_v2` calls on persistent storages, plus one raw
    storage file per tensor."""
    items, storages = [], {}
    for i, (key, value) in enumerate(sd.items()):
        value = np.require(value, requirements="C")  # keeps 0-d arrays 0-d
        kind = "LongStorage" if value.dtype == np.int64 else "FloatStorage"
        strides = [s // value.itemsize for s in value.strides]
        items.append(torch_tensor_pickle(key, str(i), kind, value.size, 0, value.shape, strides))
        storages[str(i)] = value
    write_torch_zip(path, torch_dict_pickle(items), storages)


def truncate_array_data(step) -> None:
    """Cuts every array data file of checkpoint folder `step` (a pathlib.Path) in half, as a
    full disk would."""
    data = [p for p in (step / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    assert data
    for path in data:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
