"""Human-readable reports: the resource/placement table of a binary and the summary of a run."""

from __future__ import annotations

from typing import Any

import numpy as np

from .binary.format import Binary
from .errors import BinaryFormatError, TargetError
from .parts import load_part


def _layout(b: Binary) -> Any:
    parts = b.target_config.get("parts", {})
    try:
        return load_part("layout", str(parts.get("layout", "")))
    except TargetError as exc:
        raise BinaryFormatError(f"binary for target '{b.target}': {exc.message}") from None


def _resource_columns(b: Binary) -> list[tuple[str, str, str | None]]:
    """The per-core resource table's columns, (title, key in meta["cores"], limit key): the
    target's layout part says which resources its cores have."""
    return [("core", "core", None), *getattr(_layout(b), "report_columns", ())]


def _table(rows_in: list[dict[str, Any]], cols: list[tuple[str, str, str | None]], cfg: dict[str, Any],
           last: str | None) -> list[str]:
    """A right-aligned table of ``rows_in`` (numbers against their limits), with an optional
    left-aligned last column of lists (populations)."""
    rows = []
    for c in rows_in:
        row = []
        for _title, key, lim in cols:
            v = c.get(key, 0)
            if not isinstance(v, (int, float)):
                row.append(str(v))
            else:
                row.append(str(int(v)) if lim is None else _pct(int(v), _limit(cfg, lim)))
        if last is not None:
            row.append(", ".join(c.get(last, [])))
        rows.append(row)
    header = [t for t, _, _ in cols] + ([last] if last is not None else [])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.rjust(w) if i < len(cols) else h for i, (h, w) in enumerate(zip(header, widths)))]
    for r in rows:
        out.append("  ".join(x.rjust(w) if i < len(cols) else x for i, (x, w) in enumerate(zip(r, widths))))
    return out


def cost_model_note(b: Binary) -> str:
    """What the binary's cost-model figures are (the target's cost model says)."""
    try:
        model = load_part("cost_model", str(b.target_config.get("parts", {}).get("cost_model", "")))
    except TargetError:
        return "cost model unknown"
    return str(getattr(model, "description", "cost model"))


def _limit(cfg: dict[str, Any], dotted: str | None) -> int:
    node: Any = cfg
    for part in (dotted or "").split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return int(node) if isinstance(node, (int, float)) else 0


def _pct(used: int, cap: int) -> str:
    return f"{used}/{cap} ({100.0 * used / cap:.0f}%)" if cap else str(used)


def binary_report(b: Binary) -> str:
    m, cfg = b.meta, b.target_config
    chip = cfg.get("chip", {})
    lines = [f"nmc binary: target {b.target}, format v{b.format_version}, network '{m.get('network', '?')}', "
             f"{m.get('producer', '')}"]
    ins = ", ".join(f"{p['name']}[{p['size']}]" for p in m.get("inputs", [])) or "none"
    outs = ", ".join(f"{p['name']}[{p['size']}]" for p in m.get("outputs", [])) or "none"
    probes = ", ".join(f"{p['name']}" for p in m.get("probes", [])) or "none"
    lines.append(f"inputs: {ins}   outputs: {outs}   probes: {probes}")
    ep = m.get("eprop")
    if isinstance(ep, dict):            # learning trial by trial: what the cores do and when
        k, batch = ep.get("adam_ticks", 1), ep.get("batch")
        when = f"over the first {k} ticks" if k != 1 else "in the first tick"
        every = "every trial" if batch == 1 else f"every {batch} trials"
        lines.append(f"e-prop: trials of {ep.get('trial_ticks')} ticks, {ep.get('loss')} loss on "
                     f"'{ep.get('score')}' against '{ep.get('target')}' from tick {ep.get('window_from')}, "
                     f"update {ep.get('update', 'gradient')} {every}, {when} of the next trial")
    total_cores = int(chip.get("cores", 0)) * int(chip.get("chips", 1))
    lines.append(f"cores used: {m.get('n_cores', 0)} of {total_cores}")
    lines.append("")
    lines += _table(m.get("cores", []), _resource_columns(b), cfg, "populations")
    lines.append("")
    chip_cols = list(getattr(_layout(b), "chip_report_columns", ()))
    if chip_cols and m.get("chips"):
        lines.append(f"chips used: {len(m['chips'])} (cores, SDRAM and router entries per chip)")
        lines += _table(m["chips"], chip_cols, cfg, None)
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
        # 0.9995: a value that rounds to 1000 of the next unit down (0.000999999 s) prints as 1 ms
        if abs(x) >= 0.9995 * scale or scale == 1e-12:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x} {unit}"


def run_summary(b: Binary, s: Any) -> str:
    c = s.counters
    steps = int(c.get("timesteps", 0))
    how = f"{s.samples} samples x {s.steps_per_sample} steps" if s.samples > 1 or s.labels is not None \
        else f"{steps} steps"
    if getattr(s, "epochs", 1) != 1:
        how += f", {s.epochs} epochs (outputs and accuracy of the last epoch, counters of all)"
    lines = [f"nmc run: target {b.target}, network '{b.meta.get('network', '?')}', {how}"]
    lines.append(f"  spikes          {int(c.get('spikes', 0))}")
    lines.append(f"  synaptic ops    {int(c.get('synaptic_ops', 0))}")
    if "spike_messages_within_core" in c:
        lines.append(f"  spike messages  {int(c.get('spike_messages_within_core', 0))} within cores, "
                     f"{int(c.get('spike_messages_between_cores', 0))} between cores")
    if "packets_sent" in c:
        lines.append(f"  packets         {int(c['packets_sent'])} sent, {int(c.get('packets_received', 0))} received, "
                     f"{int(c.get('packets_dropped', 0))} dropped; {int(c.get('router_entries_hit', 0))} router "
                     f"entries hit, {int(c.get('packets_default_routed', 0))} default routed")
    if "overruns" in c:
        lines.append(f"  overruns        {int(c['overruns'])} (tick, core) pairs over the timer period")
    if "eprop_trials" in c:
        lines.append(f"  e-prop          {int(c['eprop_trials'])} trials learned from, "
                     f"{int(c.get('payload_packets_sent', 0))} learning-signal payload packets sent")
    lines.append(f"  cycles          {int(c.get('cycles', 0))}  (chip time {_si(float(c.get('time_s', 0.0)), 's')}, "
                 f"{_si(float(c.get('time_s', 0.0)) / max(steps, 1), 's')} per step)")
    lines.append(f"  energy          {_si(float(c.get('energy_j', 0.0)), 'J')}  ({cost_model_note(b)})")
    for name, spk in s.spikes.items():
        counts = np.asarray(spk).reshape(-1, spk.shape[-1]).sum(axis=0)
        shown = " ".join(str(int(x)) for x in counts[:16]) + (" ..." if counts.size > 16 else "")
        lines.append(f"  output {name}: spike counts per unit: {shown}")
    readout = b.meta.get("readout")
    if readout and getattr(s, "readout", None) is not None:
        how = "charge (spikes + v, in activation units)" if readout["kind"] == "charge" else "activation"
        lines.append(f"  readout         {how} of '{readout['population']}' after step {s.steps_per_sample} "
                     f"(predictions: its argmax)")
    if s.accuracy is not None:
        n = len(s.labels)
        lines.append(f"  accuracy        {100 * s.accuracy:.2f}% ({int(round(s.accuracy * n))}/{n})")
    return "\n".join(lines) + "\n"
