"""Consistency of a SpiNNaker-like binary, checked before the interpreter builds anything from it.

The checksum proves a binary is the one that was sealed, not that what was sealed makes sense.
:func:`validate_spinnaker` checks every section and metadata field the SpiNNaker-like interpreter
(:mod:`nmc.sim.spinnaker`, :mod:`nmc.sim.spinnaker_eprop`) reads, after the generic checks of
:mod:`nmc.binary.format` and :mod:`nmc.binary.meta` (docs/spinnaker.md, docs/robustness.md):

- the target configuration: the machine's mesh and cores, the router's hop limit, the rows'
  header words, every cost the cost model reads (finite, non-negative, within 32 bits);
- the metadata: ``n_cores`` equal to the cores the sections hold, one known neuron model per core,
  key fields that fit a 32-bit key, the host chip on the mesh, a positive time step that every core
  also holds;
- per core: its neuron range, time step, weight shifts (``(int32) word << shift`` defined),
  ring-buffer fields (within ``core.max_ring_buffer_bits``, an index field that addresses its
  neurons), a chip on the mesh and a processor of it no other core takes;
- the neurons: one key and a send flag each, and the host words of each model in their ranges
  (positive time constants and capacitance, learning-rate words the weight update computes exactly);
- the master population tables: per core, entries sorted by key, keys within their masks, source
  slices of at least one neuron that the key's neuron field addresses, address-list ranges inside
  the list and used by one entry only; the address list: blocks aligned to 16 bytes, inside the
  SDRAM image and not overlapping; every row of every block: its plastic region, fixed and plastic
  synapses within its stride, and every synaptic word a neuron of the receiving core, a synapse
  type, and no bits above the core's delay field (a delay within its ring slots);
- the router tables: one per chip on the mesh, offsets into the entries, keys within their masks,
  routes of the 6 links and 18 processors only;
- input ports' keys (32-bit, and no key sent by two sources), outputs' and probes' neurons;
- with e-prop cores: the trial words of ``meta 'eprop'``, core kinds that match the cores' models,
  one readout core with a neuron per output unit, the target port, the state columns' keys, the
  learning-signal and target tables, the feedback weights, the plastic synapses' halfwords and
  projection indices, and one membrane time constant per e-prop core.

Each problem is one :class:`BinaryFormatError` naming the section or field and the entry. Every
check is a vectorised pass over its table, so the cost stays linear in the binary's size. Nothing
here depends on a front end, a pass or the backend.
"""

from __future__ import annotations

from typing import Any, Collection

import numpy as np

from ..binary.checks import (fail, need_dict, need_index, need_int, need_key, need_list, need_number,
                             need_offsets, need_range, need_str, section)
from ..binary.format import Binary
from ..errors import BinaryFormatError
from ..formats import spinnaker as fx

#: Mesh links and processors per chip; route bit ``N_LINKS + p`` is processor p.
N_LINKS = 6
N_PROCESSORS = 18
ROUTE_MAX = (1 << (N_LINKS + N_PROCESSORS)) - 1
#: Chip ids are 16-bit (``rt_chip``, ``core_chip_x``/``_y``).
MAX_MESH_CHIPS = 1 << 16
#: ``(int32) word << shift`` is defined for shifts below 32.
MAX_SHIFT = 31
#: The control fields (delay | type | index) share the low halfword of a synaptic word.
CONTROL_BITS = 16
SYNAPSE_TYPES = 2
#: Header words of a row (``synapse_row.h``: plastic size, fixed count, plastic-control count).
ROW_HEADER_MIN = 3
#: A cost is an integer count of cycles or a small figure; larger ones would overflow the cost
#: model's int64 products.
COST_MAX = float(1 << 31)
#: e-prop: the learning-rate mantissa has 15 bits; exponents in this range keep the weight
#: update's products (gradient x mantissa, shifted) inside 64 bits for every update rule.
LR_MANT_MAX = (1 << 15) - 1
LR_EXP_MIN, LR_EXP_MAX = -15, 62
EPROP_LOSSES = ("cross_entropy", "mse")
EPROP_UPDATES = ("gradient", "sign", "adam")
#: Model name -> e-prop core kinds it runs on (0: not an e-prop core).
EPROP_KINDS = {"eprop_alif": (1, 2), "eprop_li": (3,)}

_CYCLES = ("timer_tick", "row_dma", "synaptic_word", "packet_received", "packet_sent")
_EPROP_CYCLES = ("eprop_synapse_adaptive", "eprop_synapse", "eprop_readout_synapse", "eprop_source",
                 "eprop_softmax", "eprop_feedback", "eprop_trial_synapse", "eprop_row_writeback")
_ENERGY = ("chip_idle_w", "core_active_w", "packet_j")

#: Host words per neuron model: (word, lowest, highest) -- positive time constants and
#: capacitance, non-negative refractory periods and adaptation, REAL words otherwise.
_POS = (1, fx.REAL_MAX)
_NONNEG = (0, fx.REAL_MAX)
_REAL = (fx.REAL_MIN, fx.REAL_MAX)
_LR = (("lr_mant", 0, LR_MANT_MAX), ("lr_exp", LR_EXP_MIN, LR_EXP_MAX))
MODEL_WORDS: dict[str, tuple[tuple[str, int, int], ...]] = {
    "if_curr_exp": tuple((f"nrn_{k}", *r) for k, r in (
        ("v_init", _REAL), ("v_rest", _REAL), ("cm", _POS), ("tau_m", _POS), ("i_offset", _REAL),
        ("v_reset", _REAL), ("tau_refrac", _NONNEG), ("v_thresh", _REAL), ("tau_syn_e", _POS),
        ("tau_syn_i", _POS))),
    "eprop_alif": tuple((f"nrn_ep_{k}", *r) for k, r in (
        ("tau_m", _POS), ("tau_a", _POS), ("theta", _POS), ("beta", _NONNEG), ("bias", _REAL),
        ("tau_refrac", _NONNEG), *((k, (lo, hi)) for k, lo, hi in _LR))),
    "eprop_li": tuple((f"nrn_ep_{k}", *r) for k, r in (
        ("tau_m", _POS), ("bias", _REAL), *((k, (lo, hi)) for k, lo, hi in _LR))),
}


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenated index ranges [starts[i], starts[i] + lens[i])."""
    first = np.cumsum(lens) - lens
    return np.arange(int(lens.sum()), dtype=np.int64) - np.repeat(first, lens) + np.repeat(starts, lens)


def _first(bad: np.ndarray) -> int | None:
    """The first index where ``bad`` holds, or None."""
    return int(np.argmax(bad)) if bad.size and bad.any() else None


def _need_range_at(name: str, values: np.ndarray, which: np.ndarray, lo: int, hi: int) -> None:
    """Every ``values[which]`` in [lo, hi], reporting an entry by its index in the section."""
    i = _first((values[which] < lo) | (values[which] > hi))
    if i is not None:
        e = int(which[i])
        raise fail(f"section '{name}' entry {e} is {int(values[e])}, outside [{lo}, {hi}]")


def _within_masks(key_name: str, keys: np.ndarray, mask_name: str, masks: np.ndarray) -> None:
    """Ternary entries: a key bit outside the mask would make the entry match nothing."""
    i = _first((keys & ~masks & fx.M32) != 0)
    if i is not None:
        raise fail(f"section '{key_name}' entry {i} is {int(keys[i]):#x}, which has bits outside its mask "
                   f"{int(masks[i]):#x} ('{mask_name}'): the entry can match no key")


def _cost(table: dict[str, Any], key: str, what: str) -> None:
    value = need_number(need_key(table, key, f"target configuration [{what}]"), f"{what}.{key}", lo=0)
    if value > COST_MAX:
        raise fail(f"{what}.{key} is {value:g}, above 2^31")


# -- the target configuration -----------------------------------------------------------------------------
def _config(cfg: dict[str, Any], models: Collection[str], eprop: bool, adam: bool = False) -> dict[str, Any]:
    """The values of the stored target configuration that the interpreter and its cost model read."""
    tables = {k: need_dict(need_key(cfg, k, "the target configuration"), f"target configuration [{k}]")
              for k in ("chip", "core", "router", "sdram", "cost")}
    chip, core = tables["chip"], tables["core"]
    out: dict[str, Any] = {}
    mesh = need_list(need_key(chip, "mesh", "target configuration [chip]"), "chip.mesh")
    if len(mesh) != 2:
        raise fail(f"chip.mesh must be [x, y], got {mesh!r}")
    out["w"], out["h"] = (need_int(v, "chip.mesh", lo=1, hi=MAX_MESH_CHIPS) for v in mesh)
    if out["w"] * out["h"] > MAX_MESH_CHIPS:
        raise fail(f"chip.mesh {out['w']}x{out['h']} has more chips than 16-bit chip ids number ({MAX_MESH_CHIPS})")
    # Application core k is processor k + 1 (processor 0 is the monitor).
    out["cores"] = need_int(need_key(chip, "cores", "target configuration [chip]"), "chip.cores", 1, N_PROCESSORS - 1)
    out["chips"] = need_int(need_key(chip, "chips", "target configuration [chip]"), "chip.chips", lo=1)
    need_number(need_key(chip, "clock_hz", "target configuration [chip]"), "chip.clock_hz", lo=1)
    out["max_neurons"] = need_int(need_key(core, "max_neurons", "target configuration [core]"),
                                  "core.max_neurons", lo=1)
    out["ring_bits"] = need_int(need_key(core, "max_ring_buffer_bits", "target configuration [core]"),
                                "core.max_ring_buffer_bits", 1, CONTROL_BITS)
    need_int(tables["router"].get("max_hops", 64), "router.max_hops", lo=1)
    out["header"] = need_int(need_key(tables["sdram"], "row_header_words", "target configuration [sdram]"),
                             "sdram.row_header_words", ROW_HEADER_MIN, (1 << 16) - 1)
    cycles = need_dict(need_key(tables["cost"], "cycles", "target configuration [cost]"), "cost.cycles")
    for key in (_CYCLES + tuple(f"neuron_{m}" for m in sorted(models)) + (_EPROP_CYCLES if eprop else ())
                + (("eprop_adam_synapse",) if adam else ())):
        _cost(cycles, key, "cost.cycles")
    energy = need_dict(need_key(tables["cost"], "energy", "target configuration [cost]"), "cost.energy")
    for key in _ENERGY:
        _cost(energy, key, "cost.energy")
    if "payload_packet_j" in energy:
        _cost(energy, "payload_packet_j", "cost.energy")
    return out


# -- metadata ----------------------------------------------------------------------------------------------
def _meta(meta: dict[str, Any], cfg: dict[str, Any], n_cores: int, kernels: Collection[str]) -> dict[str, Any]:
    """The metadata the interpreter reads besides ports, outputs and probes."""
    out: dict[str, Any] = {}
    if need_int(meta.get("n_cores", n_cores), "meta 'n_cores'") != n_cores:
        raise fail(f"meta 'n_cores' says {meta['n_cores']}, the sections hold {n_cores} cores")
    models = need_list(meta.get("core_models", []), "meta 'core_models'")
    if len(models) != n_cores:
        raise fail(f"meta 'core_models' names {len(models)} models for {n_cores} cores")
    for c, name in enumerate(models):
        if need_str(name, f"meta 'core_models'[{c}]") not in kernels:
            raise fail(f"neuron model '{name}' has no kernel in this interpreter (known: {', '.join(sorted(kernels))})")
    out["models"] = models
    fields = need_dict(need_key(meta, "key_fields", "meta"), "meta 'key_fields'")
    widths = {k: need_int(need_key(fields, k, "meta 'key_fields'"), f"meta 'key_fields' {k}", 0, 32)
              for k in ("population", "slice", "neuron")}
    if sum(widths.values()) > 32:
        raise fail(f"meta 'key_fields' need {sum(widths.values())} bits, more than the 32 of a multicast key")
    out["neuron_bits"] = widths["neuron"]
    host = need_list(meta.get("host_chip", [0, 0]), "meta 'host_chip'")
    if len(host) != 2:
        raise fail(f"meta 'host_chip' must be [x, y], got {host!r}")
    need_int(host[0], "meta 'host_chip' x", 0, cfg["w"] - 1)
    need_int(host[1], "meta 'host_chip' y", 0, cfg["h"] - 1)
    ts = meta.get("timestep_ms", 1.0)
    if need_number(ts, "meta 'timestep_ms'") <= 0 or ts >= 65536:
        raise fail(f"meta 'timestep_ms' is {ts}, outside (0, 65536): a time step is a positive s16.15 number of ms")
    out["timestep"] = float(ts)
    # What nmc inspect prints per chip: a table of non-negative counts.
    for i, row in enumerate(need_list(meta.get("chips", []), "meta 'chips'")):
        for key, value in need_dict(row, f"meta 'chips'[{i}]").items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                need_int(value, f"meta 'chips'[{i}] {key}", lo=0)
    return out


# -- cores and neurons --------------------------------------------------------------------------------------
def _cores(sections: dict[str, np.ndarray], cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per-core sections; returns them (int64) with the neuron offsets under 'offset'."""
    off = section(sections, "core_neuron_offset")
    if off.size < 1:
        raise fail("section 'core_neuron_offset' is empty")
    need_offsets("core_neuron_offset", off, int(off[-1]))
    n_cores = off.size - 1
    if n_cores > cfg["cores"] * cfg["chips"]:
        raise fail(f"the binary uses {n_cores} cores; the target has {cfg['cores'] * cfg['chips']} "
                   "(chip.cores x chip.chips)")
    per = np.diff(off)
    c = _first(per > cfg["max_neurons"])
    if c is not None:
        raise fail(f"core {c} holds {int(per[c])} neurons, more than core.max_neurons = {cfg['max_neurons']}")
    core = {k: section(sections, f"core_{k}", n_cores) for k in
            ("time_step", "shift_exc", "shift_inh", "index_bits", "type_bits", "delay_bits", "chip_x", "chip_y",
             "processor")}
    need_range("core_time_step", core["time_step"], 1, fx.REAL_MAX)
    for k in ("shift_exc", "shift_inh"):
        need_range(f"core_{k}", core[k], 0, MAX_SHIFT)
    for k in ("index_bits", "type_bits", "delay_bits"):
        need_range(f"core_{k}", core[k], 0, CONTROL_BITS)
    bits = core["index_bits"] + core["type_bits"] + core["delay_bits"]
    c = _first(bits > cfg["ring_bits"])
    if c is not None:
        raise fail(f"core {c}'s ring-buffer fields (index {int(core['index_bits'][c])} + type "
                   f"{int(core['type_bits'][c])} + delay {int(core['delay_bits'][c])} bits) exceed "
                   f"core.max_ring_buffer_bits = {cfg['ring_bits']}")
    c = _first(per > (np.int64(1) << core["index_bits"]))
    if c is not None:
        raise fail(f"core {c} holds {int(per[c])} neurons, more than its index field of "
                   f"{int(core['index_bits'][c])} bits addresses")
    need_range("core_chip_x", core["chip_x"], 0, cfg["w"] - 1)
    need_range("core_chip_y", core["chip_y"], 0, cfg["h"] - 1)
    need_range("core_processor", core["processor"], 1, cfg["cores"])
    place = (core["chip_y"] * cfg["w"] + core["chip_x"]) * N_PROCESSORS + core["processor"]
    order = np.argsort(place, kind="stable")
    i = _first(place[order][1:] == place[order][:-1])
    if i is not None:
        a, b = int(order[i]), int(order[i + 1])
        raise fail(f"cores {a} and {b} are both processor {int(core['processor'][a])} of chip "
                   f"({int(core['chip_x'][a])}, {int(core['chip_y'][a])})")
    core["offset"] = off
    return core


def _time_step(core: dict[str, np.ndarray], timestep_ms: float) -> None:
    """Every core's time step word is the metadata's time step (what the cost model's timer period is)."""
    want = timestep_ms * fx.ONE
    c = _first(np.abs(core["time_step"] - want) > 0.5 + 1e-9 * want)
    if c is not None:
        word = int(core["time_step"][c])
        raise fail(f"section 'core_time_step' entry {c} is {word} ({word / fx.ONE:g} ms), but meta 'timestep_ms' "
                   f"is {timestep_ms:g}")


def _neurons(sections: dict[str, np.ndarray], core: dict[str, np.ndarray], models: list[str]) -> np.ndarray:
    """Keys, send flags and each model's host words. Returns the neuron keys."""
    off = core["offset"]
    n = int(off[-1])
    keys = need_range("nrn_key", section(sections, "nrn_key", n), 0, fx.M32)
    need_range("nrn_sends", section(sections, "nrn_sends", n), 0, 1)
    model_of_core = np.array(models, dtype=object)
    for model, words in MODEL_WORDS.items():
        cores = np.flatnonzero(model_of_core == model) if len(models) else np.zeros(0, np.int64)
        if not cores.size:
            continue
        idx = _ranges(off[cores], np.diff(off)[cores])
        for name, lo, hi in words:
            _need_range_at(name, section(sections, name, n), idx, lo, hi)
    return keys


# -- master population tables, address list, rows -----------------------------------------------------------
def _synapses(sections: dict[str, np.ndarray], cfg: dict[str, Any], core: dict[str, np.ndarray],
              neuron_bits: int) -> np.ndarray:
    """Master population tables, the address list and every row they reach. Returns the SDRAM words."""
    n_cores = core["offset"].size - 1
    words = need_range("sdram_words", section(sections, "sdram_words"), 0, fx.M32)
    n_words = words.size
    n_entries = section(sections, "mpt_key").size
    mpt_off = need_offsets("mpt_offset", section(sections, "mpt_offset", n_cores + 1), n_entries)
    mk = need_range("mpt_key", section(sections, "mpt_key"), 0, fx.M32)
    mm = need_range("mpt_mask", section(sections, "mpt_mask", n_entries), 0, fx.M32)
    mn = need_range("mpt_n_neurons", section(sections, "mpt_n_neurons", n_entries), 1, 1 << neuron_bits)
    ma = need_range("mpt_addr_start", section(sections, "mpt_addr_start", n_entries), 0, fx.M32)
    mc = need_range("mpt_addr_count", section(sections, "mpt_addr_count", n_entries), 0, fx.M32)
    _within_masks("mpt_key", mk, "mpt_mask", mm)
    entry_core = np.repeat(np.arange(n_cores), np.diff(mpt_off))
    same = entry_core[1:] == entry_core[:-1]
    i = _first(same & (mk[1:] <= mk[:-1]))
    if i is not None:
        raise fail(f"the master population table of core {int(entry_core[i])} is not sorted by key: section "
                   f"'mpt_key' entry {i + 1} is {int(mk[i + 1]):#x}, after {int(mk[i]):#x}")
    n_items = section(sections, "addr_address").size
    rl = need_range("addr_row_length", section(sections, "addr_row_length", n_items), 0, (1 << 16) - 1)
    ra = need_range("addr_address", section(sections, "addr_address"), 0, max(n_words - 1, 0))
    i = _first(ra % 4 != 0)
    if i is not None:
        raise fail(f"section 'addr_address' entry {i} is {int(ra[i])}, not on a 16-byte boundary (a multiple of 4 "
                   "words)")
    i = _first(ma + mc > n_items)
    if i is not None:
        raise fail(f"section 'mpt_addr_start' entry {i}: items [{int(ma[i])}, {int(ma[i] + mc[i])}) run past the "
                   f"address list of {n_items} items")
    used = np.flatnonzero(mc > 0)
    by_start = used[np.argsort(ma[used], kind="stable")]
    i = _first(ma[by_start][1:] < ma[by_start][:-1] + mc[by_start][:-1])
    if i is not None:
        a, b = sorted((int(by_start[i]), int(by_start[i + 1])))
        raise fail(f"master population table entries {a} and {b} share address-list items (section 'mpt_addr_start')")
    # Every item now belongs to one entry: its block has that entry's source neurons as rows.
    entry = np.repeat(np.arange(n_entries), mc)
    item = _ranges(ma, mc)
    stride = rl[item] + cfg["header"]
    n_rows = mn[entry]
    start = ra[item]
    end = start + n_rows * stride
    i = _first(end > n_words)
    if i is not None:
        raise fail(f"section 'addr_address' entry {int(item[i])}: the block of {int(n_rows[i])} rows of "
                   f"{int(stride[i])} words at word {int(start[i])} runs past the SDRAM image ({n_words} words)")
    order = np.argsort(start, kind="stable")
    i = _first(start[order][1:] < end[order][:-1])
    if i is not None:
        a, b = sorted((int(item[order[i]]), int(item[order[i + 1]])))
        raise fail(f"section 'addr_address': the blocks of address-list items {a} and {b} overlap")
    # Rows: blocks are disjoint inside the image and a row has at least 3 words, so there are at
    # most n_words / 3 of them.
    row_blk = np.repeat(np.arange(item.size), n_rows)
    row = start[row_blk] + _ranges(np.zeros(item.size, np.int64), n_rows) * stride[row_blk]
    row_stride = stride[row_blk]
    p = words[row]

    def where(k: int) -> str:
        b = int(row_blk[k])
        return (f"the row at word {int(row[k])} (address-list item {int(item[b])}, core "
                f"{int(entry_core[entry[b]])})")

    k = _first(p > row_stride - ROW_HEADER_MIN)
    if k is not None:
        raise fail(f"section 'sdram_words': {where(k)} has a plastic region of {int(p[k])} words, more than its "
                   f"{int(row_stride[k])}-word stride holds")
    f = words[row + 1 + p]
    q = words[row + 2 + p]
    k = _first(q > p)
    if k is not None:
        raise fail(f"section 'sdram_words': {where(k)} has {int(q[k])} plastic synapses but a plastic region of "
                   f"{int(p[k])} words")
    need = ROW_HEADER_MIN + p + f + (q + 1) // 2
    k = _first(need > row_stride)
    if k is not None:
        raise fail(f"section 'sdram_words': {where(k)} holds {int(f[k])} fixed and {int(q[k])} plastic synapses "
                   f"({int(need[k])} words), more than its {int(row_stride[k])}-word stride")
    # Synaptic words (fixed) and control halfwords (plastic), decoded with the receiving core's fields.
    row_core = entry_core[entry[row_blk]]
    w_at = _ranges(row + 3 + p, f)
    h_at = _ranges(2 * (row + 3 + p + f), q)
    halves = words.astype(np.uint32).view(np.uint16).astype(np.int64) if n_words else np.zeros(0, np.int64)
    for what, at, ctl, c in (("entry", w_at, words[w_at] & 0xFFFF, np.repeat(row_core, f)),
                             ("halfword", h_at, halves[h_at], np.repeat(row_core, q))):
        ib, tb, db = core["index_bits"][c], core["type_bits"][c], core["delay_bits"][c]
        index = ctl & ((np.int64(1) << ib) - 1)
        stype = (ctl >> ib) & ((np.int64(1) << tb) - 1)
        size = np.diff(core["offset"])[c]
        k = _first(index >= size)
        if k is not None:
            raise fail(f"section 'sdram_words' {what} {int(at[k])} is a synapse onto neuron {int(index[k])} of core "
                       f"{int(c[k])}, outside [0, {int(size[k]) - 1}]")
        k = _first(stype >= SYNAPSE_TYPES)
        if k is not None:
            raise fail(f"section 'sdram_words' {what} {int(at[k])} is a synapse of type {int(stype[k])}, outside "
                       f"[0, {SYNAPSE_TYPES - 1}]")
        k = _first((ctl >> (ib + tb + db)) != 0)
        if k is not None:
            raise fail(f"section 'sdram_words' {what} {int(at[k])} is a synapse of core {int(c[k])} with bits set "
                       f"above its delay field (index {int(ib[k])} + type {int(tb[k])} + delay {int(db[k])} bits): "
                       f"a delay beyond the core's {1 << int(db[k])} ring slots")
    return words


# -- router tables --------------------------------------------------------------------------------------------
def _router(sections: dict[str, np.ndarray], cfg: dict[str, Any]) -> None:
    chips = section(sections, "rt_chip")
    n = section(sections, "rt_key").size
    need_offsets("rt_offset", section(sections, "rt_offset", chips.size + 1), n)
    need_range("rt_chip", chips, 0, cfg["w"] * cfg["h"] - 1)
    s = np.sort(chips)
    i = _first(s[1:] == s[:-1])
    if i is not None:
        c = int(s[i])
        raise fail(f"section 'rt_chip' gives chip ({c % cfg['w']}, {c // cfg['w']}) two router tables")
    keys = need_range("rt_key", section(sections, "rt_key"), 0, fx.M32)
    masks = need_range("rt_mask", section(sections, "rt_mask", n), 0, fx.M32)
    _within_masks("rt_key", keys, "rt_mask", masks)
    routes = section(sections, "rt_route", n)
    i = _first((routes < 0) | (routes > ROUTE_MAX))
    if i is not None:
        raise fail(f"section 'rt_route' entry {i} is {int(routes[i]):#x}, outside the {N_LINKS} links and "
                   f"{N_PROCESSORS} processors of a route (bits 0..{N_LINKS + N_PROCESSORS - 1})")


# -- ports, outputs, probes -----------------------------------------------------------------------------------
def _io(binary: Binary, n: int, nrn_key: np.ndarray) -> tuple[dict[str, int], np.ndarray]:
    """Input ports' keys, outputs and probes. Returns port sizes by name and every source's key."""
    meta, sections = binary.meta, binary.sections
    ports: dict[str, int] = {}
    keys = [nrn_key]
    names = ["neuron"]
    for p in need_list(meta.get("inputs", []), "meta 'inputs'"):
        p = need_dict(p, "meta 'inputs' entry")
        name, size = need_str(p.get("name"), "input name"), need_int(p.get("size"), "input size", lo=0)
        sec = f"{need_str(p.get('section'), f'input {name!r} section')}_key"
        keys.append(need_range(sec, section(sections, sec, size), 0, fx.M32))
        names.append(f"input port '{name}' unit")
        ports[name] = size
    all_keys = np.concatenate(keys)
    order = np.argsort(all_keys, kind="stable")
    i = _first(all_keys[order][1:] == all_keys[order][:-1])
    if i is not None:
        bounds = np.cumsum([k.size for k in keys])

        def who(j: int) -> str:
            g = int(np.searchsorted(bounds, j, side="right"))
            return f"{names[g]} {j - (int(bounds[g - 1]) if g else 0)}"

        raise fail(f"key {int(all_keys[order[i]]):#x} is sent by two sources: {who(int(order[i]))} and "
                   f"{who(int(order[i + 1]))}")
    for o in need_list(meta.get("outputs", []), "meta 'outputs'"):
        sec = f"{o['section']}_nrn"
        need_index(sec, section(sections, sec, need_int(o["size"], "output size", lo=0)), n)
    for p in need_list(meta.get("probes", []), "meta 'probes'"):
        name, var, source = p["name"], p["variable"], p.get("source", "neuron")
        sec = f"{p['section']}_nrn"
        idx = section(sections, sec)
        if source == "input":
            if p["population"] not in ports:
                raise fail(f"probe '{name}' reads input port '{p['population']}', which does not exist")
            if var != "spikes":
                raise fail(f"probe '{name}' reads '{var}' of an input port; ports have only spikes")
            need_index(sec, idx, ports[p["population"]])
        elif source == "neuron":
            if var not in ("spikes", "u", "v"):
                raise fail(f"probe '{name}' reads unknown variable '{var}' (spikes, u, v)")
            need_index(sec, idx, n)
        else:
            raise fail(f"probe '{name}' has source {source!r} (known: neuron, input)")
    return ports, all_keys


# -- e-prop ---------------------------------------------------------------------------------------------------
def check_eprop_meta(meta: dict[str, Any]) -> None:
    """The trial words of ``meta 'eprop'`` the e-prop cores read (docs/eprop.md)."""
    what = "meta 'eprop'"
    ticks = need_int(need_key(meta, "trial_ticks", what), "the e-prop trial's ticks", lo=1)
    need_int(need_key(meta, "batch", what), "the e-prop batch", lo=1)
    window = need_int(need_key(meta, "window_from", what), "the e-prop scored window's first tick", lo=0, hi=ticks - 1)
    need_int(meta.get("ebar_from", 0), "the e-prop trace window's first tick", lo=0, hi=window)
    if need_str(need_key(meta, "loss", what), "the e-prop loss") not in EPROP_LOSSES:
        raise fail(f"e-prop loss '{meta['loss']}' is not one this chip computes ({', '.join(EPROP_LOSSES)})")
    if need_str(meta.get("update", "gradient"), "the e-prop update") not in EPROP_UPDATES:
        raise fail(f"e-prop update '{meta['update']}' is not one this chip does ({', '.join(EPROP_UPDATES)})")
    if meta.get("update") == "adam":
        # Adam's update is spread over the first adam_ticks ticks of a trial, done before the next ends.
        need_int(need_key(meta, "adam_ticks", what), "the ticks Adam's update is spread over", lo=1, hi=ticks)
    need_int(need_key(meta, "n_out", what), "the e-prop readout size", lo=1)
    need_str(need_key(meta, "target", what), "the e-prop target port")
    need_int(need_key(meta, "mask", what), "the e-prop payload key mask", lo=0, hi=fx.M32)
    for key in ("gamma", "rate_target", "rate_reg", "rate_scale"):
        need_int(need_key(meta, key, what), f"the e-prop word '{key}'", lo=0, hi=fx.REAL_MAX)
    need_int(need_key(meta, "inv_ticks", what), "the e-prop word 'inv_ticks'", lo=1, hi=fx.M32)


def _payload_table(sections: dict[str, np.ndarray], prefix: str, n_cores: int, n_out: int) -> None:
    """A learning-signal or target table: per core (CSR) the payload keys it takes and each one's
    first unit."""
    n = section(sections, f"{prefix}_key").size
    need_offsets(f"{prefix}_offset", section(sections, f"{prefix}_offset", n_cores + 1), n)
    need_range(f"{prefix}_key", section(sections, f"{prefix}_key"), 0, fx.M32)
    need_index(f"{prefix}_base", section(sections, f"{prefix}_base", n), n_out)


def _eprop(binary: Binary, core: dict[str, np.ndarray], models: list[str], ports: dict[str, int],
           all_keys: np.ndarray, words: np.ndarray) -> None:
    meta, sections = binary.meta, binary.sections
    ep = meta.get("eprop")
    if "core_eprop" not in sections:
        if ep is not None:
            raise fail("meta 'eprop' describes e-prop cores, but the binary has no section 'core_eprop'")
        return
    if not isinstance(ep, dict):
        raise fail("the binary has e-prop cores but no 'eprop' metadata")
    check_eprop_meta(ep)
    off = core["offset"]
    n_cores, n = off.size - 1, int(off[-1])
    n_out = int(ep["n_out"])
    kind = need_range("core_eprop", section(sections, "core_eprop", n_cores), 0, 3)
    for c in np.flatnonzero(kind).tolist():
        if int(kind[c]) not in EPROP_KINDS.get(models[c], ()):
            raise fail(f"core {c} is an e-prop core of kind {int(kind[c])} but runs model '{models[c]}'")
    readout = np.flatnonzero(kind == 3)
    if readout.size != 1:
        raise fail(f"e-prop needs exactly one readout core, the binary has {readout.size}")
    ro = int(readout[0])
    if int(off[ro + 1] - off[ro]) != n_out:
        raise fail(f"the e-prop readout core {ro} holds {int(off[ro + 1] - off[ro])} neurons, but meta 'eprop' "
                   f"n_out is {n_out}")
    if "eprop_alif" not in models:
        raise fail("the binary has e-prop cores but no eprop_alif neurons")
    target = ep["target"]
    if target not in ports:
        raise fail(f"the e-prop target '{target}' is not an input port of the binary")
    if ports[target] != n_out:
        raise fail(f"the e-prop target port '{target}' has {ports[target]} units, but meta 'eprop' n_out is {n_out}")
    # State columns: per core, the keys of its sources.
    n_cols = section(sections, "ep_src_key").size
    need_offsets("ep_src_offset", section(sections, "ep_src_offset", n_cores + 1), n_cols)
    src_key = need_range("ep_src_key", section(sections, "ep_src_key"), 0, fx.M32)
    i = _first(~np.isin(src_key, all_keys))
    if i is not None:
        raise fail(f"section 'ep_src_key' entry {i} is {int(src_key[i]):#x}, a key no source sends")
    _payload_table(sections, "ep_ls", n_cores, n_out)
    _payload_table(sections, "ep_tg", n_cores, n_out)
    need_range("nrn_ep_fb", section(sections, "nrn_ep_fb", n * n_out), -(1 << 15), (1 << 15) - 1)
    # Plastic synapses: the halfword of each one's weight, its projection and neurons.
    half = section(sections, "ep_syn_half")
    m = half.size
    proj, pre, post = (section(sections, f"ep_syn_{k}", m) for k in ("proj", "pre", "post"))
    need_range("ep_syn_half", half, 1, 2 * words.size - 1)
    i = _first(half % 2 == 0)
    if i is not None:
        raise fail(f"section 'ep_syn_half' entry {i} is {int(half[i])}, not the top halfword of a word (odd)")
    s = np.sort(half)
    i = _first(s[1:] == s[:-1])
    if i is not None:
        raise fail(f"section 'ep_syn_half' lists halfword {int(s[i])} twice")
    plastic = need_list(meta.get("plastic", []), "meta 'plastic'")
    table: dict[int, tuple[int, int]] = {}
    for spec in plastic:
        what = f"plastic projection '{spec['name']}'"
        index = need_int(need_key(spec, "index", what), f"{what} index", lo=0)
        if index in table:
            raise fail(f"meta 'plastic' gives projection index {index} twice")
        table[index] = (need_int(need_key(spec, "n_pre", what), f"{what} n_pre", lo=0),
                        need_int(need_key(spec, "n_post", what), f"{what} n_post", lo=0))
    idx = np.array(sorted(table), dtype=np.int64)
    pos = np.searchsorted(idx, proj)
    known = (pos < idx.size) & (idx[np.minimum(pos, max(idx.size - 1, 0))] == proj) if idx.size else \
        np.zeros(m, dtype=bool)
    i = _first(~known)
    if i is not None:
        raise fail(f"section 'ep_syn_proj' entry {i} is {int(proj[i])}, no plastic projection of meta 'plastic'")
    n_pre = np.array([table[int(k)][0] for k in idx], dtype=np.int64)[pos] if m else pos
    n_post = np.array([table[int(k)][1] for k in idx], dtype=np.int64)[pos] if m else pos
    need_index("ep_syn_pre", pre, n_pre)
    need_index("ep_syn_post", post, n_post)
    # One membrane decay per e-prop core (its sources' zbar decay with it).
    ep_cores = np.flatnonzero(kind)
    nrn = _ranges(off[ep_cores], np.diff(off)[ep_cores])
    c_of = np.repeat(ep_cores, np.diff(off)[ep_cores])
    tau = section(sections, "nrn_ep_tau_m", n)[nrn]
    if not nrn.size:
        return
    decay = fx.expulr(-fx.kdivk(core["time_step"][c_of], tau))
    sizes = np.diff(off)[ep_cores]
    first = np.repeat(decay[np.minimum(np.cumsum(sizes) - sizes, nrn.size - 1)], sizes)
    i = _first(decay != first)
    if i is not None:
        raise fail(f"e-prop core {int(c_of[i])} has neurons with different membrane time constants "
                   f"(section 'nrn_ep_tau_m' entry {int(nrn[i])})")


# -- all of it ------------------------------------------------------------------------------------------------
def validate_spinnaker(binary: Binary, kernels: Collection[str] = tuple(MODEL_WORDS)) -> None:
    """Raise :class:`BinaryFormatError` naming the first inconsistency of a SpiNNaker-like binary.
    ``kernels``: the neuron models the interpreter has kernels for."""
    try:
        sections, meta = binary.sections, binary.meta
        raw_models = meta.get("core_models")
        used = {m for m in raw_models if isinstance(m, str)} if isinstance(raw_models, list) else set()
        ep = meta.get("eprop")
        adam = "core_eprop" in sections and isinstance(ep, dict) and ep.get("update") == "adam"
        cfg = _config(need_dict(binary.target_config, "the target configuration"), used & set(kernels),
                      "core_eprop" in sections, adam)
        core = _cores(sections, cfg)
        m = _meta(meta, cfg, core["offset"].size - 1, kernels)
        _time_step(core, m["timestep"])
        nrn_key = _neurons(sections, core, m["models"])
        words = _synapses(sections, cfg, core, m["neuron_bits"])
        _router(sections, cfg)
        ports, all_keys = _io(binary, int(core["offset"][-1]), nrn_key)
        _eprop(binary, core, m["models"], ports, all_keys, words)
    except BinaryFormatError as exc:
        raise BinaryFormatError(f"inconsistent binary: {exc.message}", location=binary.source or None) from None
