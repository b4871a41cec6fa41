"""The ``layout`` part of the Loihi-like target: resources per core and the concrete layout.

- :class:`ResourceModel` counts, incrementally and exactly, what slices of neurons need on a core
  (compartments, input axons, synapse memory bits, compartment configs, synapse formats), for the
  partitioner;
- :func:`build_layout` lays out a partitioned, quantized network: compartments, input axons,
  synapses and the per-core resource counts the limits apply to (docs/passes.md, "Layout"). It is
  the single source of truth for resource use: ``allocate`` checks its counts against the target
  limits and the backend encodes it into the binary;
- :class:`LoihiLayoutModel` is the part the target file names (``[parts] layout = "loihi"``).

Everything is vectorised numpy and depends only on the IR's canonical order (population and
projection order, neuron indices), never on dict or set iteration order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..arrayops import unique_inverse, unique_sorted
from ..errors import IrError, ResourceError
from ..formats import loihi as fmt
from ..ir.models import NEURON_MODELS
from ..ir.network import Network, Population, Projection
from ..target import Target
from . import DemandVector, Resource
from .common import SizeLimit, resource_message

#: cuba_lif parameters that live in a core's shared compartment config table.
CONFIG_PARAMS = ("decay_u", "decay_v", "threshold", "refractory")
#: The config-table parameters of each register-level model (a model not listed uses cuba_lif's);
#: configs of different models are never shared.
CONFIG_PARAMS_BY_MODEL = {"cuba_lif": CONFIG_PARAMS, "sdn": ("threshold", "shift", "relu", "clip", "decay")}

#: Per-core limits: (resource as named in messages, Layout field, target key, hint).
CORE_LIMITS: tuple[tuple[str, str, str, str], ...] = (
    ("compartments", "core_compartments", "core.max_compartments",
     "place fewer neurons on the core"),
    ("input axons", "core_input_axons", "core.max_input_axons",
     "reduce the fan-in"),
    ("output axons", "core_output_axons", "core.max_output_axons",
     "reduce the fan-out of the core's neurons, or spread their targets over fewer cores"),
    ("synapse memory bits", "core_synapse_bits", "core.synapse_memory_bits",
     "reduce the fan-in, the weight bits or the delays"),
    ("compartment configs", "core_compartment_configs", "core.max_compartment_configs",
     "use fewer distinct (decay_u, decay_v, threshold, refractory) combinations"),
    ("synapse formats", "core_synapse_formats", "core.max_synapse_formats",
     "use fewer distinct (weight_bits, sign, exponent, delay) combinations on the projections"),
)


@dataclass
class Layout:
    """Concrete placement of a partitioned, quantized network."""

    n_cores: int
    pop_core: dict[str, np.ndarray]     # non-input populations: core id of each neuron (int64, len = size)
    pop_local: dict[str, np.ndarray]    # compartment index of each neuron within its core
    core_compartments: np.ndarray       # (n_cores,) compartments used per core
    # One input axon per (source neuron, destination core) pair with >= 1 synapse on that core.
    # Sources are neurons of any population (input populations included). Axons are ordered by
    # (destination core, source population index in net.populations, source neuron index); axon_local
    # numbers them 0.. within their core in that order.
    axon_src_pop: np.ndarray            # (n_axons,) index into net.populations
    axon_src_neuron: np.ndarray         # (n_axons,) neuron index within that population
    axon_core: np.ndarray               # (n_axons,) destination core
    axon_local: np.ndarray              # (n_axons,) axon index within the destination core
    # Synapses sorted by (global axon id, projection index in net.projections, post compartment local index):
    syn_axon: np.ndarray                # (n_syn,) global axon id (index into the axon_* arrays)
    syn_proj: np.ndarray                # (n_syn,) index into net.projections
    syn_local: np.ndarray               # (n_syn,) post compartment index within the axon's core
    syn_weight: np.ndarray              # (n_syn,) int64 weight mantissa (after quantize)
    core_input_axons: np.ndarray        # (n_cores,)
    core_output_axons: np.ndarray       # (n_cores,) sum over the core's compartments of the number of distinct destination cores it sends to
    core_synapse_bits: np.ndarray       # (n_cores,)
    core_compartment_configs: np.ndarray  # (n_cores,) distinct (decay_u, decay_v, threshold, refractory) per core
    core_synapse_formats: np.ndarray      # (n_cores,) distinct synapse formats (weight_bits, sign, exponent, delay_bits, indexed) per core


# ---------------------------------------------------------------------------------------------
# Shared helpers (also used by partition)
# ---------------------------------------------------------------------------------------------
def chip_core_limit(target: Target) -> int:
    """Cores available on the board: chip.cores x chip.chips."""
    return int(target.get("chip.cores")) * int(target.get("chip.chips"))


def check_chip_cores(n_cores: int, cores_per_population: dict[str, int], target: Target) -> None:
    """Raise ResourceError when ``n_cores`` exceeds the board, naming the biggest populations."""
    limit = chip_core_limit(target)
    if n_cores <= limit:
        return
    ranked = sorted(cores_per_population.items(), key=lambda kv: -kv[1])[:3]  # stable: ties keep IR order
    most = ", ".join(f"'{name}' ({n})" for name, n in ranked)
    raise ResourceError(f"network needs {n_cores} cores, exceeded max (chip.cores x chip.chips = {limit}) by "
                        f"{n_cores - limit}; populations using the most cores: {most}; shrink the network or "
                        "raise chip.chips")


def neuron_config_ids(net: Network) -> dict[str, np.ndarray | int]:
    """Every non-input neuron's compartment config -- its (decay_u, decay_v, threshold,
    refractory) -- as an id, numbered in order of first appearance (population order, then neuron
    order). A population whose neurons share one config gets a plain int; one whose neurons differ
    gets an int64 array of ids, one per neuron (the chip then holds several configs for it)."""
    ids: dict[tuple[Any, ...], int] = {}
    out: dict[str, np.ndarray | int] = {}
    for pop in net.populations:
        if pop.is_input:
            continue
        cols = [np.asarray(pop.param_array(k), dtype=np.float64)
                for k in CONFIG_PARAMS_BY_MODEL.get(pop.model, CONFIG_PARAMS)]
        if all(c.size == 0 or np.all(c == c[0]) for c in cols):
            out[pop.name] = ids.setdefault((pop.model, *(float(c[0]) if c.size else 0.0 for c in cols)), len(ids))
            continue
        rows, first, inverse = np.unique(np.column_stack(cols), axis=0, return_index=True, return_inverse=True)
        local = np.empty(rows.shape[0], dtype=np.int64)
        for r in np.argsort(first, kind="stable").tolist():  # first-appearance order
            local[r] = ids.setdefault((pop.model, *rows[r].tolist()), len(ids))
        out[pop.name] = local[inverse.reshape(-1)]
    return out


def first_appearance_ids(items: list[Any]) -> np.ndarray:
    """Number equal items 0, 1, ... in order of first appearance (deterministic, needs no sort)."""
    seen: dict[Any, int] = {}
    return np.array([seen.setdefault(x, len(seen)) for x in items], dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Placement -> compartments
# ---------------------------------------------------------------------------------------------
def placement_slices(net: Network) -> np.ndarray:
    """All placement slices as rows (population index, core, start, stop), validated.

    Raises IrError when a non-input population has no placement, or its slices do not cover each
    neuron exactly once.
    """
    rows: list[tuple[int, int, int, int]] = []
    for i, pop in enumerate(net.populations):
        if pop.is_input:
            continue
        loc = f"population '{pop.name}'"
        placement = pop.attrs.get("placement")
        if placement is None:
            raise IrError("no placement; run partition first", location=loc)
        cover = np.zeros(pop.size + 1, dtype=np.int64)
        for item in placement:
            if not (isinstance(item, (list, tuple)) and len(item) == 3 and all(isinstance(x, int) for x in item)):
                raise IrError(f"placement entries must be [core, start, stop] integers, got {item!r}", location=loc)
            core, start, stop = item
            if core < 0 or not 0 <= start < stop <= pop.size:
                raise IrError(f"placement slice {list(item)} is out of range (size {pop.size})", location=loc)
            cover[start] += 1
            cover[stop] -= 1
            rows.append((i, core, start, stop))
        times = np.cumsum(cover[:-1])
        if np.any(times != 1):
            bad = int(np.flatnonzero(times != 1)[0])
            raise IrError(f"placement puts neuron {bad} on {int(times[bad])} cores (must be exactly 1)", location=loc)
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def _compartments(net: Network, slices: np.ndarray, n_cores: int) -> tuple[dict[str, np.ndarray],
                                                                             dict[str, np.ndarray], np.ndarray]:
    """Core and local compartment index of every neuron. Within a core, compartments are numbered
    by (population index, neuron index), so the slices of one population stay consecutive."""
    pops = net.populations
    order = np.lexsort((slices[:, 2], slices[:, 0], slices[:, 1]))  # by core, population, start
    s = slices[order]
    lengths = s[:, 3] - s[:, 2]
    ends = np.cumsum(lengths)
    core_start = np.zeros(n_cores + 1, dtype=np.int64)
    np.add.at(core_start, s[:, 1] + 1, lengths)
    core_start = np.cumsum(core_start)
    base = ends - lengths - core_start[s[:, 1]]  # local index of each slice's first neuron
    pop_core = {p.name: np.full(p.size, -1, dtype=np.int64) for p in pops if not p.is_input}
    pop_local = {p.name: np.full(p.size, -1, dtype=np.int64) for p in pops if not p.is_input}
    for (pi, core, start, stop), b in zip(s.tolist(), base.tolist()):
        name = pops[pi].name
        pop_core[name][start:stop] = core
        pop_local[name][start:stop] = np.arange(b, b + stop - start)
    core_compartments = np.diff(core_start)
    return pop_core, pop_local, core_compartments


def _core_configs(net: Network, pop_core: dict[str, np.ndarray], n_cores: int) -> np.ndarray:
    """Distinct compartment configs per core."""
    cfg = neuron_config_ids(net)
    n_cfg = 1 + max((int(np.max(v)) for v in cfg.values()), default=0)
    keys = [unique_sorted(pop_core[name] * n_cfg + ids) for name, ids in cfg.items()]
    pairs = unique_sorted(np.concatenate(keys)) if keys else np.zeros(0, dtype=np.int64)
    return np.bincount(pairs // n_cfg, minlength=n_cores).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Synapses and axons
# ---------------------------------------------------------------------------------------------
def integer_weights(proj: Projection, values: np.ndarray) -> np.ndarray:
    """Weight values as int64 mantissas; IrError when they are not integers (not quantized)."""
    w = np.asarray(values)
    if w.dtype.kind == "f":
        if not np.all(w == np.floor(w)):
            raise IrError("weights are not integer mantissas; run quantize first", location=f"projection '{proj.name}'")
    return w.astype(np.int64)


def _gather_synapses(net: Network, offsets: np.ndarray, pop_core: dict[str, np.ndarray],
                     pop_local: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Every synapse as (source global neuron id, destination core, projection, local, weight)."""
    pop_index = {p.name: i for i, p in enumerate(net.populations)}
    sizes = {p.name: p.size for p in net.populations}
    parts: list[tuple[np.ndarray, ...]] = []
    for j, proj in enumerate(net.projections):
        pre, post, w = proj.coo(sizes[proj.pre], sizes[proj.post])
        parts.append((offsets[pop_index[proj.pre]] + pre.astype(np.int64),
                      pop_core[proj.post][post], np.full(pre.size, j, dtype=np.int64),
                      pop_local[proj.post][post], integer_weights(proj, w)))
    if not parts:
        return tuple(np.zeros(0, dtype=np.int64) for _ in range(5))
    return tuple(np.concatenate(cols) for cols in zip(*parts))


def _synapse_order(axon_key: np.ndarray, proj: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Permutation sorting synapses by (axon key, projection, local). One argsort of a combined
    int64 key when it cannot overflow (much faster than lexsort on 10^6 synapses)."""
    if axon_key.size == 0:
        return np.zeros(0, dtype=np.int64)
    n_local = int(local.max()) + 1
    n_proj = int(proj.max()) + 1
    if (int(axon_key.max()) + 1) * n_proj * n_local < 2 ** 62:
        return np.argsort((axon_key * n_proj + proj) * n_local + local, kind="stable")
    return np.lexsort((local, proj, axon_key))


def _sorted_synapses(axon_key: np.ndarray, proj: np.ndarray, local: np.ndarray,
                     weight: np.ndarray) -> tuple[np.ndarray, ...]:
    """The synapses sorted by (axon key, projection, local), as (axon key, projection, local,
    weight) arrays.

    When one int64 holds all four, a plain sort of that key does it: no permutation, so no
    random-access gather of each array by it, which on 10^7 synapses (arrays far larger than the
    caches) cost more than the sort. No two synapses share (axon, projection, local), so the
    weight in the low bits decides no order. Otherwise: an argsort and gathers."""
    if axon_key.size == 0:
        return axon_key, proj, local, weight
    n_local = int(local.max()) + 1
    n_proj = int(proj.max()) + 1
    w_lo, w_hi = int(weight.min()), int(weight.max())
    n_w = w_hi - w_lo + 1
    if (int(axon_key.max()) + 1) * n_proj * n_local * n_w < 2 ** 62:
        key = ((axon_key * n_proj + proj) * n_local + local) * n_w + (weight - w_lo)
        key.sort()
        rest, w = np.divmod(key, n_w)
        rest, loc = np.divmod(rest, n_local)
        ak, pj = np.divmod(rest, n_proj)
        return ak, pj, loc, w + w_lo
    order = _synapse_order(axon_key, proj, local)
    return axon_key[order], proj[order], local[order], weight[order]


def build_layout(net: Network, target: Target) -> Layout:
    """Compartments, axons and synapses of a network whose non-input populations all carry a
    ``placement`` (see partition); weights must be integer mantissas (see quantize)."""
    pops, projs = net.populations, net.projections
    slices = placement_slices(net)
    n_cores = int(slices[:, 1].max()) + 1 if len(slices) else 0
    pop_core, pop_local, core_compartments = _compartments(net, slices, n_cores)
    sizes = np.array([p.size for p in pops], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n_total = int(offsets[-1])

    src, dst_core, proj_of, local, weight = _gather_synapses(net, offsets, pop_core, pop_local)
    axon_key = dst_core * n_total + src  # sorts as (destination core, population, neuron)
    del src, dst_core
    axon_key, proj_of, local, weight = _sorted_synapses(axon_key, proj_of, local, weight)

    new_axon = np.ones(axon_key.size, dtype=bool)
    new_axon[1:] = axon_key[1:] != axon_key[:-1]
    syn_axon = np.cumsum(new_axon) - 1
    axon_keys = axon_key[new_axon]
    axon_core = axon_keys // max(n_total, 1)
    axon_src = axon_keys % max(n_total, 1)
    axon_src_pop = np.searchsorted(offsets, axon_src, side="right") - 1
    core_first_axon = np.searchsorted(axon_core, np.arange(n_cores))
    axon_local = np.arange(axon_keys.size) - core_first_axon[axon_core]

    # A source neuron sends one output axon per destination core; input neurons are fed by the host.
    neuron_core = np.full(n_total, -1, dtype=np.int64)
    for i, p in enumerate(pops):
        if not p.is_input:
            neuron_core[offsets[i]:offsets[i + 1]] = pop_core[p.name]
    src_core = neuron_core[axon_src]
    core_output_axons = np.bincount(src_core[src_core >= 0], minlength=n_cores)

    bits, formats = _synapse_memory(projs, target, syn_axon, proj_of, new_axon, axon_core, n_cores)
    return Layout(
        n_cores=n_cores, pop_core=pop_core, pop_local=pop_local,
        core_compartments=core_compartments.astype(np.int64),
        axon_src_pop=axon_src_pop.astype(np.int64), axon_src_neuron=(axon_src - offsets[axon_src_pop]).astype(np.int64),
        axon_core=axon_core.astype(np.int64), axon_local=axon_local.astype(np.int64),
        syn_axon=syn_axon.astype(np.int64), syn_proj=proj_of, syn_local=local, syn_weight=weight,
        core_input_axons=np.bincount(axon_core, minlength=n_cores).astype(np.int64),
        core_output_axons=core_output_axons.astype(np.int64),
        core_synapse_bits=bits,
        core_compartment_configs=_core_configs(net, pop_core, n_cores),
        core_synapse_formats=formats,
    )


def _synapse_memory(projs: list[Projection], target: Target, syn_axon: np.ndarray, proj_of: np.ndarray,
                    new_axon: np.ndarray, axon_core: np.ndarray, n_cores: int) -> tuple[np.ndarray, np.ndarray]:
    """Synapse memory bits and distinct synapse formats per core.

    The synapses of one axon from one projection form a run in the sorted order; each run is
    packed into groups (:func:`nmc.formats.loihi.synapse_group_bits`).
    """
    n_syn = proj_of.size
    if n_syn == 0:
        return np.zeros(n_cores, dtype=np.int64), np.zeros(n_cores, dtype=np.int64)
    new_run = new_axon.copy()
    new_run[1:] |= proj_of[1:] != proj_of[:-1]
    starts = np.flatnonzero(new_run)
    counts = np.diff(np.append(starts, n_syn))
    run_proj = proj_of[starts]
    run_core = axon_core[syn_axon[starts]]
    bps = np.array([fmt.projection_bits_per_synapse(p, target) for p in projs], dtype=np.int64)
    run_bits = fmt.synapse_group_bits(counts, bps[run_proj], target)
    bits = np.zeros(n_cores, dtype=np.int64)
    np.add.at(bits, run_core, run_bits)
    fmt_ids = first_appearance_ids([fmt.synapse_format(p, target) for p in projs])
    n_fmt = int(fmt_ids.max()) + 1
    pairs = unique_sorted(run_core * n_fmt + fmt_ids[run_proj])
    return bits, np.bincount(pairs // n_fmt, minlength=n_cores).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Reading a layout
# ---------------------------------------------------------------------------------------------
def core_population_names(layout: Layout, net: Network) -> list[list[str]]:
    """Names of the populations with compartments on each core, in network order."""
    out: list[list[str]] = [[] for _ in range(layout.n_cores)]
    for pop in net.populations:
        if pop.is_input:
            continue
        for core in unique_sorted(layout.pop_core[pop.name]).tolist():
            out[core].append(pop.name)
    return out


def core_limit_violations(layout: Layout, target: Target) -> list[tuple[int, str, int, str, int, str]]:
    """Every (core, resource, needed, limit name, limit, hint) over a per-core limit, by resource
    (in :data:`CORE_LIMITS` order) then core."""
    out = []
    for resource, field, key, hint in CORE_LIMITS:
        limit = int(target.get(key))
        used = getattr(layout, field)
        for core in np.flatnonzero(used > limit).tolist():
            out.append((core, resource, int(used[core]), key, limit, hint))
    return out


# ---------------------------------------------------------------------------------------------
# Exact incremental resource counting
# ---------------------------------------------------------------------------------------------
@dataclass
class Demand:
    """What a slice of post neurons needs on a core. ``keys`` are sorted unique
    ``source * n_projections + projection`` (one per axon and projection), ``counts`` the synapses
    of each; ``sources`` are the global ids of the source neurons (one input axon each)."""

    compartments: int
    keys: np.ndarray
    counts: np.ndarray
    sources: np.ndarray
    configs: frozenset[int]
    formats: frozenset[int]


@dataclass
class CoreUsage:
    """What is already on one core (same encoding as :class:`Demand`)."""

    compartments: int = 0
    keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sources: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    synapse_bits: int = 0
    configs: set[int] = field(default_factory=set)
    formats: set[int] = field(default_factory=set)


def _lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``keys`` in ``sorted_keys`` and whether each is present."""
    if sorted_keys.size == 0:
        return np.zeros(keys.size, dtype=np.int64), np.zeros(keys.size, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return pos, sorted_keys[pos] == keys


class ResourceModel:
    """Per-core resource counts for candidate slices, computed from fan-in tables.

    Input axons and synapse bits depend only on the post neurons on a core and their sources,
    not on where the sources sit, so not-yet-placed populations count like placed ones.
    """

    def __init__(self, net: Network, target: Target) -> None:
        self.target = target
        pops, projs = net.populations, net.projections
        self.n_proj = max(len(projs), 1)
        pop_index = {p.name: i for i, p in enumerate(pops)}
        sizes = np.array([p.size for p in pops], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.bits_per_synapse = np.array([fmt.projection_bits_per_synapse(p, target) for p in projs] or [0],
                                         dtype=np.int64)
        self.format_id = first_appearance_ids([fmt.synapse_format(p, target) for p in projs])
        self.config_ids = neuron_config_ids(net)
        self.limits = {key: int(target.get(key)) for _, _, key, _ in CORE_LIMITS}
        self._index = {key: i for i, (_, _, key, _) in enumerate(CORE_LIMITS)}
        self.sizes = sizes
        self.max_neurons_per_core = self.limits["core.max_compartments"]
        self.geometry = fmt.synapse_group_geometry(target)
        # Fan-in of each population: (projection index, connectivity, pre offset, n_pre, sparse table).
        self.fan_in: dict[str, list[tuple[int, str, int, int, tuple[np.ndarray, np.ndarray] | None]]] = {
            p.name: [] for p in pops}
        for j, proj in enumerate(projs):
            sparse = None
            if proj.connectivity == "sparse":
                post = np.asarray(proj.post_index, dtype=np.int64)
                order = np.argsort(post, kind="stable")
                sparse = (post[order], np.asarray(proj.pre_index, dtype=np.int64)[order])
            i = pop_index[proj.pre]
            self.fan_in[proj.post].append((j, proj.connectivity, int(self.offsets[i]), int(sizes[i]), sparse))

    max_neurons_per_core: int

    def new_core(self) -> CoreUsage:
        return CoreUsage()

    @staticmethod
    def neurons_on(core: CoreUsage) -> int:
        return core.compartments

    def uniform(self, pop: Population) -> bool:
        """True when every neuron of ``pop`` has the same demand: one compartment config and only
        dense / one_to_all inputs."""
        return (isinstance(self.config_ids[pop.name], int)
                and all(conn in fmt.UNINDEXED_CONNECTIVITIES for _, conn, _, _, _ in self.fan_in[pop.name]))

    def _configs(self, pop: Population, start: int, stop: int) -> frozenset[int]:
        ids = self.config_ids[pop.name]
        if isinstance(ids, int):
            return frozenset((ids,))
        return frozenset(np.unique(ids[start:stop]).tolist())

    def demand(self, pop: Population, start: int, stop: int) -> Demand:
        """The demand of neurons ``start..stop-1`` of ``pop``."""
        keys, counts, formats = [], [], set()
        for j, conn, off, n_pre, sparse in self.fan_in[pop.name]:
            if conn in fmt.UNINDEXED_CONNECTIVITIES:
                src = off + np.arange(n_pre, dtype=np.int64)
                cnt = np.full(n_pre, stop - start, dtype=np.int64)
            elif conn == "one_to_one":
                src = off + np.arange(start, stop, dtype=np.int64)
                cnt = np.ones(stop - start, dtype=np.int64)
            else:
                post_sorted, pre_sorted = sparse  # type: ignore[misc]
                lo, hi = np.searchsorted(post_sorted, [start, stop])
                pre, cnt = np.unique(pre_sorted[lo:hi], return_counts=True)
                src = off + pre
            if src.size:
                formats.add(int(self.format_id[j]))
            keys.append(src * self.n_proj + j)
            counts.append(cnt)
        if not keys:
            empty = np.zeros(0, dtype=np.int64)
            return Demand(stop - start, empty, empty, empty, self._configs(pop, start, stop), frozenset())
        all_keys = np.concatenate(keys)
        order = np.argsort(all_keys)
        all_keys = all_keys[order]
        src = all_keys // self.n_proj  # sorted, since keys sort by source first
        first = np.ones(src.size, dtype=bool)
        first[1:] = src[1:] != src[:-1]
        return Demand(stop - start, all_keys, np.concatenate(counts)[order], src[first],
                      self._configs(pop, start, stop), frozenset(formats))

    def _bits_delta(self, core: CoreUsage, d: Demand) -> int:
        """Synapse memory added by ``d``: groups are per (axon, projection), so keys already on
        the core are re-packed with their old synapses."""
        bps = self.bits_per_synapse[d.keys % self.n_proj]
        pos, found = _lookup(core.keys, d.keys)
        if not found.any():
            return int(fmt.group_bits(d.counts, bps, *self.geometry).sum())
        old = np.where(found, core.counts[pos], 0)
        return int((fmt.group_bits(old + d.counts, bps, *self.geometry)
                    - fmt.group_bits(old, bps, *self.geometry)).sum())

    def _usage(self, core: CoreUsage, d: Demand, key: str) -> int:
        """The core's use of the resource limited by ``key`` if ``d`` were added."""
        if key == "core.max_compartments":
            return core.compartments + d.compartments
        if key == "core.max_input_axons":
            return core.sources.size + int((~_lookup(core.sources, d.sources)[1]).sum())
        if key == "core.synapse_memory_bits":
            return core.synapse_bits + self._bits_delta(core, d)
        if key == "core.max_compartment_configs":
            return len(core.configs | d.configs)
        if key == "core.max_synapse_formats":
            return len(core.formats | d.formats)
        raise KeyError(key)

    def violation(self, core: CoreUsage, d: Demand) -> tuple[str, int, str, int, str] | None:
        """The first limit ``d`` would break on ``core``: (resource, needed, limit name, limit, hint).

        Checked lazily in :data:`CORE_LIMITS` order; output axons are left to allocate (they depend
        on where the targets sit).
        """
        for resource, _, key, hint in CORE_LIMITS:
            if key != "core.max_output_axons":
                needed = self._usage(core, d, key)
                if needed > self.limits[key]:
                    return resource, needed, key, self.limits[key], hint
        return None

    def commit(self, core: CoreUsage, d: Demand) -> None:
        """Add ``d`` to ``core``."""
        core.synapse_bits += self._bits_delta(core, d)
        core.compartments += d.compartments
        keys = np.concatenate([core.keys, d.keys])
        uniq, inv = unique_inverse(keys)
        core.counts = np.bincount(inv, weights=np.concatenate([core.counts, d.counts]),
                                  minlength=uniq.size).astype(np.int64)
        core.keys = uniq
        core.sources = unique_sorted(np.concatenate([core.sources, d.sources]))
        core.configs |= d.configs
        core.formats |= d.formats

    # -- the vector view (nmc.lowering.ResourceModel) ------------------------------------------
    def resources(self) -> list[Resource]:
        """The per-core limits of :data:`CORE_LIMITS`; output axons are a ``fanout`` resource
        (one per destination core of each neuron, counted by the partitioner)."""
        return [Resource(name, key, self.limits[key], hint, "fanout" if key == "core.max_output_axons" else "slice")
                for name, _, key, hint in CORE_LIMITS]

    def vector(self, d: Demand) -> DemandVector:
        """Compartments and synapse bits add up over slices (synapse groups of two slices on one
        axon are packed together on the chip, which is at most the sum except in rare
        repacking cases the partitioner re-checks exactly). Input axons add up too, except that a
        source population every neuron of which feeds the slice is a shared item: slices sharing
        it need its axons once. Compartment configs and synapse formats are shared items."""
        amounts = np.zeros(len(CORE_LIMITS), dtype=np.int64)
        amounts[self._index["core.max_compartments"]] = d.compartments
        amounts[self._index["core.synapse_memory_bits"]] = self._bits_delta(CoreUsage(), d)
        shared: list[tuple[str, int]] = []
        if d.sources.size:
            pop = np.searchsorted(self.offsets, d.sources, side="right") - 1
            per_pop = np.bincount(pop, minlength=self.sizes.size)
            full = np.flatnonzero((per_pop == self.sizes) & (self.sizes > 0))
            shared += [("src", int(i)) for i in full.tolist()]
            amounts[self._index["core.max_input_axons"]] = int(d.sources.size - per_pop[full].sum())
        shared += [("cfg", c) for c in sorted(d.configs)]
        shared += [("fmt", f) for f in sorted(d.formats)]
        return DemandVector(amounts, tuple(shared))

    def shared_cost(self, key: tuple[str, int]) -> np.ndarray:
        cost = np.zeros(len(CORE_LIMITS), dtype=np.int64)
        kind, i = key
        if kind == "src":
            cost[self._index["core.max_input_axons"]] = int(self.sizes[i])
        elif kind == "cfg":
            cost[self._index["core.max_compartment_configs"]] = 1
        elif kind == "fmt":
            cost[self._index["core.max_synapse_formats"]] = 1
        else:
            raise KeyError(key)
        return cost

    @staticmethod
    def sources(d: Demand) -> np.ndarray:
        """Global ids of the slice's source neurons (one input axon each)."""
        return d.sources


# ---------------------------------------------------------------------------------------------
# Checking a layout against the limits, and the part the target file names
# ---------------------------------------------------------------------------------------------
def check_layout(layout: Layout, names: list[list[str]], target: Target) -> None:
    """Raise ResourceError for the first broken limit: the board's core count, then per core
    output axons and the other limits (in the order of ``CORE_LIMITS``)."""
    used = np.flatnonzero(layout.core_compartments > 0)
    per_pop = {name: int(unique_sorted(cores).size) for name, cores in layout.pop_core.items()}
    check_chip_cores(int(used.size), per_pop, target)
    problems = core_limit_violations(layout, target)
    # Output axons first: no earlier pass could check them.
    problems.sort(key=lambda p: p[1] != "output axons")
    if not problems:
        return
    core, resource, needed, key, limit, hint = problems[0]
    others = sum(1 for p in problems if p[1] == resource) - 1
    more = f" ({others} more cores over this limit)" if others else ""
    pops = ", ".join(f"'{n}'" for n in names[core])
    raise ResourceError(resource_message(resource, needed, key, limit, hint) + more,
                        location=f"core {core} (populations {pops})")


def core_table(layout: Layout, names: list[list[str]]) -> list[dict[str, Any]]:
    """Per-core resource use as plain ints and strings (printable in the IR)."""
    return [
        {
            "core": c,
            "compartments": int(layout.core_compartments[c]),
            "input_axons": int(layout.core_input_axons[c]),
            "output_axons": int(layout.core_output_axons[c]),
            "synapse_bits": int(layout.core_synapse_bits[c]),
            "compartment_configs": int(layout.core_compartment_configs[c]),
            "synapse_formats": int(layout.core_synapse_formats[c]),
            "populations": list(names[c]),
        }
        for c in range(layout.n_cores)
    ]


class LoihiLayoutModel:
    """The ``layout`` part of the Loihi-like target (:class:`nmc.lowering.LayoutModel`)."""

    #: Tables of the target file that hold counts (at least 1 each; coordinates in lists from 0).
    integer_tables = {"chip": 1, "core": 1}

    #: Columns of the per-core resource report: (title, key in the core table, limit key).
    report_columns = (("compartments", "compartments", "core.max_compartments"),
                      ("input axons", "input_axons", "core.max_input_axons"),
                      ("output axons", "output_axons", "core.max_output_axons"),
                      ("synapse bits", "synapse_bits", "core.synapse_memory_bits"),
                      ("cx cfgs", "compartment_configs", "core.max_compartment_configs"),
                      ("syn fmts", "synapse_formats", "core.max_synapse_formats"))

    def __init__(self, target: Target) -> None:
        self.target = target

    def resource_model(self, net: Network) -> ResourceModel:
        return ResourceModel(net, self.target)

    def check_cores(self, n_cores: int, cores_per_population: dict[str, int]) -> None:
        check_chip_cores(n_cores, cores_per_population, self.target)

    def size_limit(self) -> SizeLimit:
        """Compartments and input axons of the whole board (one neuron, one compartment)."""
        cores = chip_core_limit(self.target)
        return SizeLimit(neurons=cores * int(self.target.get("core.max_compartments")),
                         neurons_key="chip.cores x chip.chips x core.max_compartments",
                         input_units=cores * int(self.target.get("core.max_input_axons")),
                         input_key="chip.cores x chip.chips x core.max_input_axons")

    def allocate(self, net: Network, diagnostics: Any = None) -> list[dict[str, Any]]:
        """Lay out compartments, axons and synapses per core, check every limit (output axons
        first: only a complete placement can count them), and return the per-core table."""
        layout = build_layout(net, self.target)
        names = core_population_names(layout, net)
        check_layout(layout, names, self.target)
        return core_table(layout, names)

    def geometry(self) -> "LoihiGeometry":
        return LoihiGeometry(self.target)

    def neurons_per_core(self) -> int:
        return int(self.target.get("core.max_compartments"))


class LoihiGeometry:
    """Cores on the Loihi-like mesh (:class:`nmc.lowering.Geometry`): ``chip.cores_per_tile``
    cores share a router tile, tiles form a mesh ``chip.mesh_tiles`` = [x, y] wide per chip, and
    chips continue the mesh northwards (chip k holds tile rows k*y .. k*y + y - 1). Core ids are
    numbered tile by tile, so this is exactly how the interpreter's cost model counts hops."""

    def __init__(self, target: Target) -> None:
        self.cores_per_chip = int(target.get("chip.cores"))
        self.chips = int(target.get("chip.chips"))
        self.per_tile = int(target.get("chip.cores_per_tile"))
        self.tiles_x = int(target.get("chip.mesh_tiles")[0])

    def _tile_xy(self, cores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tile = np.asarray(cores, dtype=np.int64) // self.per_tile
        return tile % self.tiles_x, tile // self.tiles_x

    def hops(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ax, ay = self._tile_xy(a)
        bx, by = self._tile_xy(b)
        return np.abs(ax - bx) + np.abs(ay - by)

    def xy(self, cores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tile position plus the core's place in a square of the tile's cores."""
        cores = np.asarray(cores, dtype=np.int64)
        tx, ty = self._tile_xy(cores)
        side = max(1, int(np.ceil(np.sqrt(self.per_tile))))
        k = cores % self.per_tile
        return tx + (k % side + 0.5) / (side + 0.5), ty + (k // side + 0.5) / (side + 0.5)
