"""Greedy assignment of groups to cores: first fit decreasing in layer order (``ffd``).

Groups are taken layer by layer (the order of :class:`nmc.partitioning.problem.Problem`), the
largest first within a layer (largest share of any per-core capacity). Each goes to the first of
the most recently opened cores it fits, else to a new core. Only the last ``window`` cores are
candidates, so the cost is linear in the number of groups (no scan over every core per slice),
and producers land next to their consumers where a layer's leftovers meet the next layer's
groups.
"""

from __future__ import annotations

import numpy as np

from .problem import Problem

#: How many recently opened cores a group may join.
OPEN_CORES = 8


class CoreFill:
    """Per-core fill in the packing model (amounts plus distinct shared items), for checks."""

    def __init__(self, problem: Problem) -> None:
        self.p = problem
        self.cap = np.where(problem.per_core, problem.cap, np.iinfo(np.int64).max // 4)
        self.used: list[np.ndarray] = []
        self.shared: list[set[int]] = []

    def new(self) -> int:
        self.used.append(np.zeros(len(self.p.resources), dtype=np.int64))
        self.shared.append(set())
        return len(self.used) - 1

    def need(self, c: int, g: int) -> np.ndarray:
        """The core's use if group ``g`` joined it."""
        p = self.p
        need = self.used[c] + p.amounts[g]
        have = self.shared[c]
        for k in p.shared_of(g).tolist():
            if k not in have:
                need = need + p.shared_cost[k]
        return need

    def fits(self, c: int, g: int) -> bool:
        return bool(np.all(self.need(c, g) <= self.cap))

    def add(self, c: int, g: int) -> None:
        self.used[c] = self.need(c, g)
        self.shared[c].update(self.p.shared_of(g).tolist())


def layer_order(problem: Problem) -> np.ndarray:
    """Groups layer by layer, within a layer by decreasing largest normalised demand (ties:
    group id, i.e. population then neuron order)."""
    alone = problem.alone()
    share = np.max(np.where(problem.per_core, alone / np.maximum(problem.cap, 1), 0.0), axis=1)
    layer = problem.layer_of_pop[problem.group_pop]
    return np.lexsort((np.arange(problem.n_groups), -share, layer))


def first_fit(problem: Problem, order: np.ndarray, open_cores: int = OPEN_CORES) -> np.ndarray:
    """Assign groups in ``order`` to the first fitting core among the ``open_cores`` most recently
    opened; returns the core of every group (cores numbered in order of opening)."""
    fill = CoreFill(problem)
    assign = np.full(problem.n_groups, -1, dtype=np.int64)
    recent: list[int] = []
    for g in order.tolist():
        for c in recent:
            if fill.fits(c, g):
                break
        else:
            c = fill.new()
            recent.append(c)
            if len(recent) > open_cores:
                recent.pop(0)
        fill.add(c, g)
        assign[g] = c
    return assign


def ffd(problem: Problem) -> np.ndarray:
    """First fit decreasing in layer order (module docstring)."""
    return first_fit(problem, layer_order(problem))


#: How many of the tightest cores (on the bottleneck resource) best fit decreasing considers.
BEST_FIT_CANDIDATES = 256


def best_fit_decreasing(problem: Problem, candidates: int = BEST_FIT_CANDIDATES) -> np.ndarray:
    """Best fit decreasing, ignoring layers: a packing start for ``cpsat`` when ``ffd`` uses more
    cores than the bound. Groups by decreasing largest share of a core's capacity; each goes to
    the core with the least room left on the bottleneck resource (largest total demand relative
    to capacity) that can take it. Only the ``candidates`` tightest cores with enough room there
    are considered (a sorted list keyed by room): one vectorised check of their amounts, then the
    exact check with shared items on the survivors, tightest first. Cost O(groups x candidates)."""
    import bisect

    alone = problem.alone()
    cap = np.maximum(problem.cap, 1)
    share = np.where(problem.per_core, alone / cap, 0.0)
    b = int(np.argmax(share.sum(axis=0)))
    order = np.lexsort((np.arange(problem.n_groups), -share.max(axis=1)))
    fill = CoreFill(problem)
    assign = np.full(problem.n_groups, -1, dtype=np.int64)
    used = np.zeros((max(problem.n_groups, 1), len(problem.resources)), dtype=np.int64)
    room: list[tuple[int, int]] = []  # (room left on resource b, core), ascending
    for g in order.tolist():
        i = bisect.bisect_left(room, (int(problem.amounts[g, b]), -1))
        cands = [c for _, c in room[i:i + candidates]]
        chosen = -1
        if cands:
            ok = np.all(used[cands] + problem.amounts[g] <= fill.cap, axis=1)
            for k in np.flatnonzero(ok).tolist():
                if fill.fits(cands[k], g):
                    chosen = cands[k]
                    break
        if chosen < 0:
            chosen = fill.new()
        else:
            del room[bisect.bisect_left(room, (int(fill.cap[b] - used[chosen, b]), chosen))]
        fill.add(chosen, g)
        used[chosen] = fill.used[chosen]
        assign[g] = chosen
        bisect.insort(room, (int(fill.cap[b] - used[chosen, b]), chosen))
    return assign
