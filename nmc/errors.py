"""Errors a user can fix. The CLI prints each as one line and exits non-zero (no traceback).

Messages follow the compiler convention ``<where>: error: <what>``; ``where`` is ``file:line:col``
for source text, an object name (population, projection, node) otherwise.
"""

from __future__ import annotations


class NmcError(Exception):
    """Base class of every error caused by the user's input rather than a bug in nmc."""

    def __init__(self, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        if self.location:
            return f"{self.location}: error: {self.message}"
        return f"error: {self.message}"


class DslError(NmcError):
    """Malformed or inconsistent DSL source."""


class IrError(NmcError):
    """Malformed IR text or an IR that fails verification."""


class TargetError(NmcError):
    """Unknown target, or a target description that is malformed."""


class ResourceError(NmcError):
    """The network does not fit the target: names the limit, by how much, and where."""


class QuantizationError(NmcError):
    """A value cannot be represented in the target's number formats (and strict mode is on)."""


class PipelineError(NmcError):
    """Unknown pass, malformed pipeline string, or bad pass option."""


class BinaryFormatError(NmcError):
    """A damaged, truncated or foreign binary."""


class OutputError(NmcError):
    """An output file that cannot be written (a missing directory, a read-only place, a full
    disk, an output that is also an input); the previous file, if any, is left as it was."""


class RunError(NmcError):
    """Bad run-time input (data shape, ports) or a failure the user asked to be strict about."""


class ScheduleError(NmcError):
    """A learning schedule that cannot work: names the phase and the population."""
