"""The partition report (``nmc compile --report``), its summary in the IR (``net.attrs
["partition"]``, carried into the binary's metadata for ``nmc inspect --placement``) and the
placement picture (``--placement-plot``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..lowering import Geometry
from .cpsat import RefineInfo
from .problem import Problem
from .traffic import ChipLoad, core_traffic_edges, core_usage, placement_metrics, synaptic_ops_per_core

#: Heaviest core-to-core links kept in the summary (for the picture).
MAX_LINKS = 256


def _num(x: float) -> float:
    """A figure for the IR: 6 significant digits."""
    return float(f"{x:.6g}")


def _pct(a: float, b: float) -> str:
    return f"{100.0 * a / b:.0f}%" if b else "-"


def build_report(problem: Problem, assign: np.ndarray, ffd_assign: np.ndarray, geometry: Geometry, *, lb: int,
                 lb_why: str, solver: str, info: RefineInfo | None, moved: int, order: str, seed: int,
                 workers: int, budget: float, times: dict[str, float]) -> tuple[list[str], dict[str, Any]]:
    """(report lines, summary dict) of a finished partition."""
    m = placement_metrics(problem, assign, geometry)
    m0 = m if np.array_equal(assign, ffd_assign) else placement_metrics(problem, ffd_assign, geometry)
    n = m["cores"]
    usage = core_usage(problem, assign, n).astype(np.float64)
    if problem.fanout is not None:
        usage[:, problem.fanout] = m["output_axons"]  # exact, not the packing model's bound
    synops = synaptic_ops_per_core(problem, assign) if n else np.zeros(0)
    busiest = int(np.argmax(synops)) if synops.size else 0
    util = {}
    for r, res in enumerate(problem.resources):
        if not problem.per_core[r]:
            continue
        col = usage[:, r]
        util[res.name] = [_num(col.mean() / res.capacity) if n else 0.0, _num(col.max() / res.capacity) if n else 0.0]
    chip_util = _chip_utilisation(problem, assign, n, int(geometry.cores_per_chip))
    cut = m["inter_core_spikes"]
    cut0 = m0["inter_core_spikes"]
    pops = {int(i) for i in problem.group_pop.tolist()}

    lines = []
    if info is None:
        lines.append(f"solver {solver}: first fit decreasing in layer order ({times['total']:.2f} s)")
    elif info.mode == "none":
        lines.append(f"solver {solver}: ffd start; CP-SAT {info.status}")
    else:
        det = (f"deterministic time {info.deterministic_time:.1f} of {budget:g} s, wall {info.wall_time:.1f} s, "
               f"CPU {info.cpu_time:.1f} s")
        how = {"monolithic": "one model", "windows": f"{info.windows} connectivity windows"}.get(info.mode, info.mode)
        lines.append(f"solver {solver}: CP-SAT on {how}: {info.status}; {det}; seed {seed}, "
                     f"{workers} worker{'s' if workers != 1 else ''}")
        if info.notes:
            lines.append("  " + "; ".join(info.notes))
        if info.bound is not None and info.objective_after:
            gap = max(0.0, (info.objective_after - info.bound) / info.objective_after)
            lines.append(f"  objective {info.objective_after} (start {info.objective_before}), best bound "
                         f"{info.bound:.0f}, gap {100 * gap:.1f}%")
        if info.wall_capped:
            lines.append(f"  warning: {info.wall_capped} solve(s) stopped by the wall-clock guard; the result may "
                         "differ between runs")
    lines.append(f"axon tables: {int(m['input_axons'].sum())} input (busiest core {int(m['input_axons'].max(initial=0))}), "
                 f"{int(m['output_axons'].sum())} output (busiest core {int(m['output_axons'].max(initial=0))})")
    if moved:
        lines.append(f"exact re-check moved {moved} group(s) to new cores")
    lines.append(f"time: slicing {times['slice']:.2f} s ({'; '.join(problem.notes)}), ffd {times['ffd']:.2f} s, "
                 f"total {times['total']:.2f} s")

    src, dst, w = core_traffic_edges(problem, assign)
    summary: dict[str, Any] = {
        "pops": len(pops),
        "busiest_synops_mean": _num(float(synops.mean())) if synops.size else 0.0,
        "solver": solver,
        "status": info.status if info is not None else "greedy",
        "groups": problem.n_groups,
        "cores": n,
        "chips": m["chips"],
        "cores_lb": lb,
        "cores_lb_reason": lb_why,
        "rates": problem.rate_source,
        "inter_core_spikes": _num(cut),
        "inter_core_spikes_ffd": _num(cut0),
        "intra_core_spikes": _num(m["intra_core_spikes"]),
        "host_spikes": _num(m["host_spikes"]),
        "inter_chip_spikes": _num(m["inter_chip_spikes"]),
        "hop_spikes": _num(m["hop_spikes"]),
        "busiest_core": busiest,
        "busiest_synops": _num(float(synops[busiest])) if synops.size else 0.0,
        "utilisation": util,
        **({"chip_utilisation": chip_util} if chip_util else {}),
        "core_order": order,
        "seed": seed,
        "links": [[int(a), int(b), _num(float(x))] for a, b, x in
                  zip(src[:MAX_LINKS].tolist(), dst[:MAX_LINKS].tolist(), w[:MAX_LINKS].tolist())],
    }
    if info is not None:
        summary.update({"cpsat_mode": info.mode, "windows": info.windows, "windows_improved": info.improved,
                        "deterministic_time_s": _num(info.deterministic_time), "budget_s": _num(budget)})
    at = next(i for i, line in enumerate(lines) if line.startswith("axon tables"))
    lines[at:at] = summary_lines(summary)
    return lines, summary


def _chip_utilisation(problem: Problem, assign: np.ndarray, n: int, cores_per_chip: int) -> dict[str, list[float]]:
    """Mean and fullest chip's use of every per-chip resource, in the packing model (shared items
    once per core or once per chip, as each resource says); empty without per-chip resources."""
    chip_res = np.flatnonzero(~problem.per_core)
    if not chip_res.size or n == 0:
        return {}
    load = ChipLoad(problem, assign, n)
    chip = np.arange(n) // cores_per_chip
    used = np.stack([load.of(np.flatnonzero(chip == k)).used for k in np.unique(chip).tolist()])
    return {problem.resources[r].name: [_num(float(used[:, r].mean()) / problem.resources[r].capacity),
                                        _num(float(used[:, r].max()) / problem.resources[r].capacity)]
            for r in chip_res.tolist()}


def summary_lines(s: dict[str, Any]) -> list[str]:
    """The figures of a partition summary, as the report and ``nmc inspect --placement`` print them."""
    lb = s.get("cores_lb") or 0
    ratio = s["cores"] / lb if lb else float("nan")
    util = s.get("utilisation", {})
    chip_util = s.get("chip_utilisation", {})
    cut, cut0 = s["inter_core_spikes"], s["inter_core_spikes_ffd"]
    return [
        f"groups {s['groups']} (slices of {s.get('pops', '?')} populations); cores {s['cores']} on {s['chips']} "
        f"chip(s), lower bound {lb} ({s.get('cores_lb_reason')}), ratio {ratio:.3f}",
        "utilisation, mean / busiest core: " + ", ".join(
            f"{name} {100 * a:.0f}% / {100 * b:.0f}%" for name, (a, b) in util.items()),
        *(["per chip (packing model), mean / fullest chip: " + ", ".join(
            f"{name} {100 * a:.0f}% / {100 * b:.0f}%" for name, (a, b) in chip_util.items())] if chip_util else []),
        f"spikes per step (rates {s.get('rates')}): inter-core {cut:.4g} (ffd {cut0:.4g}, {_change(cut, cut0)}), "
        f"within cores {s['intra_core_spikes']:.4g}, from the host {s['host_spikes']:.4g}; inter-chip "
        f"{s['inter_chip_spikes']:.4g}; hop-weighted {s['hop_spikes']:.4g} ({s.get('core_order')})",
        f"busiest core {s['busiest_core']}: {s['busiest_synops']:.4g} synaptic ops per step (mean "
        f"{s.get('busiest_synops_mean', 0.0):.4g}); the slowest core sets the timestep",
    ]


def _change(a: float, b: float) -> str:
    if b == 0:
        return "same" if a == 0 else "more"
    return f"{100.0 * (a - b) / b:+.1f}%"


def placement_text(meta: dict[str, Any], cfg: dict[str, Any]) -> str:
    """``nmc inspect --placement``: the partition summary a binary carries."""
    try:
        return _placement_text(meta, cfg)
    except (KeyError, TypeError, ValueError, AttributeError):
        from ..errors import BinaryFormatError
        raise BinaryFormatError("the binary's partition summary is malformed") from None


def _placement_text(meta: dict[str, Any], cfg: dict[str, Any]) -> str:
    s = meta.get("partition")
    lines = []
    chip = cfg.get("chip", {})
    if not s:
        lines.append("no partition summary in this binary (compiled with solver first-fit, or by an older nmc)")
    else:
        lines.append(f"partition: solver {s.get('solver')} ({s.get('status')}); chips of {chip.get('cores', '?')} cores")
        lines += summary_lines(s)
        links = s.get("links", [])
        if links:
            lines.append("heaviest links (core -> core: spikes per step): " + ", ".join(
                f"{a}->{b}: {x:.3g}" for a, b, x in links[:8]))
    return "\n".join(lines) + "\n"


def plot_placement(meta: dict[str, Any], geometry: Geometry, path: str, fill_key: str | None = None) -> None:
    """Draw the cores on the mesh (shade: ``fill_key`` of the per-core table, the layout part's
    first report column) and the heaviest links between them (width: spikes per step) to
    ``path`` (.svg or .png). Needs matplotlib, imported here."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from ..errors import NmcError
        raise NmcError("--placement-plot needs matplotlib, which is not installed (pip install 'nmc[plot]')") from None
    cores = meta.get("cores", [])
    links = (meta.get("partition") or {}).get("links", [])
    # Core ids here are the partition's, which the geometry places; a layout that numbers its
    # cores without the ids left unused (a chip closed early by a per-chip limit) gives each
    # core's partition id as "position".
    pos = [int(c.get("position", c.get("core", -1))) for c in cores]
    n = max([int(meta.get("n_cores", len(cores)))] + [p + 1 for p in pos] + [max(a, b) + 1 for a, b, _ in links])
    ids = np.arange(n)
    x, y = geometry.xy(ids)
    fill = np.zeros(n)
    for c, p in zip(cores, pos):
        if fill_key is not None and 0 <= p < n:
            fill[p] = float(c.get(fill_key, 0))
    # Every core of the chips in use, faint, under the used ones.
    cpc = max(int(geometry.cores_per_chip), 1)
    all_ids = np.arange(max(-(-n // cpc), 1) * cpc)
    ax_all, ay_all = geometry.xy(all_ids)
    fig, ax = plt.subplots(figsize=(8, max(3.0, 8 * (ay_all.max() + 1) / max(ax_all.max() + 1, 1))))
    ax.scatter(ax_all, ay_all, s=12, color="0.85", zorder=1)
    if links:
        wmax = max(x_ for _, _, x_ in links) or 1.0
        for a, b, w in links[:500]:
            ax.plot([x[a], x[b]], [y[a], y[b]], color="tab:red", alpha=0.35, lw=0.3 + 3.0 * w / wmax)
    used = np.unique(np.array(pos, dtype=np.int64)) if pos else ids  # ids a closed chip left unused stay faint
    sc = ax.scatter(x[used], y[used], c=fill[used], cmap="viridis", s=30, edgecolors="k", linewidths=0.3, zorder=3)
    fig.colorbar(sc, ax=ax, label=fill_key or "")
    ax.set_aspect("equal")
    ax.set_xlabel("mesh x")
    ax.set_ylabel("mesh y")
    ax.set_title(f"{meta.get('network', '')}: {used.size} cores, heaviest links in red")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
