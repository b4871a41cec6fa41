"""Host input shared by the interpreters: spike arrays of input ports -> source ids per step."""

from __future__ import annotations

import numpy as np

from ..errors import RunError


def port_spikes(inputs: dict[str, np.ndarray] | None, port_base: dict[str, int], port_size: dict[str, int],
                steps: int) -> tuple[np.ndarray, np.ndarray]:
    """All spikes of ``inputs`` (port -> (steps, n) of 0/1) as source ids ``port_base[port] +
    unit``, sorted by step (within a step by port, then unit), and the per-step bounds
    (steps + 1,): step k's are ``ids[bounds[k]:bounds[k + 1]]``. Bad input is a RunError."""
    ts, srcs = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for name, arr in (inputs or {}).items():
        if name not in port_base:
            ports = ", ".join(port_base) or "none"
            raise RunError(f"input data has array '{name}' but the binary has no input port '{name}' (ports: {ports})")
        a = np.asarray(arr)
        if a.ndim != 2 or a.shape[1] != port_size[name]:
            raise RunError(f"input '{name}': expected shape (steps, {port_size[name]}), got {a.shape}")
        if a.size and not _all_binary(a):
            raise RunError(f"input '{name}': values must be spikes (0 or 1)")
        tt, uu = _nonzero_2d(a[:steps])
        ts.append(tt)
        srcs.append(port_base[name] + uu)
    t, src = np.concatenate(ts), np.concatenate(srcs)
    if len(ts) > 2:  # one port's spikes are already in step order (row-major); several need merging
        order = np.argsort(t, kind="stable")
        t, src = t[order], src[order]
    return src, np.searchsorted(t, np.arange(steps + 1))


def _all_binary(a: np.ndarray) -> bool:
    """Whether every value of ``a`` is 0 or 1 (one reduction pass for integer types)."""
    if a.dtype == np.bool_:
        return True
    if a.dtype.kind in "ui":
        return bool(a.min() >= 0 and a.max() <= 1)
    return bool(np.all((a == 0) | (a == 1)))


def _nonzero_2d(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero`` of a 2-D array (rows, columns; row-major order), faster for 0/1 bytes:
    numpy finds the non-zeros of a bool array several times faster than of uint8."""
    if a.dtype.itemsize == 1 and a.dtype.kind in "uib":
        flat = np.flatnonzero(np.ascontiguousarray(a).view(np.bool_))
        return np.divmod(flat, max(a.shape[1], 1))
    return np.nonzero(a)
