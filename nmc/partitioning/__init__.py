"""Core partitioning for every target: slices, greedy packing, CP-SAT refinement, placement.

The ``partition`` pass (:mod:`nmc.passes.partition`) calls :func:`run` for the ``ffd`` and
``cpsat`` solvers. Steps, each linear in the network except the budgeted CP-SAT search:

1. :func:`nmc.partitioning.problem.build_problem` -- slice every population into groups that fit
   an empty core (exact model), within the fan-out limit; demand vectors; traffic between groups;
2. :func:`nmc.partitioning.bounds.lower_bound` -- refuse a network larger than the machine here,
   before any search;
3. :func:`nmc.partitioning.greedy.ffd` -- first fit decreasing in layer order;
4. :func:`nmc.partitioning.cpsat.refine` (``cpsat``) -- fewer cores, then less traffic;
5. :func:`nmc.partitioning.place.exact_repair` and :func:`nmc.partitioning.place.order_cores`;
6. the report (:mod:`nmc.partitioning.report`).

docs/partitioning.md describes the model, the protocol a target implements and the figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ResourceError
from ..ir.network import Network
from ..target import Target
from .bounds import lower_bound
from .cpsat import RefineInfo, refine
from .greedy import best_fit_decreasing, ffd
from .place import compact, exact_repair, order_cores
from .problem import Problem, build_problem

if TYPE_CHECKING:
    from ..passes.partition import PartitionOptions


@dataclass
class Result:
    """What :func:`run` hands back to the pass."""

    placement: dict[str, list[list[int]]]
    problem: Problem
    assign: np.ndarray                     # core of every group
    ffd_assign: np.ndarray                 # the greedy start, cores in the same numbering scheme
    cores_lb: int
    report: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _check_machine(net: Network, layout: Any, max_per_core: int) -> None:
    """Refuse a network with more neurons than the machine holds, from the sizes alone."""
    per_pop = {p.name: -(-p.size // max_per_core) for p in net.populations if not p.is_input}
    total = sum(p.size for p in net.populations if not p.is_input)
    layout.check_cores(-(-total // max_per_core), per_pop)


def run(net: Network, target: Target, options: "PartitionOptions", *, use_cpsat: bool) -> Result:
    """Partition ``net`` for ``target`` (see the module docstring); ``use_cpsat`` refines the
    greedy start with CP-SAT."""
    do_refine = use_cpsat
    t0 = time.perf_counter()
    layout = target.part("layout")(target)
    _check_machine(net, layout, int(layout.neurons_per_core()))  # before any work that grows with the network
    model = layout.resource_model(net)
    geometry = layout.geometry()
    problem = build_problem(net, model, default_rate=options.rate, measured_rates=options.rates)
    t_slice = time.perf_counter() - t0
    lb, lb_why = lower_bound(problem)
    per_pop = {net.populations[i].name: int(n) for i, n in
               zip(*np.unique(problem.group_pop, return_counts=True))}
    layout.check_cores(lb, per_pop)  # larger than the machine: stop before any search
    start = ffd(problem)
    t_ffd = time.perf_counter() - t0 - t_slice
    seed = options.seed if options.seed is not None else int(net.attrs.get("seed", 0) or 0)
    info = RefineInfo()
    assign = start
    cores0 = int(start.max()) + 1 if start.size else 0
    if do_refine:
        if cores0 > 1:
            hint, which = start, "ffd"
            if cores0 > lb and options.objective != "traffic":
                # A packing start may save cores ffd's layer order cannot; the lexicographic
                # objective prefers it whenever it does.
                packed = best_fit_decreasing(problem)
                if int(packed.max()) + 1 < cores0:
                    hint, which = packed, "best fit decreasing"
            assign, info = refine(problem, hint, budget=options.time, seed=seed, workers=options.workers,
                                  cores_lb=lb, keep_cores=options.objective == "traffic")
            info.notes.insert(0, f"start: {which}")
        else:
            info.status = "skipped: everything fits one core"
    assign = compact(assign)
    assign, moved = exact_repair(problem, assign)
    assign, how = order_cores(problem, assign, geometry)
    ffd_placed, _ = order_cores(problem, exact_repair(problem, compact(start))[0], geometry)
    placement = _placement(problem, assign)
    from .report import build_report
    report, summary = build_report(problem, assign, ffd_placed, geometry, lb=lb, lb_why=lb_why, solver=options.solver,
                                   info=info if do_refine else None, moved=moved, order=how, seed=seed,
                                   workers=options.workers, budget=options.time,
                                   times={"slice": t_slice, "ffd": t_ffd, "total": time.perf_counter() - t0})
    return Result(placement, problem, assign, ffd_placed, lb, report, summary)


def _placement(problem: Problem, assign: np.ndarray) -> dict[str, list[list[int]]]:
    """``[core, start, stop]`` slices per population; neighbouring groups of one population on
    one core become one slice."""
    pops = problem.net.populations
    out: dict[str, list[list[int]]] = {p.name: [] for p in pops if not p.is_input}
    order = np.lexsort((problem.group_start, problem.group_pop))
    for g in order.tolist():
        name = pops[int(problem.group_pop[g])].name
        c, a, b = int(assign[g]), int(problem.group_start[g]), int(problem.group_stop[g])
        sl = out[name]
        if sl and sl[-1][0] == c and sl[-1][2] == a:
            sl[-1][2] = b
        else:
            sl.append([c, a, b])
    return out


def load_rates(path: str) -> dict[str, np.ndarray]:
    """Measured rates from a previous run (``nmc run --out RESULT.npz``): spikes per neuron and
    step of every population whose spike trains the file holds (``spikes/<population>`` for
    outputs, ``probe/<population>.spikes`` for spike probes)."""
    from ..errors import NmcError
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise NmcError(f"cannot read rates: {exc}", location=str(path)) from None
    out: dict[str, np.ndarray] = {}
    for key, arr in arrays.items():
        if key.startswith("spikes/"):
            name = key[len("spikes/"):]
        elif key.startswith("probe/") and key.endswith(".spikes"):
            name = key[len("probe/"):-len(".spikes")]
        else:
            continue
        a = np.asarray(arr, dtype=np.float64)
        if a.ndim < 2:
            continue
        out[name] = a.reshape(-1, a.shape[-1]).mean(axis=0)
    if not out:
        raise NmcError("holds no spike trains to take rates from (arrays 'spikes/<population>' or "
                       "'probe/<population>.spikes', as nmc run --out writes them)", location=str(path))
    return out


__all__ = ["Result", "run", "load_rates", "ResourceError"]
