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
from .traffic import ChipLoad, core_traffic_edges


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
    hop-weighted spikes is kept. Per-chip limits close a chip early; when that would need more
    chips than the machine has, chips are filled regardless and the limits are left to the exact
    checks that follow (layout, backend). Returns (assignment, which order)."""
    assign = compact(assign)
    n = int(assign.max()) + 1 if assign.size else 0
    cpc = int(geometry.cores_per_chip)
    load = ChipLoad(problem, assign, n) if (~problem.per_core).any() else None
    limit = cpc * int(geometry.chips)
    edges = core_traffic_edges(problem, assign) if n > 1 else None

    def numberings(load: ChipLoad | None) -> list[tuple[np.ndarray, str]]:
        out = [(assign_ids(assign, _fill_chips(list(range(n)), load, cpc)), "layer order")]
        if edges is not None:
            greedy = _greedy_sequence(n, *edges, load, cpc)
            out.append((assign_ids(assign, _fill_chips(greedy, load, cpc)), "greedy chip fill"))
        return out

    def within(cands: list[tuple[np.ndarray, str]]) -> list[tuple[np.ndarray, str]]:
        return [(a, how) for a, how in cands if (int(a.max()) + 1 if a.size else 0) <= limit]

    # Only numberings within the machine compete (per-chip limits may leave a chip's last cores
    # empty, and the two fill chips differently); the geometry places no core past it.
    cands = numberings(load)
    fit = within(cands)
    if not fit and load is not None:
        # Too few chips to keep every chip within the packing model's per-chip limits: fill the
        # chips, and leave those limits to the exact checks after partitioning (the layout's
        # SDRAM; the backend's router tables, which it compresses when they are over).
        cands = [(a, how + "; per-chip limits relaxed to fit the machine") for a, how in numberings(None)]
        fit = within(cands)
    if not fit:
        top = min(int(a.max()) + 1 for a, _ in cands)
        raise ResourceError(f"network needs cores up to id {top - 1}, exceeded max (chip.cores x chip.chips = "
                            f"{limit}) by {top - limit}; shrink the network or raise chip.chips")
    best, how = fit[0]
    if len(fit) > 1 and hop_traffic(problem, fit[1][0], geometry) < hop_traffic(problem, best, geometry):
        best, how = fit[1]
    return best, how


def assign_ids(assign: np.ndarray, new_id: np.ndarray) -> np.ndarray:
    return np.asarray(new_id, dtype=np.int64)[assign]


def _fill_chips(sequence: list[int], load: ChipLoad | None, cpc: int) -> np.ndarray:
    """New id of every core when cores go to chips in ``sequence``: consecutive ids, except that a
    chip is closed early when the next core would exceed a per-chip limit."""
    new_id = np.zeros(len(sequence), dtype=np.int64)
    chip, slot = 0, 0
    fill = load.new() if load is not None else None
    for c in sequence:
        if _chip_full(slot, cpc, load, fill, c):
            chip, slot = chip + 1, 0
            fill = load.new() if load is not None else None
        if load is not None and fill is not None:
            load.add(fill, c)
        new_id[c] = chip * cpc + slot
        slot += 1
    return new_id


def _chip_full(slot: int, cpc: int, load: ChipLoad | None, fill: "ChipLoad.Fill | None", c: int) -> bool:
    """Whether core ``c`` must start a new chip: this one has no slot left, or adding ``c`` would
    exceed one of its per-chip limits (a core alone always starts one)."""
    if slot == cpc:
        return True
    return bool(load is not None and fill is not None and slot and load.over(fill, c))


#: Links per core the greedy chip fill follows (the heaviest; the rest change little).
ORDER_LINKS = 16


def _greedy_sequence(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, load: ChipLoad | None,
                     cpc: int) -> list[int]:
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
    fill = load.new() if load is not None else None
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
        if _chip_full(slot, cpc, load, fill, pick):
            # The next chip starts with this core; attraction now counts towards it only.
            chip, slot, heap = chip + 1, 0, []
            fill = load.new() if load is not None else None
        placed[pick] = True
        seq.append(pick)
        slot += 1
        if load is not None and fill is not None:
            load.add(fill, pick)
        for c, x in adj[pick]:
            if placed[c]:
                continue
            if stamp[c] != chip:
                stamp[c], score[c] = chip, 0.0
            score[c] += x
            heapq.heappush(heap, (-score[c], c))
    return seq
