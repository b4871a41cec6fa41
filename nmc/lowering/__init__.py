"""Target lowering: the code that turns target-neutral IR into one chip's registers and cores.

Each target names its lowering parts in its target file (``[parts]``, :mod:`nmc.parts`):

- ``mapping`` -- a :class:`NeuronMapping`: the W/tau mapping of the physical-unit models
  (``lif``, ``if``) and the ``graded`` unit to the chip's register-level model, with the weight
  scale that makes a spike deliver the model's charge (``nmc.lowering.loihi_mapping``);
- ``layout`` -- a :class:`LayoutModel`: how many of which resource a slice of neurons needs on a
  core (for the partitioner), the concrete layout of a placed network and its check against every
  per-core limit (``nmc.lowering.loihi_layout``).

A second target adds ``nmc/lowering/<target>_mapping.py`` and ``<target>_layout.py`` beside these
and registers them in :mod:`nmc.parts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from ..diagnostics import Diagnostics
    from .common import SizeLimit
    from ..ir.network import Network, Population
    from ..passes.registry import PassContext
    from ..target import Target


@dataclass
class RegisterView:
    """A population as the chip holds it: the register-level model and its parameters, and the
    scale of its incoming weights (effective weight units per unit of the model's weights, one
    per neuron or shared). ``units`` says how probed registers read in the model's units:
    variable -> (scale, offset), model value = register / scale + offset."""

    model: str
    params: dict[str, Any]
    weight_scale: np.ndarray | float
    units: dict[str, tuple[float, float]] = field(default_factory=dict)


class NeuronMapping(Protocol):
    """The ``mapping`` part of a target."""

    def __init__(self, target: "Target") -> None: ...

    def registers(self, pop: "Population", dt: float | None = None) -> RegisterView:
        """How ``pop`` (a model the target maps, or its register-level model) sits in registers."""

    def lower(self, net: "Network", ctx: "PassContext") -> list[str]:
        """Lower every population of a mapped model and the weights into it; returns the report
        (lines of text) of what was realised against what was asked."""


class ResourceModel(Protocol):
    """Counts what slices of neurons need on one core, for a partitioner. ``Demand`` and
    ``CoreUsage`` objects are opaque to the partitioner."""

    max_neurons_per_core: int

    def new_core(self) -> Any: ...

    def uniform(self, pop: "Population") -> bool:
        """True when every neuron of ``pop`` needs the same (a core that rejects one rejects all)."""

    def demand(self, pop: "Population", start: int, stop: int) -> Any:
        """What neurons ``start..stop-1`` of ``pop`` need on a core."""

    def neurons_on(self, core: Any) -> int: ...

    def violation(self, core: Any, demand: Any) -> tuple[str, int, str, int, str] | None:
        """The first limit ``demand`` would break on ``core``: (resource, needed, limit name,
        limit, hint), or None when it fits."""

    def commit(self, core: Any, demand: Any) -> None: ...


class LayoutModel(Protocol):
    """The ``layout`` part of a target."""

    def __init__(self, target: "Target") -> None: ...

    def resource_model(self, net: "Network") -> ResourceModel: ...

    def allocate(self, net: "Network", diagnostics: "Diagnostics") -> list[dict[str, Any]]:
        """Lay out a partitioned network, check every per-core and per-chip limit (ResourceError
        naming the limit, by how much and where), return the per-core resource table."""

    def check_cores(self, n_cores: int, cores_per_population: dict[str, int]) -> None:
        """ResourceError when the machine has fewer than ``n_cores`` cores."""

    def size_limit(self) -> "SizeLimit":
        """What the whole machine holds, to refuse population sizes before any work grows with them."""
