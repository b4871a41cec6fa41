"""Loihi-2-like backend: the Loihi-like binary (nmc.backend.loihi) plus the tables of the graded
sigma-delta units (docs/binary.md, "Graded spikes").

An ``sdn`` compartment takes a slot in the ordinary compartment tables with a config that never
fires there (memoryless current and voltage, the highest threshold, no bias); its own registers
are per-compartment sections, which the Loihi-2-like interpreter (nmc.sim.loihi2) reads:

    sdn_cx                    global compartment id of every sdn unit (ascending)
    sdn_threshold, sdn_clip   int32   delta threshold; activation bound (0: none)
    sdn_shift, sdn_relu       uint8   sigma >> shift; rectify
    sdn_decay                 uint16  low-pass of the activation, 1..4096 (4096: none)
    sdn_bias_mant, sdn_bias_exp       bias = mant << exp

Input ports that feed sdn units take graded payloads; their metadata entry says so
(``graded: true``, ``payload_scale``).
"""

from __future__ import annotations

import numpy as np

from ..binary.format import Binary
from ..formats.loihi import bias_to_mant_exp
from ..ir.network import Network
from ..lowering.loihi_layout import build_layout
from ..target import Target
from .loihi import compile_loihi


def compile_loihi2(net: Network, target: Target) -> Binary:
    """Lower ``net`` (after quantize, partition, allocate) to a Loihi-2-like :class:`Binary`."""
    sdn = [p for p in net.populations if p.model == "sdn"]
    saved = {p.name: (p.model, p.params) for p in sdn}
    # The cuba_lif view of an sdn compartment: it never fires in the Loihi-1 datapath (decays
    # clear u and v every step, threshold at the top of the range).
    never = {"decay_u": int(target.get("neuron.decay_u_max")), "decay_v": int(target.get("neuron.decay_v_max")),
             "threshold": int(target.get("neuron.threshold_mant_max")), "refractory": 1, "bias": 0}
    try:
        for p in sdn:
            p.model, p.params = "cuba_lif", dict(never)
        binary = compile_loihi(net, target)
        lay = build_layout(net, target)
    finally:
        for p in sdn:
            p.model, p.params = saved[p.name]
    cx_offset = np.concatenate([[0], np.cumsum(lay.core_compartments)]).astype(np.int64)
    ids, cols = [], {k: [] for k in ("threshold", "shift", "relu", "clip", "decay", "bias")}
    for p in sdn:
        ids.append(cx_offset[lay.pop_core[p.name]] + lay.pop_local[p.name])
        for k in cols:
            cols[k].append(np.broadcast_to(np.asarray(p.param_array(k), dtype=np.int64), (p.size,)))
    if sdn:
        gid = np.concatenate(ids)
        order = np.argsort(gid, kind="stable")
        col = {k: np.concatenate(v)[order] for k, v in cols.items()}
        mant, exp = bias_to_mant_exp(col["bias"], target)
        binary.sections.update({
            "sdn_cx": gid[order].astype(np.int64),
            "sdn_threshold": col["threshold"].astype(np.int32),
            "sdn_clip": col["clip"].astype(np.int32),
            "sdn_shift": col["shift"].astype(np.uint8),
            "sdn_relu": col["relu"].astype(np.uint8),
            "sdn_decay": col["decay"].astype(np.uint16),
            "sdn_bias_mant": mant.astype(np.int16),
            "sdn_bias_exp": exp.astype(np.uint8),
        })
    models = {p.name: p.model for p in net.populations}
    for entry in binary.meta.get("populations", []):
        entry["model"] = models[entry["name"]]
    for port in binary.meta.get("inputs", []):
        scale = net.population(port["name"]).attrs.get("graded_scale")
        if scale is not None:
            port["graded"] = True
            port["payload_scale"] = float(scale)
    return binary
