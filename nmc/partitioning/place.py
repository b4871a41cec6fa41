"""After the assignment: the exact re-check of every shared core, and where cores sit on the mesh.

- :func:`exact_repair` commits each core's groups with the target's exact model
  (:meth:`nmc.lowering.ResourceModel.violation`), because the additive packing model may, in rare
  cases, undercount (docs/partitioning.md); a group that does not fit moves to a new core.
- :func:`order_cores` numbers the cores so that cores exchanging many spikes are neighbours on the
  mesh and on one chip (the third objective: hop-weighted traffic). Core ids fix positions
  (:class:`nmc.lowering.Geometry`), so ordering *is* placement. Per-chip limits are respected by
  leaving the rest of a chip empty when the next core would overflow it.
"""

from __future__ import annotations

import heapq

import numpy as np

from ..arrayops import offsets_of
from ..errors import ResourceError
from ..lowering import Geometry
from .greedy import CoreFill
from .problem import Problem
from .traffic import core_traffic_edges, core_usage


def members_of(assign: np.ndarray, n_cores: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR (ptr, groups) of the groups on each core, group ids ascending within a core."""
    order = np.argsort(assign, kind="stable")
    return offsets_of(np.bincount(assign, minlength=n_cores)), order


def exact_repair(problem: Problem, assign: np.ndarray) -> tuple[np.ndarray, int]:
    """Check every core holding two or more groups with the exact model; move groups that do not
    fit to new cores (first fit among them, exact). Returns (assignment, groups moved)."""
    model, net = problem.model, problem.net
    pops = net.populations
    n = int(assign.max()) + 1 if assign.size else 0
    ptr, order = members_of(assign, n)
    moved: list[int] = []

    def demand(g: int):  # noqa: ANN202 -- the model's opaque demand
        return model.demand(pops[int(problem.group_pop[g])], int(problem.group_start[g]), int(problem.group_stop[g]))

    for c in np.flatnonzero(np.diff(ptr) >= 2).tolist():
        core = model.new_core()
        for g in order[ptr[c]:ptr[c + 1]].tolist():
            d = demand(g)
            if model.violation(core, d) is None:
                model.commit(core, d)
            else:
                moved.append(g)
    if not moved:
        return assign, 0
    assign = assign.copy()
    fill = CoreFill(problem)
    new_cores: list[tuple[int, object]] = []
    for g in moved:
        d = demand(g)
        for idx, (cid, core) in enumerate(new_cores):
            if fill.fits(idx, g) and model.violation(core, d) is None:
                break
        else:
            idx = fill.new()
            cid = n + idx
            new_cores.append((cid, model.new_core()))
            core = new_cores[-1][1]
        model.commit(core, d)
        fill.add(idx, g)
        assign[g] = cid
    return assign, len(moved)


def compact(assign: np.ndarray) -> np.ndarray:
    """Renumber cores 0.. in order of their current ids, dropping empty ones."""
    used = np.unique(assign)
    return np.searchsorted(used, assign)


def hop_traffic(problem: Problem, assign: np.ndarray, geometry: Geometry) -> float:
    """Model traffic between cores weighted by mesh hops (spikes x hops per step)."""
    src, dst, w = core_traffic_edges(problem, assign)
    if src.size == 0:
        return 0.0
    return float((w * geometry.hops(src, dst)).sum())


def order_cores(problem: Problem, assign: np.ndarray, geometry: Geometry) -> tuple[np.ndarray, str]:
    """Number the cores chip by chip (module docstring). Two orders are tried: the solvers'
    numbering (layer order, which already keeps producers near consumers) and a greedy fill that
    starts each chip from the lowest remaining core and adds the core with the most traffic to
    the chip's cores so far (nengo-loihi's GreedyInterchip, on cores); the one with fewer
    hop-weighted spikes is kept. Returns (assignment, which order)."""
    assign = compact(assign)
    n = int(assign.max()) + 1 if assign.size else 0
    cpc = int(geometry.cores_per_chip)
    chip_res = ~problem.per_core
    use = core_usage(problem, assign, n) if chip_res.any() else None
    base = _fill_chips(list(range(n)), use, problem.cap, chip_res, cpc)
    best, best_hops, how = assign_ids(assign, base), None, "layer order"
    if n > 1:
        src, dst, w = core_traffic_edges(problem, assign)
        greedy = _greedy_sequence(n, src, dst, w, use, problem.cap, chip_res, cpc)
        cand = assign_ids(assign, _fill_chips(greedy, use, problem.cap, chip_res, cpc))
        best_hops = hop_traffic(problem, best, geometry)
        cand_hops = hop_traffic(problem, cand, geometry)
        if cand_hops < best_hops:
            best, how = cand, "greedy chip fill"
    limit = cpc * int(geometry.chips)
    top = int(best.max()) + 1 if best.size else 0
    if top > limit:
        raise ResourceError(f"network needs cores up to id {top - 1} (per-chip limits leave cores empty), "
                            f"exceeded max (chip.cores x chip.chips = {limit}) by {top - limit}; shrink the network "
                            "or raise chip.chips")
    return best, how


def assign_ids(assign: np.ndarray, new_id: np.ndarray) -> np.ndarray:
    return np.asarray(new_id, dtype=np.int64)[assign]


def _fill_chips(sequence: list[int], use: np.ndarray | None, cap: np.ndarray, chip_res: np.ndarray,
                cpc: int) -> np.ndarray:
    """New id of every core when cores go to chips in ``sequence``: consecutive ids, except that a
    chip is closed early when the next core would exceed a per-chip limit."""
    new_id = np.zeros(len(sequence), dtype=np.int64)
    chip, slot = 0, 0
    acc = np.zeros(cap.size, dtype=np.int64)
    for c in sequence:
        if _chip_full(slot, cpc, acc, use, c, cap, chip_res):
            chip, slot, acc = chip + 1, 0, np.zeros(cap.size, dtype=np.int64)
        if use is not None:
            acc = acc + use[c]
        new_id[c] = chip * cpc + slot
        slot += 1
    return new_id


def _chip_full(slot: int, cpc: int, acc: np.ndarray, use: np.ndarray | None, c: int, cap: np.ndarray,
               chip_res: np.ndarray) -> bool:
    """Whether core ``c`` must start a new chip: this one has no slot left, or adding ``c`` would
    exceed one of its per-chip limits (a core alone always starts one)."""
    if slot == cpc:
        return True
    return bool(use is not None and slot and np.any((acc + use[c])[chip_res] > cap[chip_res]))


#: Links per core the greedy chip fill follows (the heaviest; the rest change little).
ORDER_LINKS = 16


def _greedy_sequence(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, use: np.ndarray | None,
                     cap: np.ndarray, chip_res: np.ndarray, cpc: int) -> list[int]:
    """Cores in the order the greedy chip fill takes them (see :func:`order_cores`); each core
    follows its :data:`ORDER_LINKS` heaviest links, so the cost is linear in the cores."""
    keep = src != dst
    a = np.concatenate([src[keep], dst[keep]])
    b = np.concatenate([dst[keep], src[keep]])
    x = np.concatenate([w[keep], w[keep]])
    # Heaviest first within each core: a stable sort by core keeps an order by weight, then id.
    pre = np.lexsort((b, -x))
    order = pre[np.argsort(a[pre], kind="stable")]
    a, b, x = a[order], b[order], x[order]
    rank = np.arange(a.size) - offsets_of(np.bincount(a, minlength=n))[a]
    top = rank < ORDER_LINKS
    adj: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for i, j, y in zip(a[top].tolist(), b[top].tolist(), x[top].tolist()):
        adj[i].append((j, y))
    placed = np.zeros(n, dtype=bool)
    score = np.zeros(n)
    stamp = np.full(n, -1, dtype=np.int64)  # the chip a core's score belongs to
    seq: list[int] = []
    nxt = 0
    chip, slot = 0, 0
    heap: list[tuple[float, int]] = []
    acc = np.zeros(cap.size, dtype=np.int64)
    while len(seq) < n:
        pick = -1
        while heap:
            s, c = heapq.heappop(heap)
            if not placed[c] and stamp[c] == chip and -s == score[c]:
                pick = c
                break
        if pick < 0:
            while placed[nxt]:
                nxt += 1
            pick = nxt
        if _chip_full(slot, cpc, acc, use, pick, cap, chip_res):
            # The next chip starts with this core; attraction now counts towards it only.
            chip, slot, heap, acc = chip + 1, 0, [], np.zeros(cap.size, dtype=np.int64)
        placed[pick] = True
        seq.append(pick)
        slot += 1
        if use is not None:
            acc = acc + use[pick]
        for c, x in adj[pick]:
            if placed[c]:
                continue
            if stamp[c] != chip:
                stamp[c], score[c] = chip, 0.0
            score[c] += x
            heapq.heappush(heap, (-score[c], c))
    return seq
