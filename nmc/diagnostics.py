"""Warnings and remarks collected while compiling or running (rounding, saturation, ...).

Nothing that changes a result may pass silently: passes and the interpreter record what they
rounded or saturated here, and the CLI prints it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Diagnostic:
    severity: str  # "warning" | "remark"
    message: str
    location: str | None = None

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.severity}: {self.message}"


@dataclass
class Diagnostics:
    """An ordered collection of diagnostics; optionally echoed to a stream as they arrive."""

    items: list[Diagnostic] = field(default_factory=list)
    stream: TextIO | None = None

    def warn(self, message: str, location: str | None = None) -> None:
        self._add(Diagnostic("warning", message, location))

    def remark(self, message: str, location: str | None = None) -> None:
        self._add(Diagnostic("remark", message, location))

    def _add(self, diag: Diagnostic) -> None:
        self.items.append(diag)
        if self.stream is not None:
            print(f"nmc: {diag}" if diag.location is None else str(diag), file=self.stream)

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]

    @classmethod
    def to_stderr(cls) -> "Diagnostics":
        return cls(stream=sys.stderr)
