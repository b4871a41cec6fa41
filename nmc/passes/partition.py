"""``partition``: split every non-input population into slices and assign them to cores.

Reads populations (size, params), projections (connectivity, weights or indices, delay, and the
synapse format set by quantize) and the per-core limits; writes ``pop.attrs["placement"] =
[[core, start, stop], ...]`` on every non-input population and ``net.attrs["cores_used"]``.

The algorithm sits behind the :class:`Partitioner` interface, chosen by the ``solver`` option.
Each partitioner counts resources with :class:`ResourceModel`, which is exact: it gives the
same per-core numbers as :func:`nmc.passes.layout.build_layout` for the same placement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from ..diagnostics import Diagnostics
from ..errors import PipelineError, ResourceError
from ..formats import loihi as fmt
from ..ir.network import Network, Population
from ..target import Target
from .layout import CORE_LIMITS, check_chip_cores, compartment_config, first_appearance_ids, resource_message
from .registry import PassContext, register_pass

Placement = dict[str, list[list[int]]]


class Partitioner(Protocol):
    """Maps every non-input population to slices ``[core, start, stop]`` within the core limits."""

    name: str

    def partition(self, net: Network, target: Target, diagnostics: Diagnostics) -> Placement: ...


_PARTITIONERS: dict[str, Callable[[], Partitioner]] = {}


def register_partitioner(name: str, factory: Callable[[], Partitioner]) -> None:
    """Make ``factory`` available as ``partition{solver=<name>}``."""
    if name in _PARTITIONERS:
        raise RuntimeError(f"partitioner '{name}' registered twice")
    _PARTITIONERS[name] = factory


def available_partitioners() -> list[str]:
    return sorted(_PARTITIONERS)


def get_partitioner(name: str) -> Partitioner:
    if name not in _PARTITIONERS:
        raise PipelineError(f"partition: unknown solver '{name}' (available: {', '.join(available_partitioners())})")
    return _PARTITIONERS[name]()


@register_pass("partition", options={"solver": str})
def partition(net: Network, ctx: PassContext, solver: str = "first-fit") -> Network:
    """Assign the neurons of every non-input population to cores within the per-core limits."""
    partitioner = get_partitioner(solver)
    placement = partitioner.partition(net, ctx.target, ctx.diagnostics)
    missing = [p.name for p in net.populations if not p.is_input and p.name not in placement]
    if missing:  # a partitioner bug, not a user error
        raise RuntimeError(f"partitioner '{partitioner.name}' placed no neurons of {missing}")
    cores_per_pop: dict[str, int] = {}
    for pop in net.populations:
        if pop.is_input:
            pop.attrs.pop("placement", None)  # the host feeds input spikes; no compartments
            continue
        slices = [[int(c), int(a), int(b)] for c, a, b in placement[pop.name]]
        pop.attrs["placement"] = slices
        cores_per_pop[pop.name] = len({c for c, _, _ in slices})
    used = sorted({c for slices in placement.values() for c, _, _ in slices})
    check_chip_cores(len(used), cores_per_pop, ctx.target)
    net.attrs["cores_used"] = len(used)
    net.attrs.pop("cores", None)  # a previous allocate's table no longer matches
    return net


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
    config: int
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
        self.config_id = dict(zip((p.name for p in pops),
                                  first_appearance_ids([None if p.is_input else compartment_config(p)
                                                        for p in pops]).tolist()))
        self.limits = {key: int(target.get(key)) for _, _, key, _ in CORE_LIMITS}
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

    def uniform(self, pop: Population) -> bool:
        """True when every neuron of ``pop`` has the same demand (only dense / one_to_all inputs)."""
        return all(conn in fmt.UNINDEXED_CONNECTIVITIES for _, conn, _, _, _ in self.fan_in[pop.name])

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
            return Demand(stop - start, empty, empty, empty, self.config_id[pop.name], frozenset())
        all_keys = np.concatenate(keys)
        order = np.argsort(all_keys)
        all_keys = all_keys[order]
        src = all_keys // self.n_proj  # sorted, since keys sort by source first
        first = np.ones(src.size, dtype=bool)
        first[1:] = src[1:] != src[:-1]
        return Demand(stop - start, all_keys, np.concatenate(counts)[order], src[first],
                      self.config_id[pop.name], frozenset(formats))

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
            return len(core.configs | {d.config})
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
        uniq, inv = np.unique(keys, return_inverse=True)
        core.counts = np.bincount(inv, weights=np.concatenate([core.counts, d.counts]),
                                  minlength=uniq.size).astype(np.int64)
        core.keys = uniq
        core.sources = np.union1d(core.sources, d.sources)
        core.configs.add(d.config)
        core.formats |= d.formats


# ---------------------------------------------------------------------------------------------
# First fit
# ---------------------------------------------------------------------------------------------
class FirstFitPartitioner:
    """Populations in network order; each time, the largest prefix of the remaining neurons that
    fits goes to the lowest-numbered core with room for at least one of them (new cores are opened
    as needed). The prefix length is found by binary search (resource use grows with it)."""

    name = "first-fit"

    def partition(self, net: Network, target: Target, diagnostics: Diagnostics) -> Placement:
        model = ResourceModel(net, target)
        cores: list[CoreUsage] = []
        placement: Placement = {}
        for pop in net.populations:
            if not pop.is_input:
                placement[pop.name] = self._place_population(pop, model, cores)
        return placement

    def _place_population(self, pop: Population, model: ResourceModel, cores: list[CoreUsage]) -> list[list[int]]:
        slices: list[list[int]] = []
        # With identical neurons, a core that rejects one neuron rejects them all: skip it later.
        uniform = model.uniform(pop)
        rejected: set[int] = set()
        start = 0
        while start < pop.size:
            one = model.demand(pop, start, start + 1)
            core_id = self._first_core_with_room(one, model, cores, rejected if uniform else None)
            if core_id is None:
                problem = model.violation(CoreUsage(), one)
                if problem is not None:
                    resource, needed, key, limit, hint = problem
                    raise ResourceError(resource_message(f"{resource} for one neuron", needed, key, limit, hint),
                                        location=f"population '{pop.name}'")
                cores.append(CoreUsage())
                core_id = len(cores) - 1
            count = self._largest_prefix(pop, start, model, cores[core_id])
            model.commit(cores[core_id], model.demand(pop, start, start + count))
            slices.append([core_id, start, start + count])
            start += count
        return slices

    @staticmethod
    def _first_core_with_room(one: Demand, model: ResourceModel, cores: list[CoreUsage],
                              rejected: set[int] | None) -> int | None:
        full = model.limits["core.max_compartments"]
        for c, core in enumerate(cores):
            if core.compartments >= full or (rejected is not None and c in rejected):
                continue
            if model.violation(core, one) is None:
                return c
            if rejected is not None:
                rejected.add(c)
        return None

    @staticmethod
    def _largest_prefix(pop: Population, start: int, model: ResourceModel, core: CoreUsage) -> int:
        """Largest n with neurons start..start+n-1 fitting on ``core`` (n = 1 is known to fit)."""
        lo = 1
        hi = min(pop.size - start, model.limits["core.max_compartments"] - core.compartments)
        if hi > lo and model.violation(core, model.demand(pop, start, start + hi)) is None:
            return hi  # the common case: everything left fits
        hi -= 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if model.violation(core, model.demand(pop, start, start + mid)) is None:
                lo = mid
            else:
                hi = mid - 1
        return lo


register_partitioner(FirstFitPartitioner.name, FirstFitPartitioner)
