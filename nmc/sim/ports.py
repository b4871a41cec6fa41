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
        if a.size and not np.all((a == 0) | (a == 1)):
            raise RunError(f"input '{name}': values must be spikes (0 or 1)")
        tt, uu = np.nonzero(a[:steps])
        ts.append(tt)
        srcs.append(port_base[name] + uu)
    t, src = np.concatenate(ts), np.concatenate(srcs)
    order = np.argsort(t, kind="stable")
    return src[order], np.searchsorted(t[order], np.arange(steps + 1))
