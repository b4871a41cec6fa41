"""The metadata every chip's binary carries for the host: ports, outputs, probes, placement,
plastic weight formats and the learning schedule, checked when a binary is read.

These fields are read by code shared by all chips (``nmc inspect``, :mod:`nmc.sim.runner`,
:mod:`nmc.sim.schedule_runner`), so their shape and the references between them (a schedule's
kick port is an input port, its readout an output with a ``u`` probe, ...) are checked here, once,
for every target. What the sections hold is the chip's business (e.g. :mod:`nmc.sim.loihi_validate`).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .checks import fail, need_dict, need_int, need_key, need_list, need_names, need_str

#: Largest shift a weight format may name (the host shifts int64 weights by it).
MAX_FORMAT_DROP = 32


def _ports(meta: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    """Input ports or outputs: unique names, a size and the prefix of their sections."""
    ports = need_names(meta.get(key, []), f"meta '{key}'")
    for name, p in ports.items():
        need_int(need_key(p, "size", f"{key} '{name}'"), f"{key} '{name}' size", lo=0)
        need_str(need_key(p, "section", f"{key} '{name}'"), f"{key} '{name}' section")
    return ports


def _probes(meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    probes = need_names(meta.get("probes", []), "meta 'probes'")
    for name, p in probes.items():
        for key in ("population", "variable", "section"):
            need_str(need_key(p, key, f"probe '{name}'"), f"probe '{name}' {key}")
        if "source" in p:  # what a source means is the chip's (e.g. nmc.sim.loihi_validate)
            need_str(p["source"], f"probe '{name}' source")
    return probes


def _placement(meta: dict[str, Any]) -> None:
    """What ``nmc inspect`` prints: the per-core table and each population's slices."""
    for i, core in enumerate(need_list(meta.get("cores", []), "meta 'cores'")):
        core = need_dict(core, f"meta 'cores'[{i}]")
        # Which resources a core has is the target's (its layout part's report columns); every
        # count ``nmc inspect`` prints is a non-negative integer.
        for key, value in core.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                need_int(value, f"meta 'cores'[{i}] {key}", lo=0)
        for name in need_list(core.get("populations", []), f"meta 'cores'[{i}] populations"):
            need_str(name, f"meta 'cores'[{i}] population name")
    for name, pop in need_names(meta.get("populations", []), "meta 'populations'").items():
        size = need_int(need_key(pop, "size", f"population '{name}'"), f"population '{name}' size", lo=0)
        for key in ("model", "role"):
            need_str(pop.get(key, "?"), f"population '{name}' {key}")
        for s in need_list(pop.get("placement", []), f"population '{name}' placement"):
            s = need_list(s, f"population '{name}' placement slice")
            if len(s) != 3:
                raise fail(f"population '{name}' has a placement slice of {len(s)} numbers, expected [core, start, stop]")
            core, start, stop = (need_int(x, f"population '{name}' placement", lo=0) for x in s)
            if not start < stop <= size:
                raise fail(f"population '{name}' has a placement slice [{start}, {stop}) outside its {size} neurons")


def _plastic(meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Plastic projections: the host averages their weights on each one's format grid."""
    plastic = need_names(meta.get("plastic", []), "meta 'plastic'")
    for name, spec in plastic.items():
        fmt = need_dict(need_key(spec, "format", f"plastic projection '{name}'"), f"plastic projection '{name}' format")
        need_int(need_key(fmt, "drop", f"plastic projection '{name}' format"), f"plastic projection '{name}' drop",
                 lo=0, hi=MAX_FORMAT_DROP)
        need_int(need_key(fmt, "exponent", f"plastic projection '{name}' format"),
                 f"plastic projection '{name}' exponent")
        lo, hi = (need_int(need_key(fmt, k, f"plastic projection '{name}' format"), f"plastic projection '{name}' {k}")
                  for k in ("lo", "hi"))
        if lo > hi:
            raise fail(f"plastic projection '{name}' has weight range [{lo}, {hi}]")
    backprop = meta.get("backprop")
    if backprop is not None:
        # An inference compile names its construct's weights although none of them learns.
        for w in need_list(need_dict(backprop, "meta 'backprop'").get("weights", []), "meta 'backprop' weights"):
            need_str(w, "meta 'backprop' weight")
    return plastic


def _schedule(meta: dict[str, Any], ins: Mapping[str, Any], outs: Mapping[str, Any],
              probes: Mapping[str, dict[str, Any]]) -> None:
    """A learning schedule's ports, ticks and readout, as the host drives them."""
    sched = meta.get("schedule")
    if sched is None:
        return
    sched = need_dict(sched, "meta 'schedule'")
    cycle = need_int(need_key(sched, "cycle", "the schedule"), "the schedule's cycle", lo=1)
    for port, tick in need_dict(need_key(sched, "inputs", "the schedule"), "the schedule's inputs").items():
        if port not in ins:
            raise fail(f"the schedule feeds '{port}', which is no input port")
        need_int(tick, f"the schedule's tick of '{port}'", lo=0, hi=cycle - 1)
    for key in ("kick", "target"):
        if key in sched and need_str(sched[key], f"the schedule's {key}") not in ins:
            raise fail(f"the schedule's {key} '{sched[key]}' is no input port")
    if "kick" not in sched:
        raise fail("the schedule names no kick port")
    need_int(sched.get("first_cycle_step", 1), "the schedule's first_cycle_step", lo=0)
    if sched.get("readout") is not None:
        ro = need_dict(sched["readout"], "the schedule's readout")
        pop = need_str(need_key(ro, "population", "the schedule's readout"), "the schedule's readout population")
        need_int(need_key(ro, "tick", "the schedule's readout"), "the schedule's readout tick", lo=0, hi=cycle - 1)
        if pop not in outs:
            raise fail(f"the schedule's readout '{pop}' is not recorded as an output")
        probe = probes.get(f"{pop}.u")
        if probe is None or probe["variable"] != "u" or probe["population"] != pop:
            raise fail(f"the schedule's readout '{pop}' has no probe '{pop}.u' of its current")


def check_meta(meta: dict[str, Any], sections: Mapping[str, np.ndarray]) -> None:
    """Raise :class:`BinaryFormatError` for host-side metadata that is malformed or refers to
    something that does not exist (``sections`` are the binary's arrays)."""
    ins, outs, probes = _ports(meta, "inputs"), _ports(meta, "outputs"), _probes(meta)
    for key in ("network", "producer"):
        if key in meta and not isinstance(meta[key], str):
            raise fail(f"meta '{key}' must be a string, got {meta[key]!r}")
    need_int(meta.get("seed", 0), "meta 'seed'", lo=0)
    need_int(meta.get("n_cores", 0), "meta 'n_cores'", lo=0)
    _placement(meta)
    plastic = _plastic(meta)
    for name, spec in plastic.items():
        for end in ("pre", "post", "reward"):
            ref = spec.get(end)
            if isinstance(ref, dict) and "section" in ref:
                if need_str(ref["section"], f"plastic projection '{name}' {end} section") not in sections:
                    raise fail(f"plastic projection '{name}' {end} names section '{ref['section']}', which is missing")
    _schedule(meta, ins, outs, probes)
