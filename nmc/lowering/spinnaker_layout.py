"""The ``layout`` part of the SpiNNaker-like target: what a core and a chip hold.

- :class:`ResourceModel` counts, for the generic partitioner, what slices of neurons need on one
  core: neurons (``core.max_neurons``), ring-buffer bits (``core.max_ring_buffer_bits``: index +
  type + delay bits), the longest synaptic row (``core.max_row_length`` synapses of one source
  neuron on one core), one (exc, inh) weight-shift pair per core, and DTCM (``chip.dtcm_bytes``):
  exactly and incrementally (``demand``/``violation``/``commit``), and as a packing view that
  adds up (``resources``/``vector``/``shared_cost``/``sources``), with SDRAM and router entries
  per chip;
- :func:`build_layout` lays out a partitioned network: neurons on cores, cores on chips (by the
  partition's core ids, chip by chip in order of hex distance from the host chip), source slices
  (the key blocks of routing), every synapse with its post core, and the DTCM and SDRAM of each
  core. ``allocate`` checks it; the backend encodes it;
- :class:`SpiNNakerLayoutModel` is the part the target file names; :class:`SpiNNakerGeometry`
  places core ids on the chip mesh for the partitioner, as the layout does.

DTCM of a core (docs/spinnaker.md, "Resources")::

    dtcm = base + n * neuron_bytes + 2^(index_bits + type_bits + delay_bits) * 2
           + mpt_entries * (mpt_entry_bytes + address_item_bytes)
           + spike_buffer_packets * 4 + row_buffers * (max_row_length + 3) * 4
    index_bits = get_n_bits(n), type_bits = get_n_bits(2) = 1, delay_bits = get_n_bits(max delay)

SDRAM of a core: its synaptic blocks, each n_source_neurons x (longest row + 3) words, plus
``sdram.core_fixed_bytes``. A chip holds at most ``chip.cores`` cores and ``chip.sdram_bytes``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Hashable

import numpy as np

from ..errors import IrError, ResourceError
from ..ir.eprop import is_eprop
from ..formats.spinnaker import n_bits, stable_order
from ..ir.network import Network, Population
from ..target import Target
from . import DemandVector, Resource
from .common import SizeLimit, resource_message
from .loihi_layout import placement_slices

#: Hex mesh links in SpiNNaker's numbering: 0 E, 1 NE, 2 N, 3 W, 4 SW, 5 S; the opposite of l is l + 3.
LINK_STEPS = ((1, 0), (1, 1), (0, 1), (-1, 0), (-1, -1), (0, -1))
N_LINKS = 6
#: Processor of application core k on a chip (processor 0 runs the monitor).
FIRST_APP_PROCESSOR = 1


def hex_distance(ax: int, ay: int, bx: int, by: int) -> int:
    """Hops between two chips of the hexagonal mesh (diagonal NE/SW links count one)."""
    dx, dy = bx - ax, by - ay
    return max(abs(dx), abs(dy)) if dx * dy > 0 else abs(dx) + abs(dy)


def chip_order(target: Target) -> list[tuple[int, int]]:
    """Chips in the order the placer fills them: from the host chip, each next chip the one with
    the least summed hex distance to the chips already chosen (ties: nearer the host, then y, x),
    so that the first few form a tight cluster (three chips: a triangle of direct links)."""
    w, h = (int(v) for v in target.get("chip.mesh"))
    host = tuple(int(v) for v in target.get("chip.host_chip"))
    left = [(x, y) for y in range(h) for x in range(w) if (x, y) != host]
    order = [host]
    total = {c: hex_distance(*host, *c) for c in left}
    while left:
        best = min(left, key=lambda c: (total[c], hex_distance(*host, *c), c[1], c[0]))
        left.remove(best)
        order.append(best)
        for c in left:
            total[c] += hex_distance(*best, *c)
    return order


def ring_bits(n_neurons: int, max_delay: int, types: int) -> tuple[int, int, int]:
    """(index_bits, type_bits, delay_bits) of a core's ring buffer (sPyNNaker 7.x: index bits for
    the core's neurons, delay bits for its longest delay)."""
    return n_bits(n_neurons), n_bits(types), n_bits(max_delay)


#: The register-level models of e-prop cores (map-neurons lowers alif and li to them).
EPROP_MODELS = ("eprop_alif", "eprop_li")

class _Budget:
    """The target's DTCM figures, read once."""

    def __init__(self, target: Target) -> None:
        g = target.get
        self.limit = int(g("chip.dtcm_bytes"))
        self.base = int(g("dtcm.base_bytes"))
        self.neuron = int(g("dtcm.neuron_bytes"))
        self.ring_entry = int(g("dtcm.ring_entry_bytes"))
        self.mpt = int(g("dtcm.mpt_entry_bytes")) + int(g("dtcm.address_item_bytes"))
        self.fixed = (int(g("core.spike_buffer_packets")) * int(g("dtcm.packet_bytes"))
                      + int(g("dtcm.row_buffers")) * 4
                      * (int(g("core.max_row_length")) + int(g("sdram.row_header_words"))))
        self.types = int(g("core.synapse_types"))
        self.ep_neuron = int(g("dtcm.eprop_neuron_bytes"))
        self.ep_syn = {"adaptive": int(g("dtcm.eprop_synapse_bytes")), "lif": int(g("dtcm.eprop_synapse_bytes_lif")),
                       "readout": int(g("dtcm.eprop_readout_synapse_bytes"))}
        self.ep_source = int(g("dtcm.eprop_source_bytes"))
        self.ep_fb = int(g("dtcm.eprop_feedback_bytes"))
        self.ep_adam = (int(g("dtcm.eprop_adam_bytes")), int(g("dtcm.eprop_adam_neuron_bytes")))

    def dtcm(self, n: int, max_delay: int, mpt_entries: int, eprop: "EpropCore | None" = None) -> int:
        ib, tb, db = ring_bits(n, max_delay, self.types)
        return (self.base + n * self.neuron + (1 << (ib + tb + db)) * self.ring_entry + mpt_entries * self.mpt
                + self.fixed + (self.eprop(n, eprop) if eprop is not None else 0))

    def eprop(self, n: int, core: "EpropCore") -> int:
        """DTCM of a core's e-prop state (docs/eprop.md, "Per-synapse state"): per neuron its state and
        feedback weights, per source its trace, per (neuron, source) slot the synapse state."""
        fb = core.n_out * self.ep_fb if core.kind != "readout" else 0
        adam = self.ep_adam[0] + n * self.ep_adam[1] if core.adam else 0
        return (n * (self.ep_neuron + fb) + core.sources * self.ep_source + n * core.sources * self.ep_syn[core.kind]
                + adam)


@dataclass(frozen=True)
class EpropCore:
    """What sizes a core's e-prop state: its kind ("adaptive", "lif": ALIF neurons with / without
    adaptation; "readout"), the presynaptic sources of its plastic synapses (the columns of its dense
    state matrix) and the units of the scored readout (the feedback weights per neuron)."""

    kind: str
    sources: int
    n_out: int
    adam: bool = False         # update = adam: a 1/sqrt table and a column buffer in DTCM, moments in SDRAM


def eprop_cycles(target: Target, n: int, core: EpropCore) -> int:
    """The per-tick cycles of an e-prop core's own work (neurons, sources, synapse state), without
    packets: what the partitioner keeps under ``eprop.max_load`` of the timer period."""
    c = target.get("cost.cycles")
    neuron = c["neuron_eprop_li"] if core.kind == "readout" else c["neuron_eprop_alif"]
    syn = {"adaptive": c["eprop_synapse_adaptive"], "lif": c["eprop_synapse"],
           "readout": c["eprop_readout_synapse"]}[core.kind]
    return int(c["timer_tick"] + n * neuron + core.sources * c["eprop_source"] + n * core.sources * syn)


def eprop_cores(net: Network) -> dict[str, EpropCore]:
    """The e-prop state of each e-prop population's cores, from the IR (after map-neurons): the sources
    of its plastic projections (all neurons of their pre populations: the state matrix is dense), its
    kind, and the scored readout's units."""
    trial = net.attrs.get("trial") or {}
    score = trial.get("score") or {}
    names = {p.name for p in net.populations}
    n_out = net.population(score["population"]).size if score.get("population") in names else 0
    out: dict[str, EpropCore] = {}
    for pop in net.populations:
        if pop.model not in EPROP_MODELS:
            continue
        sources = sum(net.population(q.pre).size for q in net.projections
                      if q.post == pop.name and is_eprop(q.learning))
        if pop.model == "eprop_li":
            kind = "readout"
        else:
            kind = "adaptive" if np.any(np.asarray(pop.param_array("beta")) != 0) else "lif"
        adam = any(q.learning.get("update") == "adam" for q in net.projections
                   if q.post == pop.name and is_eprop(q.learning))
        out[pop.name] = EpropCore(kind, sources, n_out, adam)
    return out


def synapse_delay(ir_delay: int) -> int:
    """The chip's delay (ticks) of an IR delay: a spike of step t reaches the current of step
    t + 1 + delay on every nmc target, and on this chip at tick t + d (docs/spinnaker.md)."""
    return int(ir_delay) + 1


# ---------------------------------------------------------------------------------------------
# Resource model for the partitioner
# ---------------------------------------------------------------------------------------------
@dataclass
class Demand:
    """What neurons start..stop-1 of one population need on a core. ``rows`` maps a source
    population index to the synapses each of its neurons has onto these neurons (an int when the
    same for all of them)."""

    neurons: int
    shifts: tuple[int, int]
    max_delay: int
    rows: dict[int, int | np.ndarray]
    mpt: dict[int, int]           # source population index -> key blocks it may need (estimate)
    pop: int = -1                 # index of the slice's own population (the packing view's router entries)
    pop_name: str = ""
    eprop: EpropCore | None = None  # an e-prop population: it takes cores of its own


@dataclass
class CoreUsage:
    """What is already on one core."""

    neurons: int = 0
    shifts: tuple[int, int] | None = None
    max_delay: int = 0
    rows: dict[int, int | np.ndarray] = field(default_factory=dict)
    mpt: dict[int, int] = field(default_factory=dict)
    pops: set[str] = field(default_factory=set)
    eprop: EpropCore | None = None


def _row_add(a: int | np.ndarray | None, b: int | np.ndarray) -> int | np.ndarray:
    return b if a is None else a + b


def _row_max(x: int | np.ndarray) -> int:
    return int(x) if isinstance(x, (int, np.integer)) else int(np.max(x, initial=0))


class ResourceModel:
    """Per-core resource counts of candidate slices (see the module docstring)."""

    def __init__(self, net: Network, target: Target) -> None:
        self.target = target
        self.budget = _Budget(target)
        self.max_neurons_per_core = int(target.get("core.max_neurons"))
        self.max_ring_bits = int(target.get("core.max_ring_buffer_bits"))
        self.max_row = int(target.get("core.max_row_length"))
        pops = net.populations
        index = {p.name: i for i, p in enumerate(pops)}
        self.sizes = [p.size for p in pops]
        # Incoming projections of each population: (source index, connectivity, delay, post-sorted table).
        self.fan_in: dict[str, list[tuple[int, str, int, tuple[np.ndarray, np.ndarray] | None]]] = {
            p.name: [] for p in pops}
        for proj in net.projections:
            table = None
            if proj.connectivity == "sparse":
                post = np.asarray(proj.post_index, dtype=np.int64)
                order = stable_order(post)
                table = (post[order], np.asarray(proj.pre_index, dtype=np.int64)[order])
            self.fan_in[proj.post].append((index[proj.pre], proj.connectivity, synapse_delay(proj.delay), table))
        # Key blocks a source population may need on a core: its slices; a neuron population's
        # partition is not known yet, so one more than the fewest (and never more than its size).
        self.blocks = [min(s, -(-s // self.max_neurons_per_core) + (0 if p.is_input else 1))
                       for s, p in zip(self.sizes, pops)]
        self.eprop = eprop_cores(net)
        self.clock = float(target.get("chip.clock_hz")) * float(net.attrs.get("dt") or target.get("timing.timestep_ms")) / 1e3
        self.max_load = float(target.get("eprop.max_load"))

    def new_core(self) -> CoreUsage:
        return CoreUsage()

    @staticmethod
    def neurons_on(core: CoreUsage) -> int:
        return core.neurons

    def exclusive(self, pop: Population) -> bool:
        """An e-prop population takes cores of its own (one state matrix per core)."""
        return pop.name in self.eprop

    def uniform(self, pop: Population) -> bool:
        """Every neuron needs the same when its inputs are dense or one-to-all."""
        return all(conn in ("dense", "one_to_all") for _, conn, _, _ in self.fan_in[pop.name])

    def demand(self, pop: Population, start: int, stop: int) -> Demand:
        rows: dict[int, int | np.ndarray] = {}
        max_delay = 0
        for src, conn, delay, table in self.fan_in[pop.name]:
            if conn in ("dense", "one_to_all"):
                add: int | np.ndarray = stop - start
            elif conn == "one_to_one":
                add = np.zeros(self.sizes[src], dtype=np.int64)
                add[start:stop] = 1
            else:
                post_sorted, pre_sorted = table  # type: ignore[misc]
                lo, hi = np.searchsorted(post_sorted, [start, stop])
                if hi == lo:
                    continue  # no synapse of this projection lands on these neurons
                add = np.bincount(pre_sorted[lo:hi], minlength=self.sizes[src])
            rows[src] = _row_add(rows.get(src), add)
            max_delay = max(max_delay, delay)
        shifts = (int(pop.params.get("shift_exc", pop.params.get("shift", 0))),
                  int(pop.params.get("shift_inh", pop.params.get("shift", 0))))
        return Demand(stop - start, shifts, max_delay, rows, {s: self.blocks[s] for s in rows},
                      self._view.index[pop.name], pop.name, self.eprop.get(pop.name))

    def _usage(self, core: CoreUsage, d: Demand) -> tuple[int, int, int, int]:
        """(neurons, ring-buffer bits, longest row, DTCM bytes) if ``d`` joined ``core``."""
        n = core.neurons + d.neurons
        max_delay = max(core.max_delay, d.max_delay)
        ib, tb, db = ring_bits(n, max_delay, self.budget.types)
        row = 0
        for src, add in d.rows.items():
            row = max(row, _row_max(_row_add(core.rows.get(src), add)))
        mpt = sum({**core.mpt, **d.mpt}.values())
        return n, ib + tb + db, row, self.budget.dtcm(n, max_delay, mpt, d.eprop)

    def violation(self, core: CoreUsage, d: Demand) -> tuple[str, int, str, int, str] | None:
        """The first limit ``d`` would break on ``core``: (resource, needed, limit name, limit, hint)."""
        if core.pops and (d.eprop is not None or core.eprop is not None) and d.pop_name not in core.pops:
            return ("populations on an e-prop core", len(core.pops) + 1, "one e-prop population per core", 1,
                    "an e-prop population's neurons share one state matrix and its decays; it gets cores of its own")
        if core.shifts is not None and core.shifts != d.shifts:
            return ("weight-shift pairs", 2, "one (exc, inh) shift pair per core", 1,
                    "populations whose weights need different shifts get separate cores")
        n, bits, row, dtcm = self._usage(core, d)
        if n > self.max_neurons_per_core:
            return ("neurons", n, "core.max_neurons", self.max_neurons_per_core, "place fewer neurons on the core")
        if bits > self.max_ring_bits:
            return ("ring-buffer bits (index + type + delay)", bits, "core.max_ring_buffer_bits", self.max_ring_bits,
                    "shorten the delays or place fewer neurons per core (delay-extension cores are not implemented)")
        if row > self.max_row:
            return ("synapses of one source neuron on a core", row, "core.max_row_length", self.max_row,
                    "reduce the fan-out onto one population or split it")
        if dtcm > self.budget.limit:
            return ("DTCM bytes", dtcm, "chip.dtcm_bytes", self.budget.limit,
                    "place fewer neurons on the core or shorten the delays")
        if d.eprop is not None:
            cycles = eprop_cycles(self.target, n, d.eprop)
            limit = int(self.max_load * self.clock)
            if cycles > limit:
                return ("e-prop cycles per tick", cycles, "eprop.max_load x chip.clock_hz x timestep", limit,
                        "fewer neurons or synapses per core (the state of every synapse is updated every tick)")
        return None

    def commit(self, core: CoreUsage, d: Demand) -> None:
        core.neurons += d.neurons
        core.shifts = d.shifts
        core.pops.add(d.pop_name)
        core.eprop = d.eprop or core.eprop
        core.max_delay = max(core.max_delay, d.max_delay)
        for src, add in d.rows.items():
            core.rows[src] = _row_add(core.rows.get(src), add)
        core.mpt.update(d.mpt)

    # -- the packing view (nmc.lowering.ResourceModel; docs/spinnaker.md §6) -------------------
    @cached_property
    def _view(self) -> "_PackingView":
        """The figures the packing view needs, built on first use (the exact model needs none)."""
        return _PackingView(self)

    def resources(self) -> list[Resource]:
        """Per core: neurons, the one weight-shift pair, the ring buffer's index field, the
        longest row, DTCM; per chip: SDRAM (items once per core) and router entries (items once
        per chip). See :meth:`vector` for how each is counted."""
        return list(self._view.resources)

    def vector(self, d: Demand) -> DemandVector:
        """``d`` as amounts and shared items (docs/spinnaker.md §6, "The packing view").

        Amounts: neurons (also in the ring-buffer resource), the slice's longest row, its neurons'
        DTCM and, in SDRAM, every source neuron's row padded to the slice's longest row from that
        source. Shared items, paid once per core (router entries: once per chip):

        - ``("core",)``: what every core holds whatever its neurons (DTCM globals, stack, spike and
          DMA buffers; the SDRAM of its parameters and tables);
        - ``("shift", (exc, inh))``: the core's one weight-shift pair (capacity 1);
        - ``("ring", delay_bits)``: the ring buffer of a full core with that many delay bits in
          DTCM, and what those bits take from the index field (neurons the core can still number);
        - ``("mpt", q)``: source population ``q``'s master-table entries and address-list items in
          DTCM, and the header words of its rows in SDRAM;
        - ``("route", q)``: router entries for ``q``'s key blocks on the chip, for a source of the
          slice and for the slice's own population when it sends spikes.

        Every combination of slices is counted at least as the exact model counts it (so a core
        the packing model accepts is accepted by :meth:`violation`), and a slice alone exactly,
        but for the ring buffer, which is charged at its size on the fullest core of the slice's
        delay bits. Router entries count the key blocks sent from or delivered to a chip, before any
        merge or compression; entries on chips a route only passes through are not counted here."""
        if d.eprop is not None:   # a partitioner bug: see outside_packing_view
            raise RuntimeError(f"the packing view does not model e-prop population '{d.pop_name}'")
        v = self._view
        amounts = np.zeros(len(v.resources), dtype=np.int64)
        longest = {src: _row_max(add) for src, add in d.rows.items()}
        amounts[v.NEURONS] = d.neurons
        amounts[v.RING] = d.neurons
        amounts[v.ROW] = max(longest.values(), default=0)
        amounts[v.DTCM] = d.neurons * self.budget.neuron
        amounts[v.SDRAM] = 4 * sum(self.sizes[src] * n for src, n in longest.items())
        delay_bits = n_bits(d.max_delay)
        shared: list[Hashable] = [("core",), ("shift", d.shifts), ("ring", delay_bits)]
        shared += [("mpt", src) for src in sorted(d.rows)]
        routed = set(d.rows) | ({d.pop} if d.pop >= 0 and v.sends[d.pop] else set())
        shared += [("route", q) for q in sorted(routed)]
        return DemandVector(amounts, tuple(shared))

    def shared_cost(self, key: Hashable) -> np.ndarray:
        """What shared item ``key`` (see :meth:`vector`) costs once, aligned with :meth:`resources`."""
        v = self._view
        cost = np.zeros(len(v.resources), dtype=np.int64)
        kind, *rest = key  # type: ignore[misc]
        if kind == "core":
            cost[v.DTCM] = self.budget.base + self.budget.fixed
            cost[v.SDRAM] = v.core_sdram
        elif kind == "shift":
            cost[v.SHIFT] = 1
        elif kind == "ring":
            cost[v.RING], cost[v.DTCM] = v.ring_costs(int(rest[0]))
        elif kind == "mpt":
            q = int(rest[0])
            cost[v.DTCM] = self.blocks[q] * self.budget.mpt
            cost[v.SDRAM] = 4 * v.header_words * self.sizes[q]
        elif kind == "route":
            cost[v.ROUTER] = self.blocks[int(rest[0])]
        else:
            raise KeyError(key)
        return cost

    def sources(self, d: Demand) -> np.ndarray:
        """Sorted global ids of the neurons with a synapse onto the slice (one row each)."""
        v = self._view
        parts = []
        for src in sorted(d.rows):
            add = d.rows[src]
            if isinstance(add, (int, np.integer)):
                ids = np.arange(self.sizes[src], dtype=np.int64) if add > 0 else np.zeros(0, dtype=np.int64)
            else:
                ids = np.flatnonzero(add).astype(np.int64)
            parts.append(v.offsets[src] + ids)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class _PackingView:
    """Resources and constant costs of the SpiNNaker-like packing view, read once per model.

    The ring buffer is what does not add up: its size ``2^(index_bits + type_bits + delay_bits)``
    slots, with ``index_bits = n_bits(N)`` for the N neurons of the core and ``delay_bits`` for the
    core's longest delay, depends on the whole core. The view bounds it per delay-bit count D
    present on the core by its size on the fullest core D allows. That core holds ``room(D)``
    neurons: at most ``core.max_neurons``; at most ``2^(max_ring_buffer_bits - type_bits - D)``,
    because ``n_bits(N) <= b`` exactly when ``N <= 2^b`` (N >= 2); and at most what DTCM holds
    beside the fixed part and that ring buffer. A resource of ``core.max_neurons`` slots (keyed by
    the ring-buffer limit) counts this: each neuron takes one, and each D present takes the
    ``max_neurons - room(D)`` slots its core cannot use. A core the view accepts therefore has
    ``N <= room(D_max)``, so its ring buffer is at most the one D_max's item pays for in DTCM; two
    delay-bit counts on one core pay both, which is at least what the longer one needs.
    """

    NEURONS, SHIFT, RING, ROW, DTCM, SDRAM, ROUTER = range(7)

    def __init__(self, model: ResourceModel) -> None:
        g = model.target.get
        sizes = np.array(model.sizes, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.index = {name: i for i, name in enumerate(model.fan_in)}  # fan_in keeps population order
        sends = np.zeros(len(model.sizes), dtype=bool)
        for incoming in model.fan_in.values():
            for src, _conn, _delay, _table in incoming:
                sends[src] = True
        self.sends = sends
        self.n_max = model.max_neurons_per_core
        self.type_bits = n_bits(model.budget.types)
        self.index_and_delay_bits = model.max_ring_bits - self.type_bits
        self.ring_entry = model.budget.ring_entry
        self.budget = model.budget
        self._ring: dict[int, tuple[int, int]] = {}
        self.core_sdram = int(g("sdram.core_fixed_bytes"))
        self.header_words = int(g("sdram.row_header_words"))
        ring_hint = ("shorten the delays or place fewer neurons per core (delay-extension cores are not "
                     "implemented)")
        self.resources = (
            Resource("neurons", "core.max_neurons", self.n_max, "place fewer neurons on the core"),
            Resource("weight-shift pairs", "one (exc, inh) shift pair per core", 1,
                     "populations whose weights need different shifts get separate cores"),
            Resource("ring-buffer bits (index + type + delay)", "core.max_ring_buffer_bits", self.n_max, ring_hint),
            Resource("synapses of one source neuron on a core", "core.max_row_length", model.max_row,
                     "reduce the fan-out onto one population or split it"),
            Resource("DTCM bytes", "chip.dtcm_bytes", model.budget.limit,
                     "place fewer neurons on the core or shorten the delays"),
            Resource("SDRAM bytes", "chip.sdram_bytes", int(g("chip.sdram_bytes")),
                     "place fewer cores on the chip or reduce their fan-in", per="chip"),
            Resource("router entries", "router.usable_entries", int(g("router.usable_entries")),
                     "spread the cores over more chips or give them fewer distinct sources", per="chip",
                     share="chip"),
        )

    def ring_costs(self, delay_bits: int) -> tuple[int, int]:
        """(neuron slots, DTCM bytes) of delay-bit count ``delay_bits`` on a core: the slots of
        the neurons no core with it can hold, and the ring buffer of the fullest such core."""
        cached = self._ring.get(delay_bits)
        if cached is None:
            room = self._room(delay_bits)
            ring = self.ring_entry << (n_bits(room) + self.type_bits + delay_bits)
            cached = self._ring[delay_bits] = (self.n_max - room, ring)
        return cached

    def _room(self, delay_bits: int) -> int:
        """The most neurons a core whose longest delay has ``delay_bits`` bits can hold: within
        core.max_neurons, the ring buffer's index field, and DTCM with its fixed part and the ring
        buffer (a master table makes it fewer; the exact model counts that)."""
        left = self.index_and_delay_bits - delay_bits
        room = min(self.n_max, 1 << left) if left >= 0 else 0
        longest = (1 << delay_bits) - 1  # a delay with that many bits: n_bits(2^D - 1) = D
        while room > 0 and self.budget.dtcm(room, longest, 0) > self.budget.limit:
            room -= 1
        return room


# ---------------------------------------------------------------------------------------------
# The concrete layout
# ---------------------------------------------------------------------------------------------
@dataclass
class Layout:
    """A partitioned network laid out on cores and chips (every array in canonical order).

    Cores are the placement's cores that hold neurons, in the order of their placement ids
    (``core_position``; a chip the partitioner closed early leaves ids unused). Neurons get
    global ids core by core (``core_offset``), within a core by (population index, neuron index).
    Source slices -- the key blocks of routing -- are the placement slices of neuron populations
    and chunks of ``core.max_neurons`` units of input ports, numbered by (population index,
    start). Synapses are sorted by (source slice, post core, source neuron, projection, post
    neuron)."""

    n_cores: int
    core_offset: np.ndarray          # (n_cores + 1,) global neuron ids per core
    core_chip: np.ndarray            # (n_cores,) index into chips
    core_proc: np.ndarray            # (n_cores,) processor on its chip
    chips: list[tuple[int, int]]     # (x, y) of every chip in use, in placement order
    core_index_bits: np.ndarray
    type_bits: int                   # synapse-type field (get_n_bits(core.synapse_types))
    core_delay_bits: np.ndarray
    core_shifts: np.ndarray          # (n_cores, 2)
    core_pops: list[list[str]]
    pop_gid: dict[str, np.ndarray]   # non-input population -> global neuron id of each neuron
    # Source slices.
    src_pop: np.ndarray              # population index
    src_start: np.ndarray
    src_stop: np.ndarray
    src_m: np.ndarray                # slice number within its population
    src_core: np.ndarray             # core of a neuron slice, -1 for an input port
    # Synapses.
    syn_src: np.ndarray              # source slice
    syn_local_src: np.ndarray        # neuron index within the source slice
    syn_core: np.ndarray             # post core
    syn_local: np.ndarray            # post neuron index within its core
    syn_word: np.ndarray             # signed weight word (sign: synapse type)
    syn_delay: np.ndarray            # chip delay in ticks (>= 1)
    # Blocks: one per (source slice, post core) with synapses, in synapse order.
    blk_src: np.ndarray
    blk_core: np.ndarray
    blk_row_len: np.ndarray          # longest row of the block (words)
    blk_first: np.ndarray            # first synapse of the block
    core_dtcm: np.ndarray
    core_sdram: np.ndarray
    core_mpt: np.ndarray             # master population table entries per core
    # e-prop (empty / None where a core has none).
    syn_plastic: np.ndarray          # whether each synapse is plastic (e-prop)
    syn_proj: np.ndarray             # the projection (index) of each synapse
    syn_pre: np.ndarray              # pre neuron index within its population
    syn_post: np.ndarray             # post neuron index within its population
    blk_fixed_len: np.ndarray        # longest fixed (static) part of a row of the block
    blk_plastic_len: np.ndarray      # longest plastic part of a row of the block
    core_eprop: list[EpropCore | None]
    core_position: np.ndarray        # (n_cores,) the partition's id of each core (its place: SpiNNakerGeometry)


def _cores_of(net: Network, slices: np.ndarray, n_cores: int) -> tuple[np.ndarray, dict[str, np.ndarray],
                                                                       list[list[str]], np.ndarray]:
    """Global neuron ids: core by core, within a core by (population, start)."""
    pops = net.populations
    order = np.lexsort((slices[:, 2], slices[:, 0], slices[:, 1]))
    s = slices[order]
    lengths = s[:, 3] - s[:, 2]
    counts = np.bincount(s[:, 1], weights=lengths, minlength=n_cores).astype(np.int64)
    offset = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    first = np.cumsum(lengths) - lengths
    pop_gid = {p.name: np.full(p.size, -1, dtype=np.int64) for p in pops if not p.is_input}
    names: list[list[str]] = [[] for _ in range(n_cores)]
    for (pi, core, start, stop), f in zip(s.tolist(), first.tolist()):
        pop_gid[pops[pi].name][start:stop] = np.arange(f, f + stop - start)
        if pops[pi].name not in names[core]:
            names[core].append(pops[pi].name)
    return offset, pop_gid, names, s


_LAYOUTS: "weakref.WeakKeyDictionary[Network, tuple[Any, Layout]]" = weakref.WeakKeyDictionary()


def _fingerprint(net: Network, target: Target) -> Any:
    """What a layout depends on: placements, shifts, projections (their weight arrays by identity:
    passes replace arrays, they do not edit them) and the target's data."""
    pops = tuple((p.name, p.size, p.model, repr(p.attrs.get("placement")), p.params.get("shift_exc"),
                  p.params.get("shift_inh"), p.params.get("shift")) for p in net.populations)
    projs_learning = tuple(repr(q.learning) for q in net.projections)
    projs = tuple((q.name, q.pre, q.post, q.connectivity, id(q.weights), id(q.pre_index), id(q.post_index), q.delay)
                  for q in net.projections)
    return pops, projs, projs_learning, id(target.data)


def build_layout(net: Network, target: Target) -> Layout:
    """Lay out a partitioned, quantized network (see :class:`Layout`); limits are checked by
    :func:`check_layout`. ``allocate`` and the backend both ask for it: the second call reuses
    the first's result while nothing it depends on has changed."""
    key = _fingerprint(net, target)
    cached = _LAYOUTS.get(net)
    if cached is not None and cached[0] == key:
        return cached[1]
    lay = _build_layout(net, target)
    _LAYOUTS[net] = (key, lay)
    return lay


def _build_layout(net: Network, target: Target) -> Layout:
    pops, projs = net.populations, net.projections
    slices = placement_slices(net)
    # The partition's core ids are places on the machine (its geometry: chip by chip); a chip it
    # closed early leaves ids unused. The layout numbers only the cores that hold neurons.
    position = np.unique(slices[:, 1])
    slices[:, 1] = np.searchsorted(position, slices[:, 1])
    n_cores = int(position.size)
    offset, pop_gid, names, sorted_slices = _cores_of(net, slices, n_cores)
    neurons = np.diff(offset)
    chunk = int(target.get("core.max_neurons"))
    types = int(target.get("core.synapse_types"))

    # Source slices: placement slices of neuron populations, chunks of input ports.
    rows = [(pi, core, start, stop) for pi, core, start, stop in sorted_slices.tolist()]
    for pi, p in enumerate(pops):
        if p.is_input:
            rows += [(pi, -1, a, min(a + chunk, p.size)) for a in range(0, p.size, chunk)]
    rows.sort(key=lambda r: (r[0], r[2]))
    src = np.array(rows, dtype=np.int64).reshape(-1, 4)
    src_pop, src_core, src_start, src_stop = src[:, 0], src[:, 1], src[:, 2], src[:, 3]
    first_of_pop = np.searchsorted(src_pop, np.arange(len(pops)))
    src_m = np.arange(src_pop.size) - first_of_pop[src_pop]
    pop_slice_starts = {pi: src_start[src_pop == pi] for pi in range(len(pops))}

    # Every synapse: source slice and local index, post core and local index, word, delay.
    gid_core = np.repeat(np.arange(n_cores, dtype=np.int64), neurons)
    cols: list[tuple[np.ndarray, ...]] = []
    sizes = {p.name: p.size for p in pops}
    index = {p.name: i for i, p in enumerate(pops)}
    for proj in projs:
        pre, post, w = proj.coo(sizes[proj.pre], sizes[proj.post])
        pre = np.asarray(pre, dtype=np.int64)
        pi = index[proj.pre]
        s_id = first_of_pop[pi] + np.searchsorted(pop_slice_starts[pi], pre, side="right") - 1
        gid = pop_gid[proj.post][np.asarray(post, dtype=np.int64)]
        core = gid_core[gid]
        words = np.asarray(w)
        if words.dtype.kind == "f" and not np.all(words == np.rint(words)):
            raise IrError("weights are not integer words; run quantize first", location=f"projection '{proj.name}'")
        cols.append((s_id, pre - src_start[s_id], core, gid - offset[core], words.astype(np.int64),
                     np.full(pre.size, synapse_delay(proj.delay), dtype=np.int64),
                     np.full(pre.size, int(is_eprop(proj.learning)), dtype=np.int64),
                     np.full(pre.size, len(cols), dtype=np.int64), pre, np.asarray(post, dtype=np.int64)))
    if cols:
        (syn_src, syn_lsrc, syn_core, syn_local, syn_word, syn_delay, syn_plastic, syn_proj, syn_pre,
         syn_post) = (np.concatenate(c) for c in zip(*cols))
    else:
        syn_src = syn_lsrc = syn_core = syn_local = syn_word = syn_delay = np.zeros(0, dtype=np.int64)
        syn_plastic = syn_proj = syn_pre = syn_post = syn_src
    # Sort by (source slice, post core, source neuron, post neuron); ties keep projection order.
    width = max(int((src_stop - src_start).max(initial=1)), 1)
    per_core = max(int(neurons.max(initial=1)), 1)
    blk_key = syn_src * max(n_cores, 1) + syn_core
    order = stable_order((blk_key * width + syn_lsrc) * per_core + syn_local)
    syn_src, syn_lsrc, syn_core, blk_key = syn_src[order], syn_lsrc[order], syn_core[order], blk_key[order]
    syn_local, syn_word, syn_delay = syn_local[order], syn_word[order], syn_delay[order]
    syn_plastic, syn_proj = syn_plastic[order].astype(bool), syn_proj[order]
    syn_pre, syn_post = syn_pre[order], syn_post[order]

    # Blocks (source slice, post core) and the longest row of each.
    new_blk = np.ones(blk_key.size, dtype=bool)
    new_blk[1:] = blk_key[1:] != blk_key[:-1]
    blk_first = np.flatnonzero(new_blk)
    new_row = new_blk.copy()
    new_row[1:] |= syn_lsrc[1:] != syn_lsrc[:-1]
    row_first = np.flatnonzero(new_row)
    row_len = np.diff(np.append(row_first, blk_key.size))
    row_blk = np.cumsum(new_blk)[row_first] - 1
    blk_row_len = np.zeros(blk_first.size, dtype=np.int64)
    np.maximum.at(blk_row_len, row_blk, row_len)
    blk_src, blk_core = syn_src[blk_first], syn_core[blk_first]
    row_id = np.cumsum(new_row) - 1
    row_plastic = np.bincount(row_id, weights=syn_plastic, minlength=row_first.size).astype(np.int64)
    blk_plastic_len = np.zeros(blk_first.size, dtype=np.int64)
    blk_fixed_len = np.zeros(blk_first.size, dtype=np.int64)
    np.maximum.at(blk_plastic_len, row_blk, row_plastic)
    np.maximum.at(blk_fixed_len, row_blk, row_len - row_plastic)

    max_delay = np.zeros(n_cores, dtype=np.int64)
    np.maximum.at(max_delay, syn_core, syn_delay)
    index_bits = np.array([n_bits(int(n)) for n in neurons], dtype=np.int64)
    delay_bits = np.array([n_bits(int(d)) for d in max_delay], dtype=np.int64)
    shifts = np.zeros((n_cores, 2), dtype=np.int64)
    for pi, core, _a, _b in sorted_slices.tolist():
        p = pops[pi]
        shifts[core] = _shift_pair(p)

    budget = _Budget(target)
    mpt = np.bincount(blk_core, minlength=n_cores).astype(np.int64)
    core_eprop = _core_eprop(net, names, neurons, sorted_slices, lay_blocks=(blk_src, blk_core, blk_plastic_len),
                             src_size=src_stop - src_start)
    dtcm = np.array([budget.dtcm(int(neurons[c]), int(max_delay[c]), int(mpt[c]), core_eprop[c])
                     for c in range(n_cores)], dtype=np.int64)
    header = int(target.get("sdram.row_header_words"))
    n_rows = src_stop[blk_src] - src_start[blk_src]
    sdram = np.bincount(blk_core, weights=n_rows * row_words(blk_fixed_len, blk_plastic_len, header) * 4,
                        minlength=n_cores).astype(np.int64)
    sdram += int(target.get("sdram.core_fixed_bytes"))
    # Adam's moments: one word per cell of a core's state matrix (docs/eprop.md §8).
    for c, e in enumerate(core_eprop):
        if e is not None and e.adam:
            sdram[c] += int(target.get("sdram.eprop_adam_bytes")) * int(neurons[c]) * e.sources
    core_chip, core_proc, chips = _place_chips(target, sdram, position)
    return Layout(n_cores=n_cores, core_offset=offset, core_chip=core_chip, core_proc=core_proc, chips=chips,
                  core_index_bits=index_bits, type_bits=n_bits(types), core_delay_bits=delay_bits,
                  core_shifts=shifts, core_pops=names,
                  pop_gid=pop_gid, src_pop=src_pop, src_start=src_start, src_stop=src_stop, src_m=src_m,
                  src_core=src_core, syn_src=syn_src, syn_local_src=syn_lsrc, syn_core=syn_core,
                  syn_local=syn_local, syn_word=syn_word, syn_delay=syn_delay, blk_src=blk_src, blk_core=blk_core,
                  blk_row_len=blk_row_len, blk_first=blk_first, core_dtcm=dtcm, core_sdram=sdram, core_mpt=mpt,
                  syn_plastic=syn_plastic, syn_proj=syn_proj, syn_pre=syn_pre, syn_post=syn_post,
                  blk_fixed_len=blk_fixed_len, blk_plastic_len=blk_plastic_len, core_eprop=core_eprop,
                  core_position=position)


def row_words(fixed: np.ndarray, plastic: np.ndarray, header: int) -> np.ndarray:
    """Words of a row with ``fixed`` static and ``plastic`` plastic synapses (synapse_row.h): the
    header, the plastic region (one word per synapse: its signed 16-bit weight in the top half, a
    fraction of a weight step below), the fixed words, and the plastic-control halfwords (delay |
    type | index), two per word."""
    plastic = np.asarray(plastic)
    return header + np.asarray(fixed) + plastic + (plastic + 1) // 2


def _core_eprop(net: Network, names: list[list[str]], neurons: np.ndarray, sorted_slices: np.ndarray,
                lay_blocks: tuple[np.ndarray, np.ndarray, np.ndarray], src_size: np.ndarray) -> list[EpropCore | None]:
    """Each core's e-prop state: kind from the neurons on it, sources = the neurons of the source slices
    with plastic synapses on it (the columns of its dense state matrix)."""
    per_pop = eprop_cores(net)
    pops = net.populations
    out: list[EpropCore | None] = [None] * len(names)
    blk_src, blk_core, blk_plastic = lay_blocks
    for pi, core, a, b in sorted_slices.tolist():
        pop = pops[pi]
        info = per_pop.get(pop.name)
        if info is None:
            continue
        kind = info.kind
        if kind != "readout":
            kind = "adaptive" if np.any(np.asarray(pop.param_array("beta"))[a:b] != 0) else "lif"
        sources = int(src_size[blk_src[(blk_core == core) & (blk_plastic > 0)]].sum())
        out[core] = EpropCore(kind, sources, info.n_out, info.adam)
    return out


def _place_chips(target: Target, sdram: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                 list[tuple[int, int]]]:
    """Cores to chips by the partition's core ids, which its geometry (:class:`SpiNNakerGeometry`)
    shares: id c is processor ``1 + c % chip.cores`` of chip ``c // chip.cores`` in
    :func:`chip_order` (from the host chip outwards). The partitioners that count SDRAM (``ffd``,
    ``cpsat``) close a chip before it overflows; a chip whose cores need more SDRAM than it has
    is a ResourceError naming it."""
    per_chip = int(target.get("chip.cores"))
    chip_sdram = int(target.get("chip.sdram_bytes"))
    order = chip_order(target)
    position = np.asarray(position, dtype=np.int64)
    core_chip = position // per_chip
    core_proc = FIRST_APP_PROCESSOR + position % per_chip
    if core_chip.size and int(core_chip.max()) >= len(order):
        raise ResourceError(f"the network needs more than the {len(order)} chips of the machine "
                            f"(chip.mesh = {'x'.join(str(v) for v in target.get('chip.mesh'))}); "
                            "shrink the network or enlarge chip.mesh")
    over = np.flatnonzero(sdram > chip_sdram)
    if over.size:
        c = int(over[0])
        raise ResourceError(resource_message("SDRAM bytes of one core", int(sdram[c]), "chip.sdram_bytes",
                                             chip_sdram, "place fewer neurons on the core or reduce its fan-in"),
                            location=f"core {c}")
    n_chips = int(core_chip.max()) + 1 if core_chip.size else 0
    per = np.bincount(core_chip, weights=sdram, minlength=n_chips).astype(np.int64)
    full = np.flatnonzero(per > chip_sdram)
    if full.size:
        k = int(full[0])
        raise ResourceError(resource_message("SDRAM bytes of the chip's cores", int(per[k]), "chip.sdram_bytes",
                                             chip_sdram, "partition with solver ffd or cpsat, which close a chip "
                                             "before its SDRAM overflows, or place fewer cores on the chip"),
                            location="chip ({}, {})".format(*order[k]))
    return core_chip, core_proc, order[:n_chips]


def check_layout(lay: Layout, target: Target) -> None:
    """ResourceError for the first broken per-core limit (a hand-written placement, or a
    partitioner that does not use the resource model)."""
    limits = (
        ("neurons", np.diff(lay.core_offset), "core.max_neurons", "place fewer neurons on the core"),
        ("ring-buffer bits (index + type + delay)", lay.core_index_bits + lay.type_bits + lay.core_delay_bits,
         "core.max_ring_buffer_bits", "shorten the delays or place fewer neurons per core "
                                      "(delay-extension cores are not implemented)"),
        ("synapses of one source neuron on a core", _longest_rows(lay), "core.max_row_length",
         "reduce the fan-out onto one population or split it"),
        ("DTCM bytes", lay.core_dtcm, "chip.dtcm_bytes", "place fewer neurons on the core or shorten the delays"),
    )
    for resource, used, key, hint in limits:
        limit = int(target.get(key))
        over = np.flatnonzero(used > limit)
        if over.size:
            c = int(over[0])
            more = f" ({over.size - 1} more cores over this limit)" if over.size > 1 else ""
            pops = ", ".join(f"'{n}'" for n in lay.core_pops[c])
            raise ResourceError(resource_message(resource, int(used[c]), key, limit, hint) + more,
                                location=f"core {c} (populations {pops})")


def _longest_rows(lay: Layout) -> np.ndarray:
    out = np.zeros(lay.n_cores, dtype=np.int64)
    np.maximum.at(out, lay.blk_core, lay.blk_row_len)
    return out


def _shift_pair(p: Population) -> tuple[int, int]:
    """(exc, inh) weight shifts of a population (an e-prop population has one for both signs)."""
    one = int(p.params.get("shift", 0))
    return int(p.params.get("shift_exc", one)), int(p.params.get("shift_inh", one))


def _check_scored_readout(net: Network, lay: Layout) -> None:
    """The scored readout lies on one core: its softmax needs every unit's membrane."""
    score = (net.attrs.get("trial") or {}).get("score")
    if not score:
        return
    pop = net.population(score["population"])
    cores = {int(c) for c, _a, _b in pop.attrs.get("placement", [])}
    if len(cores) > 1:
        raise ResourceError(f"the scored readout '{pop.name}' is split over {len(cores)} cores; it must fit one core "
                            "(the learning signal needs every unit's membrane on the core that computes it)",
                            location=f"population '{pop.name}'")


def _check_shifts(net: Network, lay: Layout) -> None:
    """Populations sharing a core must share its (exc, inh) shift pair."""
    pops = {p.name: p for p in net.populations}
    for c, names in enumerate(lay.core_pops):
        pairs = {_shift_pair(pops[n]) for n in names}
        if len(pairs) > 1:
            raise ResourceError(f"populations {', '.join(repr(n) for n in names)} share core {c} but need different "
                                "weight shifts (one (exc, inh) shift pair per core); place them on separate cores",
                                location=f"core {c}")


class SpiNNakerLayoutModel:
    """The ``layout`` part of the SpiNNaker-like target (:class:`nmc.lowering.LayoutModel`)."""

    #: Tables of the target file that hold counts (at least 1 each; coordinates in lists from 0).
    integer_tables = {"chip": 1, "core": 1}

    #: Columns of the per-core resource report: (title, key in the core table, limit key).
    #: ("position": the partition's core id, the core's place in SpiNNakerGeometry.)
    report_columns = (("position", "position", None), ("chip", "chip", None),
                      ("neurons", "neurons", "core.max_neurons"),
                      ("DTCM bytes", "dtcm_bytes", "chip.dtcm_bytes"), ("of which e-prop", "eprop_dtcm_bytes", None),
                      ("ring slots", "ring_slots", None),
                      ("MPT entries", "mpt_entries", None), ("SDRAM bytes", "sdram_bytes", None))
    #: Columns of the per-chip report (meta["chips"], written by the backend).
    chip_report_columns = (("chip", "chip", None), ("cores", "cores", "chip.cores"),
                           ("SDRAM bytes", "sdram_bytes", "chip.sdram_bytes"),
                           ("router entries", "router_entries", "router.usable_entries"),
                           ("uncompressed", "router_entries_uncompressed", None),
                           ("compressed", "router_entries_compressed", None))

    @staticmethod
    def outside_packing_view(net: Network) -> list[str]:
        """Populations the resource model's packing view (``ResourceModel.vector``) does not
        describe: the e-prop ones, whose synapse state, per-tick cycles and cores of their own only
        the exact model (``violation``) counts. Read off the IR alone, before any table is built."""
        return sorted(p.name for p in net.populations if p.model in EPROP_MODELS)

    def __init__(self, target: Target) -> None:
        self.target = target

    def resource_model(self, net: Network) -> ResourceModel:
        return ResourceModel(net, self.target)

    def size_limit(self) -> SizeLimit:
        """Neurons of the whole machine: every neuron, and every unit of an input port (a spike
        source on a core of its own), takes one of core.max_neurons slots on an application core."""
        cores = int(self.target.get("chip.cores")) * int(self.target.get("chip.chips"))
        total = cores * int(self.target.get("core.max_neurons"))
        key = "chip.cores x chip.chips x core.max_neurons"
        return SizeLimit(neurons=total, neurons_key=key, input_units=total, input_key=key)

    def check_cores(self, n_cores: int, cores_per_population: dict[str, int]) -> None:
        per_chip, chips = int(self.target.get("chip.cores")), int(self.target.get("chip.chips"))
        limit = per_chip * chips
        if n_cores > limit:
            ranked = sorted(cores_per_population.items(), key=lambda kv: -kv[1])[:3]
            most = ", ".join(f"'{n}' ({k})" for n, k in ranked)
            raise ResourceError(f"network needs {n_cores} cores, exceeded max (chip.cores x chip.chips = {limit}) "
                                f"by {n_cores - limit}; populations using the most cores: {most}")

    def allocate(self, net: Network, diagnostics: Any = None) -> list[dict[str, Any]]:
        """Lay the network out on cores and chips, check every per-core limit, return the table."""
        lay = build_layout(net, self.target)
        _check_shifts(net, lay)
        _check_scored_readout(net, lay)
        check_layout(lay, self.target)
        n = np.diff(lay.core_offset)
        budget = _Budget(self.target)
        eprop = [budget.eprop(int(n[c]), e) if e is not None else 0 for c, e in enumerate(lay.core_eprop)]
        return [{"core": c, "position": int(lay.core_position[c]),
                 "chip": "{},{}".format(*lay.chips[int(lay.core_chip[c])]),
                 "processor": int(lay.core_proc[c]), "neurons": int(n[c]), "dtcm_bytes": int(lay.core_dtcm[c]),
                 "eprop_dtcm_bytes": int(eprop[c]),
                 "ring_slots": 1 << int(lay.core_delay_bits[c]), "mpt_entries": int(lay.core_mpt[c]),
                 "sdram_bytes": int(lay.core_sdram[c]), "populations": list(lay.core_pops[c])}
                for c in range(lay.n_cores)]

    def geometry(self) -> "SpiNNakerGeometry":
        return SpiNNakerGeometry(self.target)

    def neurons_per_core(self) -> int:
        return int(self.target.get("core.max_neurons"))


class SpiNNakerGeometry:
    """Cores on the SpiNNaker-like machine (:class:`nmc.lowering.Geometry`): core id c is on the
    ``c // chip.cores``-th chip of :func:`chip_order` (the layout places it there), and a spike
    between chips takes as many links as the backend's route, which goes diagonal-first along
    shortest paths of the hexagonal mesh: :func:`hex_distance` hops (0 within a chip; a multicast
    tree shares the first links of its routes, so the sum over destinations is an upper bound on
    the links a spike uses)."""

    def __init__(self, target: Target) -> None:
        self.cores_per_chip = int(target.get("chip.cores"))
        order = chip_order(target)
        self.chips = min(int(target.get("chip.chips")), len(order))
        self.chip_x = np.array([x for x, _ in order], dtype=np.int64)
        self.chip_y = np.array([y for _, y in order], dtype=np.int64)

    def _chip_xy(self, cores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mesh coordinates of the chips of ``cores`` (ids past the machine count as its last chip:
        the partitioner refuses a numbering that reaches them)."""
        chip = np.minimum(np.asarray(cores, dtype=np.int64) // self.cores_per_chip, self.chip_x.size - 1)
        return self.chip_x[chip], self.chip_y[chip]

    def hops(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ax, ay = self._chip_xy(a)
        bx, by = self._chip_xy(b)
        dx, dy = bx - ax, by - ay
        # A diagonal (NE / SW) link covers one step in x and one in y when both go the same way.
        return np.where(dx * dy > 0, np.maximum(np.abs(dx), np.abs(dy)), np.abs(dx) + np.abs(dy))

    def xy(self, cores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chips on a sheared grid, so that the six links have equal length (E = (1, 0),
        N = (-1/2, sqrt(3)/2), NE their sum), each chip's cores in a square around its centre."""
        cores = np.asarray(cores, dtype=np.int64)
        cx, cy = self._chip_xy(cores)
        side = max(1, int(np.ceil(np.sqrt(self.cores_per_chip))))
        k = cores % self.cores_per_chip
        span = 0.6 / side
        ox = (k % side - (side - 1) / 2) * span
        oy = (k // side - (side - 1) / 2) * span
        return cx - 0.5 * cy + ox, cy * np.sqrt(3) / 2 + oy
