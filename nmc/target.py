"""Target descriptions: hardware facts as data (``targets/<name>.toml``) plus the parts that
implement them (:mod:`nmc.parts`).

Passes read limits and formats from :class:`Target` and quote them by their dotted name
(``core.max_compartments``); the code that differs between chips is reached through the parts the
target file names (``target.formats``, ``target.part("backend")``), never by the target's name.
"""

from __future__ import annotations

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
from .parts import check_parts, load_part
from .resources import data_dir

if TYPE_CHECKING:
    from .formats import Formats


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
    target = Target(name=data["name"], data=data, source=str(path))
    _ = target.parts  # a missing or unknown part is reported now, not in the middle of a compile
    return target
