"""Human-readable reports: the resource/placement table of a binary and the summary of a run."""

from __future__ import annotations

from typing import Any

import numpy as np

from .binary.format import Binary


def _pct(used: int, cap: int) -> str:
    return f"{used}/{cap} ({100.0 * used / cap:.0f}%)" if cap else str(used)


def binary_report(b: Binary) -> str:
    m, cfg = b.meta, b.target_config
    core = cfg.get("core", {})
    chip = cfg.get("chip", {})
    lines = [f"nmc binary: target {b.target}, format v{b.format_version}, network '{m.get('network', '?')}', "
             f"{m.get('producer', '')}"]
    ins = ", ".join(f"{p['name']}[{p['size']}]" for p in m.get("inputs", [])) or "none"
    outs = ", ".join(f"{p['name']}[{p['size']}]" for p in m.get("outputs", [])) or "none"
    probes = ", ".join(f"{p['name']}" for p in m.get("probes", [])) or "none"
    lines.append(f"inputs: {ins}   outputs: {outs}   probes: {probes}")
    total_cores = int(chip.get("cores", 0)) * int(chip.get("chips", 1))
    lines.append(f"cores used: {m.get('n_cores', 0)} of {total_cores}")
    lines.append("")
    cols = [("core", "core", None), ("compartments", "compartments", "max_compartments"),
            ("input axons", "input_axons", "max_input_axons"), ("output axons", "output_axons", "max_output_axons"),
            ("synapse bits", "synapse_bits", "synapse_memory_bits"),
            ("cx cfgs", "compartment_configs", "max_compartment_configs"),
            ("syn fmts", "synapse_formats", "max_synapse_formats")]
    rows = []
    for c in m.get("cores", []):
        row = []
        for _title, key, lim in cols:
            v = int(c.get(key, 0))
            row.append(str(v) if lim is None else _pct(v, int(core.get(lim, 0))))
        row.append(", ".join(c.get("populations", [])))
        rows.append(row)
    header = [t for t, _, _ in cols] + ["populations"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines.append("  ".join(h.rjust(w) if i < len(cols) else h for i, (h, w) in enumerate(zip(header, widths))))
    for r in rows:
        lines.append("  ".join(x.rjust(w) if i < len(cols) else x for i, (x, w) in enumerate(zip(r, widths))))
    lines.append("")
    lines.append("placement (population: core [start, stop) ...):")
    for p in m.get("populations", []):
        if p.get("model") == "input":
            lines.append(f"  {p['name']}[{p['size']}]: input port (host -> input axons)")
            continue
        parts = " ".join(f"{c}[{s},{e})" for c, s, e in p.get("placement", []))
        lines.append(f"  {p['name']}[{p['size']}] ({p.get('model')}, {p.get('role')}): {parts}")
    return "\n".join(lines) + "\n"


def _si(x: float, unit: str) -> str:
    for scale, prefix in ((1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")):
        if abs(x) >= scale or scale == 1e-12:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x} {unit}"


def run_summary(b: Binary, s: Any) -> str:
    c = s.counters
    steps = int(c.get("timesteps", 0))
    how = f"{s.samples} samples x {s.steps_per_sample} steps" if s.samples > 1 or s.labels is not None \
        else f"{steps} steps"
    lines = [f"nmc run: target {b.target}, network '{b.meta.get('network', '?')}', {how}"]
    lines.append(f"  spikes          {int(c.get('spikes', 0))}")
    lines.append(f"  synaptic ops    {int(c.get('synaptic_ops', 0))}")
    lines.append(f"  spike messages  {int(c.get('spike_messages_within_core', 0))} within cores, "
                 f"{int(c.get('spike_messages_between_cores', 0))} between cores")
    lines.append(f"  cycles          {int(c.get('cycles', 0))}  (chip time {_si(float(c.get('time_s', 0.0)), 's')}, "
                 f"{_si(float(c.get('time_s', 0.0)) / max(steps, 1), 's')} per step)")
    lines.append(f"  energy          {_si(float(c.get('energy_j', 0.0)), 'J')}  (cost model: Davies 2018 Table 2, simulated)")
    for name, spk in s.spikes.items():
        counts = np.asarray(spk).reshape(-1, spk.shape[-1]).sum(axis=0)
        shown = " ".join(str(int(x)) for x in counts[:16]) + (" ..." if counts.size > 16 else "")
        lines.append(f"  output {name}: spike counts per unit: {shown}")
    if s.accuracy is not None:
        n = len(s.labels)
        lines.append(f"  accuracy        {100 * s.accuracy:.2f}% ({int(round(s.accuracy * n))}/{n})")
    return "\n".join(lines) + "\n"
