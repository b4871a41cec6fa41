"""CP-SAT refinement of a greedy assignment (docs/partitioning.md, "cpsat").

One model shape serves both scales: a *window* is a set of cores and the groups on them; the
groups may move among the window's cores, everything else stays. The whole problem is one window
when it is small (at most :data:`MONOLITHIC_BOOLEANS` group x core booleans: with the traffic
variables such a model stays well under the ~10^4 booleans one CP-SAT model can take in a few
seconds on a 2-core machine). Then, and for larger problems only, a large-neighbourhood search
solves windows of :data:`WINDOW_START` to :data:`WINDOW_MAX` cores grown along the traffic
between cores ("connectivity windows": a producer's cores and its consumers' cores together,
which consecutive core numbers are not).

Per window, lexicographically: fewer cores, then less traffic (the linear model of
:mod:`nmc.partitioning.traffic`; its value on the window's cores changes by exactly as much as the
whole problem's, because traffic into cores outside the window does not depend on where the
window's groups sit among its cores). The greedy solution is a complete hint, and a window's
result is kept only when its objective is strictly lower.

Reproducibility: one worker, a fixed seed and a budget in CP-SAT's *deterministic* time
(``max_deterministic_time``) give the same result on every run. A wall-clock cap of several times
the budget only guards against a stuck solve; when it fires the report says the result may vary.
OR-tools is imported here, lazily (the import alone takes about a second).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..arrayops import offsets_of, run_starts
from .greedy import CoreFill
from .problem import Problem
from .place import compact
from .traffic import core_traffic_edges, model_traffic

#: Largest group x core product solved as one model (docs/partitioning.md §4), and the share of
#: the budget it may take.
MONOLITHIC_BOOLEANS = 2_000
MONOLITHIC_SHARE = 0.4
#: Cores per connectivity window: the first sweeps' size and the largest; limits on its groups.
WINDOW_START = 4
WINDOW_MAX = 10
WINDOW_GROUPS = 80
WINDOW_BOOLEANS = 4_000
#: Deterministic seconds one window may take (small windows are solved to optimality in less).
WINDOW_TIME = 0.25
#: A sweep gaining less than this share of the traffic makes the windows grow.
SWEEP_GAIN = 0.01
#: What building and starting a window costs, charged to the budget in deterministic seconds on
#: top of the solver's own count (a solve that finishes at once still costs Python time): a fixed
#: part, and a part per variable and constraint (building takes a few microseconds each).
WINDOW_CHARGE = 0.01
TERM_CHARGE = 5e-6
#: The wall-clock guard, as a multiple of the deterministic budget (plus a fixed margin).
WALL_FACTOR = 4.0
WALL_MARGIN = 5.0


@dataclass
class RefineInfo:
    """What the refinement did, for the report."""

    mode: str = "none"                 # "monolithic", "windows", "monolithic + windows" or "none"
    status: str = "NOT_RUN"            # CP-SAT status of the monolithic model, or a summary
    windows: int = 0
    improved: int = 0
    deterministic_time: float = 0.0
    wall_time: float = 0.0
    cpu_time: float = 0.0                # this process's CPU seconds in the refinement
    wall_capped: int = 0
    objective_before: int = 0          # M * cores + traffic, model units (monolithic only)
    objective_after: int = 0
    bound: float | None = None         # CP-SAT's best bound on the monolithic objective
    notes: list[str] = field(default_factory=list)


def _cp_model() -> Any:
    from ortools.sat.python import cp_model  # lazy: about a second to import
    return cp_model


class _Window:
    """The CP-SAT model of one window (see the module docstring).

    The window's cores are interchangeable (traffic into a window core from outside costs the
    same whichever window core it is), so the cores are relabelled in order of their lowest group
    and group i may only use cores 0..i: one representative of every set of equivalent solutions,
    which CP-SAT otherwise explores many times over.

    Only per-core limits are constraints here. Per-chip limits (SpiNNaker's SDRAM and router
    entries) are kept where chips are decided: during the search core ids are not chips yet, and
    :func:`nmc.partitioning.place.order_cores` renumbers every core afterwards, closing a chip
    early when the next core would overflow it. A chip constraint on the search's provisional
    numbering would bind a grouping that is then thrown away (and break the symmetry above).
    """

    def __init__(self, problem: Problem, assign: np.ndarray, cores: list[int], groups: np.ndarray,
                 in_edges: "_InEdges", traffic_only: bool = False) -> None:
        cp_model = _cp_model()
        p = problem
        m = cp_model.CpModel()
        self.p, self.groups, self.model = p, groups, m
        ng, nc = len(groups), len(cores)
        col_of_core = {c: j for j, c in enumerate(cores)}
        cur = [col_of_core[int(assign[g])] for g in groups.tolist()]
        first: dict[int, int] = {}
        for i, j in enumerate(cur):
            first.setdefault(j, i)
        order = sorted(range(nc), key=lambda j: first.get(j, ng + j))
        relabel = {old: new for new, old in enumerate(order)}
        cores = [cores[j] for j in order]
        cur = [relabel[j] for j in cur]
        self.cores = cores
        local = {int(g): i for i, g in enumerate(groups.tolist())}
        allowed = [range(min(i, nc - 1) + 1) for i in range(ng)]
        self.x: list[dict[int, Any]] = [{j: m.new_bool_var("") for j in allowed[i]} for i in range(ng)]
        self.y = [m.new_bool_var("") for _ in range(nc)]
        used = sorted(set(cur))
        for i, row in enumerate(self.x):
            m.add_exactly_one(row.values())
            for j, v in row.items():
                m.add_implication(v, self.y[j])
                m.add_hint(v, j == cur[i])
        for j in range(nc):
            m.add_hint(self.y[j], j in used)
        for j in range(nc - 1):
            m.add_implication(self.y[j + 1], self.y[j])
        if traffic_only:
            for j in range(nc):  # the core count is settled: keep it
                m.add(self.y[j] == int(j in used))
        # Shared items: one boolean per (item, core) where an owner may go.
        owners: dict[int, list[int]] = {}
        for i, g in enumerate(groups.tolist()):
            for k in p.shared_of(g).tolist():
                owners.setdefault(k, []).append(i)
        z: dict[int, dict[int, Any]] = {}
        for k, idx in owners.items():
            if not p.shared_cost[k][p.per_core].any():
                continue  # costs only per-chip resources, which are not constraints here
            cols = sorted({j for i in idx for j in self.x[i]})
            z[k] = {j: m.new_bool_var("") for j in cols}
            for i in idx:
                for j, v in self.x[i].items():
                    m.add_implication(v, z[k][j])
            for j in cols:
                m.add_hint(z[k][j], any(cur[i] == j for i in idx))
        # Capacities, per core.
        amounts = p.amounts[groups]
        for r in np.flatnonzero(p.per_core).tolist():
            zr = [(int(p.shared_cost[k, r]), zk) for k, zk in z.items() if p.shared_cost[k, r]]
            if not amounts[:, r].any() and not zr:
                continue
            per_col = [[] for _ in range(nc)]
            for i in np.flatnonzero(amounts[:, r]).tolist():
                for j, v in self.x[i].items():
                    per_col[j].append(int(amounts[i, r]) * v)
            for c, zk in zr:
                for j, v in zk.items():
                    per_col[j].append(c * v)
            for j in range(nc):
                if per_col[j]:
                    m.add(sum(per_col[j]) <= int(p.cap[r]) * self.y[j])
        # Traffic (nmc.partitioning.traffic): for every source u of an edge into the window and
        # every window core, a boolean "u's spikes reach the core" weighted by u's full weight,
        # and for u's partial edges an integer at least their summed weight there.
        eu, ev, w, full = p.edge_u, p.edge_v, p.edge_w, p.edge_full
        by_u: dict[int, list[int]] = {}
        for e in in_edges.into(groups).tolist():
            by_u.setdefault(int(eu[e]), []).append(e)
        obj: list[Any] = []
        t_hint = 0
        m_big = 1
        for u in sorted(by_u):
            es = by_u[u]
            fulls = [local[int(ev[e])] for e in es if full[e]]
            parts = [(local[int(ev[e])], int(w[e])) for e in es if not full[e]]
            wu = int(p.src_full_w[u])
            tot = sum(x for _, x in parts)
            m_big += max(wu if fulls else 0, tot)
            ui = local.get(u)
            for j in range(nc):
                fj = [i for i in fulls if j in self.x[i]]
                pj = [(i, x) for i, x in parts if j in self.x[i]]
                if not fj and not pj:
                    continue
                home = self.x[ui].get(j) if ui is not None else None
                reach = None
                if fj:
                    reach = m.new_bool_var("")
                    for i in fj:
                        lits = [self.x[i][j].negated(), reach] + ([home] if home is not None else [])
                        m.add_bool_or(lits)
                at_home = ui is not None and cur[ui] == j
                r_val = int(not at_home and any(cur[i] == j for i in fj))
                p_val = 0 if at_home else sum(x for i, x in pj if cur[i] == j)
                if pj:
                    t = m.new_int_var(0, max(wu if fj else 0, tot), "")
                    expr = sum(x * self.x[i][j] for i, x in pj)
                    m.add(t >= expr - tot * home if home is not None else t >= expr)
                    if reach is not None:
                        m.add(t >= wu * reach)
                    m.add_hint(t, max(wu * r_val, p_val))
                    obj.append(t)
                    t_hint += max(wu * r_val, p_val)
                elif reach is not None:
                    obj.append(wu * reach)
                    t_hint += wu * r_val
                if reach is not None:
                    m.add_hint(reach, bool(r_val))
        if traffic_only:
            m_big = 0
        self.m_big = m_big
        self.hint_objective = m_big * len(used) + t_hint
        m.minimize(m_big * sum(self.y) + sum(obj))
        self.size = len(m.proto.variables) + len(m.proto.constraints)

    def solve(self, seconds: float, seed: int, workers: int, wall: float) -> tuple[Any, Any, float, bool]:
        """Solve; returns (status name, solver, deterministic time, wall cap reached)."""
        cp_model = _cp_model()
        solver = cp_model.CpSolver()
        prm = solver.parameters
        prm.num_workers = max(1, int(workers))
        prm.random_seed = int(seed)
        prm.max_deterministic_time = float(seconds)
        prm.max_time_in_seconds = float(wall)
        prm.cp_model_probing_level = 0  # full probing ate short budgets whole (docs/partitioning.md §4)
        prm.log_search_progress = False
        t0 = time.perf_counter()
        status = solver.solve(self.model)
        capped = (time.perf_counter() - t0) >= wall * 0.98 and solver.deterministic_time < seconds * 0.98
        return solver.status_name(status), solver, float(solver.deterministic_time), capped

    def assignment(self, solver: Any) -> np.ndarray:
        cols = [next(j for j, v in row.items() if solver.boolean_value(v)) for row in self.x]
        return np.array([self.cores[j] for j in cols], dtype=np.int64)


class _InEdges:
    """The problem's edges grouped by destination group, so that a window finds its incoming
    edges without scanning them all."""

    def __init__(self, problem: Problem) -> None:
        self.order = np.argsort(problem.edge_v, kind="stable")
        self.ptr = offsets_of(np.bincount(problem.edge_v, minlength=problem.n_groups))

    def into(self, groups: np.ndarray) -> np.ndarray:
        lo, hi = self.ptr[groups], self.ptr[groups + 1]
        return self.order[np.concatenate([np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist())]
                                         or [np.zeros(0, dtype=np.int64)])]


class _Neighbours:
    """Traffic between cores (both directions summed), from the current assignment: per core, its
    neighbours heaviest first (CSR, built with one sort)."""

    def __init__(self, problem: Problem, assign: np.ndarray) -> None:
        n = int(assign.max()) + 1
        src, dst, w = core_traffic_edges(problem, assign)
        keep = src != dst
        a = np.concatenate([src[keep], dst[keep]])
        b = np.concatenate([dst[keep], src[keep]])
        x = np.concatenate([w[keep], w[keep]])
        key = a * n + b
        order = np.argsort(key, kind="stable")
        key, x = key[order], x[order]
        starts = np.flatnonzero(run_starts(key))
        tot = np.add.reduceat(x, starts) if starts.size else np.zeros(0)
        a, b = key[starts] // n, key[starts] % n
        order = np.lexsort((b, -tot, a))  # by core, heaviest first, ties by core id
        self.nb, self.w = b[order], tot[order]
        self.ptr = offsets_of(np.bincount(a, minlength=n))
        self.weight = np.bincount(a, weights=tot, minlength=n)

    def of(self, c: int) -> np.ndarray:
        return self.nb[self.ptr[c]:self.ptr[c + 1]]


def _window_of(seed: int, size: int, nb: _Neighbours, members: list[list[int]]) -> list[int]:
    """A connectivity window: the seed core and the cores it exchanges the most spikes with
    (ties by core id), within the window limits."""
    win = [seed]
    n_groups = len(members[seed])
    for c in nb.of(seed)[:4 * size].tolist():
        if len(win) >= size:
            break
        g_new = n_groups + len(members[c])
        if g_new > WINDOW_GROUPS or g_new * (len(win) + 1) > WINDOW_BOOLEANS:
            continue
        win.append(c)
        n_groups = g_new
    return sorted(win)


def _frozen(problem: Problem, cores: list[int], members: list[list[int]]) -> bool:
    """True when no solution of the window differs from the current one but for the names of its
    cores: every core holds one group at most and none of them fits beside another's (slices of
    input-bound random layers each fill a core). Swapping two single groups is only renaming."""
    if any(len(members[c]) > 1 for c in cores):
        return False
    singles = [members[c][0] for c in cores if members[c]]
    if len(singles) < 2:
        return True
    # Amounts alone (shared items only add): pairs that could fit; then the exact check on those.
    a = problem.amounts[singles]
    cap = np.where(problem.per_core, problem.cap, np.iinfo(np.int64).max // 4)
    pair_ok = np.all(a[:, None, :] + a[None, :, :] <= cap, axis=2)
    np.fill_diagonal(pair_ok, False)
    if not pair_ok.any():
        return True
    fill = CoreFill(problem)
    for i, j in zip(*np.nonzero(pair_ok)):
        k = fill.new()
        fill.add(k, singles[int(i)])
        if fill.fits(k, singles[int(j)]):
            return False
    return True


def refine(problem: Problem, assign: np.ndarray, *, budget: float, seed: int = 0, workers: int = 1,
           cores_lb: int = 0, keep_cores: bool = False) -> tuple[np.ndarray, RefineInfo]:
    """Improve ``assign`` with CP-SAT within ``budget`` deterministic seconds (module docstring).

    1. When the greedy start uses more cores than the bound and the problem is small enough, one
       lexicographic model of everything gets :data:`MONOLITHIC_SHARE` of the budget.
    2. The rest goes to a large-neighbourhood search (with ``keep_cores``, all of it, and every
       window keeps its number of used cores: traffic only): windows of a core and its heaviest
       neighbours, each solved (usually to optimality) in a fraction of a second, every core a
       seed once per sweep (the heaviest first), until a sweep improves nothing or the budget is
       spent; windows grow when a sweep gains little.
    """
    info = RefineInfo()
    assign = assign.copy()
    if problem.n_groups == 0 or budget <= 0:
        return assign, info
    t_start, c_start = time.perf_counter(), time.process_time()
    wall_cap = WALL_FACTOR * budget + WALL_MARGIN
    in_edges = _InEdges(problem)
    spent = 0.0
    n_cores = int(assign.max()) + 1
    if n_cores > cores_lb and not keep_cores and problem.n_groups * n_cores <= MONOLITHIC_BOOLEANS:
        cores = list(range(n_cores))
        win = _Window(problem, assign, cores, np.arange(problem.n_groups), in_edges)
        status, solver, det, capped = win.solve(MONOLITHIC_SHARE * budget, seed, workers, wall_cap)
        spent += det + WINDOW_CHARGE + TERM_CHARGE * win.size
        info.mode, info.status = "monolithic", status
        info.wall_capped += int(capped)
        info.objective_before = info.objective_after = win.hint_objective
        if status in ("OPTIMAL", "FEASIBLE"):
            info.bound = float(solver.best_objective_bound)
            value = int(round(solver.objective_value))
            if value < win.hint_objective:
                assign = compact(win.assignment(solver))
                info.objective_after = value
        info.notes.append(f"monolithic: {problem.n_groups} groups x {n_cores} cores")
        if status == "OPTIMAL":
            info.wall_time = time.perf_counter() - t_start
            info.cpu_time = time.process_time() - c_start
            info.deterministic_time = spent
            return assign, info
    info.mode = "monolithic + windows" if info.mode == "monolithic" else "windows"
    size = WINDOW_START
    windows = improved = skipped = 0
    # Windows solved without gain, by content: solving the same model again (same seed, one
    # worker, deterministic limit) would give the same answer.
    fruitless: set[tuple] = set()
    statuses: dict[str, int] = {}
    nb: _Neighbours | None = None
    changed = False
    while spent < budget and time.perf_counter() - t_start < wall_cap:
        n_cores = int(assign.max()) + 1
        members: list[list[int]] = [[] for _ in range(n_cores)]
        for g, c in enumerate(assign.tolist()):
            members[c].append(g)
        if nb is None or changed:
            nb = _Neighbours(problem, assign)
            before = (n_cores, model_traffic(problem, assign))
        changed = False
        sweep_improved = 0
        for c0 in np.lexsort((np.arange(n_cores), -nb.weight)).tolist():
            if spent >= budget or time.perf_counter() - t_start > wall_cap:
                break
            if not members[c0] or nb.ptr[c0] == nb.ptr[c0 + 1]:
                continue
            cores = _window_of(c0, size, nb, members)
            if len(cores) < 2:
                continue
            groups = np.array(sorted(g for c in cores for g in members[c]), dtype=np.int64)
            key = (tuple(cores), tuple(groups.tolist()), tuple(assign[groups].tolist()))
            if key in fruitless or _frozen(problem, cores, members):
                skipped += 1
                continue
            win = _Window(problem, assign, cores, groups, in_edges, traffic_only=keep_cores)
            per = min(WINDOW_TIME, budget - spent)
            wall = max(0.5, wall_cap - (time.perf_counter() - t_start))
            status, solver, det, capped = win.solve(per, seed, workers, wall)
            spent += det + WINDOW_CHARGE + TERM_CHARGE * win.size
            windows += 1
            statuses[status] = statuses.get(status, 0) + 1
            info.wall_capped += int(capped)
            if status in ("OPTIMAL", "FEASIBLE") and int(round(solver.objective_value)) < win.hint_objective:
                assign[groups] = win.assignment(solver)
                for c in cores:
                    members[c] = []
                for g in groups.tolist():
                    members[int(assign[g])].append(g)
                sweep_improved += 1
                changed = True
            else:
                fruitless.add(key)
        improved += sweep_improved
        if sweep_improved == 0:
            if size >= WINDOW_MAX:
                break
            size = min(WINDOW_MAX, size + 2)
        else:
            assign = compact(assign)
            after = (int(assign.max()) + 1, model_traffic(problem, assign))
            if after[0] == before[0] and before[1] - after[1] < SWEEP_GAIN * max(before[1], 1):
                size = min(WINDOW_MAX, size + 2)
    info.windows, info.improved = windows, improved
    info.notes.append("window solves: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    if skipped:
        info.notes.append(f"{skipped} windows skipped (solved before unchanged, or nothing can move)")
    info.deterministic_time = spent
    if info.mode == "windows":
        info.status = f"{improved} of {windows} windows improved"
    else:
        info.status += f"; then {improved} of {windows} windows improved"
    info.wall_time = time.perf_counter() - t_start
    info.cpu_time = time.process_time() - c_start
    return compact(assign), info
