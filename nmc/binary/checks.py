"""Small checks for reading a binary: each returns the value it checked or raises one
:class:`BinaryFormatError` naming what is wrong.

A binary that passed its checksum may still be inconsistent (written by a buggy tool, or altered
and re-sealed). Readers check every field they use with these before using it, so such a file is
refused with a reason instead of failing with a KeyError deep inside, or running with wrong
results. Used by the container (:mod:`nmc.binary.format`), the host-side metadata
(:mod:`nmc.binary.meta`) and each chip's own validator (e.g. :mod:`nmc.sim.loihi_validate`).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import BinaryFormatError
from ..numbers import is_integer, is_number


def fail(message: str) -> BinaryFormatError:
    """The error for an inconsistent binary (the caller adds the file name)."""
    return BinaryFormatError(message)


# -- JSON values -------------------------------------------------------------------------------------
def need_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(f"{what} must be a table, got {type(value).__name__}")
    return value


def need_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise fail(f"{what} must be a list, got {type(value).__name__}")
    return value


def need_key(table: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in table:
        raise fail(f"{what} has no '{key}'")
    return table[key]


def need_str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise fail(f"{what} must be a non-empty string, got {value!r}")
    return value


def need_int(value: Any, what: str, lo: int | None = None, hi: int | None = None) -> int:
    """An integer (not a bool, not a float) in [lo, hi]."""
    if not is_integer(value):
        raise fail(f"{what} must be an integer, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise fail(f"{what} is {value}, outside {_interval(lo, hi)}")
    return value


def need_number(value: Any, what: str, lo: float | None = None) -> float:
    """A finite number (int or float, not a bool), at least ``lo``."""
    if not is_number(value):
        raise fail(f"{what} must be a finite number, got {value!r}")
    if lo is not None and value < lo:
        raise fail(f"{what} is {value}, below {lo}")
    return float(value)


def need_names(items: list[Any], what: str) -> dict[str, dict[str, Any]]:
    """A list of tables with unique non-empty 'name's, by name."""
    out: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(need_list(items, what)):
        entry = need_dict(item, f"{what}[{i}]")
        name = need_str(need_key(entry, "name", f"{what}[{i}]"), f"{what}[{i}] name")
        if name in out:
            raise fail(f"{what} names '{name}' twice")
        out[name] = entry
    return out


def _interval(lo: int | float | None, hi: int | float | None) -> str:
    return f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"


# -- sections ----------------------------------------------------------------------------------------
def section(sections: Mapping[str, np.ndarray], name: str, size: int | None = None) -> np.ndarray:
    """A 1-D integer section as int64, of ``size`` elements when given."""
    if name not in sections:
        raise fail(f"section '{name}' is missing")
    a = sections[name]
    if a.dtype.kind not in "iu" or a.ndim != 1:
        raise fail(f"section '{name}' must be a 1-D integer array, got {a.dtype} of shape {a.shape}")
    if size is not None and a.size != size:
        raise fail(f"section '{name}' has {a.size} entries, expected {size}")
    return a.astype(np.int64)


def need_range(name: str, values: np.ndarray, lo: int | np.ndarray, hi: int | np.ndarray) -> np.ndarray:
    """Every value in [lo, hi] (bounds may be per element)."""
    if values.size:
        bad = (values < lo) | (values > hi)
        if bad.any():
            i = int(np.argmax(bad))
            lo_i = lo if np.ndim(lo) == 0 else lo[i]
            hi_i = hi if np.ndim(hi) == 0 else hi[i]
            raise fail(f"section '{name}' entry {i} is {int(values[i])}, outside [{int(lo_i)}, {int(hi_i)}]")
    return values


def need_index(name: str, values: np.ndarray, limit: int | np.ndarray) -> np.ndarray:
    """Every value a valid index below ``limit`` (per element or shared)."""
    return need_range(name, values, 0, np.asarray(limit) - 1)


def need_offsets(name: str, offsets: np.ndarray, total: int) -> np.ndarray:
    """A CSR offset table: starts at 0, never decreases, ends at ``total``."""
    if offsets.size == 0 or offsets[0] != 0:
        raise fail(f"section '{name}' must start at 0")
    if np.any(np.diff(offsets) < 0):
        raise fail(f"section '{name}' decreases at entry {int(np.argmax(np.diff(offsets) < 0)) + 1}")
    if offsets[-1] != total:
        raise fail(f"section '{name}' ends at {int(offsets[-1])}, but the table it indexes has {total} entries")
    return offsets
