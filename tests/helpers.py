"""Small builders shared by tests."""

import io
import pickle
import zipfile

import numpy as np


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
