"""``partition``: split every non-input population into slices and assign them to cores.

Reads populations (size, params, an optional ``rate`` estimate), projections (connectivity,
weights or indices, delay, and the synapse format set by quantize) and the per-core limits; writes
``pop.attrs["placement"] = [[core, start, stop], ...]`` on every non-input population,
``net.attrs["cores_used"]`` and ``net.attrs["partition"]`` (the figures of the report).

The algorithm sits behind the :class:`Partitioner` interface, chosen by the ``solver`` option:

- ``cpsat`` (default): ``ffd``, then OR-tools CP-SAT on the whole problem or on connectivity
  windows within a time budget (:mod:`nmc.partitioning`, docs/partitioning.md);
- ``ffd``: first fit decreasing in layer order, linear in the network;
- ``first-fit``: the original population-order first fit (scans every open core for each slice).

Every partitioner counts resources with the target's resource model (the ``layout`` part the
target file names, :class:`nmc.lowering.ResourceModel`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from ..diagnostics import Diagnostics
from ..errors import PipelineError, ResourceError
from ..ir.network import Network, Population
from ..lowering import ResourceModel
from ..lowering.common import resource_message
from ..target import Target
from .registry import PassContext, register_pass

Placement = dict[str, list[list[int]]]


class Partitioner(Protocol):
    """Maps every non-input population to slices ``[core, start, stop]`` within the core limits.

    A partitioner may also offer ``configure(options: PartitionOptions)`` (called before
    ``partition``) and, after it, ``report`` (lines for ``nmc compile --report``) and ``summary``
    (a dict stored as ``net.attrs["partition"]``)."""

    name: str

    def partition(self, net: Network, target: Target, diagnostics: Diagnostics) -> Placement: ...


@dataclass
class PartitionOptions:
    """What the pass options and the command line say about partitioning."""

    solver: str = "cpsat"
    time: float = 10.0           # CP-SAT budget in deterministic seconds (--partition-time)
    seed: int | None = None      # CP-SAT seed (default: the network's seed, else 0)
    workers: int = 1             # CP-SAT workers; 1 keeps binaries reproducible
    rate: float = 0.05           # estimated spikes per neuron and step where nothing better is known
    objective: str = "cores"     # "cores": fewest cores, then traffic; "traffic": ffd's cores, least traffic
    rates: dict[str, np.ndarray] | None = field(default=None, repr=False)  # measured (--rates RESULT.npz)


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


def _options(ctx: PassContext, solver: str | None, time_budget: float | None, seed: int | None,
             workers: int | None, rate: float | None, objective: str | None) -> PartitionOptions:
    """Pass options first, then what the command line put in ``ctx.settings``, then defaults."""
    st = ctx.settings
    opts = PartitionOptions()
    opts.solver = solver if solver is not None else str(st.get("partition.solver", opts.solver))
    opts.time = float(time_budget if time_budget is not None else st.get("partition.time", opts.time))
    opts.seed = seed if seed is not None else st.get("partition.seed")
    opts.workers = int(workers if workers is not None else st.get("partition.workers", opts.workers))
    opts.rate = float(rate if rate is not None else st.get("partition.rate", opts.rate))
    opts.rates = st.get("partition.rates")
    opts.objective = objective if objective is not None else str(st.get("partition.objective", opts.objective))
    if opts.objective not in ("cores", "traffic"):
        raise PipelineError(f"partition: objective must be 'cores' (fewest cores, then traffic) or 'traffic' "
                            f"(keep ffd's cores, least traffic), got '{opts.objective}'")
    if not math.isfinite(opts.time) or opts.time < 0:
        raise PipelineError(f"partition: time must be a non-negative number of seconds, got {opts.time}")
    if opts.workers < 1:
        raise PipelineError(f"partition: workers must be at least 1, got {opts.workers}")
    if not math.isfinite(opts.rate) or opts.rate < 0:
        raise PipelineError(f"partition: rate must be a non-negative spike rate per step, got {opts.rate}")
    return opts


def _exact_model_only(net: Network, ctx: PassContext, opts: PartitionOptions, asked: bool) -> None:
    """Populations the resource model's packing view does not describe (``outside_packing_view``:
    on the SpiNNaker-like target the e-prop populations, whose per-synapse state, cycle budget and
    cores of their own only the exact model counts) are placed by first fit, which asks the exact
    model. Said in the report; a solver asked for by name that cannot place them is an error."""
    outside = getattr(ctx.target.part("layout")(ctx.target), "outside_packing_view", None)
    names = outside(net) if outside is not None else []
    if not names or opts.solver == "first-fit":
        return
    listed = ", ".join(f"'{n}'" for n in names)
    if asked:
        raise PipelineError(f"partition: solver '{opts.solver}' cannot place {listed}: the target's packing view does "
                            f"not model them (docs/partitioning.md); use solver=first-fit")
    ctx.report("partition", [f"populations {listed} are outside the packing view of the target's resource model; "
                             "placed by first-fit against the exact model"])
    opts.solver = "first-fit"


@register_pass("partition", options={"solver": str, "time": float, "seed": int, "workers": int, "rate": float,
                                     "objective": str})
def partition(net: Network, ctx: PassContext, solver: str | None = None, time: float | None = None,
              seed: int | None = None, workers: int | None = None, rate: float | None = None,
              objective: str | None = None) -> Network:
    """Assign the neurons of every non-input population to cores within the per-core limits."""
    opts = _options(ctx, solver, time, seed, workers, rate, objective)
    _exact_model_only(net, ctx, opts, asked=solver is not None or "partition.solver" in ctx.settings)
    partitioner = get_partitioner(opts.solver)
    configure = getattr(partitioner, "configure", None)
    if configure is not None:
        configure(opts)
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
    summary = getattr(partitioner, "summary", None)
    if summary:
        net.attrs["partition"] = summary
    else:
        net.attrs.pop("partition", None)
    ctx.report("partition", list(getattr(partitioner, "report", None) or []))
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


# ---------------------------------------------------------------------------------------------
# ffd and cpsat (nmc.partitioning)
# ---------------------------------------------------------------------------------------------
class _GroupPartitioner:
    """Slices, greedy start, optional CP-SAT refinement, exact re-check, placement on the mesh."""

    name = "ffd"
    refine = False

    def __init__(self) -> None:
        self.options = PartitionOptions(solver=self.name)
        self.report: list[str] = []
        self.summary: dict[str, Any] = {}

    def configure(self, options: PartitionOptions) -> None:
        self.options = options

    def partition(self, net: Network, target: Target, diagnostics: Diagnostics) -> Placement:
        from ..partitioning import run
        result = run(net, target, self.options, use_cpsat=self.refine)
        self.report, self.summary = result.report, result.summary
        return result.placement


class FfdPartitioner(_GroupPartitioner):
    """First fit decreasing in layer order over slices (nmc.partitioning.greedy)."""

    name = "ffd"
    refine = False


class CpSatPartitioner(_GroupPartitioner):
    """ffd, refined by OR-tools CP-SAT (nmc.partitioning.cpsat)."""

    name = "cpsat"
    refine = True


register_partitioner(FfdPartitioner.name, FfdPartitioner)
register_partitioner(CpSatPartitioner.name, CpSatPartitioner)
