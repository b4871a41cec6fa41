"""Neuron models known to the IR: their parameters, defaults and meaning.

A model is described once here (what it computes); each target implements the models it lists in
its target file (``neuron_models``) in its own number formats. Equations: docs/ir.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: float | int
    doc: str
    per_neuron: bool = False  # may be given as one value per neuron (an array)


@dataclass(frozen=True)
class NeuronModel:
    name: str
    doc: str
    params: dict[str, ParamSpec] = field(default_factory=dict)
    spiking_source_only: bool = False  # fed from data, no state (input ports)

    def defaults(self) -> dict[str, float | int]:
        return {p.name: p.default for p in self.params.values()}


def _specs(*specs: ParamSpec) -> dict[str, ParamSpec]:
    return {s.name: s for s in specs}


CUBA_LIF = NeuronModel(
    name="cuba_lif",
    doc=(
        "Current-based leaky integrate-and-fire (Loihi-style). Per step: "
        "u = (1 - (decay_u+1)/4096) u + 64 sum(w s); v = (1 - decay_v/4096) v + u + bias; "
        "spike when v > 64*threshold, then v = 0 and refractory for refractory-1 steps."
    ),
    params=_specs(
        ParamSpec("decay_u", 0, "current decay register (0..4095); effective decay (decay_u+1)/4096"),
        ParamSpec("decay_v", 0, "voltage decay (0..4096); effective decay decay_v/4096"),
        ParamSpec("threshold", 100, "threshold mantissa; a neuron fires when v > threshold * 64"),
        ParamSpec("bias", 0, "constant added to v every step (raw voltage units)", per_neuron=True),
        ParamSpec("refractory", 1, "refractory delay R (1..63); v is held at 0 for R-1 steps after a spike"),
    ),
)

INPUT = NeuronModel(
    name="input",
    doc="A port fed with spikes from data at run time; spikes at step t reach their targets at t+1.",
    spiking_source_only=True,
)

NEURON_MODELS: dict[str, NeuronModel] = {m.name: m for m in (CUBA_LIF, INPUT)}

#: Variables a probe can record, per model.
PROBE_VARIABLES: dict[str, tuple[str, ...]] = {
    "cuba_lif": ("spikes", "u", "v"),
    "input": ("spikes",),
}
