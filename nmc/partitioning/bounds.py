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


def lower_bound(problem: Problem) -> tuple[int, str]:
    """(cores, explanation): the best of the volume and L2 bounds over the per-core resources."""
    best, why = 0, "no groups"
    for r, res in enumerate(problem.resources):
        if not problem.per_core[r] or problem.cap[r] <= 0:
            continue
        cap = int(problem.cap[r])
        total = int(problem.amounts[:, r].sum()) + int(problem.shared_cost[:, r].sum())
        vol = -(-total // cap)
        l2 = l2_bound(problem.amounts[:, r], cap)
        if vol > best:
            best, why = vol, f"{res.name}, volume"
        if l2 > best:
            best, why = l2, f"{res.name}, Martello-Toth L2"
    return best, why
