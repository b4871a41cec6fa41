"""The network annotations passes read (``schedule``, ``backprop``), checked for shape first.

The DSL writes them well formed, but IR text may hold anything under these keys; the passes that
read them (``synfire``, ``backprop``) call these checks first, so a wrong type is one error naming
the field instead of an AttributeError or ValueError inside the pass. What the values mean (phases
inside the cycle, layers that exist, windows that make sense) stays with the passes.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import IrError, NmcError, ScheduleError
from ..numbers import is_integer, is_number


class _Fields:
    """Field checks that raise the caller's error kind, located where the caller says."""

    def __init__(self, error: Callable[[str], NmcError]) -> None:
        self.error = error

    def table(self, v: Any, what: str) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.error(f"{what} must be a dictionary, got {v!r}")
        return v

    def items(self, v: Any, what: str) -> list[Any]:
        if not isinstance(v, list):
            raise self.error(f"{what} must be a list, got {v!r}")
        return v

    def text(self, v: Any, what: str) -> str:
        if not isinstance(v, str):
            raise self.error(f"{what} must be a string, got {v!r}")
        return v

    def integer(self, v: Any, what: str, lo: int | None = None) -> int:
        if not is_integer(v) or (lo is not None and v < lo):
            raise self.error(f"{what} must be an integer{'' if lo is None else f' of at least {lo}'}, got {v!r}")
        return v

    def number(self, v: Any, what: str) -> float:
        if not is_number(v):
            raise self.error(f"{what} must be a finite number, got {v!r}")
        return float(v)


def check_schedule(sched: Any) -> dict[str, Any]:
    """A ``schedule`` annotation: ``cycle``, ``gates`` (population, phase, threshold), ``vetoes``
    (population, phase), ``inputs`` (port -> tick), optional ``readout`` (population, tick),
    ``target``, and what ``synfire`` adds (``synthesized``, ``kick``, ``first_cycle_step``)."""
    f = _Fields(lambda m: ScheduleError(m, location="schedule"))
    sched = f.table(sched, "the schedule")
    f.integer(sched.get("cycle"), "the schedule's cycle", lo=1)
    for key, fields in (("gates", ("population", "phase", "threshold")), ("vetoes", ("population", "phase"))):
        for i, entry in enumerate(f.items(sched.get(key, []), f"schedule {key}")):
            entry = f.table(entry, f"schedule {key}[{i}]")
            f.text(entry.get("population"), f"schedule {key}[{i}] population")
            f.integer(entry.get("phase"), f"schedule {key}[{i}] phase", lo=0)
            if "threshold" in fields:
                f.number(entry.get("threshold"), f"schedule {key}[{i}] threshold")
    for port, tick in f.table(sched.get("inputs", {}), "schedule inputs").items():
        f.integer(tick, f"the schedule's tick of '{port}'", lo=0)
    if "readout" in sched:
        ro = f.table(sched["readout"], "the schedule's readout")
        f.text(ro.get("population"), "the schedule's readout population")
        f.integer(ro.get("tick"), "the schedule's readout tick", lo=0)
    for key in ("target", "kick"):
        if key in sched:
            f.text(sched[key], f"the schedule's {key}")
    if "first_cycle_step" in sched:
        f.integer(sched["first_cycle_step"], "the schedule's first_cycle_step", lo=0)
    return sched


def check_backprop(cfg: Any) -> dict[str, Any]:
    """A ``backprop`` annotation (the ``learn backprop`` construct): ``layers`` and ``target``
    names, a ``window`` of two numbers, numbers ``window_hidden`` (or none), ``margin`` and
    ``error_threshold``, a ``mode`` and ``name``, and ``weights``: a list of matrices."""
    f = _Fields(lambda m: IrError(m, location="learn backprop"))
    cfg = f.table(cfg, "the backprop annotation")
    for i, name in enumerate(f.items(cfg.get("layers", []), "backprop layers")):
        f.text(name, f"backprop layer {i}")
    for key in ("target", "mode", "name"):
        if key in cfg:
            f.text(cfg[key], f"backprop {key}")
    if "window" in cfg:
        window = f.items(cfg["window"], "backprop window")
        if len(window) != 2:
            raise f.error(f"backprop window must be [low, high], got {window!r}")
        for x in window:
            f.number(x, "backprop window")
    for key in ("margin", "error_threshold"):
        if key in cfg:
            f.number(cfg[key], f"backprop {key}")
    if cfg.get("window_hidden") is not None:
        f.number(cfg["window_hidden"], "backprop window_hidden")
    for k, w in enumerate(f.items(cfg.get("weights", []), "backprop weights")):
        try:
            a = np.asarray(w)
        except ValueError:  # a ragged nested list
            raise f.error(f"backprop weights W{k + 1} must be a matrix of numbers") from None
        if a.dtype.kind not in "biuf" or (a.dtype.kind == "f" and not np.isfinite(a).all()):
            raise f.error(f"backprop weights W{k + 1} must hold finite numbers")
    return cfg


def check_annotations(attrs: dict[str, Any]) -> None:
    """Both annotations, where present (the verifier and the backend call this)."""
    if attrs.get("schedule") is not None:
        check_schedule(attrs["schedule"])
    if attrs.get("backprop") is not None:
        check_backprop(attrs["backprop"])
