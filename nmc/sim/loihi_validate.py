"""Consistency of a Loihi-like binary, checked before the interpreter builds anything from it.

The checksum proves a binary is the one that was sealed, not that what was sealed makes sense.
:func:`validate_loihi` checks every table the interpreter reads (docs/binary.md, "Loihi-like
sections") against the others and against the target configuration stored in the binary:

- the target configuration: every width, shift and limit the datapath uses is an integer in the
  range the interpreter computes exactly; costs are finite and non-negative;
- per-core offset tables start at 0, never decrease and end at the length of the table they index,
  and no core holds more than the target allows;
- every per-entry table has the length of what it describes, and every register (decays,
  threshold, refractory delay, bias, weight format, delay) is within the target's range;
- every index (config, format, compartment, core, axon, plastic projection) points inside the
  table it indexes, and port, output and probe tables match the sizes the metadata gives;
- plastic projections name known factors, traces and neurons.

Each problem is one :class:`BinaryFormatError` naming the section or field. Nothing here depends on
a front end or a pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..binary.checks import (fail, need_dict, need_index, need_int, need_key, need_list, need_number,
                             need_offsets, need_range, need_str, section)
from ..binary.format import Binary
from ..errors import BinaryFormatError
from ..ir.learning import PRODUCT_LOG2_LIMIT, TRACES, VARIABLES, product_in_range

#: Datapath widths the interpreter computes exactly with int64 state and float64 decays:
#: (key, lowest, highest).
_NEURON_WIDTHS = (("decay_shift", 1, 16), ("threshold_shift", 0, 16), ("input_bits", 2, 32),
                  ("current_bits", 2, 32))
_SYNAPSE_WIDTHS = (("weight_bits", 1, 15), ("weight_shift", 0, 16), ("max_delay", 0, 255),
                   ("weight_exp_min", -16, 16), ("weight_exp_max", -16, 16))
_REGISTER_LIMIT = 1 << 31  # |register bounds| (bias mantissa, voltage, threshold mantissa)
_COST_KEYS = ("synaptic_op", "neuron_update_active", "neuron_update_inactive", "spike_within_tile",
              "synaptic_update")
_ENERGY_ONLY = ("hop_east_west", "hop_north_south")
_TIME_ONLY = ("barrier_min", "barrier_max")
_MAX_EPOCH = 1 << 30
_TRACES_PER_PRODUCT = len(TRACES)  # a product holds each trace at most once


def _config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The target configuration values the interpreter uses, checked; returns them flat."""
    out: dict[str, Any] = {}
    nrn = need_dict(need_key(cfg, "neuron", "the target configuration"), "target configuration [neuron]")
    syn = need_dict(need_key(cfg, "synapse", "the target configuration"), "target configuration [synapse]")
    chip = need_dict(need_key(cfg, "chip", "the target configuration"), "target configuration [chip]")
    core = need_dict(need_key(cfg, "core", "the target configuration"), "target configuration [core]")
    for table, name, widths in ((nrn, "neuron", _NEURON_WIDTHS), (syn, "synapse", _SYNAPSE_WIDTHS)):
        for key, lo, hi in widths:
            out[key] = need_int(need_key(table, key, f"target configuration [{name}]"), f"{name}.{key}", lo, hi)
    shift = out["decay_shift"]
    for key in ("decay_u_max", "decay_v_max"):
        out[key] = need_int(need_key(nrn, key, "target configuration [neuron]"), f"neuron.{key}", 0, 1 << shift)
    for key in ("voltage_min", "voltage_max", "bias_mant_min", "bias_mant_max", "threshold_mant_max"):
        out[key] = need_int(need_key(nrn, key, "target configuration [neuron]"), f"neuron.{key}",
                            -_REGISTER_LIMIT, _REGISTER_LIMIT)
    out["bias_exp_max"] = need_int(need_key(nrn, "bias_exp_max", "target configuration [neuron]"),
                                   "neuron.bias_exp_max", 0, 16)
    out["refractory_min"] = need_int(need_key(nrn, "refractory_min", "target configuration [neuron]"),
                                     "neuron.refractory_min", 0)
    out["refractory_max"] = need_int(need_key(nrn, "refractory_max", "target configuration [neuron]"),
                                     "neuron.refractory_max", out["refractory_min"], 255)
    if out["voltage_min"] > 0 or out["voltage_max"] < 0:
        raise fail("the target configuration's voltage range does not contain 0")
    allowed = need_list(need_key(syn, "weight_bits_allowed", "target configuration [synapse]"),
                        "synapse.weight_bits_allowed")
    out["weight_bits_allowed"] = [need_int(b, "synapse.weight_bits_allowed", 1, out["weight_bits"]) for b in allowed]
    for key in ("cores", "chips", "cores_per_tile"):
        out[key] = need_int(need_key(chip, key, "target configuration [chip]"), f"chip.{key}", 1)
    tiles = need_list(need_key(chip, "mesh_tiles", "target configuration [chip]"), "chip.mesh_tiles")
    if len(tiles) != 2:
        raise fail(f"chip.mesh_tiles must be [x, y], got {tiles!r}")
    for t in tiles:
        need_int(t, "chip.mesh_tiles", 1)
    for key in ("max_compartments", "max_compartment_configs", "max_synapse_formats", "max_input_axons",
                "max_output_axons", "synapse_memory_bits"):  # the last three: for nmc inspect's table
        out[key] = need_int(need_key(core, key, "target configuration [core]"), f"core.{key}", 1)
    cost = need_dict(need_key(cfg, "cost", "the target configuration"), "target configuration [cost]")
    for table, extra in (("energy_pj", _ENERGY_ONLY), ("time_ns", _TIME_ONLY)):
        t = need_dict(need_key(cost, table, "target configuration [cost]"), f"cost.{table}")
        for key in _COST_KEYS + extra:
            need_number(need_key(t, key, f"target configuration [cost.{table}]"), f"cost.{table}.{key}", lo=0)
    need_number(need_dict(cfg.get("timing", {}), "target configuration [timing]").get("tick_ns", 1.0),
                "timing.tick_ns", lo=1e-12)
    return out


def _per_core(sections: dict[str, np.ndarray], offsets: str, n_cores: int, tables: tuple[str, ...],
              limit: int, limit_name: str) -> tuple[np.ndarray, int]:
    """A per-core table group (offsets plus equally long columns); returns (offsets, length)."""
    n = section(sections, tables[0]).size
    for name in tables[1:]:
        section(sections, name, n)
    off = need_offsets(offsets, section(sections, offsets, n_cores + 1), n)
    per = np.diff(off)
    if per.size and per.max() > limit:
        c = int(np.argmax(per))
        raise fail(f"core {c} holds {int(per[c])} entries of '{tables[0]}', more than {limit_name} = {limit}")
    return off, n


def _neurons(sections: dict[str, np.ndarray], cfg: dict[str, Any]) -> tuple[np.ndarray, int, int]:
    """Compartments, their configs and biases. Returns (compartment offsets, n_cores, n_cx)."""
    cx_off = section(sections, "core_cx_offset")
    if cx_off.size < 1:
        raise fail("section 'core_cx_offset' is empty")
    n_cores = cx_off.size - 1
    if n_cores > cfg["cores"] * cfg["chips"]:
        raise fail(f"the binary uses {n_cores} cores; the target has {cfg['cores'] * cfg['chips']}")
    n_cx = int(cx_off[-1]) if cx_off.size else 0
    need_offsets("core_cx_offset", cx_off, n_cx)
    per_core = np.diff(cx_off)
    if per_core.size and per_core.max() > cfg["max_compartments"]:
        c = int(np.argmax(per_core))
        raise fail(f"core {c} has {int(per_core[c])} compartments, more than core.max_compartments = "
                   f"{cfg['max_compartments']}")
    cx_core = np.repeat(np.arange(n_cores), per_core)
    cfg_off, _ = _per_core(sections, "core_cfg_offset", n_cores,
                           ("cfg_decay_u", "cfg_decay_v", "cfg_threshold_mant", "cfg_refractory"),
                           cfg["max_compartment_configs"], "core.max_compartment_configs")
    need_index("cx_cfg", section(sections, "cx_cfg", n_cx), np.diff(cfg_off)[cx_core])
    need_range("cfg_decay_u", section(sections, "cfg_decay_u"), 0, cfg["decay_u_max"])
    need_range("cfg_decay_v", section(sections, "cfg_decay_v"), 0, cfg["decay_v_max"])
    need_range("cfg_threshold_mant", section(sections, "cfg_threshold_mant"), 0, cfg["threshold_mant_max"])
    need_range("cfg_refractory", section(sections, "cfg_refractory"), cfg["refractory_min"], cfg["refractory_max"])
    need_range("cx_bias_mant", section(sections, "cx_bias_mant", n_cx), cfg["bias_mant_min"], cfg["bias_mant_max"])
    need_range("cx_bias_exp", section(sections, "cx_bias_exp", n_cx), 0, cfg["bias_exp_max"])
    return cx_off, n_cores, n_cx


def _synapses(sections: dict[str, np.ndarray], cfg: dict[str, Any], cx_off: np.ndarray, n_cores: int,
              n_plastic: int) -> np.ndarray:
    """Axons, their synapse lists and the synapse formats. Returns the axon offsets per core."""
    fmt_off, n_fmt = _per_core(sections, "core_fmt_offset", n_cores,
                               ("fmt_weight_bits", "fmt_sign", "fmt_exponent", "fmt_delay_bits", "fmt_indexed"),
                               cfg["max_synapse_formats"], "core.max_synapse_formats")
    bits = section(sections, "fmt_weight_bits")
    bad = ~np.isin(bits, cfg["weight_bits_allowed"])
    if bad.any():
        raise fail(f"section 'fmt_weight_bits' entry {int(np.argmax(bad))} is {int(bits[bad][0])}, not one of "
                   f"synapse.weight_bits_allowed {cfg['weight_bits_allowed']}")
    need_range("fmt_sign", section(sections, "fmt_sign"), 0, 2)
    need_range("fmt_exponent", section(sections, "fmt_exponent"), cfg["weight_exp_min"], cfg["weight_exp_max"])
    need_range("fmt_delay_bits", section(sections, "fmt_delay_bits"), 0, 8)
    need_range("fmt_indexed", section(sections, "fmt_indexed"), 0, 1)
    ax_off = section(sections, "core_axon_offset", n_cores + 1)
    n_axons = int(ax_off[-1]) if ax_off.size else 0
    need_offsets("core_axon_offset", ax_off, n_axons)
    n_syn = section(sections, "syn_cx").size
    ptr = need_offsets("axon_syn_ptr", section(sections, "axon_syn_ptr", n_axons + 1), n_syn)
    syn_core = np.repeat(np.repeat(np.arange(n_cores), np.diff(ax_off)), np.diff(ptr))
    need_index("syn_cx", section(sections, "syn_cx"), np.diff(cx_off)[syn_core])
    need_index("syn_fmt", section(sections, "syn_fmt", n_syn), np.diff(fmt_off)[syn_core])
    full = cfg["weight_bits"]
    need_range("syn_weight", section(sections, "syn_weight", n_syn), -(1 << full), (1 << full) - 1)
    need_range("syn_delay", section(sections, "syn_delay", n_syn), 0, cfg["max_delay"])
    if "syn_plastic" in sections:
        need_range("syn_plastic", section(sections, "syn_plastic", n_syn), -1, n_plastic - 1)
    return ax_off


def _routes(sections: dict[str, np.ndarray], ptr_name: str, core_name: str, axon_name: str, n_units: int,
            ax_off: np.ndarray, n_cores: int) -> None:
    """A routing table: per unit, the (core, axon) pairs its spikes go to."""
    n = section(sections, core_name).size
    need_offsets(ptr_name, section(sections, ptr_name, n_units + 1), n)
    core = need_index(core_name, section(sections, core_name), n_cores)
    need_index(axon_name, section(sections, axon_name, n), np.diff(ax_off)[core])


def _io(binary: Binary, n_cx: int, ax_off: np.ndarray, n_cores: int) -> dict[str, int]:
    """Input ports, outputs and probes against their sections. Returns port sizes by name."""
    meta, sections = binary.meta, binary.sections
    ports: dict[str, int] = {}
    for p in meta.get("inputs", []):
        key, size = p["section"], p["size"]
        _routes(sections, f"{key}_ptr", f"{key}_core", f"{key}_axon", size, ax_off, n_cores)
        ports[p["name"]] = size
    for o in meta.get("outputs", []):
        need_index(f"{o['section']}_cx", section(sections, f"{o['section']}_cx", o["size"]), n_cx)
    for p in meta.get("probes", []):
        name, var, source = p["name"], p["variable"], p.get("source", "compartment")
        if source not in ("compartment", "input"):
            raise fail(f"probe '{name}' has source {source!r} (known: compartment, input)")
        idx = section(sections, f"{p['section']}_cx")
        if source == "input":
            if p["population"] not in ports:
                raise fail(f"probe '{name}' reads input port '{p['population']}', which does not exist")
            if var != "spikes":
                raise fail(f"probe '{name}' reads '{var}' of an input port; ports have only spikes")
            if idx.size != ports[p["population"]]:
                raise fail(f"probe '{name}' has {idx.size} units; port '{p['population']}' has "
                           f"{ports[p['population']]}")
        else:
            if var not in ("spikes", "u", "v"):
                raise fail(f"probe '{name}' reads unknown variable '{var}' (spikes, u, v)")
            need_index(f"{p['section']}_cx", idx, n_cx)
    return ports


def _neuron_ref(ref: Any, what: str, sections: dict[str, np.ndarray], ports: dict[str, int], n_cx: int) -> None:
    ref = need_dict(ref, what)
    if "population" in ref:  # the interpreter keys shared lookups by it
        need_str(ref["population"], f"{what} population")
    kind = need_key(ref, "kind", what)
    if kind == "port":
        if need_str(need_key(ref, "name", what), f"{what} name") not in ports:
            raise fail(f"{what} names input port '{ref['name']}', which does not exist")
    elif kind == "compartments":
        name = need_str(need_key(ref, "section", what), f"{what} section")
        need_index(name, section(sections, name), n_cx)
    else:
        raise fail(f"{what} has kind {kind!r} (port or compartments)")


def _plastic(binary: Binary, cfg: dict[str, Any], ports: dict[str, int], n_cx: int) -> None:
    """The learning table: rule products, traces, format, and the neurons each rule connects."""
    sections = binary.sections
    for spec in binary.meta.get("plastic", []):
        what = f"plastic projection '{spec['name']}'"
        need_int(need_key(spec, "epoch", what), f"{what} epoch", 1, _MAX_EPOCH)
        need_int(need_key(spec, "delay", what), f"{what} delay", 0, cfg["max_delay"])
        traces = need_dict(spec.get("traces", {}), f"{what} traces")
        for name, value in traces.items():
            if name not in TRACES:
                raise fail(f"{what} has unknown trace '{name}' (known: {', '.join(TRACES)})")
            pair = need_list(value, f"{what} trace '{name}'")
            if len(pair) != 2:
                raise fail(f"{what} trace '{name}' must be [impulse, tau]")
            for x in pair:
                need_number(x, f"{what} trace '{name}'", lo=0)
        for i, product in enumerate(need_list(need_key(spec, "products", what), f"{what} products")):
            product = need_list(product, f"{what} product {i}")
            if len(product) != 3:
                raise fail(f"{what} product {i} must be [mantissa, exponent, factors]")
            m = need_int(product[0], f"{what} product {i} mantissa")
            e = need_int(product[1], f"{what} product {i} exponent")
            if not product_in_range(m, e):
                raise fail(f"{what} product {i} has the constant {m}*2^{e}, out of the learning engine's range")
            for f in need_list(product[2], f"{what} product {i} factors"):
                if f not in VARIABLES:
                    raise fail(f"{what} product {i} has unknown factor {f!r}")
                if f not in ("x0", "y0") and f not in traces:
                    raise fail(f"{what} product {i} uses factor '{f}', which has no trace")
        fmt = spec["format"]
        need_int(fmt["drop"], f"{what} drop", 0, cfg["weight_bits"])
        need_int(fmt["exponent"], f"{what} weight exponent", cfg["weight_exp_min"], cfg["weight_exp_max"])
        full = cfg["weight_bits"]
        for key in ("lo", "hi"):
            need_int(fmt[key], f"{what} weight {key}", -(1 << full), (1 << full) - 1)
        _neuron_ref(need_key(spec, "pre", what), f"{what} pre", sections, ports, n_cx)
        _neuron_ref(need_key(spec, "post", what), f"{what} post", sections, ports, n_cx)
        if spec["post"]["kind"] != "compartments":
            raise fail(f"{what} targets an input port")
        if "reward" in spec:
            _neuron_ref(spec["reward"], f"{what} reward", sections, ports, n_cx)


def _learning_widths(cfg: dict[str, Any]) -> None:
    """The learning engine's widths (``[learning]``), for binaries with plastic projections: each
    in a range its arithmetic supports, and together small enough that a product of a rule's
    constant (below 2^PRODUCT_LOG2_LIMIT) with its fraction bits and six saturated traces fits in
    64 bits."""
    table = need_dict(need_key(cfg, "learning", "the target configuration"), "target configuration [learning]")
    widths = {key: need_int(need_key(table, key, "target configuration [learning]"), f"learning.{key}", lo, hi)
              for key, lo, hi in (("accumulator_bits", 2, 32), ("fraction_bits", 0, 16), ("trace_bits", 1, 8),
                                  ("trace_decay_bits", 1, 16), ("impulse_fraction_bits", 0, 16))}
    room = 63 - PRODUCT_LOG2_LIMIT
    if widths["fraction_bits"] + _TRACES_PER_PRODUCT * widths["trace_bits"] > room:
        raise fail(f"learning.fraction_bits + {_TRACES_PER_PRODUCT} x learning.trace_bits exceeds {room}: the "
                   "learning engine's 64-bit products could overflow")


#: The per-core counts of the Loihi-like chip that ``nmc inspect`` prints (meta "cores").
CORE_FIELDS = ("core", "compartments", "input_axons", "output_axons", "synapse_bits", "compartment_configs",
               "synapse_formats")


def _core_table(meta: dict[str, Any]) -> None:
    for i, core in enumerate(need_list(meta.get("cores", []), "meta 'cores'")):
        core = need_dict(core, f"meta 'cores'[{i}]")
        for key in CORE_FIELDS:
            need_int(core.get(key, 0), f"meta 'cores'[{i}] {key}", lo=0)


def validate_loihi(binary: Binary) -> None:
    """Raise :class:`BinaryFormatError` naming the first inconsistency of a Loihi-like binary."""
    try:
        cfg = _config(need_dict(binary.target_config, "the target configuration"))
        cx_off, n_cores, n_cx = _neurons(binary.sections, cfg)
        if need_int(binary.meta.get("n_cores", n_cores), "meta 'n_cores'") != n_cores:
            raise fail(f"meta 'n_cores' says {binary.meta['n_cores']}, the sections hold {n_cores} cores")
        if binary.meta.get("plastic"):
            _learning_widths(binary.target_config)
        ax_off = _synapses(binary.sections, cfg, cx_off, n_cores, len(binary.meta.get("plastic", [])))
        _routes(binary.sections, "cx_out_ptr", "out_core", "out_axon", n_cx, ax_off, n_cores)
        ports = _io(binary, n_cx, ax_off, n_cores)
        _plastic(binary, cfg, ports, n_cx)
        _core_table(binary.meta)
    except BinaryFormatError as exc:
        raise BinaryFormatError(f"inconsistent binary: {exc.message}", location=binary.source or None) from None
