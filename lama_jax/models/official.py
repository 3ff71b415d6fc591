"""How an architecture meets the official PyTorch state dicts (the models' side of conversion).

Each generator kind's module declares a `StateDictLayout`: how to recognise its state dict,
how to read its configuration from the tensor shapes, and the official key of each of our
top-level submodules (plus renames of inner submodules where PyTorch used `nn.Sequential`
indices). `lama_jax.convert` applies them; this module holds only what they share.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, NamedTuple, Tuple

import numpy as np

from lama_jax.errors import LamaJaxError

StateDict = Dict[str, np.ndarray]


class ConversionError(LamaJaxError, ValueError):
    """A state dict that does not map onto our modules; the message lists every problem."""


class StateDictLayout(NamedTuple):
    """An architecture's official state dict: `detect(sd)` says whether `sd` (keys without
    prefix) is one (`signature` says how, for messages), `infer_config(sd)` reads the
    configuration from its shapes, `module_key(name, config)` is the official key prefix of
    our top-level submodule `name`, and `rewrites` rename inner submodules (`(ours, theirs)`
    substrings of the full key)."""

    signature: str
    detect: Callable[[StateDict], bool]
    infer_config: Callable[[StateDict], Any]
    module_key: Callable[[str, Any], str]
    rewrites: Tuple[Tuple[str, str], ...] = ()


def weight(sd: StateDict, key: str, ndim: int = 4) -> np.ndarray:
    """`sd[key]`, checked to be an `ndim`-D tensor: the tensors configurations are read from."""
    value = sd.get(key)
    if value is None:
        raise ConversionError(f"missing {key}, which the architecture is read from")
    if value.ndim != ndim:
        raise ConversionError(f"{key} has shape {tuple(value.shape)}; a {ndim}-D weight was "
                              f"expected")
    return value


def module_indices(sd: StateDict) -> List[int]:
    """Sorted indices N of the official `model.N.*` keys."""
    return sorted({int(m.group(1)) for k in sd if (m := re.match(r"model\.(\d+)\.", k))})


def output_channels(sd: StateDict, out_conv_index: int) -> int:
    """Channels of the output convolution `model.N` (3 when the state dict has none)."""
    key = f"model.{out_conv_index}.weight"
    return int(weight(sd, key).shape[0]) if key in sd else 3
