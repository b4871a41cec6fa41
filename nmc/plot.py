"""``nmc plot RESULT.npz``: the spike rasters, probed traces, accuracy per epoch and per-core load
of a run, in one figure (docs/plot.md).

Reads what ``nmc run --out`` writes: ``spikes/<output>`` and spike probes ``probe/<p>`` (bool,
(steps, n) for a stream or (samples, steps, n) for samples), value probes ``probe/<p>`` (u or v,
integers), ``accuracy`` / ``accuracy_membrane`` / ``test_accuracy_per_epoch`` of a training run,
and ``core/<counter>`` (per-core totals). Panels appear for what the file holds. matplotlib is an
optional dependency (``pip install 'nmc[plot]'``); without it the command says so in one line.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from .errors import NmcError, RunError

MAX_TRACES = 8          # neurons drawn per value probe (the most active ones)
MAX_RASTER_UNITS = 400  # units drawn per raster (evenly spaced over the population)
_VALUE_UNITS = 64       # u and v are stored in units of 1/64 of a weight unit (docs/interpreter.md)
_LOAD_COUNTERS = (("synaptic_ops", "synaptic ops"), ("neuron_updates_active", "active neuron updates"),
                  ("spikes", "spikes"))


class PlotError(NmcError):
    """A result file that cannot be drawn, or plotting without matplotlib."""


def load_result(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a RESULT.npz, read as every npz input is (nmc/npz.py: a damaged, foreign or
    non-numeric file is one PlotError line)."""
    from .npz import read_npz

    p = Path(path)
    if not p.exists():
        raise PlotError(f"result file '{p}' does not exist")
    return read_npz(p, PlotError)


def _as_stream(a: np.ndarray, max_steps: int) -> tuple[np.ndarray, int]:
    """(steps, n) from a stream or from samples laid end to end; the number of samples joined."""
    if a.ndim == 3:
        n_samples = a.shape[0]
        a = a.reshape(-1, a.shape[-1])
        return a[:max_steps], n_samples
    return a[:max_steps], 1


def panels(result: dict[str, np.ndarray], max_steps: int) -> list[tuple[str, dict[str, Any]]]:
    """What there is to draw: (kind, data) per panel, in the figure's order."""
    out: list[tuple[str, dict[str, Any]]] = []
    rasters = {k.split("/", 1)[1]: v for k, v in result.items()
               if (k.startswith("spikes/") or k.startswith("probe/")) and v.dtype == bool and v.ndim in (2, 3)}
    if rasters:
        out.append(("raster", rasters))
    for k, v in result.items():
        if k.startswith("probe/") and v.dtype != bool and v.ndim in (2, 3):
            out.append(("trace", {"name": k.split("/", 1)[1], "values": v}))
    acc = {label: result[key] for key, label in (("accuracy", "training (spike readout)"),
                                                  ("accuracy_membrane", "training (membrane readout)"),
                                                  ("test_accuracy_per_epoch", "test (spike readout)"))
           if key in result and result[key].ndim == 1 and result[key].size}
    if acc:
        out.append(("accuracy", acc))
    load = {label: result[f"core/{key}"] for key, label in _LOAD_COUNTERS
            if f"core/{key}" in result and result[f"core/{key}"].ndim == 1 and result[f"core/{key}"].size}
    if load:
        out.append(("load", load))
    return out


def _draw_raster(ax: Any, rasters: dict[str, np.ndarray], max_steps: int) -> None:
    base = 0
    ticks, labels = [], []
    joined = 1
    for name, spikes in rasters.items():
        s, joined = _as_stream(spikes, max_steps)
        n = s.shape[1]
        keep = np.unique(np.linspace(0, n - 1, min(n, MAX_RASTER_UNITS)).astype(int)) if n else np.zeros(0, int)
        t, i = np.nonzero(s[:, keep])
        ax.plot(t, base + i, "|", markersize=2, markeredgewidth=0.6)
        ticks.append(base + len(keep) / 2)
        labels.append(name if len(keep) == n else f"{name} ({len(keep)} of {n})")
        base += len(keep) + max(2, len(keep) // 20)
    if joined > 1:
        steps = next(iter(rasters.values())).shape[1]
        for b in range(steps, min(max_steps, joined * steps), steps):
            ax.axvline(b - 0.5, color="0.85", linewidth=0.5, zorder=0)
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels)
    ax.set_ylim(-1, max(base, 1))
    ax.set_xlabel("timestep" + (" (samples end to end)" if joined > 1 else ""))
    ax.set_title("spike rasters")


def _draw_trace(ax: Any, name: str, values: np.ndarray, max_steps: int) -> None:
    v, joined = _as_stream(values, max_steps)
    # The most active units (largest spread of the probed value) say most about the dynamics.
    order = np.argsort(-(v.max(axis=0) - v.min(axis=0)), kind="stable")[:MAX_TRACES]
    for i in sorted(order):
        ax.plot(v[:, i] / _VALUE_UNITS, linewidth=0.8, label=f"{i}")
    ax.set_title(f"probe {name} (/64, {len(order)} of {v.shape[1]} units)")
    ax.set_xlabel("timestep" + (" (samples end to end)" if joined > 1 else ""))
    if len(order) > 1:
        ax.legend(fontsize=6, ncol=min(len(order), 8), loc="best", title="unit", title_fontsize=6)


def _draw_accuracy(ax: Any, acc: dict[str, np.ndarray]) -> None:
    for label, a in acc.items():
        ax.plot(np.arange(1, a.size + 1), 100 * a, marker="o" if a.size <= 60 else None, markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 101)
    ax.legend(fontsize=7)
    ax.set_title("accuracy per epoch")


def _draw_load(ax: Any, load: dict[str, np.ndarray]) -> None:
    n_cores = max(v.size for v in load.values())
    width = 0.8 / len(load)
    x = np.arange(n_cores)
    for k, (label, v) in enumerate(load.items()):
        top = float(v.max(initial=0))
        rel = v / top if top > 0 else np.zeros_like(v, dtype=float)
        ax.bar(x + (k - (len(load) - 1) / 2) * width, rel, width, label=f"{label} (busiest core: {top:.3g})")
    ax.set_xlabel("core")
    ax.set_xlim(-0.6, n_cores - 0.4)
    if n_cores <= 40:
        ax.set_xticks(x)
    ax.set_ylabel("relative to busiest")
    ax.set_ylim(0, 1.45)
    ax.legend(fontsize=7, loc="upper center", ncol=len(load))
    ax.set_title("per-core load")


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotError("nmc plot needs matplotlib: pip install 'nmc[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def render(result: dict[str, np.ndarray], title: str, fmt: str = "png", max_steps: int = 2000) -> tuple[bytes, list[str]]:
    """The figure of ``result`` as bytes in ``fmt`` (png, pdf, svg, ...), and the panels drawn."""
    todo = panels(result, max_steps)
    if not todo:
        raise PlotError("the result holds nothing to plot (no spikes/, probe/, accuracy or core/ arrays)")
    plt = _matplotlib()
    fig, axes = plt.subplots(len(todo), 1, figsize=(9, 2.4 * len(todo) + 0.6), squeeze=False)
    drawn = []
    for ax, (kind, data) in zip(axes[:, 0], todo):
        if kind == "raster":
            _draw_raster(ax, data, max_steps)
        elif kind == "trace":
            _draw_trace(ax, data["name"], data["values"], max_steps)
        elif kind == "accuracy":
            _draw_accuracy(ax, data)
        else:
            _draw_load(ax, data)
        drawn.append(kind)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=fmt, dpi=100)
    except ValueError as exc:   # an unknown format
        raise PlotError(f"cannot write a '{fmt}' figure: {exc}") from None
    finally:
        plt.close(fig)
    return buf.getvalue(), drawn


def summary_title(path: Path, result: dict[str, np.ndarray]) -> str:
    parts = [path.name]
    if "timesteps" in result:
        parts.append(f"{int(result['timesteps'])} steps")
    if "spikes" in result and result["spikes"].ndim == 0:
        parts.append(f"{int(result['spikes'])} spikes")
    if "energy_j" in result:
        parts.append(f"energy {float(result['energy_j']):.3g} J (cost model)")
    return ", ".join(parts)


def plot_file(path: str | Path, out: str | Path | None = None, max_steps: int = 2000) -> tuple[Path, list[str]]:
    """Read RESULT.npz, draw it, write the figure (default: RESULT.png); returns (path, panels)."""
    from .atomic import write_bytes

    src = Path(path)
    dst = Path(out) if out is not None else src.with_suffix(".png")
    if dst.resolve() == src.resolve():
        raise PlotError(f"the figure would overwrite the result file '{src}'; give another -o")
    fmt = dst.suffix.lstrip(".").lower()
    if not fmt:
        raise PlotError(f"'{dst}' has no extension to name the figure's format (e.g. .png, .pdf, .svg)")
    if not dst.parent.is_dir():
        raise PlotError(f"cannot write '{dst}': directory '{dst.parent}' does not exist")
    result = load_result(src)
    data, drawn = render(result, summary_title(src, result), fmt, max_steps)
    write_bytes(dst, data)   # atomic; a failure is an OutputError naming the file
    return dst, drawn
