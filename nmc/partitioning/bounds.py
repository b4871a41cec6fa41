"""Lower bounds on the number of cores for a sliced network (docs/partitioning.md, "Bounds").

Both bounds hold for the packing model the solvers respect (per-core sums of the groups' amounts
plus shared items), per resource:

- the volume bound ``ceil(total demand / capacity)``, shared items counted once;
- Martello and Toth's L2 bound for bin packing (Discrete Appl. Math. 28, 1990): groups larger
  than half a core pairwise exclude each other, and the small ones must fill what the mid-sized
  ones leave free. It is what makes the bound tight on input-axon-bound random graphs, whose
  slices each use more than half of a core's input axons: the volume bound then undercounts by
  the unused axons of every core.
"""

from __future__ import annotations

import numpy as np

from .problem import Problem


def l2_bound(sizes: np.ndarray, cap: int) -> int:
    """Martello-Toth L2 for item ``sizes`` (each <= ``cap``) in bins of ``cap``."""
    w = np.sort(np.asarray(sizes, dtype=np.int64))
    if w.size == 0 or cap <= 0:
        return 0
    prefix = np.concatenate([[0], np.cumsum(w)])
    half = cap / 2.0
    alphas = np.unique(np.concatenate([[0], w[w <= half]]))
    # Index boundaries in the sorted sizes, for every alpha at once.
    i_alpha = np.searchsorted(w, alphas, side="left")           # first w >= alpha
    i_half = np.searchsorted(w, half, side="right")              # first w > C/2
    i_top = np.searchsorted(w, cap - alphas, side="right")       # first w > C - alpha
    n = w.size
    j1 = n - i_top
    j2 = np.maximum(i_top - i_half, 0)
    sum_j2 = prefix[np.maximum(i_top, i_half)] - prefix[i_half]
    sum_j3 = prefix[i_half] - prefix[np.minimum(i_alpha, i_half)]
    spare = j2 * cap - sum_j2
    extra = np.maximum(0, -(-(sum_j3 - spare) // cap))
    return int((j1 + j2 + extra).max())


def _bound_of(problem: Problem, amounts: np.ndarray, items: np.ndarray) -> tuple[int, str]:
    """(cores, explanation): the best of the volume and L2 bounds over the per-core resources for
    groups with these ``amounts`` (rows) and shared ``items`` (ids, repeats allowed: each counted
    once)."""
    best, why = 0, "no groups"
    shared = (problem.shared_cost[np.unique(items)].sum(axis=0) if items.size
              else np.zeros(len(problem.resources), dtype=np.int64))
    for r, res in enumerate(problem.resources):
        if not problem.per_core[r] or problem.cap[r] <= 0:
            continue
        cap = int(problem.cap[r])
        total = int(amounts[:, r].sum()) + int(shared[r])
        vol = -(-total // cap)
        l2 = l2_bound(amounts[:, r], cap)
        if vol > best:
            best, why = vol, f"{res.name}, volume"
        if l2 > best:
            best, why = l2, f"{res.name}, Martello-Toth L2"
    return best, why


def exclusive_classes(problem: Problem) -> tuple[int, np.ndarray] | None:
    """(resource, class of every group) when some per-core resource splits the groups into
    classes that never share a core: every group has exactly one shared item costing that
    resource's whole capacity (SpiNNaker's one weight-shift pair per core), so two groups with
    different items exceed it together. None when no resource does."""
    G = problem.n_groups
    if G == 0 or not problem.sh_ids.size:
        return None
    owner = np.repeat(np.arange(G), np.diff(problem.sh_ptr))
    for r in np.flatnonzero(problem.per_core & (problem.cap > 0)).tolist():
        whole = problem.shared_cost[problem.sh_ids, r] >= problem.cap[r]
        if np.array_equal(np.bincount(owner[whole], minlength=G), np.ones(G, dtype=np.int64)):
            cls = np.empty(G, dtype=np.int64)
            cls[owner[whole]] = problem.sh_ids[whole]
            return r, cls
    return None


def lower_bound(problem: Problem) -> tuple[int, str]:
    """(cores, explanation): the best of the volume and L2 bounds over the per-core resources;
    where groups fall into classes that never share a core (:func:`exclusive_classes`), also the
    sum of those bounds over the classes (each class needs its own cores)."""
    best, why = _bound_of(problem, problem.amounts, problem.sh_ids)
    split = exclusive_classes(problem)
    if split is not None:
        r, cls = split
        owner_cls = cls[np.repeat(np.arange(problem.n_groups), np.diff(problem.sh_ptr))]
        g_order = np.argsort(cls, kind="stable")
        i_order = np.argsort(owner_cls, kind="stable")
        labels = np.unique(cls)
        g_cut = np.searchsorted(cls[g_order], labels[1:])
        i_cut = np.searchsorted(owner_cls[i_order], labels[1:])
        total = sum(_bound_of(problem, problem.amounts[g], problem.sh_ids[i])[0]
                    for g, i in zip(np.split(g_order, g_cut), np.split(i_order, i_cut)))
        if total > best:
            best, why = total, f"{problem.resources[r].name}: {labels.size} classes that share no core, summed"
    return best, why
