"""Target descriptions: hardware facts as data (``targets/<name>.toml``) plus the parts that
implement them (:mod:`nmc.parts`).

Passes read limits and formats from :class:`Target` and quote them by their dotted name
(``core.max_compartments``); the code that differs between chips is reached through the parts the
target file names (``target.formats``, ``target.part("backend")``), never by the target's name.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import TargetError
from .numbers import is_integer, is_number
from .parts import check_parts, load_part
from .resources import data_dir

if TYPE_CHECKING:
    from .formats import Formats

#: Capabilities a target file may list under ``features`` (docs/target.md), each with what it
#: means. Passes ask ``target.has(name)`` instead of knowing which chips have what.
FEATURES: dict[str, str] = {
    "soft_reset": "reset by subtraction: an 'if' neuron with soft_reset = 1 keeps the charge above its "
                  "threshold at a spike (and may start with init_charge)",
}


@dataclass(frozen=True)
class Target:
    """A parsed target description. ``data`` is the TOML content as nested dicts."""

    name: str
    data: dict[str, Any]
    source: str = field(default="", compare=False)  # where it was read from, for messages

    def get(self, dotted: str) -> Any:
        """Look up ``section.key`` (any depth); raises TargetError naming the missing key."""
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise TargetError(f"target '{self.name}' has no entry '{dotted}'")
            node = node[part]
        return node

    @property
    def default_pipeline(self) -> list[str]:
        return list(self.data.get("default_pipeline", ["verify"]))

    @property
    def neuron_models(self) -> list[str]:
        """Register-level models the backend implements directly (after ``map-neurons``)."""
        return list(self.data.get("neuron_models", []))

    @property
    def mapped_models(self) -> list[str]:
        """Target-neutral models the ``map-neurons`` pass lowers for this target."""
        return list(self.data.get("mapped_models", []))

    @cached_property
    def features(self) -> frozenset[str]:
        """The optional capabilities the target file lists under ``features`` (keys of
        :data:`FEATURES`; checked when the file is loaded)."""
        return frozenset(self.data.get("features", []))

    def has(self, feature: str) -> bool:
        """True when the target lists ``feature`` (a key of :data:`FEATURES`)."""
        if feature not in FEATURES:
            raise TargetError(f"unknown target feature '{feature}' (known: {', '.join(sorted(FEATURES))})")
        return feature in self.features

    @cached_property
    def parts(self) -> dict[str, str]:
        """Kind -> key of every part (validated when the target is loaded)."""
        return check_parts(self.data.get("parts"), self.source or f"target '{self.name}'")

    def part(self, kind: str) -> Any:
        """The registered object implementing part ``kind`` of this target."""
        return load_part(kind, self.parts[kind])

    @cached_property
    def formats(self) -> "Formats":
        """The target's number formats (:class:`nmc.formats.Formats`), bound to this target."""
        return self.part("formats")(self)


#: Which tables of a target file hold whole numbers (counts, widths, register bounds) is the parts'
#: knowledge: a formats or layout part lists them as ``integer_tables`` -- table -> the least value
#: its entries may take (None: any integer). These parts are asked at load.
_TABLE_PARTS = ("formats", "layout")


def _table(node: dict[str, Any], key: str) -> dict[str, Any]:
    """A sub-table, or an empty one where there is none (or something else stands)."""
    value = node.get(key)
    return value if isinstance(value, dict) else {}


def _number_problem(data: dict[str, Any], integer_tables: dict[str, int | None]) -> str | None:
    """What is wrong with the target's numbers, if anything: NaN or infinity anywhere; a
    non-integer (or too small) entry in one of the ``integer_tables``; a negative cost; a
    tick that is not positive. Checked at load, so no pass meets a number it cannot use."""
    stack: list[tuple[str, Any]] = [(key, value) for key, value in data.items()]
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{key}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((key, v) for v in value)
        elif isinstance(value, float) and not math.isfinite(value):
            return f"{key} is {value}; numbers in a target file must be finite"
    for table, least in integer_tables.items():
        for key, value in _table(data, table).items():
            # A list is a coordinate or a shape (mesh = [8, 4], host_chip = [0, 0]): 0 is a value.
            floor = None if least is None else (0 if isinstance(value, list) else least)
            for v in value if isinstance(value, list) else [value]:
                if not is_integer(v):
                    return f"{table}.{key} must be an integer, got {v!r}"
                if floor is not None and v < floor:
                    return f"{table}.{key} must be at least {floor}, got {v}"
    for table in ("energy_pj", "time_ns"):
        for key, v in _table(_table(data, "cost"), table).items():
            if not is_number(v) or v < 0:
                return f"cost.{table}.{key} must be a non-negative number, got {v!r}"
    tick = _table(data, "timing").get("tick_ns", 1.0)
    if not is_number(tick) or tick <= 0:
        return f"timing.tick_ns must be a positive number, got {tick!r}"
    return None


def _feature_problem(features: Any) -> str | None:
    """What is wrong with a target file's ``features`` list, if anything: it must be a list of
    known feature names, each once."""
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        return f"features must be a list of names, got {features!r}"
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        return f"features lists unknown '{unknown[0]}' (known: {', '.join(sorted(FEATURES))})"
    if len(set(features)) != len(features):
        return "features names a feature twice"
    return None


def available_targets() -> list[str]:
    return sorted(p.stem for p in data_dir("targets").glob("*.toml"))


def load_target(name_or_path: str) -> Target:
    """Load a target by name (``loihi``) or from a ``.toml`` path."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = data_dir("targets") / f"{name_or_path}.toml"
        if not path.is_file():
            avail = ", ".join(available_targets())
            raise TargetError(f"unknown target '{name_or_path}' (available: {avail})")
    elif not path.is_file():
        raise TargetError(f"target file '{path}' does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"malformed target file: {exc}", location=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"cannot read target file: {exc}", location=str(path)) from None
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise TargetError("target file has no 'name'", location=str(path))
    problem = _feature_problem(data.get("features", []))
    if problem is not None:
        raise TargetError(problem, location=str(path))
    target = Target(name=data["name"], data=data, source=str(path))
    _ = target.parts  # a missing or unknown part is reported now, not in the middle of a compile
    integer_tables: dict[str, int | None] = {}
    for kind in _TABLE_PARTS:
        integer_tables.update(getattr(target.part(kind), "integer_tables", {}))
    problem = _number_problem(data, integer_tables)
    if problem is not None:
        raise TargetError(problem, location=str(path))
    return target
