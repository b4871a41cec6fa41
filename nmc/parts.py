"""The registry of target parts: what code implements each piece of a target.

A target file (``targets/<name>.toml``) is data plus a ``[parts]`` table that names, by key, the
code that implements each of these kinds of part::

    [parts]
    formats = "loihi"       # number formats: quantization, weight grids, gate and veto weights
    mapping = "loihi"       # the W/tau mapping of physical-unit neuron models to registers
    layout = "loihi"        # resource model and concrete layout on cores (target lowering)
    backend = "loihi"       # IR -> binary
    interpreter = "loihi"   # binary -> a running chip (nmc.sim.protocol.Interpreter)
    cost_model = "loihi"    # per-core counts -> time and energy

Every pass, the backend, ``nmc run``, ``nmc inspect`` and the reports find their code here, by
kind and key; nothing branches on a target's name. A new target is new files plus one line per
part in :data:`_BUILTIN` -- or, from another package, an entry point in the group ``nmc.parts``
named ``<kind>.<key>`` whose value is ``module:attribute``.

Parts are imported lazily, when first asked for, so that the interpreter never imports the
compiler's passes and importing nmc stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import TargetError

#: Kinds of part a target names, with what each must provide (the protocol it follows).
PART_KINDS: dict[str, str] = {
    "formats": "number formats (nmc.formats.Formats): quantize, weight grids, gate and veto weights",
    "mapping": "W/tau mapping of physical-unit neuron models (nmc.lowering.NeuronMapping)",
    "layout": "resource model and layout on cores (nmc.lowering.LayoutModel)",
    "backend": "IR -> binary: a function (Network, Target) -> Binary",
    "interpreter": "binary -> interpreter: a class Binary -> nmc.sim.protocol.Interpreter",
    "cost_model": "per-core counts -> time and energy (nmc.sim.protocol.CostModel)",
}

#: Parts that ship with nmc: (kind, key) -> "module:attribute".
_BUILTIN: dict[tuple[str, str], str] = {
    ("formats", "loihi"): "nmc.formats.loihi:LoihiFormats",
    ("mapping", "loihi"): "nmc.lowering.loihi_mapping:LoihiNeuronMapping",
    ("layout", "loihi"): "nmc.lowering.loihi_layout:LoihiLayoutModel",
    ("backend", "loihi"): "nmc.backend.loihi:compile_loihi",
    ("interpreter", "loihi"): "nmc.sim.loihi:LoihiInterpreter",
    ("cost_model", "loihi"): "nmc.sim.cost_loihi:LoihiCostModel",
    ("formats", "spinnaker"): "nmc.formats.spinnaker:SpiNNakerFormats",
    ("mapping", "spinnaker"): "nmc.lowering.spinnaker_mapping:SpiNNakerNeuronMapping",
    ("layout", "spinnaker"): "nmc.lowering.spinnaker_layout:SpiNNakerLayoutModel",
    ("backend", "spinnaker"): "nmc.backend.spinnaker:compile_spinnaker",
    ("interpreter", "spinnaker"): "nmc.sim.spinnaker:SpiNNakerInterpreter",
    ("cost_model", "spinnaker"): "nmc.sim.cost_spinnaker:SpiNNakerCostModel",
    # The Loihi-2-like variant: graded spikes and sigma-delta units on top of the Loihi-like parts.
    ("formats", "loihi2"): "nmc.formats.loihi2:Loihi2Formats",
    ("mapping", "loihi2"): "nmc.lowering.loihi2_mapping:Loihi2NeuronMapping",
    ("backend", "loihi2"): "nmc.backend.loihi2:compile_loihi2",
    ("interpreter", "loihi2"): "nmc.sim.loihi2:Loihi2Interpreter",
}

ENTRY_POINT_GROUP = "nmc.parts"
_loaded: dict[tuple[str, str], Any] = {}
_entry_points: dict[tuple[str, str], Any] | None = None


def _plugin_entry_points() -> dict[tuple[str, str], Any]:
    """Parts other packages register as entry points ``<kind>.<key> = module:attribute``."""
    global _entry_points
    if _entry_points is None:
        from importlib.metadata import entry_points
        found: dict[tuple[str, str], Any] = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            kind, _, key = ep.name.partition(".")
            if kind in PART_KINDS and key:
                found[kind, key] = ep
        _entry_points = found
    return _entry_points


def known_keys(kind: str) -> list[str]:
    """Every key registered for ``kind`` (built in and from plug-ins), sorted."""
    keys = {k for (c, k) in _BUILTIN if c == kind} | {k for (c, k) in _plugin_entry_points() if c == kind}
    return sorted(keys)


def is_registered(kind: str, key: str) -> bool:
    return (kind, key) in _BUILTIN or (kind, key) in _plugin_entry_points()


def load_part(kind: str, key: str) -> Any:
    """The object registered as part ``kind`` under ``key`` (imported on first use)."""
    if kind not in PART_KINDS:
        raise TargetError(f"unknown kind of target part '{kind}' (kinds: {', '.join(PART_KINDS)})")
    if (kind, key) in _loaded:
        return _loaded[kind, key]
    if (kind, key) in _BUILTIN:
        module, _, attr = _BUILTIN[kind, key].partition(":")
        obj = getattr(importlib.import_module(module), attr)
    elif (kind, key) in _plugin_entry_points():
        obj = _plugin_entry_points()[kind, key].load()
    else:
        known = ", ".join(known_keys(kind)) or "none"
        raise TargetError(f"no {kind} part registered under '{key}' (known: {known})")
    _loaded[kind, key] = obj
    return obj


def check_parts(parts: Any, where: str) -> dict[str, str]:
    """Validate a target's ``[parts]`` table: every kind named, every key registered."""
    if not isinstance(parts, dict):
        raise TargetError("the target has no [parts] table naming its formats, mapping, layout, backend, "
                          "interpreter and cost_model", location=where)
    out: dict[str, str] = {}
    for kind in PART_KINDS:
        key = parts.get(kind)
        if not isinstance(key, str) or not key:
            raise TargetError(f"[parts] names no {kind} ({PART_KINDS[kind]})", location=where)
        if not is_registered(kind, key):
            known = ", ".join(known_keys(kind)) or "none"
            raise TargetError(f"[parts] {kind} = '{key}' is not a registered {kind} part (known: {known})",
                              location=where)
        out[kind] = key
    unknown = sorted(set(parts) - set(PART_KINDS))
    if unknown:
        raise TargetError(f"[parts] has unknown kind '{unknown[0]}' (kinds: {', '.join(PART_KINDS)})", location=where)
    return out
