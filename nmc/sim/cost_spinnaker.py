"""Cost model of the SpiNNaker-like chip: per-core, per-tick work counts -> cycles, overruns,
time and energy (docs/spinnaker.md, "Cycles, overruns and energy").

Each core runs one timer tick per timestep; the interpreter counts what it did, this module prices
it with the ``cost`` table of the binary's target configuration::

    cycles[t, c] = timer_tick + Σ_models n_model[c] · neuron_<model>
                   + row_dmas[t, c] · row_dma + words[t, c] · synaptic_word
                   + received[t, c] · packet_received + sent[t, c] · packet_sent
                   + extra[t, c]       (work the interpreter prices itself: e-prop, docs/eprop.md)
    overrun      ⇔ cycles[t, c] > chip.clock_hz · timestep
    energy       = steps · timestep · (chips · chip_idle_w + active_cores · core_active_w)
                   + router_traversals · packet_j
    cycles       = Σ_t max_c cycles[t, c]          (the busiest core's work, tick by tick)
    time_s       = steps · timestep                (real time: the timer sets the pace)

>>> cfg = {"chip": {"clock_hz": 1000}, "cost": {"cycles": {"timer_tick": 10, "neuron_m": 2, "row_dma": 5,
...        "synaptic_word": 1, "packet_received": 3, "packet_sent": 4},
...        "energy": {"chip_idle_w": 1.0, "core_active_w": 0.5, "packet_j": 0.001}}}
>>> z = np.zeros((2, 2), dtype=np.int64)
>>> counts = TickCounts(neurons={"m": np.array([3, 1])}, row_dmas=np.array([[1, 0], [20, 0]]),
...                     synaptic_words=z, packets_received=z, packets_sent=z, router_traversals=7,
...                     chips=1, timestep_s=0.1)
>>> cost = SpiNNakerCostModel(cfg).cost(counts)
>>> cost.core_cycles.tolist(), cost.overruns.tolist(), cost.cycles
([[21, 12], [116, 12]], [[1, 0]], 137)
>>> round(cost.energy_j, 6)                      # 2 ticks x 0.1 s x (1 + 2 x 0.5) W + 7 mJ
0.407
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np


@dataclass(slots=True)
class TickCounts:
    """The work of one run: per model, neurons on each core (updated every tick); (steps, n_cores)
    arrays of row DMAs, synaptic words, packets received and sent; router traversals in total."""

    neurons: dict[str, np.ndarray]
    row_dmas: np.ndarray
    synaptic_words: np.ndarray
    packets_received: np.ndarray
    packets_sent: np.ndarray
    router_traversals: int
    chips: int
    timestep_s: float
    extra_cycles: np.ndarray | None = None   # (steps, n_cores): work priced by the interpreter (e-prop)
    payload_traversals: int = 0              # router traversals of 72-bit payload packets


@dataclass(slots=True)
class RunCost:
    """What a run's counts cost: cycles per (tick, core), the overrunning (tick, core) pairs,
    the critical-path cycles, time and energy."""

    core_cycles: np.ndarray   # (steps, n_cores)
    overruns: np.ndarray      # (k, 2): tick, core of every overrun
    cycles: int
    time_s: float
    energy_j: float
    budget: int               # cycles in one timer period


class SpiNNakerCostModel:
    """Prices :class:`TickCounts` with ``cost.cycles``, ``cost.energy`` and ``chip.clock_hz`` of a
    target configuration (the dict a binary embeds)."""

    #: What the figures are, for reports.
    description = "cycle model per core and tick (sPyNNaker planning figures and nmc assumptions), SpiNNMachine energy"

    def __init__(self, target_config: Mapping[str, Any]) -> None:
        self.target_config = target_config

    def budget(self, timestep_s: float) -> int:
        """Cycles a core has in one timer period."""
        return int(round(float(self.target_config["chip"]["clock_hz"]) * timestep_s))

    def cost(self, counts: TickCounts) -> RunCost:
        cyc = self.target_config["cost"]["cycles"]
        en = self.target_config["cost"]["energy"]
        steps, n_cores = counts.row_dmas.shape
        per_tick = np.full(n_cores, int(cyc["timer_tick"]), dtype=np.int64)
        active = np.zeros(n_cores, dtype=bool)
        for model, n in counts.neurons.items():
            per_tick += np.asarray(n, dtype=np.int64) * int(cyc[f"neuron_{model}"])
            active |= np.asarray(n) > 0
        core = (per_tick[None, :] + counts.row_dmas * int(cyc["row_dma"])
                + counts.synaptic_words * int(cyc["synaptic_word"])
                + counts.packets_received * int(cyc["packet_received"])
                + counts.packets_sent * int(cyc["packet_sent"]))
        if counts.extra_cycles is not None:
            core = core + counts.extra_cycles
        budget = self.budget(counts.timestep_s)
        over = np.argwhere(core > budget)
        time_s = steps * counts.timestep_s
        energy = (time_s * (counts.chips * float(en["chip_idle_w"]) + int(active.sum()) * float(en["core_active_w"]))
                  + counts.router_traversals * float(en["packet_j"])
                  + counts.payload_traversals * float(en.get("payload_packet_j", en["packet_j"])))
        critical = int(core.max(axis=1).sum()) if n_cores else 0
        return RunCost(core_cycles=core, overruns=over, cycles=critical, time_s=float(time_s),
                       energy_j=float(energy), budget=budget)
