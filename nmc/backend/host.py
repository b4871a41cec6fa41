"""What the host needs to drive and read a converted network, shared by every backend.

A network from ``convert-ann`` records how its real-valued input is encoded and how its output
is read (network attributes ``encoding`` and ``readout``, docs/conversion.md). A backend turns
them into binary metadata that ``nmc run`` follows (:mod:`nmc.sim.encoding`,
``nmc.sim.runner._run_encoded``), and adds the readout population's v probe. Nothing here knows a
chip: how a v register reads in model units comes from what the target's mapping part recorded
in ``pop.attrs["mapped"]["units"]`` -- ``{"v": [scale, offset]}``, V in mV = register / scale +
offset -- so a new backend gets the host side of converted networks by calling
:func:`host_probes`, :func:`encoding_meta` and :func:`readout_meta`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import NmcError
from ..ir.network import Network, Population, Probe


def host_probes(net: Network) -> list[Probe]:
    """The network's probes plus the v probe of a converted network's readout population (the
    host reads its output from it), unless the network probes that already."""
    probes = list(net.probes)
    readout = net.attrs.get("readout")
    if readout is not None and not any(p.population == readout["population"] and p.variable == "v" for p in probes):
        probes.append(Probe(f"{readout['population']}.v", readout["population"], "v"))
    return probes


def encoding_meta(net: Network) -> dict[str, Any] | None:
    """How the host encodes a converted network's real-valued input: the conversion's choice
    plus the input port and, for graded payloads, the payload units per input unit the mapping
    chose (``graded_scale`` on the input population)."""
    enc = net.attrs.get("encoding")
    if enc is None:
        return None
    out = dict(enc)
    out["port"] = enc["input"]
    scale = net.population(enc["input"]).attrs.get("graded_scale")
    if scale is not None:
        out["payload_scale"] = float(scale)
    return out


def v_units(pop: Population) -> tuple[float, float]:
    """(scale, offset) of the population's v register as its mapping recorded it: V in the model's
    unit (mV for physical models, thresholds for graded units) = register / scale + offset. A
    population no mapping lowered reads in its own units (1, 0)."""
    units = pop.attrs.get("mapped", {}).get("units", {}).get("v", [1.0, 0.0])
    scale, offset = float(units[0]), float(units[1])
    if not (np.isfinite(scale) and scale > 0 and np.isfinite(offset)):
        raise NmcError(f"the mapping recorded v units {units!r}; a converted readout needs a positive scale",
                       location=f"population '{pop.name}'")
    return scale, offset


def readout_meta(net: Network, probes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How the host reads a converted network's output from its v probe at the last step.

    Keys: ``population``, ``probe``, ``kind``; ``scale`` -- v register units per mV (per
    activation unit for a ``value`` readout); ``unit`` -- the layer's conversion scale, back to
    the imported network's output units. A ``charge`` readout (rate coding) adds ``quantum``, the
    register units of one activation unit of charge (``activation_mv`` mV, the conversion's
    threshold span), and, only where they differ from their defaults: ``spike`` (activation
    units one output spike takes away, default 1: the output's threshold span over
    ``activation_mv``) and ``zero`` (the register value of no charge, default 0: where the neuron
    starts, v_reset plus its start charge, in register units)."""
    readout = net.attrs.get("readout")
    if readout is None:
        return None
    pop = net.population(readout["population"])
    probe = next((p["name"] for p in probes if p["population"] == pop.name and p["variable"] == "v"), None)
    if probe is None:
        raise NmcError("the readout population has no v probe (the backend must record the probes host_probes "
                       "returns)", location=f"population '{pop.name}'")
    v_scale, v_offset = v_units(pop)
    out: dict[str, Any] = {"population": pop.name, "probe": probe, "kind": readout["kind"], "scale": v_scale,
                           "unit": float((net.attrs.get("conversion") or {}).get("scales", {}).get(pop.name, 1.0))}
    if readout["kind"] == "charge":
        params = pop.attrs.get("mapped", {}).get("params", {})
        v_reset = np.asarray(params.get("v_reset", 0.0), dtype=np.float64)
        spans = np.asarray(params.get("v_th", 1.0), dtype=np.float64) - v_reset
        span = float(np.max(spans))
        per_unit = float(readout.get("activation_mv", span))
        out["quantum"] = v_scale * per_unit
        if span != per_unit:
            out["spike"] = span / per_unit
        start = v_reset + float(np.max(np.asarray(params.get("init_charge", 0.0)))) * spans
        if np.any(start != start.reshape(-1)[0]):
            raise NmcError("a charge readout needs one start voltage for the whole population",
                           location=f"population '{pop.name}'")
        zero = (float(start.reshape(-1)[0]) - v_offset) * v_scale
        if zero != 0.0:
            out["zero"] = zero
    return out
