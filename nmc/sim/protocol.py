"""The contract between an interpreter and the host code that drives it.

``nmc.sim.runner`` (streams and samples), ``nmc.sim.schedule_runner`` (learning schedules), the
CLI and the benchmarks use an interpreter only through :class:`Interpreter`; every chip's
interpreter (the ``interpreter`` part of its target, :mod:`nmc.parts`) provides it, so the host
side is written once for all targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from ..binary.format import Binary


@dataclass
class RunResult:
    """What one ``run`` produced: spike trains of output populations, probes and counters."""

    steps: int
    spikes: dict[str, np.ndarray] = field(default_factory=dict)     # output name -> (steps, n) bool
    probes: dict[str, np.ndarray] = field(default_factory=dict)     # probe name -> (steps, n)
    counters: dict[str, float] = field(default_factory=dict)        # timesteps, synaptic_ops, spikes, ...
    per_core: dict[str, np.ndarray] = field(default_factory=dict)   # counter -> (n_cores,)
    overflow: dict[str, int] = field(default_factory=dict)          # wraps/clips that changed results
    warnings: list[str] = field(default_factory=list)               # e.g. timer-tick overruns, one line each


class CostModel(Protocol):
    """The ``cost_model`` part of a target: prices an interpreter's per-core work counts. It is a
    per-operation model (each counted operation costs the target file's time and energy), built
    from the binary's target configuration alone (``nmc.sim.cost_loihi.LoihiCostModel``)."""

    def __init__(self, target_config: dict[str, Any]) -> None: ...

    def cost(self, counts: Any) -> Any:
        """Time per core and step, cycles, chip time (s) and energy (J) of a run's counts."""


@runtime_checkable
class Interpreter(Protocol):
    """A chip running one binary. State persists across :meth:`run` calls until :meth:`reset`.

    Counters every interpreter reports in ``RunResult.counters``: ``timesteps``, ``spikes``,
    ``synaptic_ops``, ``synaptic_updates``, ``cycles``, ``time_s`` (cost-model chip time) and
    ``energy_j`` (cost-model energy); targets add their own (packets, overruns, ...).
    """

    binary: Binary
    meta: dict[str, Any]           # the binary's metadata (ports, outputs, probes, schedule, ...)
    port_size: dict[str, int]      # input port name -> number of units
    n_cores: int
    t: int                         # timesteps run since the last reset
    learning_enabled: bool         # the host may switch on-chip learning off (testing)

    def reset(self) -> None:
        """Zero the dynamic state (membranes, in-flight spikes, traces); keep learned weights."""

    def run(self, steps: int, inputs: dict[str, np.ndarray] | None = None, *, probes: bool = True,
            progress: Callable[[int], None] | None = None) -> RunResult:
        """Advance ``steps`` timesteps; ``inputs`` maps port -> (steps, n) spikes (0/1)."""

    def plastic_weights(self) -> dict[str, np.ndarray]:
        """Current weights of every plastic projection, (n_pre, n_post) in neuron order, in the units
        the target stores them (mantissas)."""

    def state(self) -> dict[str, np.ndarray]:
        """Everything :meth:`run` and learning change (dynamic state, learned weights, traces, the
        random generator's state, the step counter), as named arrays that ``np.savez`` can store
        without pickling. Used by training checkpoints (nmc/sim/checkpoint.py)."""

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a :meth:`state` taken from an interpreter of the same binary: running on from it
        gives exactly what the saved interpreter would have. A state of another binary is a
        ``RunError`` and changes nothing."""
