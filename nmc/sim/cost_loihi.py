"""Cost model of the Loihi-like chip: per-core work counts of a run -> cycles, time and energy.

The interpreter counts, per step and core, what the chip did (synaptic ops, neuron updates,
spike messages, learning updates) and the mesh hops of all messages; this module prices those
counts with the ``cost`` table of the binary's target configuration (Davies et al. 2018, Table 2,
pre-silicon simulation; docs/interpreter.md, "Counters, time and energy")::

    core_ns[t, c] = syn_ops·t_syn + active·t_active + inactive·t_inactive
                    + messages·t_spike + synaptic_updates·t_update
    step_ns[t]    = max_c core_ns[t, c] + barrier(tiles)     (barrier-synchronised step)
    barrier       = linear between barrier_min (1 tile) and barrier_max (32 tiles)
    energy        = Σ syn_ops·E_syn + active·E_active + inactive·E_inactive + messages·E_spike
                    + hops_EW·E_EW + hops_NS·E_NS + synaptic_updates·E_update
    cycles        = Σ_t ceil(step_ns[t] / timing.tick_ns)

It reads nothing but the configuration it is given, so it can be checked alone:

>>> cfg = {"cost": {"time_ns": {"synaptic_op": 1.0, "neuron_update_active": 10.0,
...                             "neuron_update_inactive": 5.0, "spike_within_tile": 2.0,
...                             "synaptic_update": 3.0, "barrier_min": 100.0, "barrier_max": 410.0},
...                 "energy_pj": {"synaptic_op": 1.0, "neuron_update_active": 10.0,
...                               "neuron_update_inactive": 5.0, "spike_within_tile": 2.0,
...                               "synaptic_update": 3.0, "hop_east_west": 7.0, "hop_north_south": 11.0}},
...        "timing": {"tick_ns": 4.0}}
>>> counts = CoreCounts(synaptic_ops=np.array([[4, 0]]), neuron_updates_active=np.array([[1, 0]]),
...                     neuron_updates_inactive=np.array([[0, 2]]), spike_messages=np.array([[1, 0]]),
...                     synaptic_updates=np.array([[0, 0]]), hops_east_west=1, hops_north_south=0, tiles_used=2)
>>> cost = LoihiCostModel(cfg).cost(counts)                      # one step, two cores
>>> cost.core_max_ns.tolist(), cost.step_ns.tolist(), cost.cycles   # barrier(2 tiles) = 100 + 310/31
([16.0, 10.0], [126.0], 32)
>>> round(cost.energy_j * 1e12, 6)                                # 4 + 10 + 10 + 2 + 7 pJ
33.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

_BARRIER_MAX_TILES = 32  # barrier_max is the cost at this many tiles (Davies 2018)


@dataclass(slots=True)
class CoreCounts:
    """The work of one run: (steps, n_cores) integer arrays, plus totals over the mesh."""

    synaptic_ops: np.ndarray
    neuron_updates_active: np.ndarray    # u or v non-zero after the update
    #: The rest of the core's compartments; None when ``compartments`` is given (it is then
    #: compartments - active, which the pricing computes as it goes instead of storing).
    neuron_updates_inactive: np.ndarray | None
    spike_messages: np.ndarray
    synaptic_updates: np.ndarray         # learning engine
    hops_east_west: int = 0
    hops_north_south: int = 0
    tiles_used: int = 1
    # Sums over the steps per core of the five arrays, by field name, when the producer has them
    # (the interpreter reports them per core anyway): totals are then sums of n_cores numbers
    # instead of passes over (steps, n_cores) arrays. The same integers either way.
    per_core: dict[str, np.ndarray] | None = None
    compartments: np.ndarray | None = None   # (n_cores,) compartments per core

    def inactive(self) -> np.ndarray:
        """The (steps, n_cores) inactive updates, stored or derived from ``compartments``."""
        if self.neuron_updates_inactive is not None:
            return self.neuron_updates_inactive
        assert self.compartments is not None, "CoreCounts needs neuron_updates_inactive or compartments"
        return self.compartments[None, :] - self.neuron_updates_active

    def total(self, name: str) -> int:
        """The sum of field ``name`` over steps and cores."""
        if self.per_core is not None and name in self.per_core:
            return int(self.per_core[name].sum())
        if name == "neuron_updates_inactive":
            return int(self.inactive().sum())
        return int(getattr(self, name).sum())


@dataclass(slots=True)
class RunCost:
    """What a run's counts cost."""

    core_max_ns: np.ndarray  # (n_cores,): the longest a core is busy in one step of the run
    step_ns: np.ndarray  # (steps,): the slowest core plus the barrier
    cycles: int          # sum over steps of ceil(step_ns / tick_ns)
    time_s: float
    energy_j: float


class LoihiCostModel:
    """Prices :class:`CoreCounts` with the ``cost.time_ns``, ``cost.energy_pj`` and
    ``timing.tick_ns`` entries of a target configuration (the dict a binary embeds)."""

    #: What the figures are, for reports: a per-operation model on pre-silicon simulated costs.
    description = "per-operation cost model, Davies 2018 Table 2 (simulated)"

    def __init__(self, target_config: Mapping[str, Any]) -> None:
        # Entries are read when a run is priced, not here: loading a binary checks only that
        # the cost section exists (the interpreter does that).
        self.target_config = target_config

    def barrier_ns(self, tiles_used: int) -> float:
        """Duration of the end-of-step barrier on ``tiles_used`` tiles (at least one)."""
        tm = self.target_config["cost"]["time_ns"]
        tiles = max(tiles_used, 1)
        lo, hi = tm["barrier_min"], tm["barrier_max"]
        return lo + (hi - lo) * (min(tiles, _BARRIER_MAX_TILES) - 1) / (_BARRIER_MAX_TILES - 1)

    def cost(self, counts: CoreCounts) -> RunCost:
        """Time per core and step, time per step, cycles, total time and energy of ``counts``."""
        cfg = self.target_config
        e, tm = cfg["cost"]["energy_pj"], cfg["cost"]["time_ns"]
        coef = tuple(float(tm[k]) for k in ("synaptic_op", "neuron_update_active", "neuron_update_inactive",
                                            "spike_within_tile", "synaptic_update"))
        step_max, core_max = price_steps(counts, coef)
        step_ns = step_max + self.barrier_ns(counts.tiles_used)
        tick = float(cfg.get("timing", {}).get("tick_ns", 1.0))
        total = counts.total
        energy_pj = (total("synaptic_ops") * e["synaptic_op"]
                     + total("neuron_updates_active") * e["neuron_update_active"]
                     + total("neuron_updates_inactive") * e["neuron_update_inactive"]
                     + total("spike_messages") * e["spike_within_tile"]
                     + counts.hops_east_west * e["hop_east_west"] + counts.hops_north_south * e["hop_north_south"]
                     + total("synaptic_updates") * e["synaptic_update"])
        return RunCost(core_max_ns=core_max, step_ns=step_ns, cycles=int(np.ceil(step_ns / tick).sum()),
                       time_s=float(step_ns.sum() * 1e-9), energy_j=float(energy_pj * 1e-12))


def price_steps(counts: CoreCounts, coef: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """core_ns[t, c] = syn t_syn + active t_active + inactive t_inactive + messages t_spike
    (+ updates t_update), reduced to its maximum over the cores per step (steps,) and over the
    steps per core (n_cores,). The terms are added in this order, each product in float64 from
    the integer count, so every path gives the same bits; a run without learning has no learning
    term (adding its zeros would change no bit). When the compiled interpreter's kernel is loaded
    it does this in one pass without storing the (steps, n_cores) table."""
    syn, act, msg, learn = (counts.synaptic_ops, counts.neuron_updates_active, counts.spike_messages,
                            counts.synaptic_updates)
    steps, n_cores = syn.shape
    has_learn = counts.total("synaptic_updates") != 0   # counts are non-negative
    if not n_cores:
        return np.zeros(steps), np.zeros(0)
    from .loihi_fast import kernel_loaded
    # One compiled signature: the compiled interpreter's records (C-contiguous, one dtype).
    tables = (syn, act, msg) + ((learn,) if has_learn else ())
    if (kernel_loaded() and counts.neuron_updates_inactive is None and counts.compartments is not None
            and all(t.flags.c_contiguous and t.dtype == syn.dtype for t in tables)):
        from .loihi_kernel import price_table
        step_max, core_max = np.empty(steps), np.empty(n_cores)
        price_table(syn, act, np.ascontiguousarray(counts.compartments, dtype=np.int64), msg,
                    learn if has_learn else syn, has_learn, *coef, step_max, core_max)
        return step_max, core_max
    # Summed in place, term by term: (steps, cores) temporaries are the cost of pricing a large run.
    core_ns = np.multiply(syn, coef[0], dtype=np.float64)
    term = np.empty_like(core_ns)
    terms = [(act, coef[1]), (counts.inactive(), coef[2]), (msg, coef[3])]
    if has_learn:
        terms.append((learn, coef[4]))
    for counts_of, c in terms:
        np.multiply(counts_of, c, out=term)
        core_ns += term
    return core_ns.max(axis=1), (core_ns.max(axis=0) if steps else np.zeros(n_cores))
