"""Warnings and remarks collected while compiling or running (rounding, saturation, ...).

Nothing that changes a result may pass silently: passes and the interpreter record what they
rounded or saturated here, and the CLI prints it. Printing happens at :meth:`Diagnostics.flush`
(the pipeline flushes after every pass), where diagnostics that differ only in the names and
numbers they quote -- the same warning on 540 projections -- are printed once, followed by one
line that counts and names the others.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import TextIO

#: Quoted names and numbers: what may differ between diagnostics of one group.
_VARIABLE = re.compile(r"'[^']*'|-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
#: How many further locations a group's summary line names.
_SHOWN = 4


@dataclass
class Diagnostic:
    severity: str  # "warning" | "remark"
    message: str
    location: str | None = None

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.severity}: {self.message}"

    def shape(self) -> tuple[str, str]:
        """What diagnostics of one group share: severity and the text without names and numbers."""
        return self.severity, _VARIABLE.sub("#", self.message)


@dataclass
class Diagnostics:
    """An ordered collection of diagnostics; printed to ``stream`` (if any) at :meth:`flush`."""

    items: list[Diagnostic] = field(default_factory=list)
    stream: TextIO | None = None
    _printed: int = 0

    def warn(self, message: str, location: str | None = None) -> None:
        self.items.append(Diagnostic("warning", message, location))

    def remark(self, message: str, location: str | None = None) -> None:
        self.items.append(Diagnostic("remark", message, location))

    def flush(self) -> None:
        """Print what arrived since the last flush, grouped (see the module docstring)."""
        pending = self.items[self._printed:]
        self._printed = len(self.items)
        if self.stream is None or not pending:
            return
        groups: dict[tuple[str, str], list[Diagnostic]] = {}
        for d in pending:
            groups.setdefault(d.shape(), []).append(d)
        for (severity, _), group in groups.items():
            first = group[0]
            print(f"nmc: {first}" if first.location is None else str(first), file=self.stream)
            if len(group) > 1:
                places = [d.location or "?" for d in group[1:]]
                named = ", ".join(places[:_SHOWN]) + (", ..." if len(places) > _SHOWN else "")
                print(f"nmc: {severity}: and {len(group) - 1} more like it ({named})", file=self.stream)
        self.stream.flush()

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]

    @classmethod
    def to_stderr(cls) -> "Diagnostics":
        return cls(stream=sys.stderr)
