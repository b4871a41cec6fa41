"""SpiNNaker-like backend: a quantized, partitioned, allocated IR -> binary (docs/spinnaker.md).

The binary holds what a SpiNNaker machine's SDRAM and routers hold after loading:

- per core: the IF_curr_exp host words of its neurons (the core derives the rest at load time),
  its weight shifts and ring-buffer field widths, and its **master population table**: entries
  (key, mask) sorted by key, each pointing at address-list items (row length, address);
- the **synaptic matrix**: blocks of rows, one block per (source slice, post core), each row the
  synapses of one source neuron as 32-bit words ``weight(16) | delay | type | index`` behind the
  three header words of ``synapse_row.h`` (plastic size, fixed count, plastic-control count);
- **routing keys**: each source slice (a population's slice on one core, or a chunk of an input
  port) owns the block ``key = pop << (M + X) | slice << X | neuron`` with mask ``~(2^X - 1)``;
- per chip, the **multicast router table**: (key, mask, route) entries, route bits 0-5 the links
  E, NE, N, W, SW, S and bit 6 + p processor p. Entries a packet would take by default routing
  (arrive on a link, leave on the opposite one, nothing local) are left out; a chip's table is
  compressed when it is above ``router.usable_entries`` (``router.compress``), and a table that
  still does not fit is a ResourceError naming the chip.

Routes are multicast trees on the hexagonal mesh: from the source chip to every chip with a
destination core, each path diagonal-first (NE / SW while both offsets share a sign), then the
longer remaining axis first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import __version__
from ..binary.format import Binary
from ..errors import NmcError, ResourceError
from ..formats.spinnaker import n_bits
from ..ir.network import Network
from ..lowering.spinnaker_layout import LINK_STEPS, N_LINKS, Layout, build_layout, eprop_cycles
from ..formats import spinnaker as fx
from ..formats.eprop import FEEDBACK
from ..ir.eprop import eprop_rule, is_eprop
from ..lowering.eprop_mapping import WORDS as EPROP_WORDS
from ..lowering.spinnaker_layout import row_words
from ..lowering.spinnaker_mapping import NEURON_WORDS
from ..target import Target
from .host import encoding_meta, host_probes, readout_meta

M32 = 0xFFFFFFFF
PROC_BIT0 = N_LINKS  # route bit of processor p is PROC_BIT0 + p


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeySpace:
    """Field widths of the zoned keys: population (P), slice within it (M), neuron (X)."""

    p_bits: int
    m_bits: int
    x_bits: int

    def slice_key(self, pop: np.ndarray, m: np.ndarray) -> np.ndarray:
        pop, m = np.asarray(pop, dtype=np.int64), np.asarray(m, dtype=np.int64)
        return (pop << (self.m_bits + self.x_bits)) | (m << self.x_bits)

    @property
    def slice_mask(self) -> int:
        return M32 & ~((1 << self.x_bits) - 1)


def key_space(lay: Layout, n_pops: int) -> KeySpace:
    """The narrowest fields that hold every population, slice and neuron; NmcError past 32 bits."""
    sizes = lay.src_stop - lay.src_start
    ks = KeySpace(n_bits(n_pops), n_bits(int(lay.src_m.max()) + 1 if lay.src_m.size else 1),
                  n_bits(int(sizes.max()) if sizes.size else 1))
    if ks.p_bits + ks.m_bits + ks.x_bits > 32:
        raise NmcError(f"routing keys need {ks.p_bits + ks.m_bits + ks.x_bits} bits (population {ks.p_bits}, "
                       f"slice {ks.m_bits}, neuron {ks.x_bits}), more than the 32 of a multicast key")
    return ks


# ---------------------------------------------------------------------------------------------
# Multicast trees and router tables
# ---------------------------------------------------------------------------------------------
def mesh_path(src: tuple[int, int], dst: tuple[int, int]) -> list[int]:
    """Links from ``src`` to ``dst``: diagonal while both offsets share a sign, then the longer
    remaining axis, then the other."""
    dx, dy = dst[0] - src[0], dst[1] - src[1]
    links: list[int] = []
    if dx > 0 and dy > 0:
        k = min(dx, dy)
        links += [1] * k
        dx, dy = dx - k, dy - k
    elif dx < 0 and dy < 0:
        k = min(-dx, -dy)
        links += [4] * k
        dx, dy = dx + k, dy + k
    x_links = [0 if dx > 0 else 3] * abs(dx)
    y_links = [2 if dy > 0 else 5] * abs(dy)
    return links + (x_links + y_links if abs(dx) >= abs(dy) else y_links + x_links)


def _step(chip: tuple[int, int], link: int) -> tuple[int, int]:
    sx, sy = LINK_STEPS[link]
    return chip[0] + sx, chip[1] + sy


@dataclass
class TreeNode:
    """One chip of a multicast tree: the link the packets travelled to reach it (the parent's
    outgoing link; None at the source), the links they leave on, and the processors they are
    delivered to. A packet that came along link l enters by the port opposite l."""

    in_link: int | None
    out_links: set[int] = field(default_factory=set)
    procs: set[int] = field(default_factory=set)

    @property
    def route(self) -> int:
        r = 0
        for link in self.out_links:
            r |= 1 << link
        for p in self.procs:
            r |= 1 << (PROC_BIT0 + p)
        return r

    def default_routable(self) -> bool:
        """Default routing would do the same: the packets go straight on (out by the port opposite
        the one they came in by, i.e. along the link they travelled) and nowhere else."""
        return self.in_link is not None and not self.procs and self.out_links == {self.in_link}


def multicast_tree(src: tuple[int, int], dests: dict[tuple[int, int], set[int]]) -> dict[tuple[int, int], TreeNode]:
    """The tree from chip ``src`` to every chip in ``dests`` (chip -> processors). Each chip is
    entered once: a path that meets a chip the tree already enters through another link carries
    on from there, and branches that then lead nowhere are pruned."""
    tree = {src: TreeNode(None)}
    for dst in sorted(dests):
        cur = src
        while cur != dst:
            link = mesh_path(cur, dst)[0]
            nxt = _step(cur, link)
            node = tree.get(nxt)
            if node is None:
                tree[nxt] = TreeNode(link)
                tree[cur].out_links.add(link)
            elif node.in_link == link:
                tree[cur].out_links.add(link)  # entered from cur already
            cur = nxt
        tree[dst].procs |= dests[dst]
    pruned = True
    while pruned:
        pruned = False
        for chip, node in list(tree.items()):
            if chip != src and not node.procs and not node.out_links:
                parent = _step(chip, (node.in_link + 3) % N_LINKS)
                tree[parent].out_links.discard(node.in_link)
                del tree[chip]
                pruned = True
    return tree


@dataclass
class Entry:
    """A router entry; ``group`` is the population whose keys it holds (for the merged generator)."""

    key: int
    mask: int
    route: int
    group: int


def _merge_one_bit(entries: list[Entry], same_group: bool) -> list[Entry]:
    """Merge entries with the same route (and group) whose blocks differ in one key bit, until
    none do. The merged block is exactly the union of the two, so it can capture no other key."""
    out = list(entries)
    changed = True
    while changed:
        changed = False
        index = {(e.key, e.mask, e.route, e.group if same_group else 0): e for e in out}
        used: set[int] = set()
        merged: list[Entry] = []
        for e in sorted(out, key=lambda e: (e.route, e.mask, e.key)):
            if id(e) in used:
                continue
            partner = None
            m = e.mask
            while m:
                bit = m & -m
                m ^= bit
                if e.key & bit:
                    continue
                cand = index.get((e.key | bit, e.mask, e.route, e.group if same_group else 0))
                if cand is not None and id(cand) not in used:
                    partner = (cand, bit)
                    break
            if partner is None:
                continue
            cand, bit = partner
            used.add(id(e))
            used.add(id(cand))
            merged.append(Entry(e.key & ~bit, e.mask & ~bit, e.route, e.group if same_group else -1))
            changed = True
        out = [e for e in out if id(e) not in used] + merged
    return out


def table_order(entries: list[Entry]) -> list[Entry]:
    """Entries in table order: most specific (most mask bits) first, then by key -- the order in
    which an entry may cover keys that a more specific entry before it routes otherwise."""
    return sorted(entries, key=lambda e: (-e.mask.bit_count(), e.key))


def routes_correctly(entries: list[Entry], blocks: np.ndarray, focus: Entry | None = None) -> bool:
    """Whether the ordered table sends every traffic block (rows key, mask, route; route -1: by
    default routing) where it must: the first entry that can match a key of a routed block covers
    the whole block and has its route, and no entry can match a key of a default-routed block.
    With ``focus``, only the blocks that entry can match are checked (after a merge, the others
    are routed as before)."""
    if focus is not None and blocks.size:
        blocks = blocks[((blocks[:, 0] ^ focus.key) & blocks[:, 1] & focus.mask) == 0]
    if not blocks.size:
        return True
    ek = np.array([e.key for e in entries], dtype=np.int64)
    em = np.array([e.mask for e in entries], dtype=np.int64)
    er = np.array([e.route for e in entries], dtype=np.int64)
    bk, bm, br = blocks[:, 0:1], blocks[:, 1:2], blocks[:, 2]
    meets = ((bk ^ ek[None, :]) & bm & em[None, :]) == 0          # (blocks, entries)
    hit = meets.any(axis=1)
    first = meets.argmax(axis=1)
    covers = ((bm[:, 0] & em[first]) == em[first]) & ((bk[:, 0] & em[first]) == ek[first])
    routed = br >= 0
    return bool(np.all(~hit[~routed]) and np.all(hit[routed] & covers[routed] & (er[first[routed]] == br[routed])))


def _merge_pairs(entries: list[Entry], blocks: np.ndarray) -> list[Entry]:
    """Pair compression, order-aware: within each route, neighbours in key order merge into the
    ternary entry covering both (entries it covers go), kept when the ordered table still routes
    every traffic block of the chip correctly (:func:`routes_correctly`) -- a merged entry may so
    cover keys that a more specific entry before it sends elsewhere. Repeats until a pass merges
    nothing."""
    table = table_order(entries)
    changed = True
    while changed:
        changed = False
        groups: dict[int, list[Entry]] = {}
        for e in table:
            groups.setdefault(e.route, []).append(e)
        for route in sorted(groups):
            group = sorted(groups[route], key=lambda e: e.key)
            i = 0
            while i + 1 < len(group):
                a, b = group[i], group[i + 1]
                mask = a.mask & b.mask & ~(a.key ^ b.key) & M32
                merged = Entry(a.key & mask, mask, route, -1)
                gone = {id(e) for e in group if (e.mask & mask) == mask and (e.key & mask) == merged.key}
                trial = table_order([e for e in table if id(e) not in gone] + [merged])
                if routes_correctly(trial, blocks, merged):
                    table = trial
                    group = sorted([e for e in group if id(e) not in gone] + [merged], key=lambda e: e.key)
                    changed = True
                    continue
                i += 1
    return table


@dataclass
class ChipTable:
    """A chip's router table before and after compression, and what passes through the chip."""

    entries: list[Entry]          # after the merged generator: what PACMAN calls the uncompressed table
    raw: int                      # one entry per (source block, chip), default routes left out
    traffic: list[tuple[int, int, int | None]]   # (key, mask, route or None if default routed)

    def blocks(self) -> np.ndarray:
        """The traffic as rows (key, mask, route), route -1 for default-routed blocks."""
        return np.array([(k, m, -1 if r is None else r) for k, m, r in self.traffic], dtype=np.int64).reshape(-1, 3)


Tree = dict[tuple[int, int], TreeNode]


def router_tables(trees: list[tuple[int, int, int, Tree]]) -> dict[tuple[int, int], ChipTable]:
    """Per chip: an entry per (source block, chip on its tree) that default routing does not
    cover, merged within a population where blocks differ in one key bit (the merged generator)."""
    raw: dict[tuple[int, int], list[Entry]] = {}
    traffic: dict[tuple[int, int], list[tuple[int, int, int | None]]] = {}
    for key, mask, group, tree in trees:
        for chip, node in tree.items():
            if node.default_routable():
                traffic.setdefault(chip, []).append((key, mask, None))
                continue
            raw.setdefault(chip, []).append(Entry(key, mask, node.route, group))
            traffic.setdefault(chip, []).append((key, mask, node.route))
    return {chip: ChipTable(table_order(_merge_one_bit(es, same_group=True)), len(es), traffic[chip])
            for chip, es in raw.items()}


def compress_table(table: ChipTable) -> list[Entry]:
    """The chip's entries after compression, in table order: one-bit merges across populations,
    then order-aware pair merges."""
    return _merge_pairs(_merge_one_bit(table.entries, same_group=False), table.blocks())


# ---------------------------------------------------------------------------------------------
# The binary
# ---------------------------------------------------------------------------------------------
def compile_spinnaker(net: Network, target: Target) -> Binary:
    """Lower ``net`` (after map-neurons, quantize, partition, allocate) to a SpiNNaker-like binary."""
    _check_lowered(net, target)
    lay = build_layout(net, target)
    sections: dict[str, np.ndarray] = {}
    ks = key_space(lay, len(net.populations))
    _neurons(net, lay, sections)
    _synaptic_matrix(lay, ks, target, sections)
    sends = _keys(net, lay, ks, sections)
    payload = _eprop_payload_trees(net, lay, ks, target)
    chips = _routing(net, lay, ks, sends, target, sections, payload)
    inputs = _input_ports(net, lay, ks, sections)
    eprop = _eprop(net, lay, ks, sections, target)
    outputs, probes = _outputs_and_probes(net, lay, sections)
    meta = {
        "producer": f"nmc {__version__}", "network": net.name, "seed": int(net.attrs.get("seed", 0)),
        "n_cores": int(lay.n_cores), "timestep_ms": _timestep(net, target),
        "core_models": _core_models(net, lay),
        "key_fields": {"population": ks.p_bits, "slice": ks.m_bits, "neuron": ks.x_bits},
        "host_chip": [int(v) for v in target.get("chip.host_chip")],
        "inputs": inputs, "outputs": outputs, "probes": probes, "schedule": None,
        "plastic": eprop.pop("plastic") if eprop else [], "eprop": eprop,
        "encoding": encoding_meta(net), "readout": readout_meta(net, probes),
        "populations": [{"name": p.name, "size": p.size, "model": p.model, "role": p.role,
                         "placement": p.attrs.get("placement", [])} for p in net.populations],
        "cores": net.attrs.get("cores", []), "chips": chips,
        "partition": net.attrs.get("partition"),  # the partition pass's summary (nmc inspect --placement)
    }
    return Binary(target=target.name, meta=meta, sections=sections, target_config=target.data)


def _check_lowered(net: Network, target: Target) -> None:
    if net.attrs.get("quantized") != target.name:
        raise NmcError(f"backend '{target.name}': the network is not quantized for this target "
                       "(the pass pipeline must include 'quantize')")
    if net.attrs.get("schedule") is not None:
        raise NmcError(f"target '{target.name}' has no synfire-gated learning schedules")
    if net.attrs.get("trial") is not None and not any(is_eprop(q.learning) for q in net.projections):
        raise NmcError(f"backend '{target.name}': trials without an e-prop rule")
    for pop in net.populations:
        if not pop.is_input and "placement" not in pop.attrs:
            raise NmcError(f"backend '{target.name}': population '{pop.name}' has no placement "
                           "(the pass pipeline must include 'partition')")
    for proj in net.projections:
        if proj.learning is not None and not is_eprop(proj.learning):
            raise NmcError(f"target '{target.name}' has no on-chip learning engine for sum-of-products rules",
                           location=f"projection '{proj.name}'")


def _timestep(net: Network, target: Target) -> float:
    dt = net.attrs.get("dt")
    return float(dt) if dt is not None else float(target.get("timing.timestep_ms"))


def _neurons(net: Network, lay: Layout, sections: dict[str, np.ndarray]) -> None:
    """Host words of every neuron (global order) and each core's population words and fields."""
    n = int(lay.core_offset[-1])
    words = {k: np.zeros(n, dtype=np.int32) for k in NEURON_WORDS}
    ep_keys = sorted({k for ws in EPROP_WORDS.values() for k in ws})
    ep_words = {k: np.zeros(n, dtype=np.int32) for k in ep_keys}
    step = np.zeros(lay.n_cores, dtype=np.int32)
    for pop in net.populations:
        if pop.is_input:
            continue
        gid = lay.pop_gid[pop.name]
        if pop.model in EPROP_WORDS:
            for k in EPROP_WORDS[pop.model]:
                ep_words[k][gid] = pop.param_array(k).astype(np.int64)
        else:
            for k in NEURON_WORDS:
                words[k][gid] = pop.param_array(k).astype(np.int64)
        cores = np.searchsorted(lay.core_offset, gid, side="right") - 1
        step[cores] = int(pop.params["time_step"])
    for k, v in words.items():
        sections[f"nrn_{k}"] = v
    if any(p.model in EPROP_WORDS for p in net.populations):
        for k, v in ep_words.items():
            sections[f"nrn_ep_{k}"] = v
    sections.update({
        "core_neuron_offset": lay.core_offset.astype(np.int64),
        "core_time_step": step,
        "core_shift_exc": lay.core_shifts[:, 0].astype(np.uint8),
        "core_shift_inh": lay.core_shifts[:, 1].astype(np.uint8),
        "core_index_bits": lay.core_index_bits.astype(np.uint8),
        "core_type_bits": np.full(lay.n_cores, lay.type_bits, dtype=np.uint8),
        "core_delay_bits": lay.core_delay_bits.astype(np.uint8),
        "core_chip_x": np.array([lay.chips[c][0] for c in lay.core_chip], dtype=np.uint16),
        "core_chip_y": np.array([lay.chips[c][1] for c in lay.core_chip], dtype=np.uint16),
        "core_processor": lay.core_proc.astype(np.uint8),
    })


def _synaptic_matrix(lay: Layout, ks: KeySpace, target: Target, sections: dict[str, np.ndarray]) -> None:
    """Rows in SDRAM (one block per (source slice, post core), blocks aligned to 16 bytes) and
    each core's master population table and address list.

    A row (``synapse_row.h``) is ``[P, plastic region (P words), F, Q, F fixed words, ceil(Q/2)
    control words]``: the plastic region holds one word per plastic synapse, its signed 16-bit
    weight in the top half and a fraction of a weight step (0 at load) in the low half, so that
    e-prop's small steps accumulate; the control halfwords hold its delay | type | index; P is the
    block's longest plastic part, so every row of a block has the same stride."""
    header = int(target.get("sdram.row_header_words"))
    n_src = lay.src_stop[lay.blk_src] - lay.src_start[lay.blk_src]
    p_words = lay.blk_plastic_len
    stride = row_words(lay.blk_fixed_len, lay.blk_plastic_len, header)
    size = n_src * stride
    size_aligned = (size + 3) // 4 * 4
    base = np.concatenate([[0], np.cumsum(size_aligned)]).astype(np.int64)
    words = np.zeros(int(base[-1]), dtype=np.uint32)
    blk_of_syn = np.repeat(np.arange(lay.blk_first.size), np.diff(np.append(lay.blk_first, lay.syn_src.size)))
    row_start = base[blk_of_syn] + lay.syn_local_src * stride[blk_of_syn]
    pw = p_words[blk_of_syn]
    # Every row of a block: its plastic-region size P.
    rows_all = _row_starts(base, n_src, stride)
    words[rows_all[0]] = np.repeat(p_words, n_src)
    # Rank of each synapse within its row's fixed and plastic parts (synapses are sorted by row).
    new_row = np.ones(row_start.size, dtype=bool)
    new_row[1:] = row_start[1:] != row_start[:-1]
    row_idx = np.cumsum(new_row) - 1
    plastic = lay.syn_plastic
    first = np.flatnonzero(new_row)
    n_fixed = np.bincount(row_idx, weights=~plastic, minlength=first.size).astype(np.int64)
    n_plastic = np.bincount(row_idx, weights=plastic, minlength=first.size).astype(np.int64)
    cum_fixed = np.cumsum(~plastic) - ~plastic
    cum_plastic = np.cumsum(plastic) - plastic
    rank_f = cum_fixed - cum_fixed[first][row_idx]
    rank_p = cum_plastic - cum_plastic[first][row_idx]
    fixed_at = row_start[first] + 1 + pw[first]            # F, then Q, then the fixed words
    words[fixed_at] = n_fixed
    words[fixed_at + 1] = n_plastic
    fixed_at, n_fixed_syn = fixed_at[row_idx], n_fixed[row_idx]
    # Synaptic words: weight | delay | type | index, fields per post core.
    core = lay.syn_core
    ib = lay.core_index_bits[core]
    db = lay.core_delay_bits[core]
    syn_type = (lay.syn_word < 0).astype(np.int64)
    delay_field = lay.syn_delay & ((1 << db) - 1)
    control = (delay_field << (ib + lay.type_bits)) | (syn_type << ib) | lay.syn_local
    fx_sel = ~plastic
    word = ((np.abs(lay.syn_word) & 0xFFFF) << 16) | control
    words[(fixed_at + 2 + rank_f)[fx_sel]] = word[fx_sel].astype(np.uint32)
    # Plastic synapses: the signed weight in the top half of its plastic-region word, the control
    # halfword after the fixed words (type 0: the core takes the type from the weight's sign at
    # each delivery).
    ctl = control & ~(1 << ib)
    half_w = 2 * (row_start + 1 + rank_p) + 1              # halfword addresses (little-endian: top half)
    half_c = 2 * (fixed_at + 2 + n_fixed_syn) + rank_p
    halves = words.view(np.uint16)  # little-endian halfwords of the image: the low half comes first
    halves[half_w[plastic]] = (lay.syn_word[plastic] & 0xFFFF).astype(np.uint16)
    halves[half_c[plastic]] = ctl[plastic].astype(np.uint16)
    sections["sdram_words"] = words
    sections["ep_syn_half"] = half_w[plastic].astype(np.int64)
    # Master population tables: per core, entries sorted by key, one address-list item each.
    keys = ks.slice_key(lay.src_pop[lay.blk_src], lay.src_m[lay.blk_src])
    order = np.lexsort((keys, lay.blk_core))
    sections.update({
        "mpt_offset": np.concatenate([[0], np.cumsum(np.bincount(lay.blk_core, minlength=lay.n_cores))]
                                     ).astype(np.int64),
        "mpt_key": keys[order].astype(np.uint32),
        "mpt_mask": np.full(order.size, ks.slice_mask, dtype=np.uint32),
        "mpt_n_neurons": n_src[order].astype(np.uint16),
        "mpt_addr_start": np.arange(order.size, dtype=np.uint32),
        "mpt_addr_count": np.ones(order.size, dtype=np.uint16),
        "addr_row_length": (stride - header)[order].astype(np.uint16),
        "addr_address": base[:-1][order].astype(np.uint32),
    })


def _row_starts(base: np.ndarray, n_src: np.ndarray, stride: np.ndarray) -> tuple[np.ndarray]:
    """The first word of every row of every block."""
    blk = np.repeat(np.arange(n_src.size), n_src)
    first = np.cumsum(n_src) - n_src
    local = np.arange(int(n_src.sum())) - np.repeat(first, n_src)
    return (base[:-1][blk] + local * stride[blk],)


def _keys(net: Network, lay: Layout, ks: KeySpace, sections: dict[str, np.ndarray]) -> np.ndarray:
    """The key each neuron sends, and whether it sends at all (a slice with no synapses anywhere
    has no key, as in sPyNNaker). Returns which source slices send."""
    sends = np.zeros(lay.src_pop.size, dtype=bool)
    sends[np.unique(lay.blk_src)] = True
    n = int(lay.core_offset[-1])
    key = np.zeros(n, dtype=np.uint32)
    has = np.zeros(n, dtype=np.uint8)
    base = ks.slice_key(lay.src_pop, lay.src_m)
    for s in np.flatnonzero(lay.src_core >= 0).tolist():
        pop = net.populations[int(lay.src_pop[s])]
        a, b = int(lay.src_start[s]), int(lay.src_stop[s])
        gid = lay.pop_gid[pop.name][a:b]
        key[gid] = (base[s] | np.arange(b - a)).astype(np.uint32)
        has[gid] = sends[s]
    sections["nrn_key"] = key
    sections["nrn_sends"] = has
    return sends


def _routing(net: Network, lay: Layout, ks: KeySpace, sends: np.ndarray, target: Target,
             sections: dict[str, np.ndarray], payload: list[tuple[int, dict[tuple[int, int], set[int]], bool]]
             ) -> list[dict[str, Any]]:
    """Multicast trees of every sending slice, the chips' router tables (compressed as the target
    says), and the per-chip report rows."""
    host = tuple(int(v) for v in target.get("chip.host_chip"))
    w = int(target.get("chip.mesh")[0])
    trees = []
    keys = ks.slice_key(lay.src_pop, lay.src_m)
    blk_order = np.argsort(lay.blk_src, kind="stable")
    blk_starts = np.searchsorted(lay.blk_src[blk_order], np.arange(lay.src_pop.size + 1))
    for s in np.flatnonzero(sends).tolist():
        cores = lay.blk_core[blk_order[blk_starts[s]:blk_starts[s + 1]]]
        dests: dict[tuple[int, int], set[int]] = {}
        for c in np.unique(cores).tolist():
            dests.setdefault(lay.chips[int(lay.core_chip[c])], set()).add(int(lay.core_proc[c]))
        src_chip = host if lay.src_core[s] < 0 else lay.chips[int(lay.core_chip[int(lay.src_core[s])])]
        trees.append((int(keys[s]), ks.slice_mask, int(lay.src_pop[s]), multicast_tree(src_chip, dests)))
    # Payload packets of e-prop: learning signals from the readout core, targets from the host.
    for s, dests, from_host in payload:
        src_chip = host if from_host else lay.chips[int(lay.core_chip[int(lay.src_core[s])])]
        trees.append((int(keys[s]), ks.slice_mask, int(lay.src_pop[s]), multicast_tree(src_chip, dests)))
    tables = router_tables(trees)
    usable = int(target.get("router.usable_entries"))
    always = str(target.get("router.compress")) == "always"
    final: dict[tuple[int, int], list[Entry]] = {}
    compressed: dict[tuple[int, int], int] = {}
    for chip, table in sorted(tables.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        entries = table.entries
        small = compress_table(table)  # reported either way: what compression gives
        compressed[chip] = len(small)
        if always or len(entries) > usable:
            entries = small
        if len(entries) > usable:
            raise ResourceError(f"the multicast routing table needs {len(entries)} entries after compression "
                                f"({len(table.entries)} before), exceeded max (router.usable_entries = {usable}) by "
                                f"{len(entries) - usable}; routes this varied do not compress: place connected "
                                "populations on fewer chips or reduce the number of distinct targets per source",
                                location=f"chip ({chip[0]}, {chip[1]})")
        final[chip] = entries
    chip_ids = [y * w + x for (x, y) in final]
    counts = [len(e) for e in final.values()]
    flat = [e for es in final.values() for e in es]
    sections.update({
        "rt_chip": np.array(chip_ids, dtype=np.uint16),
        "rt_offset": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "rt_key": np.array([e.key for e in flat], dtype=np.uint32),
        "rt_mask": np.array([e.mask for e in flat], dtype=np.uint32),
        "rt_route": np.array([e.route for e in flat], dtype=np.uint32),
    })
    # Per-chip report: cores, SDRAM, router entries (chips with neurons and chips only routing).
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    for c in range(lay.n_cores):
        xy = lay.chips[int(lay.core_chip[c])]
        row = rows.setdefault(xy, {"chip": f"{xy[0]},{xy[1]}", "cores": 0, "sdram_bytes": 0})
        row["cores"] += 1
        row["sdram_bytes"] += int(lay.core_sdram[c])
    for xy in final:
        row = rows.setdefault(xy, {"chip": f"{xy[0]},{xy[1]}", "cores": 0, "sdram_bytes": 0})
    for xy, row in rows.items():
        row["router_entries"] = len(final.get(xy, []))
        row["router_entries_uncompressed"] = len(tables[xy].entries) if xy in tables else 0
        row["router_entries_compressed"] = compressed.get(xy, 0)
        row["router_entries_raw"] = tables[xy].raw if xy in tables else 0
    return [rows[xy] for xy in sorted(rows, key=lambda c: (c[1], c[0]))]


def _core_models(net: Network, lay: Layout) -> list[str]:
    """The neuron model each core runs (one model per core: e-prop populations have cores of their own)."""
    models = ["if_curr_exp"] * int(lay.n_cores)
    for c, names in enumerate(lay.core_pops):
        kinds = {net.population(n).model for n in names}
        if len(kinds) > 1:
            raise NmcError(f"core {c} holds populations of models {', '.join(sorted(kinds))}; a core runs one model")
        if kinds:
            models[c] = kinds.pop()
    return models


def _scored(net: Network) -> tuple[str, str] | None:
    score = (net.attrs.get("trial") or {}).get("score")
    return (score["population"], score["target"]) if score else None


def _eprop_payload_trees(net: Network, lay: Layout, ks: KeySpace,
                         target: Target) -> list[tuple[int, dict[tuple[int, int], set[int]], bool]]:
    """Multicast trees of e-prop's payload packets: (source slice, destinations, from the host).
    The scored readout's slice sends its errors to every core with learning e-prop neurons; the
    target port's slices reach the readout's core."""
    scored = _scored(net)
    if scored is None:
        return []
    index = {p.name: i for i, p in enumerate(net.populations)}
    learners = [c for c, e in enumerate(lay.core_eprop) if e is not None and e.kind != "readout"]
    out_slices = np.flatnonzero(lay.src_pop == index[scored[0]])
    out_core = int(lay.src_core[out_slices[0]])
    trees = []

    def dests(cores: list[int]) -> dict[tuple[int, int], set[int]]:
        d: dict[tuple[int, int], set[int]] = {}
        for c in cores:
            d.setdefault(lay.chips[int(lay.core_chip[c])], set()).add(int(lay.core_proc[c]))
        return d

    if learners:
        trees += [(int(s), dests(learners), False) for s in out_slices.tolist()]
    trees += [(int(s), dests([out_core]), True) for s in np.flatnonzero(lay.src_pop == index[scored[1]]).tolist()]
    return trees


def _eprop(net: Network, lay: Layout, ks: KeySpace, sections: dict[str, np.ndarray],
           target: Target) -> dict[str, Any] | None:
    """The e-prop tables: each core's kind, the keys of its state matrix's source columns, the
    learning-signal and target tables of payload keys, the feedback weights, the per-trial words, and
    where each plastic synapse's weight lies (for the host to read learned weights back)."""
    rules = [eprop_rule(q.learning, q.name) for q in net.projections if is_eprop(q.learning)]
    scored = _scored(net)
    if not rules or scored is None:
        return None
    rule = rules[0]
    trial = net.attrs["trial"]
    dt = float(net.attrs["dt"])
    index = {p.name: i for i, p in enumerate(net.populations)}
    out_pop, tgt_pop = net.population(scored[0]), net.population(scored[1])
    n_out = out_pop.size
    kinds = {"adaptive": 1, "lif": 2, "readout": 3}
    core_kind = np.array([kinds[e.kind] if e is not None else 0 for e in lay.core_eprop], dtype=np.uint8)
    base = ks.slice_key(lay.src_pop, lay.src_m)
    # State-matrix columns: per core, the neurons of its plastic source slices in key order.
    plastic_blk = lay.blk_plastic_len > 0
    src_keys, src_off = [], [0]
    for c in range(lay.n_cores):
        sl = np.unique(lay.blk_src[plastic_blk & (lay.blk_core == c)]) if core_kind[c] else np.zeros(0, np.int64)
        sl = sl[np.argsort(base[sl], kind="stable")]
        k = [base[s] | np.arange(lay.src_stop[s] - lay.src_start[s]) for s in sl.tolist()]
        src_keys.append(np.concatenate(k) if k else np.zeros(0, dtype=np.int64))
        src_off.append(src_off[-1] + src_keys[-1].size)
    # Payload tables: learning-signal keys on learning cores, target keys on the readout core.
    out_slices = np.flatnonzero(lay.src_pop == index[out_pop.name])
    tgt_slices = np.flatnonzero(lay.src_pop == index[tgt_pop.name])
    out_core = int(lay.src_core[out_slices[0]])
    ls = [(int(base[s]), int(lay.src_start[s])) for s in out_slices.tolist()]
    tg = [(int(base[s]), int(lay.src_start[s])) for s in tgt_slices.tolist()]
    ls_off, tg_off = [0], [0]
    ls_rows, tg_rows = [], []
    for c in range(lay.n_cores):
        if core_kind[c] in (1, 2):
            ls_rows += ls
        if c == out_core:
            tg_rows += tg
        ls_off.append(len(ls_rows))
        tg_off.append(len(tg_rows))
    # Fixed random feedback weights B ~ N(0, 1) (Bellec et al.'s random e-prop), drawn per learning
    # population in network order from the rule's seed.
    n = int(lay.core_offset[-1])
    fb = np.zeros((n, n_out), dtype=np.int16)
    rng = np.random.default_rng(int(rule["feedback_seed"]))
    learning = sorted({q.post for q in net.projections if is_eprop(q.learning) and q.post != out_pop.name},
                      key=index.get)
    for name in learning:
        b = rng.standard_normal((net.population(name).size, n_out))
        fb[lay.pop_gid[name]] = FEEDBACK.store(fx.s1615(np.clip(b, -7.9, 7.9), "feedback weight"))[0]
    ticks = int(round(float(trial["duration"]) / dt))
    start = int(round(float(trial["score"]["from"]) / dt))
    # ebar is the readout-filtered e; the learning signal reaches it only from the scored window on,
    # and what e was 7 readout time constants before that is forgotten to 0.1 %: the cores filter e
    # from there (docs/eprop.md, section 2), and before it only the adaptation traces run.
    tau_out = float(np.max(np.asarray(out_pop.attrs.get("mapped", {}).get("params", {}).get("tau_m", 20.0))))
    ebar_from = max(0, start - int(np.ceil(7.0 * tau_out / dt)))
    sections.update({
        "core_eprop": core_kind,
        "ep_src_offset": np.asarray(src_off, dtype=np.int64),
        "ep_src_key": np.concatenate(src_keys).astype(np.uint32) if src_keys else np.zeros(0, np.uint32),
        "ep_ls_offset": np.asarray(ls_off, dtype=np.int64),
        "ep_ls_key": np.array([k for k, _ in ls_rows], dtype=np.uint32),
        "ep_ls_base": np.array([b for _, b in ls_rows], dtype=np.uint16),
        "ep_tg_offset": np.asarray(tg_off, dtype=np.int64),
        "ep_tg_key": np.array([k for k, _ in tg_rows], dtype=np.uint32),
        "ep_tg_base": np.array([b for _, b in tg_rows], dtype=np.uint16),
        "nrn_ep_fb": fb.reshape(-1),
        "ep_syn_proj": lay.syn_proj[lay.syn_plastic].astype(np.int32),
        "ep_syn_pre": lay.syn_pre[lay.syn_plastic].astype(np.int32),
        "ep_syn_post": lay.syn_post[lay.syn_plastic].astype(np.int32),
    })
    projs = net.projections
    # Each plastic projection's weight format, as every host reads it (nmc/binary/meta.py): signed
    # 16-bit words on a grid of 1 (nothing dropped), scaled by 2^shift into the ring buffer, where
    # the shift is the post population's (eprop_mapping: one shift for both signs).
    plastic = [{"name": projs[i].name, "index": i, "pre": projs[i].pre, "post": projs[i].post,
                "n_pre": net.population(projs[i].pre).size, "n_post": net.population(projs[i].post).size,
                "format": {"exponent": int(net.population(projs[i].post).params["shift"]), "drop": 0,
                           "lo": -(1 << 15), "hi": (1 << 15) - 1}}
               for i in sorted(set(lay.syn_proj[lay.syn_plastic].tolist()))]
    # Host-computed words of the trial (raw s16.15 unless noted; docs/eprop.md).
    extra = {"adam_ticks": _adam_ticks(lay, target, ticks, ebar_from, dt)} if rule["update"] == "adam" else {}
    return {**extra,
        "trial_ticks": ticks, "batch": int(trial["batch"]), "window_from": start, "ebar_from": ebar_from,
        "loss": rule["loss"],
        "update": rule["update"],
        "score": out_pop.name, "target": tgt_pop.name, "n_out": n_out, "mask": ks.slice_mask,
        "gamma": int(fx.s1615(rule["gamma"], "gamma")),
        "rate_target": int(fx.s1615(rule["rate_target"], "rate_target")),
        "rate_reg": int(fx.s1615(rule["rate_reg"] * 1000.0 / dt, "rate_reg x 1000 / dt")),
        "rate_scale": int(fx.s1615(1000.0 / (ticks * dt), "1000 / trial")),
        "inv_ticks": int(min((1 << 32) - 1, round(2 ** 32 / ticks))),
        "plastic": plastic,
    }


def _adam_ticks(lay: Layout, target: Target, ticks: int, ebar_from: int, dt: float) -> int:
    """The ticks Adam's update is spread over (docs/eprop.md §8): the fewest K such that on every
    e-prop core a K-th of its update -- each synapse's moments and weight, a moment DMA and a
    weight write-back per column -- fits beside the core's own work in the first K ticks of a trial
    within ``eprop.max_load`` of the tick (the rest stays for packets, as the partitioner leaves it).
    The own work there: the neurons, the sources and the larger of the regulariser (tick 0) and the
    adaptation traces that run before ``ebar_from``; the whole trace loop once K reaches it."""
    cyc = target.get("cost.cycles")
    limit = float(target.get("eprop.max_load")) * float(target.get("chip.clock_hz")) * dt * 1e-3
    k = 1
    for c, e in enumerate(lay.core_eprop):
        if e is None:
            continue
        n = int(lay.core_offset[c + 1] - lay.core_offset[c])
        work = n * e.sources * float(cyc["eprop_adam_synapse"]) + 2 * e.sources * float(cyc["eprop_row_writeback"])
        neuron = cyc["neuron_eprop_li"] if e.kind == "readout" else cyc["neuron_eprop_alif"]
        early = cyc["eprop_synapse_adaptive"] - cyc["eprop_synapse"] if e.kind == "adaptive" else 0
        before = (cyc["timer_tick"] + n * neuron + e.sources * cyc["eprop_source"]
                  + n * e.sources * max(cyc["eprop_trial_synapse"], early))
        need = np.ceil(work / (limit - before)) if limit > before else np.inf
        if need > ebar_from:            # the update reaches the ticks of the whole trace loop
            full = eprop_cycles(target, n, e)
            need = max(need, np.ceil(work / (limit - full)) if limit > full else np.inf)
        if need > ticks:
            spread = f"needs {int(need)} ticks" if np.isfinite(need) else "finds no room in a tick"
            raise ResourceError(f"Adam's weight update on core {c} ({n} neurons x {e.sources} sources) {spread} "
                                f"beside the core's own work within eprop.max_load, more than the trial's {ticks}; "
                                "lengthen the trial or place fewer synapses per core")
        k = max(k, int(need))
    return k


def _input_ports(net: Network, lay: Layout, ks: KeySpace, sections: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per input port, the key of each unit (the host injects them at the host chip)."""
    inputs = []
    base = ks.slice_key(lay.src_pop, lay.src_m)
    for pi, pop in enumerate(net.populations):
        if not pop.is_input:
            continue
        key = np.zeros(pop.size, dtype=np.uint32)
        for s in np.flatnonzero(lay.src_pop == pi).tolist():
            a, b = int(lay.src_start[s]), int(lay.src_stop[s])
            key[a:b] = base[s] | np.arange(b - a)
        name = f"in{len(inputs)}"
        sections[f"{name}_key"] = key
        inputs.append({"name": pop.name, "size": pop.size, "section": name})
    return inputs


def _outputs_and_probes(net: Network, lay: Layout, sections: dict[str, np.ndarray]) -> tuple[list[dict[str, Any]],
                                                                                             list[dict[str, Any]]]:
    """The output populations (their spikes every run reads back) and the probes: the network's
    plus the v probe a converted network's readout needs (nmc.backend.host)."""
    outputs = []
    for pop in net.populations:
        if pop.role == "output" and not pop.is_input:
            key = f"out{len(outputs)}"
            sections[f"{key}_nrn"] = lay.pop_gid[pop.name]
            outputs.append({"name": pop.name, "size": pop.size, "section": key})
    probes = []
    for pr in host_probes(net):
        pop = net.population(pr.population)
        key = f"probe{len(probes)}"
        if pop.is_input:
            sections[f"{key}_nrn"] = np.arange(pop.size, dtype=np.int64)
            source = "input"
        else:
            sections[f"{key}_nrn"] = lay.pop_gid[pop.name]
            source = "neuron"
        probes.append({"name": pr.name, "population": pr.population, "variable": pr.variable,
                       "section": key, "source": source})
    return outputs, probes
