"""Target descriptions: hardware facts as data (``targets/<name>.toml``).

Nothing target-specific is hard-coded outside a target's backend and interpreter; passes read
limits and formats from :class:`Target` and quote them by their dotted name (``core.max_compartments``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import TargetError
from .resources import data_dir


@dataclass(frozen=True)
class Target:
    """A parsed target description. ``data`` is the TOML content as nested dicts."""

    name: str
    data: dict[str, Any]

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
        return list(self.data.get("neuron_models", []))


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
    if "name" not in data:
        raise TargetError("target file has no 'name'", location=str(path))
    return Target(name=str(data["name"]), data=data)
