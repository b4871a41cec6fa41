"""Target lowering: the code that turns target-neutral IR into one chip's registers and cores.

Each target names its lowering parts in its target file (``[parts]``, :mod:`nmc.parts`):

- ``mapping`` -- a :class:`NeuronMapping`: the W/tau mapping of the physical-unit models
  (``lif``, ``if``) and the ``graded`` unit to the chip's register-level model, with the weight
  scale that makes a spike deliver the model's charge (``nmc.lowering.loihi_mapping``);
- ``layout`` -- a :class:`LayoutModel`: how many of which resource a slice of neurons needs on a
  core (for the partitioner), the concrete layout of a placed network and its check against every
  per-core limit (``nmc.lowering.loihi_layout``), and the machine's geometry (:class:`Geometry`).

The partitioner (``nmc.partitioning``, docs/partitioning.md) talks to a target only through
:class:`ResourceModel` and :class:`Geometry`. Besides the exact incremental check
(``demand``/``violation``/``commit``) it asks each slice for a *vector* view
(:meth:`ResourceModel.resources`, :meth:`ResourceModel.vector`, :meth:`ResourceModel.shared_cost`)
that a packing model can add up, and for its sources (:meth:`ResourceModel.sources`), from which it
derives traffic and the fan-out of every neuron.

A second target adds ``nmc/lowering/<target>_mapping.py`` and ``<target>_layout.py`` beside these
and registers them in :mod:`nmc.parts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Hashable, Protocol

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


@dataclass(frozen=True)
class Resource:
    """One limited resource of a core (or of a chip), as a partitioner counts it.

    ``kind`` says who counts it:

    - ``"slice"``: :meth:`ResourceModel.vector` gives each slice's amount;
    - ``"fanout"``: the number of distinct destination cores, summed over the slice's neurons
      (Loihi's output axons). It depends on where the *targets* sit, so the partitioner counts it
      from :meth:`ResourceModel.sources` (an upper bound: one core per destination slice) and
      :meth:`ResourceModel.vector` reports 0.

    ``per`` is ``"core"`` (the limit holds on every core) or ``"chip"`` (on the sum over the cores
    of one chip, e.g. SpiNNaker's SDRAM and router entries).

    ``share`` says where a shared item's cost is paid once on this resource: ``"core"`` (once per
    core that holds a slice needing it, the default) or, for a per-chip resource, ``"chip"`` (once
    per chip, however many of its cores need it: SpiNNaker's router holds one entry for a key
    block whichever of the chip's cores receive it).
    """

    name: str             # as in messages: "input axons"
    key: str              # the target key of the limit: "core.max_input_axons"
    capacity: int
    hint: str = ""        # how to relieve it, for messages
    kind: str = "slice"   # "slice" or "fanout"
    per: str = "core"     # "core" or "chip"
    share: str = "core"   # "core" or (per-chip resources only) "chip"


@dataclass
class DemandVector:
    """A slice's demand as a packing model adds it up (aligned with
    :meth:`ResourceModel.resources`).

    A core's use is the sum of its slices' ``amounts`` plus, once per distinct item on the core,
    :meth:`ResourceModel.shared_cost` of every item in their ``shared`` keys (a configuration table
    entry, or a whole source population that several slices receive from); on a resource whose
    ``share`` is ``"chip"`` an item is paid once per chip instead. A model must make this
    count at least the exact one for the slices it is checked on; where it cannot promise that
    for every combination (Loihi's synapse groups are packed per axon, which is not quite
    sub-additive), the partitioner re-checks every core with :meth:`ResourceModel.violation` and
    moves slices off a core that fails.
    """

    amounts: np.ndarray                  # (n_resources,) int64
    shared: tuple[Hashable, ...] = ()    # items counted once per core


class Geometry(Protocol):
    """Where cores sit: ``cores_per_chip`` x ``chips`` cores, numbered chip by chip."""

    cores_per_chip: int
    chips: int

    def hops(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Mesh hops a spike takes from core ``a`` to core ``b`` (elementwise; 0 on one core)."""

    def xy(self, cores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Drawing positions of ``cores`` (for the placement picture)."""


class ResourceModel(Protocol):
    """Counts what slices of neurons need on one core, for a partitioner. ``Demand`` and
    ``CoreUsage`` objects are opaque to the partitioner.

    Neurons are named by *global id*: the index of the neuron when the populations of
    ``net.populations`` (input populations included) are laid end to end.
    """

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

    def resources(self) -> list[Resource]:
        """Every per-core (and per-chip) resource the model counts, with its capacity."""

    def vector(self, demand: Any) -> DemandVector:
        """``demand`` as amounts and shared items, aligned with :meth:`resources`."""

    def shared_cost(self, key: Hashable) -> np.ndarray:
        """What shared item ``key`` costs a core once, aligned with :meth:`resources`."""

    def sources(self, demand: Any) -> np.ndarray:
        """Sorted global ids of the neurons with at least one synapse onto the slice: the
        spikes it receives come from these (one input axon each on Loihi)."""


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

    def geometry(self) -> Geometry:
        """The machine's cores, chips and mesh (for hop-weighted traffic and placement)."""

    def neurons_per_core(self) -> int:
        """The most neurons one core can hold: with :meth:`check_cores`, the partitioner refuses a
        network larger than the machine from its sizes alone, before any work that grows with it."""
