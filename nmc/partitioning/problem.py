"""The partitioning problem: populations cut into slices ("groups"), what each group needs on a
core, and the spike traffic between groups (docs/partitioning.md).

Everything here goes through the target's :class:`nmc.lowering.ResourceModel`; nothing depends on
a particular chip. Costs are linear in the number of synapses: each population is sliced once
(plus a re-slice when its neurons' fan-out turns out too large), and traffic is aggregated with
one sort over all (source neuron, group) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable

import numpy as np

from ..arrayops import offsets_of
from ..errors import NmcError, ResourceError
from ..ir.network import Network, Population
from ..lowering import DemandVector, Resource, ResourceModel
from ..lowering.common import resource_message

#: Integer traffic weights are scaled so that the heaviest group-to-group edge weighs this much.
WEIGHT_RESOLUTION = 10_000
#: An edge u -> v whose sources carry at least this share of u's spikes is "full": all of u's full
#: destinations on one core share u's axons there, and cost the weight of u's heaviest full edge
#: (in the traffic model, nmc.partitioning.traffic).
FULL_SHARE = 0.5
#: Fan-out re-slicing passes before giving up (each pass only splits groups further).
MAX_FANOUT_ROUNDS = 30


@dataclass
class Problem:
    """Groups, their demands and the traffic between them. Group ids follow layer order."""

    net: Network
    model: ResourceModel
    resources: list[Resource]
    cap: np.ndarray                 # (R,) capacities
    per_core: np.ndarray            # (R,) bool: limit holds per core (else per chip)
    chip_shared: np.ndarray         # (R,) bool: a shared item costs once per chip here (Resource.share)
    fanout: int | None              # index of the fan-out resource, if the target has one
    offsets: np.ndarray             # (P + 1,) global id of each population's first neuron
    layer_of_pop: np.ndarray        # (P,) layer (BFS distance from the inputs) of each population
    group_pop: np.ndarray           # (G,) population index of each group
    group_start: np.ndarray         # (G,) first neuron (within the population)
    group_stop: np.ndarray          # (G,) one past the last neuron
    amounts: np.ndarray             # (G, R) additive demand (fan-out column included)
    sh_ptr: np.ndarray              # (G + 1,) CSR of each group's shared items ...
    sh_ids: np.ndarray              # ... ids into shared_keys
    shared_keys: list[Hashable]
    shared_cost: np.ndarray         # (K, R)
    src_ptr: np.ndarray             # (G + 1,) CSR of each group's source neurons ...
    src_ids: np.ndarray             # ... global ids, sorted within a group
    rates: np.ndarray               # (n_total,) spikes per step of every neuron (estimated or measured)
    src_group_of: np.ndarray        # (n_total,) source group of every neuron (inputs: virtual groups >= G)
    n_src_groups: int               # G + number of virtual input groups
    src_rate: np.ndarray            # (n_src_groups,) summed rate of each source group
    edge_u: np.ndarray              # (E,) source group
    edge_v: np.ndarray              # (E,) destination group (u != v)
    edge_w: np.ndarray              # (E,) int64 weight: spikes per step from u's sources into v, scaled
    edge_full: np.ndarray           # (E,) bool: see FULL_SHARE
    src_full_w: np.ndarray          # (n_src_groups,) heaviest full edge of each source group (0: none)
    scale: float                    # integer weight units per spike per step
    rate_source: str = "estimated"
    notes: list[str] = field(default_factory=list)

    @property
    def n_groups(self) -> int:
        return int(self.group_pop.size)

    def shared_of(self, g: int) -> np.ndarray:
        return self.sh_ids[self.sh_ptr[g]:self.sh_ptr[g + 1]]

    def alone(self) -> np.ndarray:
        """(G, R) what each group needs on an empty core (amounts plus its shared items)."""
        out = self.amounts.copy()
        if self.sh_ids.size:
            owner = np.repeat(np.arange(self.n_groups), np.diff(self.sh_ptr))
            np.add.at(out, owner, self.shared_cost[self.sh_ids])
        return out


# ---------------------------------------------------------------------------------------------
# Layers and rates
# ---------------------------------------------------------------------------------------------
def population_layers(net: Network) -> np.ndarray:
    """BFS distance of every population from the sources of the graph (input populations, and
    populations nothing projects into); populations on a cycle not reached from any source come
    after the others, in network order. Linear in populations + projections."""
    pops = net.populations
    index = {p.name: i for i, p in enumerate(pops)}
    succ: list[list[int]] = [[] for _ in pops]
    indeg = np.zeros(len(pops), dtype=np.int64)
    for proj in net.projections:
        a, b = index[proj.pre], index[proj.post]
        succ[a].append(b)
        if a != b:
            indeg[b] += 1
    layer = np.full(len(pops), -1, dtype=np.int64)
    frontier = [i for i, p in enumerate(pops) if p.is_input or indeg[i] == 0]
    for i in frontier:
        layer[i] = 0
    depth = 0
    while frontier:
        depth += 1
        nxt = []
        for a in frontier:
            for b in succ[a]:
                if layer[b] < 0:
                    layer[b] = depth
                    nxt.append(b)
        frontier = nxt
    unreached = np.flatnonzero(layer < 0)
    layer[unreached] = depth + 1
    return layer


def neuron_rates(net: Network, offsets: np.ndarray, default_rate: float,
                 measured: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, str]:
    """Spikes per step of every neuron: measured (a previous run) where given, else the
    population's ``rate`` attribute (a number or one per neuron), else ``default_rate``."""
    rates = np.full(int(offsets[-1]), float(default_rate), dtype=np.float64)
    used_measured = 0
    for i, pop in enumerate(net.populations):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        if measured is not None and pop.name in measured:
            m = np.asarray(measured[pop.name], dtype=np.float64).reshape(-1)
            if m.size != pop.size:
                raise NmcError(f"the measured rates have {m.size} values but the population has {pop.size} "
                               "neurons (rates from a run of another network?)", location=f"population '{pop.name}'")
            rates[lo:hi] = m
            used_measured += 1
        elif "rate" in pop.attrs:
            rates[lo:hi] = np.broadcast_to(np.asarray(pop.attrs["rate"], dtype=np.float64), (pop.size,))
    how = "estimated"
    if measured is not None:
        how = f"measured for {used_measured} of {len(net.populations)} populations, estimated for the rest"
    return rates, how


# ---------------------------------------------------------------------------------------------
# Slicing
# ---------------------------------------------------------------------------------------------
class _Slicer:
    """Cuts a population into maximal prefixes that fit an empty core (exact model), optionally
    also within a fan-out budget per slice.

    A slice must also fit an empty core in the packing model (:meth:`ResourceModel.vector` with
    its shared items), which may count more than the exact model where a cost depends on the
    whole core (SpiNNaker's ring buffer is charged at the size it has on a full core): a slice
    the packing model cannot place on an empty core would make every CP-SAT model that holds it
    infeasible. Where the two agree for a slice alone (Loihi) this costs one vector per slice,
    which the problem needs anyway."""

    def __init__(self, model: ResourceModel, resources: list[Resource] | None = None) -> None:
        self.model = model
        self.evaluations = 0
        res = resources if resources is not None else model.resources()
        self._cap = np.array([r.capacity for r in res], dtype=np.int64)
        self._per_core = np.array([r.per == "core" for r in res], dtype=bool)
        self._costs: dict[Hashable, np.ndarray] = {}

    def _alone(self, d: Any) -> tuple[bool, DemandVector]:
        """Whether ``d`` fits an empty core in the packing model, and its vector."""
        vec = self.model.vector(d)
        use = np.asarray(vec.amounts, dtype=np.int64).copy()
        for k in dict.fromkeys(vec.shared):
            cost = self._costs.get(k)
            if cost is None:
                cost = self._costs[k] = np.asarray(self.model.shared_cost(k), dtype=np.int64)
            use += cost
        return bool(np.all(use[self._per_core] <= self._cap[self._per_core])), vec

    def _fits(self, pop: Population, start: int, n: int) -> Any | None:
        self.evaluations += 1
        d = self.model.demand(pop, start, start + n)
        return d if self.model.violation(self.model.new_core(), d) is None else None

    def slices(self, pop: Population, kcum: np.ndarray | None = None,
               kcap: int | None = None,
               fan_res: Resource | None = None) -> list[tuple[int, int, Any, DemandVector]]:
        """[(start, stop, demand, vector)] covering ``pop``; ``kcum`` is the cumulative fan-out of
        its neurons (length size + 1), each slice's share of which must stay within ``kcap``."""
        out: list[tuple[int, int, Any, DemandVector]] = []
        start, guess = 0, None
        full = self.model.max_neurons_per_core
        while start < pop.size:
            hi = min(pop.size - start, full)
            if kcum is not None and kcap is not None:
                lim = int(np.searchsorted(kcum, kcum[start] + kcap, side="right")) - 1 - start
                if lim < 1:
                    need = int(kcum[start + 1] - kcum[start])
                    assert fan_res is not None
                    raise ResourceError(
                        f"{fan_res.name} for one neuron (up to {need}: its targets lie in {need} slices) exceeded "
                        f"max ({fan_res.key} = {kcap}) by {need - kcap}; {fan_res.hint}",
                        location=f"population '{pop.name}' (neuron {start})")
                hi = min(hi, lim)
            n, d = self._largest(pop, start, hi, guess)
            ok, vec = self._alone(d)
            if not ok:
                n, d, vec = self._largest_in_view(pop, start, n)
            out.append((start, start + n, d, vec))
            start += n
            guess = n
        return out

    def _largest_in_view(self, pop: Population, start: int, n: int) -> tuple[int, Any, DemandVector]:
        """The largest prefix shorter than ``n`` (which fits exactly) that also fits an empty core
        in the packing model, by bisection (both grow with the prefix). One neuron is kept even
        if the packing model over-counts it: the exact model, which the partitioner re-checks
        every shared core with, accepts it."""
        lo, dlo, vlo = 0, None, None
        bad = n
        while bad - lo > 1:
            mid = (lo + bad) // 2
            self.evaluations += 1
            dm = self.model.demand(pop, start, start + mid)
            ok, vm = self._alone(dm)
            if ok:
                lo, dlo, vlo = mid, dm, vm
            else:
                bad = mid
        if dlo is None or vlo is None:
            dlo = self.model.demand(pop, start, start + 1)
            return 1, dlo, self.model.vector(dlo)
        return lo, dlo, vlo

    def _largest(self, pop: Population, start: int, hi: int, guess: int | None) -> tuple[int, Any]:
        """Largest n <= hi whose prefix fits (resource use grows with n): galloping search from
        ``guess`` (the previous slice's length: slices of one population are alike), then
        bisection. A few demand evaluations per slice, each the size of the slice."""
        cand = hi if guess is None else max(1, min(guess, hi))
        d = self._fits(pop, start, cand)
        if d is not None:
            lo, dlo = cand, d
            if cand == hi:
                return lo, dlo
            bad, step = hi + 1, 1
            while True:
                nxt = min(lo + step, hi)
                dn = self._fits(pop, start, nxt)
                if dn is None:
                    bad = nxt
                    break
                lo, dlo = nxt, dn
                if nxt == hi:
                    return lo, dlo
                step *= 2
        else:
            bad, step = cand, 1
            while True:
                nxt = max(bad - step, 1)
                dn = self._fits(pop, start, nxt)
                if dn is not None:
                    lo, dlo = nxt, dn
                    break
                if nxt == 1:
                    self._one_neuron_error(pop, start)
                bad, step = nxt, step * 2
        while bad - lo > 1:
            mid = (lo + bad) // 2
            dm = self._fits(pop, start, mid)
            if dm is not None:
                lo, dlo = mid, dm
            else:
                bad = mid
        return lo, dlo

    def _one_neuron_error(self, pop: Population, start: int) -> None:
        model = self.model
        problem = model.violation(model.new_core(), model.demand(pop, start, start + 1))
        assert problem is not None
        resource, needed, key, limit, hint = problem
        raise ResourceError(resource_message(f"{resource} for one neuron", needed, key, limit, hint),
                            location=f"population '{pop.name}'")


# ---------------------------------------------------------------------------------------------
# Building the problem
# ---------------------------------------------------------------------------------------------
def build_problem(net: Network, model: ResourceModel, *, default_rate: float = 0.05,
                  measured_rates: dict[str, np.ndarray] | None = None) -> Problem:
    """Slice every non-input population and collect demands and traffic (see :class:`Problem`)."""
    pops = net.populations
    sizes = np.array([p.size for p in pops], dtype=np.int64)
    offsets = offsets_of(sizes)
    n_total = int(offsets[-1])
    resources = model.resources()
    cap = np.array([r.capacity for r in resources], dtype=np.int64)
    per_core = np.array([r.per == "core" for r in resources], dtype=bool)
    chip_shared = np.array([r.per == "chip" and r.share == "chip" for r in resources], dtype=bool)
    fan = [i for i, r in enumerate(resources) if r.kind == "fanout"]
    fanout = fan[0] if fan else None
    layer = population_layers(net)
    order = [i for i in np.lexsort((np.arange(len(pops)), layer)).tolist() if not pops[i].is_input]

    slicer = _Slicer(model, resources)
    _check_widest_neurons(net, order, slicer)
    # Per population: list of (start, stop, vector, sources).
    cuts: dict[int, list[tuple[int, int, Any, np.ndarray]]] = {}

    def cut(i: int, kcum: np.ndarray | None = None) -> None:
        kcap = None if fanout is None else int(cap[fanout])
        res = None if fanout is None else resources[fanout]
        cuts[i] = [(a, b, vec, np.asarray(model.sources(d), dtype=np.int64))
                   for a, b, d, vec in slicer.slices(pops[i], kcum, kcap, res)]

    # A neuron's fan-out is at most the number of destination groups it reaches (each on its own
    # core at worst). Populations are cut consumers first (reverse layer order), each within the
    # fan-out its neurons have from the groups already cut: a feed-forward network is cut once;
    # the passes below settle loops (a consumer cut after its producer). Counts are kept up to
    # date from each population's own sources (linear overall).
    kout = np.zeros(n_total, dtype=np.int64)
    for i in reversed(order):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        cut(i, offsets_of(kout[lo:hi]) if fanout is not None else None)
        if fanout is not None:
            np.add.at(kout, np.concatenate([s for *_, s in cuts[i]]), 1)
    if fanout is not None:
        cap_f = int(cap[fanout])
        for _ in range(MAX_FANOUT_ROUNDS):
            changed = False
            for i in reversed(order):
                lo, hi = int(offsets[i]), int(offsets[i + 1])
                kc = offsets_of(kout[lo:hi])
                starts = np.array([a for a, *_ in cuts[i]], dtype=np.int64)
                stops = np.array([b for _, b, *_ in cuts[i]], dtype=np.int64)
                if not np.any(kc[stops] - kc[starts] > cap_f):
                    continue
                np.subtract.at(kout, np.concatenate([s for *_, s in cuts[i]]), 1)
                cut(i, kc)
                np.add.at(kout, np.concatenate([s for *_, s in cuts[i]]), 1)
                changed = True
            if not changed:
                break
        else:
            raise ResourceError(f"{resources[fanout].name}: slicing did not settle after {MAX_FANOUT_ROUNDS} "
                                "rounds of splitting; reduce the fan-out")

    # Groups in layer order.
    g_pop, g_start, g_stop, vecs, srcs = [], [], [], [], []
    for i in order:
        for a, b, vec, s in cuts[i]:
            g_pop.append(i)
            g_start.append(a)
            g_stop.append(b)
            vecs.append(vec)
            srcs.append(s)
    G = len(g_pop)
    group_pop = np.array(g_pop, dtype=np.int64)
    group_start = np.array(g_start, dtype=np.int64)
    group_stop = np.array(g_stop, dtype=np.int64)
    amounts = np.array([v.amounts for v in vecs], dtype=np.int64).reshape(G, len(resources))
    if fanout is not None:
        kcum_all = offsets_of(kout)
        glo = offsets[group_pop] + group_start
        amounts[:, fanout] = kcum_all[glo + group_stop - group_start] - kcum_all[glo]
    key_id: dict[Hashable, int] = {}
    sh_counts, sh_list = [], []
    for v in vecs:
        ids = [key_id.setdefault(k, len(key_id)) for k in v.shared]
        sh_counts.append(len(ids))
        sh_list.extend(ids)
    shared_keys = list(key_id)
    shared_cost = (np.array([model.shared_cost(k) for k in shared_keys], dtype=np.int64)
                   .reshape(len(shared_keys), len(resources)))
    src_ptr = offsets_of(np.array([s.size for s in srcs], dtype=np.int64))
    src_ids = np.concatenate(srcs) if srcs else np.zeros(0, dtype=np.int64)

    # Source groups: the groups themselves, and input populations in chunks of a core's size
    # (the host feeds them; their spikes still go once to every destination core).
    src_group_of = np.full(n_total, -1, dtype=np.int64)
    for g in range(G):
        lo = int(offsets[group_pop[g]])
        src_group_of[lo + group_start[g]:lo + group_stop[g]] = g
    n_src = G
    chunk = max(1, int(model.max_neurons_per_core))
    for i, pop in enumerate(pops):
        if pop.is_input:
            ids = np.arange(pop.size, dtype=np.int64) // chunk
            src_group_of[offsets[i]:offsets[i + 1]] = n_src + ids
            n_src += int(ids[-1]) + 1 if pop.size else 0
    rates, how = neuron_rates(net, offsets, default_rate, measured_rates)
    src_rate = np.bincount(src_group_of, weights=rates, minlength=n_src)

    eu, ev, ew, efull, scale = _edges(src_ptr, src_ids, src_group_of, rates, src_rate, G)
    src_full_w = np.zeros(n_src, dtype=np.int64)
    np.maximum.at(src_full_w, eu[efull], ew[efull])
    return Problem(net=net, model=model, resources=resources, cap=cap, per_core=per_core, chip_shared=chip_shared,
                   fanout=fanout, offsets=offsets, layer_of_pop=layer, group_pop=group_pop, group_start=group_start,
                   group_stop=group_stop, amounts=amounts, sh_ptr=offsets_of(np.array(sh_counts, dtype=np.int64)),
                   sh_ids=np.array(sh_list, dtype=np.int64), shared_keys=shared_keys, shared_cost=shared_cost,
                   src_ptr=src_ptr, src_ids=src_ids, rates=rates, src_group_of=src_group_of, n_src_groups=n_src,
                   src_rate=src_rate, edge_u=eu, edge_v=ev, edge_w=ew, edge_full=efull, src_full_w=src_full_w, scale=scale,
                   rate_source=how, notes=[f"{slicer.evaluations} demand evaluations"])


def _check_widest_neurons(net: Network, order: list[int], slicer: _Slicer) -> None:
    """Before slicing anything: every population's neuron with the most synapses must fit an
    empty core (exact check), so that a neuron over a core's fan-in is reported at once, not
    after the populations before it were sliced. Linear in the synapses (a count per neuron)."""
    pops = net.populations
    fan_in = {i: np.zeros(pops[i].size, dtype=np.int64) for i in order}
    index = {p.name: i for i, p in enumerate(pops)}
    for proj in net.projections:
        j = index[proj.post]
        if j not in fan_in:
            continue
        n_pre = pops[index[proj.pre]].size
        if proj.connectivity in ("dense", "one_to_all"):
            fan_in[j] += n_pre
        elif proj.connectivity == "one_to_one":
            fan_in[j] += 1
        elif proj.post_index is not None:
            fan_in[j] += np.bincount(np.asarray(proj.post_index, dtype=np.int64), minlength=pops[j].size)
    for i in order:
        if pops[i].size and slicer._fits(pops[i], int(np.argmax(fan_in[i])), 1) is None:
            slicer._one_neuron_error(pops[i], int(np.argmax(fan_in[i])))


def _edges(src_ptr: np.ndarray, src_ids: np.ndarray, src_group_of: np.ndarray, rates: np.ndarray,
           src_rate: np.ndarray, G: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Group-to-group traffic: for every (source group u, destination group v), the spikes per
    step of u's neurons that have synapses in v (each counted once however many synapses)."""
    v = np.repeat(np.arange(G, dtype=np.int64), np.diff(src_ptr))
    u = src_group_of[src_ids]
    w = rates[src_ids]
    keep = (u != v) & (w > 0)
    u, v, w = u[keep], v[keep], w[keep]
    if u.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z, np.zeros(0, dtype=bool), 1.0
    # Every group is a contiguous range of global ids and each group's sources are sorted, so
    # the sources one group receives from another are one contiguous run: no sort is needed.
    first = np.ones(u.size, dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    starts = np.flatnonzero(first)
    a = np.add.reduceat(w, starts)
    eu, ev = u[starts], v[starts]
    scale = WEIGHT_RESOLUTION / float(a.max())
    ew = np.maximum(1, np.rint(a * scale)).astype(np.int64)
    efull = a >= FULL_SHARE * src_rate[eu]
    return eu, ev, ew, efull, scale
