"""Traffic and resource figures of an assignment of groups to cores.

Two levels:

- :func:`model_traffic`: the linear model the solvers optimise, on groups. For a source group u
  and a core c other than u's own: if any of u's *full* destinations (groups receiving from at
  least half of u's spikes) sits on c, u's spikes reach c once for all of them, at the weight of
  u's heaviest full edge; u's other (partial) edges into c add up (they receive from few of u's
  neurons, mostly different ones); the pair costs the larger of the two.
- :func:`placement_metrics`: exact figures at the level of neurons, for reports: a spike leaves
  its core once per destination core (per axon, not per synapse), so inter-core spikes per step
  are the sum over (source neuron, destination core) pairs, source core excluded, of the
  neuron's rate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..arrayops import run_starts
from ..lowering import Geometry
from .problem import Problem


def _source_core(problem: Problem, assign: np.ndarray) -> np.ndarray:
    """Core of every source group (virtual input groups: -1, the host)."""
    out = np.full(problem.n_src_groups, -1, dtype=np.int64)
    out[:problem.n_groups] = assign
    return out


def pair_costs(problem: Problem, assign: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (source group, destination core) pair with traffic: (u, core, cost) in model units."""
    core_v = assign[problem.edge_v]
    core_u = _source_core(problem, assign)[problem.edge_u]
    keep = core_v != core_u
    u, c, w, full = problem.edge_u[keep], core_v[keep], problem.edge_w[keep], problem.edge_full[keep]
    if u.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    n_cores = int(assign.max()) + 1
    key = u * n_cores + c
    order = np.argsort(key, kind="stable")
    key, w, full = key[order], w[order], full[order]
    starts = np.flatnonzero(run_starts(key))
    any_full = np.logical_or.reduceat(full, starts)
    sum_part = np.add.reduceat(np.where(full, 0, w), starts)
    us = key[starts] // n_cores
    return us, key[starts] % n_cores, np.maximum(np.where(any_full, problem.src_full_w[us], 0), sum_part)


def model_traffic(problem: Problem, assign: np.ndarray) -> int:
    """The solvers' traffic objective (integer model units; see the module docstring)."""
    return int(pair_costs(problem, assign)[2].sum())


def core_traffic_edges(problem: Problem, assign: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model traffic between cores (source core, destination core, spikes per step), heaviest
    first; spikes from the host are left out."""
    u, c, cost = pair_costs(problem, assign)
    src = _source_core(problem, assign)[u]
    keep = src >= 0
    if not keep.any():
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    n = int(assign.max()) + 1
    key = src[keep] * n + c[keep]
    order = np.argsort(key, kind="stable")
    key, w = key[order], cost[keep][order]
    starts = np.flatnonzero(run_starts(key))
    tot = np.add.reduceat(w, starts) / problem.scale
    k = key[starts]
    heavy = np.argsort(-tot, kind="stable")
    return (k // n)[heavy], (k % n)[heavy], tot[heavy]


def core_usage(problem: Problem, assign: np.ndarray, n_cores: int) -> np.ndarray:
    """(n_cores, R) per-core use in the packing model: amounts plus each distinct shared item once."""
    use = np.zeros((n_cores, len(problem.resources)), dtype=np.int64)
    np.add.at(use, assign, problem.amounts)
    if problem.sh_ids.size:
        owner = np.repeat(np.arange(problem.n_groups), np.diff(problem.sh_ptr))
        key = assign[owner] * len(problem.shared_keys) + problem.sh_ids
        uniq = np.unique(key)
        np.add.at(use, uniq // len(problem.shared_keys), problem.shared_cost[uniq % len(problem.shared_keys)])
    return use


class ChipLoad:
    """Per-chip use of the per-chip resources as cores join chips, in the packing model: each
    core's amounts and, on resources whose items are shared per core, its items once per core;
    on resources whose items are shared per chip (:attr:`Problem.chip_shared`), each item once per
    chip however many of its cores need it.

    A chip being filled is a :class:`ChipLoad.Fill`; :meth:`need` is what it would use with one
    more core. Linear in the groups and their shared items."""

    class Fill:
        """One chip being filled: per-resource use so far and the chip-shared items it holds."""

        def __init__(self, n_resources: int) -> None:
            self.used = np.zeros(n_resources, dtype=np.int64)
            self.items: set[int] = set()

    def __init__(self, problem: Problem, assign: np.ndarray, n_cores: int) -> None:
        self.problem = problem
        self.chip_res = ~problem.per_core
        self.cap = problem.cap
        per_chip_item = problem.chip_shared
        use = np.zeros((n_cores, len(problem.resources)), dtype=np.int64)
        np.add.at(use, assign, problem.amounts)
        self.core_items: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * n_cores
        self.item_cost = problem.shared_cost * per_chip_item   # (K, R): the part paid once per chip
        if problem.sh_ids.size:
            K = len(problem.shared_keys)
            owner = np.repeat(np.arange(problem.n_groups), np.diff(problem.sh_ptr))
            uniq = np.unique(assign[owner] * K + problem.sh_ids)
            core, item = uniq // K, uniq % K
            np.add.at(use, core, problem.shared_cost[item] * ~per_chip_item)
            chip_item = self.item_cost[item].any(axis=1)
            core, item = core[chip_item], item[chip_item]
            ptr = np.searchsorted(core, np.arange(n_cores + 1))  # uniq is sorted by core
            self.core_items = [item[ptr[c]:ptr[c + 1]] for c in range(n_cores)]
        self.core_use = use

    def new(self) -> "ChipLoad.Fill":
        return ChipLoad.Fill(len(self.problem.resources))

    def need(self, fill: "ChipLoad.Fill", c: int) -> np.ndarray:
        """The chip's use if core ``c`` joined it."""
        need = fill.used + self.core_use[c]
        new = [k for k in self.core_items[c].tolist() if k not in fill.items]
        if new:
            need = need + self.item_cost[new].sum(axis=0)
        return need

    def over(self, fill: "ChipLoad.Fill", c: int) -> bool:
        """Whether core ``c`` would take the chip past one of its per-chip limits."""
        return bool(np.any((self.need(fill, c) > self.cap)[self.chip_res]))

    def add(self, fill: "ChipLoad.Fill", c: int) -> None:
        fill.used = self.need(fill, c)
        fill.items.update(self.core_items[c].tolist())

    def of(self, cores: list[int] | np.ndarray) -> "ChipLoad.Fill":
        """The fill of a chip holding ``cores``."""
        fill = self.new()
        for c in np.asarray(cores, dtype=np.int64).tolist():
            self.add(fill, c)
        return fill


def placement_metrics(problem: Problem, assign: np.ndarray, geometry: Geometry) -> dict[str, Any]:
    """Exact neuron-level figures of an assignment (see the module docstring). Linear in the
    number of (source neuron, group) pairs, which is at most the number of synapses."""
    n_cores = int(assign.max()) + 1 if assign.size else 0
    G = problem.n_groups
    dest = np.repeat(assign, np.diff(problem.src_ptr))
    s = problem.src_ids
    key = s * max(n_cores, 1) + dest
    key = np.sort(key)
    pairs = key[run_starts(key)]
    ps, pc = pairs // max(n_cores, 1), pairs % max(n_cores, 1)
    neuron_core = np.full(problem.rates.size, -1, dtype=np.int64)
    g_of = problem.src_group_of
    placed = (g_of >= 0) & (g_of < G)
    neuron_core[placed] = assign[g_of[placed]]
    sc = neuron_core[ps]
    r = problem.rates[ps]
    from_core = sc >= 0
    inter = from_core & (sc != pc)
    cpc = geometry.cores_per_chip
    inter_chip = inter & (sc // cpc != pc // cpc)
    hops = np.zeros(ps.size, dtype=np.int64)
    hops[inter] = geometry.hops(sc[inter], pc[inter])
    return {
        "cores": n_cores,
        "chips": int(np.unique(np.flatnonzero(np.bincount(assign, minlength=n_cores)) // cpc).size) if n_cores else 0,
        "inter_core_spikes": float(r[inter].sum()),
        "intra_core_spikes": float(r[from_core & ~inter].sum()),
        "host_spikes": float(r[~from_core].sum()),
        "inter_chip_spikes": float(r[inter_chip].sum()),
        "hop_spikes": float((r * hops).sum()),
        "input_axons": np.bincount(pc, minlength=n_cores),
        "output_axons": np.bincount(sc[from_core], minlength=n_cores),
    }


def synaptic_ops_per_core(problem: Problem, assign: np.ndarray) -> np.ndarray:
    """Expected synaptic operations per step on every core: over all synapses, the rate of the
    presynaptic neuron, summed by the core of the postsynaptic one (linear in synapses)."""
    net = problem.net
    pops = net.populations
    index = {p.name: i for i, p in enumerate(pops)}
    n_cores = int(assign.max()) + 1 if assign.size else 0
    out = np.zeros(n_cores, dtype=np.float64)
    # Core of every neuron, by population.
    core_of: dict[int, np.ndarray] = {}
    for g in range(problem.n_groups):
        i = int(problem.group_pop[g])
        arr = core_of.setdefault(i, np.zeros(pops[i].size, dtype=np.int64))
        arr[problem.group_start[g]:problem.group_stop[g]] = assign[g]
    for proj in net.projections:
        i, j = index[proj.pre], index[proj.post]
        pre, post, _ = proj.coo(pops[i].size, pops[j].size)
        rate = problem.rates[problem.offsets[i] + np.asarray(pre, dtype=np.int64)]
        out += np.bincount(core_of[j][post], weights=rate, minlength=n_cores)
    return out
