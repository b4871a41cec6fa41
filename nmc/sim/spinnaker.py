"""Bit-exact interpreter of the SpiNNaker-like chip. Reads only a compiled :class:`Binary`.

What it models (docs/spinnaker.md has every equation with its source):

- **checks**: before anything is built, every section and metadata field it reads is checked
  (:mod:`nmc.sim.spinnaker_validate`); an inconsistent binary is refused in one line;
- **load**: each core derives its neurons' state from the host words as sPyNNaker 1!7.4.1's
  ``neuron_model_initialise`` and ``decay_and_init`` do, with spinn_common's ``expk``/``expulr``
  (:mod:`nmc.formats.spinnaker`);
- **packets**: a spike is a multicast packet carrying its neuron's key. From the source chip it
  follows the router tables in the binary -- first entry with ``key & mask == entry key``, else
  default routing to the link opposite the one it came in on (a packet from a local core that
  matches nothing, or one leaving the mesh, is dropped) -- and is delivered to the processors of
  each route; the receiving core looks the key up in its master population table, fetches the
  rows the address list points at and decodes their 32-bit words with its field widths. A wrong
  key, mask or route therefore shows up as wrong spikes. The tables are static, so the walk is
  done once per key at load time and cached (:class:`Deliveries`); every tick then replays it
  for the keys that fire, and the counters (packets, router entries hit, default-routed and
  dropped packets, row DMAs, synaptic words) come from the same walk;
- **one timer tick** (``c_main.c``, ``neuron_impl_standard.h``), for every core: (1) ring slot
  ``t mod D`` of each neuron and type is converted (``word << shift``) and added to the synaptic
  current through ``init``, and cleared; (2) the neuron update; spikes are sent as packets;
  (3) every packet sent in tick t is processed in tick t: each synaptic word adds its weight to
  ring slot ``(t + delay field) mod D``, saturating at 0xFFFF (a field of 0 is a delay of D);
- **cost**: cycles per core and tick from the target's costs (:mod:`nmc.sim.cost_spinnaker`);
  a tick whose cycles exceed ``clock x timestep`` is an overrun, reported naming core and tick.

Neuron models are kernels (:data:`KERNELS`, one class per model name in ``meta["core_models"]``)
with their own state, so an adaptive neuron can be added as another kernel; the cached
deliveries keep each synapse's word address in SDRAM, where a plastic rule can keep per-synapse
state and write weights back; packets are routed by key, so a payload can travel with one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..binary.format import Binary
from ..errors import BinaryFormatError, RunError, TargetError
from ..formats import spinnaker as fx
from ..parts import load_part
from .checkpoint import check_saved_state
from .cost_spinnaker import TickCounts
from .ports import port_spikes
from .protocol import RunResult
from .spinnaker_validate import validate_spinnaker

__all__ = ["SpiNNakerInterpreter", "RunResult"]

#: Hex mesh links (0 E, 1 NE, 2 N, 3 W, 4 SW, 5 S) as chip offsets; route bit 6 + p is processor p.
LINK_STEPS = np.array([(1, 0), (1, 1), (0, 1), (-1, 0), (-1, -1), (0, -1)], dtype=np.int64)
N_LINKS = 6
N_PROCESSORS = 18


def _sec(b: Binary, name: str) -> np.ndarray:
    if name not in b.sections:
        raise BinaryFormatError(f"section '{name}' is missing")
    return b.sections[name]


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenated index ranges [starts[i], starts[i] + lens[i])."""
    first = np.cumsum(lens) - lens
    return np.arange(int(lens.sum()), dtype=np.int64) - np.repeat(first, lens) + np.repeat(starts, lens)


# ---------------------------------------------------------------------------------------------
# Neuron kernels
# ---------------------------------------------------------------------------------------------
class IFCurrExp:
    """sPyNNaker 1!7.4.1 IF_curr_exp on the neurons ``idx`` (global ids): the load-time
    derivation and one tick's update, bit-exact (every value a raw 32-bit word in int64).

    Per tick, after the ring slot's words were added to ``isyn`` via ``init``::

        I = isyn_e - isyn_i + I_offset
        refractory ticks left <= 0:  alpha = I * R + V_rest;  V = alpha - exp_TC * (alpha - V)
        else:                        ticks left -= 1 (V frozen)
        spike if V >= V_thresh (on both branches): V = V_reset, ticks left = T_refract
        isyn = isyn * decay                          (after the update)
    """

    name = "if_curr_exp"
    state_arrays = ("v", "refract", "isyn_e", "isyn_i", "u")   # what reset() sets and a run changes
    words = ("v_init", "v_rest", "cm", "tau_m", "i_offset", "v_reset", "tau_refrac", "v_thresh",
             "tau_syn_e", "tau_syn_i")

    def __init__(self, b: Binary, idx: np.ndarray, time_step: np.ndarray) -> None:
        self.idx = idx
        w = {k: _sec(b, f"nrn_{k}").astype(np.int64)[idx] for k in self.words}
        for k in ("cm", "tau_m", "tau_syn_e", "tau_syn_i"):
            if np.any(w[k] <= 0):
                raise BinaryFormatError(f"section 'nrn_{k}' holds a non-positive time constant or capacitance")
        self.v_init, self.v_rest, self.i_offset = w["v_init"], w["v_rest"], w["i_offset"]
        self.v_reset, self.v_thresh = w["v_reset"], w["v_thresh"]
        self.r, self.exp_tc, self.t_refract = fx.lif_derived(w["tau_m"], w["cm"], w["tau_refrac"], time_step)
        self.decay_e, self.init_e = fx.synapse_derived(w["tau_syn_e"], time_step)
        self.decay_i, self.init_i = fx.synapse_derived(w["tau_syn_i"], time_step)
        self.reset()

    def reset(self) -> None:
        n = self.idx.size
        self.v = self.v_init.copy()
        self.refract = np.zeros(n, dtype=np.int64)
        self.isyn_e = np.zeros(n, dtype=np.int64)
        self.isyn_i = np.zeros(n, dtype=np.int64)
        self.u = np.zeros(n, dtype=np.int64)

    def add_input(self, in_e: np.ndarray, in_i: np.ndarray) -> int:
        """Ring-slot inputs (REAL) into the currents through ``init``; returns the wraps."""
        e = self.isyn_e + fx.decay_mul(in_e, self.init_e)
        i = self.isyn_i + fx.decay_mul(in_i, self.init_i)
        self.isyn_e, self.isyn_i = fx.wrap32(e), fx.wrap32(i)
        return int(np.count_nonzero(self.isyn_e != e) + np.count_nonzero(self.isyn_i != i))

    def update(self) -> tuple[np.ndarray, int]:
        """The neuron update, threshold, reset and synaptic decay; returns (spiked, wraps)."""
        i_raw = self.isyn_e - self.isyn_i + self.i_offset
        cur = fx.wrap32(i_raw)
        self.u = cur - self.i_offset          # the synaptic current the update used
        free = self.refract <= 0
        a_raw = fx.accum_mul(cur, self.r) + self.v_rest
        alpha = fx.wrap32(a_raw)
        d_raw = alpha - self.v
        diff = fx.wrap32(d_raw)
        v_raw = alpha - fx.accum_mul(self.exp_tc, diff)
        v_new = fx.wrap32(v_raw)
        wraps = int(np.count_nonzero(free & ((i_raw != cur) | (a_raw != alpha) | (d_raw != diff) | (v_raw != v_new))))
        self.v = np.where(free, v_new, self.v)
        self.refract = np.where(free, self.refract, self.refract - 1)
        spiked = self.v >= self.v_thresh
        self.v = np.where(spiked, self.v_reset, self.v)
        self.refract = np.where(spiked, self.t_refract, self.refract)
        self.isyn_e = fx.decay_mul(self.isyn_e, self.decay_e)
        self.isyn_i = fx.decay_mul(self.isyn_i, self.decay_i)
        return spiked, wraps


from .spinnaker_eprop import EpropALIF, EpropEngine, EpropLI, target_words  # noqa: E402

#: Neuron models the interpreter runs, by the name in ``meta["core_models"]``.
KERNELS: dict[str, type] = {IFCurrExp.name: IFCurrExp, EpropALIF.name: EpropALIF, EpropLI.name: EpropLI}


def validate(binary: Binary) -> None:
    """Refuse an inconsistent SpiNNaker-like binary with one line naming the problem
    (:mod:`nmc.sim.spinnaker_validate`), for the models :data:`KERNELS` runs."""
    validate_spinnaker(binary, KERNELS)


# ---------------------------------------------------------------------------------------------
# Packets: routing through the tables, master population tables, rows
# ---------------------------------------------------------------------------------------------
@dataclass
class Deliveries:
    """What one packet of each source key does, found by routing it through the binary's tables
    once. Per source s (CSR by ``ptr``): the synapses it reaches (post neuron, type, delay field,
    weight word, SDRAM word address); per source and core (CSR by ``cptr``): packets received, row
    DMAs and synaptic words; per source: routers traversed, entries hit, default routes taken,
    packets dropped, and packets whose key no master population table held."""

    ptr: np.ndarray
    post: np.ndarray
    stype: np.ndarray
    field: np.ndarray
    weight: np.ndarray
    addr: np.ndarray
    cptr: np.ndarray
    core: np.ndarray
    received: np.ndarray
    dmas: np.ndarray
    words: np.ndarray
    traversals: np.ndarray
    hits: np.ndarray
    defaults: np.ndarray
    dropped: np.ndarray
    misses: np.ndarray
    plastic: np.ndarray     # whether the synapse is plastic (its ``addr`` is then its weight's halfword address)


class _Router:
    """The machine's router tables and where each processor's core sits."""

    def __init__(self, b: Binary, mesh: tuple[int, int], core_xy: np.ndarray, core_proc: np.ndarray) -> None:
        self.w, self.h = mesh
        off = _sec(b, "rt_offset").astype(np.int64)
        chips = _sec(b, "rt_chip").astype(np.int64)
        keys, masks, routes = (_sec(b, k).astype(np.int64) for k in ("rt_key", "rt_mask", "rt_route"))
        self.tables = {int(c): (keys[off[i]:off[i + 1]], masks[off[i]:off[i + 1]], routes[off[i]:off[i + 1]])
                       for i, c in enumerate(chips.tolist())}
        self.proc_core = np.full((self.w * self.h, N_PROCESSORS), -1, dtype=np.int64)
        chip_id = core_xy[:, 1] * self.w + core_xy[:, 0]
        self.proc_core[chip_id, core_proc] = np.arange(core_proc.size)

    def walk(self, keys: np.ndarray, start: np.ndarray, max_hops: int) -> tuple[np.ndarray, ...]:
        """Route one packet per key from chip ``start`` (chip ids). Returns (source, core) of every
        delivery and, per key, routers traversed, entries hit, default routes, drops.

        Routing is a function of (key, chip, incoming link), so a copy that reaches a state its key
        has been in is in a loop: it is dropped (on the machine such a packet circles until the
        router's timeout drops it), which also bounds the walk when tables multiply copies; so is
        every copy still travelling after ``max_hops`` routers."""
        n = keys.size
        trav, hits, defaults, dropped = (np.zeros(n, dtype=np.int64) for _ in range(4))
        d_src, d_core = [], []
        src, chip, inl = np.arange(n, dtype=np.int64), start.astype(np.int64), np.full(n, -1, dtype=np.int64)
        n_chips = self.w * self.h
        seen = np.zeros(n * n_chips * (N_LINKS + 1), dtype=bool)
        hops = 0
        while src.size:
            if hops >= max_hops:
                np.add.at(dropped, src, 1)
                break
            state = (src * n_chips + chip) * (N_LINKS + 1) + inl + 1
            uniq, first = np.unique(state, return_index=True)
            again = np.ones(src.size, dtype=bool)
            again[first[~seen[uniq]]] = False
            if again.any():
                np.add.at(dropped, src[again], 1)
                keep = ~again
                src, chip, inl, state = src[keep], chip[keep], inl[keep], state[keep]
                if not src.size:
                    break
            seen[state] = True
            hops += 1
            np.add.at(trav, src, 1)
            route = np.zeros(src.size, dtype=np.int64)
            matched = np.zeros(src.size, dtype=bool)
            for c in np.unique(chip).tolist():
                at = np.flatnonzero(chip == c)
                table = self.tables.get(c)
                if table is None:
                    continue
                tk, tm, tr = table
                k = keys[src[at]]
                hit = (k[:, None] & tm[None, :]) == tk[None, :]
                found = hit.any(axis=1)
                first = hit.argmax(axis=1)
                route[at[found]] = tr[first[found]]
                matched[at[found]] = True
            np.add.at(hits, src[matched], 1)
            # No entry: a packet from a link leaves by the opposite port, i.e. goes straight on along
            # the link it travelled (``inl``); one from a local core is dropped.
            default = ~matched & (inl >= 0)
            route[default] = 1 << inl[default]
            np.add.at(defaults, src[default], 1)
            np.add.at(dropped, src[~matched & (inl < 0)], 1)
            # Deliveries to processors.
            procs = (route[:, None] >> (N_LINKS + np.arange(N_PROCESSORS))[None, :]) & 1
            pi, pp = np.nonzero(procs)
            cores = self.proc_core[chip[pi], pp]
            np.add.at(dropped, src[pi[cores < 0]], 1)   # a processor running no core of this binary
            d_src.append(src[pi[cores >= 0]])
            d_core.append(cores[cores >= 0])
            # Onward links.
            li, ll = np.nonzero((route[:, None] >> np.arange(N_LINKS)[None, :]) & 1)
            x = chip[li] % self.w + LINK_STEPS[ll, 0]
            y = chip[li] // self.w + LINK_STEPS[ll, 1]
            inside = (x >= 0) & (x < self.w) & (y >= 0) & (y < self.h)
            np.add.at(dropped, src[li[~inside]], 1)
            src, chip, inl = src[li[inside]], (y * self.w + x)[inside], ll[inside]
        cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0, dtype=np.int64))
        return cat(d_src), cat(d_core), trav, hits, defaults, dropped


# ---------------------------------------------------------------------------------------------
# The interpreter
# ---------------------------------------------------------------------------------------------
class SpiNNakerInterpreter:
    """Bit-exact interpreter of a SpiNNaker-like binary.

    >>> chip = SpiNNakerInterpreter(read_binary("net.nmcb"))
    >>> result = chip.run(100, inputs={"x": spikes})      # spikes: (100, n_x) of 0/1
    """

    validate = staticmethod(validate)  # what ``nmc inspect`` checks (nmc.sim.validate_binary)

    def __init__(self, binary: Binary) -> None:
        # Every table is checked before any is used (nmc.sim.spinnaker_validate); what the checks
        # cannot see without routing the packets (the e-prop engine's tables against the synapses
        # the packets reach) is checked while loading, with the same kind of message.
        validate(binary)
        self.binary = binary
        self.meta = binary.meta
        cfg = binary.target_config
        try:
            self.cost_model = load_part("cost_model", str(cfg.get("parts", {}).get("cost_model", "")))(cfg)
        except TargetError as exc:
            raise BinaryFormatError(f"binary for target '{binary.target}': {exc.message}") from None
        self.timestep_s = float(self.meta.get("timestep_ms", 1.0)) / 1000.0
        self.learning_enabled = False
        self.sdram_words = _sec(binary, "sdram_words").astype(np.uint32).copy()  # weights are written back here
        try:
            self._load_cores()
            self._load_routing()
            self._load_io()
            self.eprop: EpropEngine | None = None
            if "core_eprop" in binary.sections:
                self.eprop = EpropEngine(self, binary)
                self.learning_enabled = True
        except BinaryFormatError as exc:
            raise BinaryFormatError(f"inconsistent binary: {exc.message}", location=binary.source or None) from None
        self.reset()

    # -- loading ------------------------------------------------------------------------------------
    def _load_cores(self) -> None:
        b = self.binary
        off = _sec(b, "core_neuron_offset").astype(np.int64)
        self.n_cores = off.size - 1
        self.core_offset = off
        self.n_neurons = int(off[-1])
        self.neuron_core = np.repeat(np.arange(self.n_cores), np.diff(off))
        per_core = {k: _sec(b, f"core_{k}").astype(np.int64) for k in
                    ("time_step", "shift_exc", "shift_inh", "index_bits", "type_bits", "delay_bits",
                     "chip_x", "chip_y", "processor")}
        self.core = per_core
        nc = self.neuron_core
        self.shift = np.stack([per_core["shift_exc"][nc], per_core["shift_inh"][nc]])   # (2, n)
        self.slots = 1 << per_core["delay_bits"]            # ring slots per core
        self.neuron_slots = self.slots[nc]
        models = list(self.meta.get("core_models", []))
        self.kernels = []
        self.core_model_count: dict[str, np.ndarray] = {}
        for name in sorted(set(models)):
            cores = np.array([c for c, m in enumerate(models) if m == name], dtype=np.int64)
            idx = (np.concatenate([np.arange(off[c], off[c + 1]) for c in cores]) if cores.size
                   else np.zeros(0, np.int64))
            self.kernels.append(KERNELS[name](b, idx, per_core["time_step"][nc[idx]]))
            count = np.zeros(self.n_cores, dtype=np.int64)
            count[cores] = np.diff(off)[cores]
            self.core_model_count[name] = count

    def _load_routing(self) -> None:
        """Walk every source key through the router tables, master population tables and rows."""
        b, cfg = self.binary, self.binary.target_config
        mesh = tuple(int(v) for v in cfg["chip"]["mesh"])
        core_xy = np.stack([self.core["chip_x"], self.core["chip_y"]], axis=1)
        self.router = _Router(b, mesh, core_xy, self.core["processor"])
        keys = [_sec(b, "nrn_key").astype(np.int64)]
        sends = _sec(b, "nrn_sends").astype(bool)
        w = mesh[0]
        start = [(core_xy[:, 1] * w + core_xy[:, 0])[self.neuron_core]]
        self.port_base: dict[str, int] = {}
        self.port_size: dict[str, int] = {}
        host = self.meta.get("host_chip", [0, 0])
        base = self.n_neurons
        for port in self.meta.get("inputs", []):
            k = _sec(b, f"{port['section']}_key").astype(np.int64)
            keys.append(k)
            start.append(np.full(k.size, int(host[1]) * w + int(host[0]), dtype=np.int64))
            self.port_base[port["name"]] = base
            self.port_size[port["name"]] = k.size
            base += k.size
        self.n_src = base
        all_keys = np.concatenate(keys)
        self.all_keys = all_keys
        self.src_sends = np.concatenate([sends, np.ones(base - self.n_neurons, dtype=bool)])
        self.deliveries = self._deliveries(all_keys, np.concatenate(start))

    def _deliveries(self, keys: np.ndarray, start: np.ndarray) -> Deliveries:
        b = self.binary
        max_hops = int(b.target_config["router"].get("max_hops", 64))
        sending = np.flatnonzero(self.src_sends)
        d_src, d_core, trav_s, hits_s, def_s, drop_s = self.router.walk(keys[sending], start[sending], max_hops)
        n = self.n_src
        trav, hits, defaults, dropped = (np.zeros(n, dtype=np.int64) for _ in range(4))
        trav[sending], hits[sending], defaults[sending], dropped[sending] = trav_s, hits_s, def_s, drop_s
        d_src = sending[d_src]
        # Master population tables: first entry with key & mask == entry key.
        words = self.sdram_words.astype(np.int64)
        mpt_off = _sec(b, "mpt_offset").astype(np.int64)
        mk, mm, mn = (_sec(b, k).astype(np.int64) for k in ("mpt_key", "mpt_mask", "mpt_n_neurons"))
        ma, mc = _sec(b, "mpt_addr_start").astype(np.int64), _sec(b, "mpt_addr_count").astype(np.int64)
        rl, ra = _sec(b, "addr_row_length").astype(np.int64), _sec(b, "addr_address").astype(np.int64)
        header = int(b.target_config["sdram"]["row_header_words"])
        misses = np.zeros(n, dtype=np.int64)
        rows_src, rows_core, rows_addr = [], [], []
        for c in np.unique(d_core).tolist():
            sel = np.flatnonzero(d_core == c)
            k = keys[d_src[sel]]
            lo, hi = mpt_off[c], mpt_off[c + 1]
            hit = (k[:, None] & mm[None, lo:hi]) == mk[None, lo:hi]
            found = hit.any(axis=1)
            entry = lo + hit.argmax(axis=1)
            local = k & ~mm[entry] & fx.M32
            ok = found & (local < mn[entry])
            np.add.at(misses, d_src[sel[~ok]], 1)
            sel, entry, local = sel[ok], entry[ok], local[ok]
            items = np.repeat(np.arange(sel.size), mc[entry])
            item = _ranges(ma[entry], mc[entry])
            rows_src.append(d_src[sel][items])
            rows_core.append(np.full(items.size, c, dtype=np.int64))
            rows_addr.append(ra[item] + local[items] * (rl[item] + header))
        cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0, dtype=np.int64))
        r_src, r_core, r_addr = cat(rows_src), cat(rows_core), cat(rows_addr)
        # Rows: [P, P plastic-region words, F, Q, F fixed words, ceil(Q/2) control words] (each
        # within its block and stride: nmc.sim.spinnaker_validate).
        p_size = words[r_addr] if r_addr.size else r_addr
        fixed = r_addr + 1 + p_size
        n_fixed = words[fixed] if fixed.size else r_addr
        n_plastic = words[fixed + 1] if fixed.size else r_addr
        first = fixed + 2
        ctl_first = 2 * (first + n_fixed)
        f_addr = _ranges(first, n_fixed)
        h_ctl = _ranges(ctl_first, n_plastic)
        # A plastic synapse's word: its signed weight in the top half (little-endian: the odd halfword).
        h_w = 2 * _ranges(r_addr + 1, n_plastic) + 1
        halves = words.astype(np.uint32).view(np.uint16) if words.size else np.zeros(0, np.uint16)
        hw = halves[h_w].astype(np.int16).astype(np.int64) if h_w.size else np.zeros(0, np.int64)
        w_src = np.concatenate([np.repeat(r_src, n_fixed), np.repeat(r_src, n_plastic)])
        w_core = np.concatenate([np.repeat(r_core, n_fixed), np.repeat(r_core, n_plastic)])
        word = np.concatenate([words[f_addr], (np.abs(hw) << 16) | halves[h_ctl].astype(np.int64)])
        is_plastic = np.concatenate([np.zeros(f_addr.size, dtype=bool), np.ones(h_w.size, dtype=bool)])
        w_addr = np.concatenate([f_addr, h_w])
        plastic_neg = np.concatenate([np.zeros(f_addr.size, dtype=bool), hw < 0])
        ib = self.core["index_bits"][w_core]
        tb = self.core["type_bits"][w_core]
        db = self.core["delay_bits"][w_core]
        index = word & ((1 << ib) - 1)
        stype = np.where(is_plastic, plastic_neg, (word >> ib) & ((1 << tb) - 1))
        field = (word >> (ib + tb)) & ((1 << db) - 1)
        weight = (word >> 16) & 0xFFFF
        # A word whose index or type lies past the core's neurons writes a slot nobody reads.
        real = (index < np.diff(self.core_offset)[w_core]) & (stype < 2)
        order = np.argsort(w_src[real], kind="stable")
        src_sorted = w_src[real][order]
        post = (self.core_offset[w_core] + index)[real][order]
        # Per (source, core): packets received, row DMAs, words.
        pair_keys = [d_src * self.n_cores + d_core, r_src * self.n_cores + r_core, w_src * self.n_cores + w_core]
        uniq = np.unique(np.concatenate(pair_keys)) if any(p.size for p in pair_keys) else np.zeros(0, np.int64)
        counts = [np.bincount(np.searchsorted(uniq, p), minlength=uniq.size) for p in pair_keys]
        return Deliveries(
            ptr=np.concatenate([[0], np.cumsum(np.bincount(src_sorted, minlength=n))]).astype(np.int64),
            post=post, stype=stype[real][order], field=field[real][order], weight=weight[real][order],
            addr=w_addr[real][order], plastic=is_plastic[real][order],
            cptr=np.concatenate([[0], np.cumsum(np.bincount(uniq // max(self.n_cores, 1), minlength=n))]
                                ).astype(np.int64),
            core=uniq % max(self.n_cores, 1), received=counts[0], dmas=counts[1], words=counts[2],
            traversals=trav, hits=hits, defaults=defaults, dropped=dropped, misses=misses)

    def _load_io(self) -> None:
        b = self.binary
        self.outputs = {o["name"]: _sec(b, f"{o['section']}_nrn").astype(np.int64)
                        for o in self.meta.get("outputs", [])}
        self.probe_defs = []
        for p in self.meta.get("probes", []):
            idx = _sec(b, f"{p['section']}_nrn").astype(np.int64)
            self.probe_defs.append((p["name"], p["variable"], p.get("source", "neuron"), p["population"], idx))
        self.kernel_of = np.zeros(self.n_neurons, dtype=np.int64)
        self.pos_in_kernel = np.zeros(self.n_neurons, dtype=np.int64)
        for k, kern in enumerate(self.kernels):
            self.kernel_of[kern.idx] = k
            self.pos_in_kernel[kern.idx] = np.arange(kern.idx.size)

    # -- state ----------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Zero the dynamic state: membranes back to v_init, currents, refractory counters and
        ring buffers cleared."""
        for k in self.kernels:
            k.reset()
        d_max = int(self.slots.max()) if self.n_cores else 1
        self.ring = np.zeros((d_max, 2, max(self.n_neurons, 1)), dtype=np.int64)
        self.t = 0
        if getattr(self, "eprop", None) is not None:
            self.eprop.reset()

    def plastic_weights(self) -> dict[str, np.ndarray]:
        """The weight words of every e-prop projection, (n_pre, n_post) (empty without e-prop)."""
        return self.eprop.plastic_weights() if self.eprop is not None else {}

    # -- checkpoints ----------------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """The dynamic state as named arrays (copies): the ring buffers, the tick counter, each
        kernel's ``state_arrays`` under ``kernel<i>/`` and, with e-prop, the engine's state under
        ``eprop/`` (traces, gradient sums, learning signals, trial bookkeeping, saturation counts
        and the plastic weights in the engine, the deliveries and SDRAM: :class:`EpropEngine`).
        :meth:`load_state` of it into an interpreter of the same binary continues exactly as this
        one would."""
        out = {"ring": self.ring.copy(), "t": np.array(self.t, dtype=np.int64)}
        for i, k in enumerate(self.kernels):
            for name in k.state_arrays:
                out[f"kernel{i}/{name}"] = np.array(getattr(k, name), copy=True)
        if self.eprop is not None:
            for name, value in self.eprop.state().items():
                out[f"eprop/{name}"] = value
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a :meth:`state` of an interpreter of the same binary; anything else (a missing,
        extra or reshaped array) is a RunError and changes nothing."""
        check_saved_state(self.state(), state)
        self.ring = np.array(state["ring"], copy=True)
        self.t = int(state["t"])
        for i, k in enumerate(self.kernels):
            for name in k.state_arrays:
                setattr(k, name, np.array(state[f"kernel{i}/{name}"], copy=True))
        if self.eprop is not None:
            self.eprop.load_state({key[len("eprop/"):]: value for key, value in state.items()
                                   if key.startswith("eprop/")})

    # -- running --------------------------------------------------------------------------------------
    def _port_spikes(self, inputs: dict[str, np.ndarray] | None, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """All port spikes as source ids sorted by step, with per-step bounds (steps + 1,)."""
        return port_spikes(inputs, self.port_base, self.port_size, steps)

    def run(self, steps: int, inputs: dict[str, np.ndarray] | None = None, *, probes: bool = True,
            progress: Callable[[int], None] | None = None) -> RunResult:
        """Advance ``steps`` ticks from the current state; ``inputs`` maps port -> (steps, n) spikes."""
        if steps < 0:
            raise RunError("steps must be non-negative")
        ep = self.eprop
        target = None
        if ep is not None and inputs and ep.meta["target"] in inputs:
            inputs = dict(inputs)
            values = np.asarray(inputs.pop(ep.meta["target"]))
            if values.ndim != 2 or values.shape[1] != ep.n_out or values.shape[0] < steps:
                raise RunError(f"target '{ep.meta['target']}': expected values shaped ({steps}, {ep.n_out}), "
                               f"got {values.shape}")
            target = target_words(values[:steps])
        extra = np.zeros((steps, self.n_cores), dtype=np.int64)
        # Counters are per run, so that a session's sum is right: the e-prop trials too.
        payload = {"sent": 0, "received": 0, "traversals": 0, "trials_before": ep.trials_done if ep is not None else 0}
        if ep is not None:
            ep_nrn = np.concatenate([ec.nrn for ec in ep.cores])
            ep_kernels = [k for k in self.kernels if k.name in ("eprop_alif", "eprop_li")]
        port_src, port_bounds = self._port_spikes(inputs, steps)
        n = self.n_neurons
        dlv = self.deliveries
        ring = self.ring
        ring_flat = ring.reshape(-1)
        plane = ring.shape[2]
        uniform = bool(self.n_cores) and bool(np.all(self.slots == self.slots[0]))
        arange_n = np.arange(n)
        spike_rec = {name: np.zeros((steps, idx.size), dtype=bool) for name, idx in self.outputs.items()}
        probe_rec: dict[str, np.ndarray] = {}
        if probes:
            for name, var, _src, _pop, idx in self.probe_defs:
                probe_rec[name] = np.zeros((steps, idx.size), dtype=bool if var == "spikes" else np.int32)
        src_log: list[np.ndarray] = []
        ovf = {"ring_saturation": 0, "accum_wrap": 0}
        fired_total = np.zeros(self.n_cores, dtype=np.int64)
        spiked_all = np.zeros(n, dtype=bool)
        v_all = np.zeros(n, dtype=np.int64)
        u_all = np.zeros(n, dtype=np.int64)
        for k in range(steps):
            t = self.t + k
            tau = t % ep.T if ep is not None else -1
            if tau == 0:
                # A trial starts: the finished trial's learning, then the e-prop cores' resting state
                # (spikes still in flight from the previous trial are dropped with the ring slots).
                ep.trial_start(self.learning_enabled, extra[k])
                for kern in ep_kernels:
                    kern.reset()
                ring[:, :, ep_nrn] = 0
            if ep is not None:
                ep.ticks_in_trial += 1
                if ep.adam_chunk < ep.adam_ticks:
                    # Adam's update, one chunk of columns per tick, before this tick's packets.
                    ep.adam_step(extra[k])
            # (1) Synapse step: ring slot t of every neuron and type into the currents.
            if n:
                if uniform:
                    slot = t & (int(self.slots[0]) - 1)
                    words = ring[slot, :, :n].copy()
                    ring[slot, :, :n] = 0
                else:
                    slot_n = t & (self.neuron_slots - 1)
                    words = ring[slot_n, :, arange_n].T.copy()
                    ring[slot_n, :, arange_n] = 0
                inp = fx.ring_to_input(words, self.shift)
                # (2) Neuron update.
                for kern in self.kernels:
                    ovf["accum_wrap"] += kern.add_input(inp[0, kern.idx], inp[1, kern.idx])
                    spiked, wraps = kern.update()
                    ovf["accum_wrap"] += wraps
                    spiked_all[kern.idx] = spiked
                    v_all[kern.idx] = kern.v
                    u_all[kern.idx] = kern.u
                fired = np.flatnonzero(spiked_all)
            else:
                fired = np.zeros(0, dtype=np.int64)
            fired_total += np.bincount(self.neuron_core[fired], minlength=self.n_cores)
            if ep is not None and tau > 0:
                got = ep.step(tau, self.learning_enabled, None if target is None else target[k], extra[k])
                for key, v in got.items():
                    payload[key] += v
            # (3) Packets of the tick: neurons that fired and send, then host-injected port units.
            ps = port_src[port_bounds[k]:port_bounds[k + 1]]
            src = np.concatenate([fired[self.src_sends[fired]], ps]) if ps.size else fired[self.src_sends[fired]]
            src_log.append(src)
            if ep is not None:
                ep.arrivals(src)
            if src.size:
                starts = dlv.ptr[src]
                lens = dlv.ptr[src + 1] - starts
                pos = _ranges(starts, lens)
                if pos.size:
                    post = dlv.post[pos]
                    d = self.neuron_slots[post]
                    flat = (((t + dlv.field[pos]) & (d - 1)) * 2 + dlv.stype[pos]) * plane + post
                    ovf["ring_saturation"] += self._accumulate(ring_flat, flat, dlv.weight[pos])
            for name, idx in self.outputs.items():
                spike_rec[name][k] = spiked_all[idx]
            if probes:
                for name, var, srcn, _pop, idx in self.probe_defs:
                    if var == "spikes":
                        probe_rec[name][k] = (spiked_all[idx] if srcn == "neuron"
                                              else np.isin(self.port_base.get(_pop, 0) + idx, ps))
                    elif var == "v":
                        probe_rec[name][k] = v_all[idx]
                    else:
                        probe_rec[name][k] = u_all[idx]
            if progress is not None:
                progress(1)
        self.t += steps
        if ep is not None:
            ovf["eprop_saturation"] = ep.saturation["eprop_state"]
            ovf["weight_saturation"] = ep.saturation["weight"]
            ep.saturation = {"eprop_state": 0, "weight": 0}
        return self._result(steps, src_log, fired_total, spike_rec, probe_rec, ovf, extra, payload)

    @staticmethod
    def _accumulate(ring_flat: np.ndarray, flat: np.ndarray, weight: np.ndarray) -> int:
        """Add words into ring slots with the core's saturation (``acc = slot + w; if acc > 0xFFFF:
        acc = 0xFFFF``). Saturation makes the final value min(sum, 0xFFFF) in any order; the count
        of saturating additions depends on the order, taken as packets in key order and words in row
        order (the order of ``flat``). The sums are dense over the ring (a bincount is cheaper than
        finding the slots touched) and exact (float64 holds them)."""
        total = ring_flat + np.bincount(flat, weights=weight, minlength=ring_flat.size).astype(np.int64)
        over = total > fx.WEIGHT_MAX
        saturations = 0
        if over.any():
            # Additions that found the slot at the cap or pushed it past: in slot order, a running
            # sum above the cap with a non-zero word.
            hot = np.flatnonzero(over[flat])
            hot = hot[fx.stable_order(flat[hot])]
            slot = flat[hot]
            run = np.cumsum(weight[hot])
            first = np.ones(hot.size, dtype=bool)
            first[1:] = slot[1:] != slot[:-1]
            starts = np.flatnonzero(first)
            before = np.repeat(np.concatenate([[0], run])[starts], np.diff(np.append(starts, hot.size)))
            running = ring_flat[slot] + run - before
            saturations = int(np.count_nonzero((running > fx.WEIGHT_MAX) & (weight[hot] > 0)))
            np.minimum(total, fx.WEIGHT_MAX, out=total)
        ring_flat[:] = total
        return saturations

    def _result(self, steps: int, src_log: list[np.ndarray], fired_total: np.ndarray,
                spike_rec: dict[str, np.ndarray], probe_rec: dict[str, np.ndarray], ovf: dict[str, int],
                extra: np.ndarray | None = None, payload: dict[str, int] | None = None) -> RunResult:
        """Counters per (tick, core) from the packets logged, priced by the cost model."""
        dlv, nc = self.deliveries, self.n_cores
        lens = np.fromiter((x.size for x in src_log), dtype=np.int64, count=len(src_log))
        src = np.concatenate(src_log) if src_log else np.zeros(0, dtype=np.int64)
        step = np.repeat(np.arange(steps), lens)
        cstart, clen = dlv.cptr[src], dlv.cptr[src + 1] - dlv.cptr[src]
        pos = _ranges(cstart, clen)
        flat = np.repeat(step, clen) * nc + dlv.core[pos]

        def table(weights: np.ndarray) -> np.ndarray:
            return np.bincount(flat, weights=weights, minlength=steps * nc).astype(np.int64).reshape(steps, nc)

        received, dmas, words = table(dlv.received[pos]), table(dlv.dmas[pos]), table(dlv.words[pos])
        sent = np.zeros((steps, nc), dtype=np.int64)
        from_neurons = src < self.n_neurons
        np.add.at(sent, (step[from_neurons], self.neuron_core[src[from_neurons]]), 1)
        trav = int(dlv.traversals[src].sum())
        chips = {(int(x), int(y)) for x, y in zip(self.core["chip_x"], self.core["chip_y"])}
        chips |= {(c % self.router.w, c // self.router.w) for c in self.router.tables}
        counts = TickCounts(neurons=self.core_model_count, row_dmas=dmas, synaptic_words=words,
                            packets_received=received, packets_sent=sent, router_traversals=trav,
                            chips=len(chips), timestep_s=self.timestep_s, extra_cycles=extra,
                            payload_traversals=(payload or {}).get("traversals", 0))
        cost = self.cost_model.cost(counts)
        counters = {
            "timesteps": int(steps), "spikes": int(fired_total.sum()), "synaptic_ops": int(words.sum()),
            "synaptic_updates": 0, "cycles": cost.cycles, "time_s": cost.time_s, "energy_j": cost.energy_j,
            "packets_sent": int(src.size), "packets_received": int(received.sum()),
            "packets_dropped": int(dlv.dropped[src].sum()), "packets_default_routed": int(dlv.defaults[src].sum()),
            "router_traversals": trav, "router_entries_hit": int(dlv.hits[src].sum()),
            "mpt_misses": int(dlv.misses[src].sum()), "row_dmas": int(dmas.sum()),
            "overruns": int(cost.overruns.shape[0]),
        }
        if payload is not None and self.eprop is not None:
            counters["payload_packets_sent"] = payload["sent"]
            counters["payload_packets_received"] = payload["received"]
            counters["eprop_trials"] = self.eprop.trials_done - payload["trials_before"]
        warnings = []
        if cost.overruns.shape[0]:
            t0, c0 = (int(v) for v in cost.overruns[0])
            pops = ", ".join(self.meta["cores"][c0]["populations"]) if c0 < len(self.meta.get("cores", [])) else "?"
            warnings.append(
                f"timer-tick overrun: core ({self.core['chip_x'][c0]},{self.core['chip_y'][c0]},"
                f"{self.core['processor'][c0]}) [core {c0}: {pops}] needed {int(cost.core_cycles[t0, c0])} cycles in "
                f"tick {self.t - steps + t0}, more than the {cost.budget} of one timestep "
                f"(chip.clock_hz x timestep); {cost.overruns.shape[0]} (tick, core) overruns in all")
        per_core = {"spikes": fired_total, "synaptic_ops": words.sum(axis=0), "row_dmas": dmas.sum(axis=0),
                    "max_cycles_per_tick": cost.core_cycles.max(axis=0) if steps else np.zeros(nc, dtype=np.int64)}
        return RunResult(steps=steps, spikes=spike_rec, probes=probe_rec, counters=counters, per_core=per_core,
                         overflow=dict(ovf), warnings=warnings)
