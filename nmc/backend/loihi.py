"""Loihi-like backend: a quantized, partitioned, allocated IR -> binary tables.

The binary holds what a chip configuration holds (docs/binary.md):

- per core: a compartment table (config index, bias mantissa/exponent per compartment), a
  compartment-config table (decays, threshold mantissa, refractory delay), a synapse-format table
  (weight bits, sign mode, exponent, delay bits, indexed or not);
- per input axon: its synapse list (local compartment, weight mantissa, delay, format);
- per compartment: its output axons (destination core, destination axon);
- input ports: per port unit, the (core, axon) pairs the host writes spikes to;
- output populations and probes: compartment ids to read back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import __version__
from ..arrayops import unique_inverse
from ..binary.format import Binary
from ..errors import NmcError
from ..formats.loihi import bias_to_mant_exp, dropped_bits, mantissa_range
from ..ir.learning import learning_spec
from ..ir.network import Network, Probe
from ..lowering.loihi_layout import Layout, build_layout
from ..target import Target
from .host import encoding_meta, host_probes, readout_meta

SIGN_CODES = {"mixed": 0, "excitatory": 1, "inhibitory": 2}


def _schedule_meta(net: Network) -> dict[str, Any] | None:
    """What the host needs to drive a scheduled network: the cycle, when each port receives a
    sample, the kick port that starts the gate chain, the readout population and tick."""
    sched = net.attrs.get("schedule")
    if sched is None:
        return None
    if not sched.get("synthesized"):
        raise NmcError("the network has a schedule but no gate chain (the pass pipeline must include 'synfire')")
    out = {"cycle": int(sched["cycle"]), "inputs": {k: int(v) for k, v in dict(sched.get("inputs", {})).items()},
           "kick": sched["kick"], "first_cycle_step": int(sched.get("first_cycle_step", 1))}
    if "readout" in sched:
        out["readout"] = {"population": sched["readout"]["population"], "tick": int(sched["readout"]["tick"])}
    if "target" in sched:
        out["target"] = sched["target"]
    return out


def _offsets(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _per_core_tables(core: np.ndarray, rows: np.ndarray, n_cores: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deduplicate ``rows`` within each core: returns (table rows, per-core table offsets,
    index of each row into its core's table). Within a core the table lists its distinct rows in
    lexicographic order.

    No sort of a rows x columns table (``np.unique(axis=0)`` took 33 s on 10^7 synapses): each
    column is ranked, the ranks are folded into one integer per row that keeps the lexicographic
    order (re-ranked whenever the next fold could overflow), and distinct (core, row) pairs come
    from one 1-D sort."""
    n, width = rows.shape
    if n == 0:
        return np.zeros((0, width), dtype=np.int64), np.zeros(n_cores + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    row_id = np.zeros(n, dtype=np.int64)
    span = 1
    for k in range(width):
        vals, rank = unique_inverse(rows[:, k])
        if span * vals.size >= 2 ** 40:
            _, row_id = unique_inverse(row_id)
            span = int(row_id.max()) + 1
        row_id = row_id * vals.size + rank
        span *= vals.size
    _, row_id = unique_inverse(row_id)
    n_ids = int(row_id.max()) + 1
    distinct, inverse = unique_inverse(core.astype(np.int64) * n_ids + row_id)
    some = np.empty(distinct.size, dtype=np.int64)
    some[inverse] = np.arange(n)  # any occurrence: the rows of one entry are equal
    offs = _offsets(np.bincount(distinct // n_ids, minlength=n_cores))
    return rows[some].astype(np.int64), offs, inverse - offs[core]


def compile_loihi(net: Network, target: Target) -> Binary:
    """Lower ``net`` (after quantize, partition, allocate) to a Loihi-like :class:`Binary`."""
    _check_lowered(net, target)
    lay: Layout = build_layout(net, target)
    # Each step adds its sections in turn; the binary sorts them by name, so only the names matter.
    sections: dict[str, np.ndarray] = {}
    pop_cx = _compartments(net, lay, target, sections)
    _synapses(net, lay, sections)
    _routing(net, lay, pop_cx, sections)
    plastic = _plastic_projections(net, lay, target, pop_cx, sections)
    inputs = _input_ports(net, lay, sections)
    outputs = _outputs(net, pop_cx, sections)
    probes = _probes(net, pop_cx, sections)
    meta = _metadata(net, int(lay.n_cores), inputs, outputs, probes, plastic)
    return Binary(target=target.name, meta=meta, sections=sections, target_config=target.data)


def _check_lowered(net: Network, target: Target) -> None:
    """Refuse a network the passes have not prepared for this target: it must be quantized for
    it, and every neuron population placed on cores."""
    if net.attrs.get("quantized") != target.name:
        raise NmcError(f"backend '{target.name}': the network is not quantized for this target "
                       "(the pass pipeline must include 'quantize')")
    for pop in net.populations:
        if not pop.is_input and "placement" not in pop.attrs:
            raise NmcError(f"backend '{target.name}': population '{pop.name}' has no placement "
                           "(the pass pipeline must include 'partition')")


def _compartments(net: Network, lay: Layout, target: Target, sections: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per core, the compartment table (config index, bias mantissa and exponent) and the table
    of distinct compartment configs (decays, threshold mantissa, refractory delay). Returns each
    neuron population's global compartment ids, which the later tables refer to."""
    n_cores = int(lay.n_cores)
    cx_offset = _offsets(lay.core_compartments)
    n_cx = int(cx_offset[-1])
    cx_core = np.repeat(np.arange(n_cores), lay.core_compartments)
    cfg_rows = np.zeros((n_cx, 4), dtype=np.int64)  # decay_u, decay_v, threshold mantissa, refractory
    bias = np.zeros(n_cx, dtype=np.int64)
    pop_cx: dict[str, np.ndarray] = {}
    for pop in net.populations:
        if pop.is_input:
            continue
        gid = cx_offset[lay.pop_core[pop.name]] + lay.pop_local[pop.name]
        pop_cx[pop.name] = gid
        for col, key in enumerate(("decay_u", "decay_v", "threshold", "refractory")):
            cfg_rows[gid, col] = pop.param_array(key).astype(np.int64)
        bias[gid] = pop.param_array("bias").astype(np.int64)
    cfg_table, cfg_offset, cx_cfg = _per_core_tables(cx_core, cfg_rows, n_cores)
    bias_mant, bias_exp = bias_to_mant_exp(bias, target)
    sections.update({
        "core_cx_offset": cx_offset,
        "cx_cfg": cx_cfg.astype(np.uint8),
        "cx_bias_mant": bias_mant.astype(np.int16),
        "cx_bias_exp": bias_exp.astype(np.uint8),
        "core_cfg_offset": cfg_offset,
        "cfg_decay_u": cfg_table[:, 0].astype(np.uint16),
        "cfg_decay_v": cfg_table[:, 1].astype(np.uint16),
        "cfg_threshold_mant": cfg_table[:, 2].astype(np.uint32),
        "cfg_refractory": cfg_table[:, 3].astype(np.uint8),
    })
    return pop_cx


def _synapses(net: Network, lay: Layout, sections: dict[str, np.ndarray]) -> None:
    """Per core, the table of distinct synapse formats (weight bits, sign mode, exponent, delay
    bits, indexed or not: one per projection reaching the core); per input axon, its synapse list
    (local compartment, weight mantissa, delay, format), axons numbered consecutively per core."""
    projs = net.projections
    n_cores = int(lay.n_cores)
    proj_fmt = np.zeros((len(projs), 5), dtype=np.int64)  # weight_bits, sign, exponent, delay_bits, indexed
    for i, p in enumerate(projs):
        delay_bits = int(np.ceil(np.log2(p.delay + 1))) if p.delay > 0 else 0
        indexed = 0 if p.connectivity in ("dense", "one_to_all") else 1
        proj_fmt[i] = (int(p.weight_bits), SIGN_CODES[p.sign], int(p.exponent), delay_bits, indexed)
    proj_delay = np.array([p.delay for p in projs], dtype=np.int64)
    syn_core = lay.axon_core[lay.syn_axon] if lay.syn_axon.size else np.zeros(0, dtype=np.int64)
    fmt_table, fmt_offset, syn_fmt = _per_core_tables(syn_core, proj_fmt[lay.syn_proj], n_cores)
    n_axons = int(lay.axon_core.size)
    axon_syn_ptr = _offsets(np.bincount(lay.syn_axon, minlength=n_axons))
    axon_core_offset = _offsets(np.bincount(lay.axon_core, minlength=n_cores))
    # The binary addresses an axon as (core, local index): the layout must number them so.
    if not np.array_equal(lay.axon_local, np.arange(n_axons) - axon_core_offset[lay.axon_core]):
        raise AssertionError("layout axons are not numbered consecutively per core")
    sections.update({
        "core_fmt_offset": fmt_offset,
        "fmt_weight_bits": fmt_table[:, 0].astype(np.uint8),
        "fmt_sign": fmt_table[:, 1].astype(np.uint8),
        "fmt_exponent": fmt_table[:, 2].astype(np.int8),
        "fmt_delay_bits": fmt_table[:, 3].astype(np.uint8),
        "fmt_indexed": fmt_table[:, 4].astype(np.uint8),
        "core_axon_offset": axon_core_offset,
        "axon_syn_ptr": axon_syn_ptr,
        "syn_cx": lay.syn_local.astype(np.uint16),
        "syn_weight": lay.syn_weight.astype(np.int16),
        "syn_delay": proj_delay[lay.syn_proj].astype(np.uint8),
        "syn_fmt": syn_fmt.astype(np.uint8),
    })


def _routing(net: Network, lay: Layout, pop_cx: dict[str, np.ndarray], sections: dict[str, np.ndarray]) -> None:
    """Per compartment, its output axons: the (destination core, destination axon) of every axon
    its spikes are sent on, grouped by compartment. Axons fed by input ports are the ports'
    (see :func:`_input_ports`)."""
    pops = net.populations
    n_axons = int(lay.axon_core.size)
    n_cx = int(np.sum(lay.core_compartments))
    src_is_input = np.array([pops[i].is_input for i in range(len(pops))], dtype=bool)
    ax_from_cx = ~src_is_input[lay.axon_src_pop] if n_axons else np.zeros(0, dtype=bool)
    # Compartment of every neuron by global id (populations end to end; inputs -1): one gather
    # for all axons, rather than a pass over the axons per population.
    sizes = np.array([p.size for p in pops], dtype=np.int64)
    offsets = _offsets(sizes)
    global_cx = np.full(int(offsets[-1]), -1, dtype=np.int64)
    for pi, pop in enumerate(pops):
        if not pop.is_input:
            global_cx[offsets[pi]:offsets[pi + 1]] = pop_cx[pop.name]
    src_cx = global_cx[offsets[lay.axon_src_pop] + lay.axon_src_neuron] if n_axons else np.zeros(0, dtype=np.int64)
    routed = np.flatnonzero(ax_from_cx)
    order = routed[np.lexsort((lay.axon_local[routed], lay.axon_core[routed], src_cx[routed]))]
    sections.update({
        "cx_out_ptr": _offsets(np.bincount(src_cx[order], minlength=n_cx)),
        "out_core": lay.axon_core[order].astype(np.uint16),
        "out_axon": lay.axon_local[order].astype(np.uint16),
    })


def _plastic_projections(net: Network, lay: Layout, target: Target, pop_cx: dict[str, np.ndarray],
                         sections: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The learning table: which synapses learn (``syn_plastic``, the index of the plastic
    projection or -1) and, per plastic projection, its rule, traces, weight format and the
    pre, post and reward neurons. Returns the table's entries for the metadata."""
    projs = net.projections
    plastic_of_proj = np.full(len(projs), -1, dtype=np.int64)
    plastic: list[dict[str, Any]] = []

    def neuron_ref(pop_name: str, key: str) -> dict[str, Any]:
        """How the interpreter finds a population's neurons: an input port, or compartments."""
        pop = net.population(pop_name)
        if pop.is_input:
            return {"kind": "port", "name": pop.name, "population": pop.name}
        sections[key] = pop_cx[pop.name]
        return {"kind": "compartments", "section": key, "population": pop.name}

    for i, p in enumerate(projs):
        if p.learning is None:
            continue
        products, epoch, traces, reward = learning_spec(p.learning, f"projection '{p.name}'")
        k = len(plastic)
        plastic_of_proj[i] = k
        lo, hi, _ = mantissa_range(int(p.weight_bits), p.sign, target)
        entry: dict[str, Any] = {
            "name": p.name, "epoch": epoch, "delay": int(p.delay),
            "products": [[pr.mantissa, pr.exponent, list(pr.factors)] for pr in products],
            "traces": {n: [t.impulse, t.tau] for n, t in traces.items()},
            "format": {"exponent": int(p.exponent), "drop": dropped_bits(int(p.weight_bits), p.sign, target),
                       "lo": lo, "hi": hi},
            "pre": neuron_ref(p.pre, f"pl{k}_pre"), "post": neuron_ref(p.post, f"pl{k}_post"),
        }
        if reward is not None:
            entry["reward"] = neuron_ref(reward, f"pl{k}_reward")
        plastic.append(entry)
    sections["syn_plastic"] = plastic_of_proj[lay.syn_proj].astype(np.int16)
    return plastic


def _input_ports(net: Network, lay: Layout, sections: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per input population, a port: for each of its units, the (core, axon) pairs the host
    writes that unit's spikes to. Returns the ports for the metadata."""
    inputs: list[dict[str, Any]] = []
    # Axons grouped by source population with one stable sort (not a pass over all per port).
    by_pop = np.argsort(lay.axon_src_pop, kind="stable")
    bounds = _offsets(np.bincount(lay.axon_src_pop, minlength=len(net.populations)))
    for pi, pop in enumerate(net.populations):
        if not pop.is_input:
            continue
        sel = by_pop[bounds[pi]:bounds[pi + 1]]
        sel = sel[np.lexsort((lay.axon_local[sel], lay.axon_core[sel], lay.axon_src_neuron[sel]))]
        key = f"in{len(inputs)}"
        sections[f"{key}_ptr"] = _offsets(np.bincount(lay.axon_src_neuron[sel], minlength=pop.size))
        sections[f"{key}_core"] = lay.axon_core[sel].astype(np.uint16)
        sections[f"{key}_axon"] = lay.axon_local[sel].astype(np.uint16)
        inputs.append({"name": pop.name, "size": pop.size, "section": key})
    return inputs


def _outputs(net: Network, pop_cx: dict[str, np.ndarray], sections: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The populations whose spike trains every run reads back: the output populations, and a
    schedule's readout (its spikes are each sample's result). Returns them for the metadata."""
    readout = (net.attrs.get("schedule") or {}).get("readout", {}).get("population")
    outputs = []
    for pop in net.populations:
        if (pop.role == "output" or pop.name == readout) and not pop.is_input:
            key = f"out{len(outputs)}"
            sections[f"{key}_cx"] = pop_cx[pop.name]
            outputs.append({"name": pop.name, "size": pop.size, "section": key})
    return outputs


def _probes(net: Network, pop_cx: dict[str, np.ndarray], sections: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The network's probes (compartment ids, or port units for a probe on an input), plus the
    v probe a converted network's readout needs and the membrane probe a schedule's readout needs. Returns them for the metadata."""
    sched = net.attrs.get("schedule")
    probe_list = host_probes(net)
    if sched is not None and "readout" in sched:
        # The membrane readout needs the readout population's input (u, not reset by a spike).
        ro = sched["readout"]["population"]
        if not any(p.population == ro and p.variable == "u" for p in probe_list):
            probe_list.append(Probe(f"{ro}.u", ro, "u"))
    probes = []
    for pr in probe_list:
        pop = net.population(pr.population)
        key = f"probe{len(probes)}"
        if pop.is_input:
            sections[f"{key}_cx"] = np.arange(pop.size, dtype=np.int64)
            source = "input"
        else:
            sections[f"{key}_cx"] = pop_cx[pop.name]
            source = "compartment"
        probes.append({"name": pr.name, "population": pr.population, "variable": pr.variable,
                       "section": key, "source": source})
    return probes


def _metadata(net: Network, n_cores: int, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]],
              probes: list[dict[str, Any]], plastic: list[dict[str, Any]]) -> dict[str, Any]:
    """The binary's metadata: what the host needs to drive and read the chip (ports, outputs,
    probes, learning table, schedule), and where the binary came from."""
    return {
        "encoding": encoding_meta(net),
        "readout": readout_meta(net, probes),
        "schedule": _schedule_meta(net),
        "backprop": {"weights": list(net.attrs["backprop"].get("plastic", []))} if "backprop" in net.attrs else None,
        "producer": f"nmc {__version__}",
        "network": net.name,
        "seed": int(net.attrs.get("seed", 0)),
        "n_cores": n_cores,
        "inputs": inputs,
        "outputs": outputs,
        "probes": probes,
        "plastic": plastic,
        "populations": [{"name": p.name, "size": p.size, "model": p.model, "role": p.role,
                         "placement": p.attrs.get("placement", [])} for p in net.populations],
        "cores": net.attrs.get("cores", []),
        "partition": net.attrs.get("partition"),  # the partition pass's summary (nmc inspect --placement)
    }
