"""``partition``: split every non-input population into slices and assign them to cores.

Reads populations (size, params), projections (connectivity, weights or indices, delay, and the
synapse format set by quantize) and the per-core limits; writes ``pop.attrs["placement"] =
[[core, start, stop], ...]`` on every non-input population and ``net.attrs["cores_used"]``.

The algorithm sits behind the :class:`Partitioner` interface, chosen by the ``solver`` option.
Each partitioner counts resources with the target's resource model (the ``layout`` part the
target file names, :class:`nmc.lowering.ResourceModel`), which is exact: for the Loihi-like chip
it gives the same per-core numbers as :func:`nmc.lowering.loihi_layout.build_layout`.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from ..diagnostics import Diagnostics
from ..errors import PipelineError, ResourceError
from ..ir.network import Network, Population
from ..lowering import ResourceModel
from ..lowering.common import resource_message
from ..target import Target
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
    ctx.target.part("layout")(ctx.target).check_cores(len(used), cores_per_pop)
    net.attrs["cores_used"] = len(used)
    net.attrs.pop("cores", None)  # a previous allocate's table no longer matches
    return net


# ---------------------------------------------------------------------------------------------
# First fit
# ---------------------------------------------------------------------------------------------
class FirstFitPartitioner:
    """Populations in network order; each time, the largest prefix of the remaining neurons that
    fits goes to the lowest-numbered core with room for at least one of them (new cores are opened
    as needed). The prefix length is found by binary search (resource use grows with it)."""

    name = "first-fit"

    def partition(self, net: Network, target: Target, diagnostics: Diagnostics) -> Placement:
        model = target.part("layout")(target).resource_model(net)
        cores: list[Any] = []
        placement: Placement = {}
        for pop in net.populations:
            if not pop.is_input:
                placement[pop.name] = self._place_population(pop, model, cores)
        return placement

    def _place_population(self, pop: Population, model: ResourceModel, cores: list[Any]) -> list[list[int]]:
        slices: list[list[int]] = []
        # With identical neurons, a core that rejects one neuron rejects them all: skip it later.
        uniform = model.uniform(pop)
        rejected: set[int] = set()
        start = 0
        while start < pop.size:
            one = model.demand(pop, start, start + 1)
            core_id = self._first_core_with_room(one, model, cores, rejected if uniform else None)
            if core_id is None:
                problem = model.violation(model.new_core(), one)
                if problem is not None:
                    resource, needed, key, limit, hint = problem
                    raise ResourceError(resource_message(f"{resource} for one neuron", needed, key, limit, hint),
                                        location=f"population '{pop.name}'")
                cores.append(model.new_core())
                core_id = len(cores) - 1
            count = self._largest_prefix(pop, start, model, cores[core_id])
            model.commit(cores[core_id], model.demand(pop, start, start + count))
            slices.append([core_id, start, start + count])
            start += count
        if getattr(model, "exclusive", None) is not None and model.exclusive(pop) and len(slices) > 1:
            slices = self._even(pop, model, cores, slices)
        return slices

    @staticmethod
    def _even(pop: Population, model: ResourceModel, cores: list[Any], slices: list[list[int]]) -> list[list[int]]:
        """A population with cores of its own (an e-prop population) spread evenly over the cores
        first fit opened for it: the same cores, the lowest per-core load (first fit leaves the last
        core with the remainder). Kept as first fit placed it if an even slice does not fit."""
        ids = [c for c, _, _ in slices]
        if len(set(ids)) != len(ids):
            return slices
        n, k = pop.size, len(ids)
        bounds = [n * i // k for i in range(k + 1)]
        fresh = [model.new_core() for _ in ids]
        for core, a, b in zip(fresh, bounds[:-1], bounds[1:]):
            demand = model.demand(pop, a, b)
            if model.violation(core, demand) is not None:
                return slices
            model.commit(core, demand)
        for c, core in zip(ids, fresh):
            cores[c] = core
        return [[c, a, b] for c, a, b in zip(ids, bounds[:-1], bounds[1:])]

    @staticmethod
    def _first_core_with_room(one: Any, model: ResourceModel, cores: list[Any],
                              rejected: set[int] | None) -> int | None:
        full = model.max_neurons_per_core
        for c, core in enumerate(cores):
            if model.neurons_on(core) >= full or (rejected is not None and c in rejected):
                continue
            if model.violation(core, one) is None:
                return c
            if rejected is not None:
                rejected.add(c)
        return None

    @staticmethod
    def _largest_prefix(pop: Population, start: int, model: ResourceModel, core: Any) -> int:
        """Largest n with neurons start..start+n-1 fitting on ``core`` (n = 1 is known to fit)."""
        lo = 1
        hi = min(pop.size - start, model.max_neurons_per_core - model.neurons_on(core))
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
