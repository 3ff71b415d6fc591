"""Architecture dataclasses from plain dicts (JSON manifests, ml_collections configs), checked.

Every architecture config is a frozen dataclass of plain fields; `from_dict` refuses unknown
keys (naming the closest known one) and values of the wrong type, so that a hand-edited or
foreign manifest fails with one clear line instead of inside Flax.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, ClassVar, Dict, Type, TypeVar

from lama_jax.errors import ConfigError

T = TypeVar("T")
_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,),
          "Optional[str]": (str, type(None))}


def _accepts(annotation: str, value: Any) -> bool:
    allowed = _TYPES.get(annotation)
    if allowed is None:
        return True
    if isinstance(value, bool) and bool not in allowed:
        return False  # True is an int to Python, not a channel count
    return isinstance(value, allowed)


def from_dict(cls: Type[T], d: Dict[str, Any]) -> T:
    """`cls(**d)` after checking every key and value type; `ConfigError` naming the problem."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in d.items():
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected some of {sorted(fields)}"
            raise ConfigError(f"unknown {cls.__name__} key {key!r}{hint}")
        annotation = (str(hints[key]).replace("<class '", "").replace("'>", "")
                      .replace("typing.", ""))
        if not _accepts(annotation, value):
            raise ConfigError(f"{cls.__name__}.{key} must be {annotation}, got {value!r}")
    return cls(**d)


@dataclasses.dataclass(frozen=True)
class KindConfig:
    """What every generator kind's configuration has: its registered `kind`, the input sizes it
    takes, and a JSON round trip (`to_dict` holds the kind; `from_dict` checks the rest)."""

    kind: ClassVar[str]

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        raise NotImplementedError

    @property
    def min_side(self) -> int:
        """The smallest input height and width."""
        return self.size_multiple

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-serialisable dict of the fields, with the kind."""
        return {"kind": self.kind, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls: Type[T], d: Dict[str, Any]) -> T:
        """Inverse of `to_dict`; unknown keys and wrongly typed values are errors naming them."""
        return from_dict(cls, {k: v for k, v in d.items() if k != "kind"})
