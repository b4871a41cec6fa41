"""Number formats of each target, behind one interface: :class:`Formats`.

One module per target (``nmc.formats.loihi``) holds pure functions from values to what the
hardware can store, every width and range read from the :class:`~nmc.target.Target`, and a class
implementing :class:`Formats` that the target file names as its ``formats`` part. Generic code
(the ``quantize`` and ``synfire`` passes, the ``backprop`` construct) asks that object for every
number that depends on the chip -- the grid a weight lives on, the input a neuron can take
without wrapping, how to hold a gate weight exactly -- instead of writing the chip's constants.

Units. Every weight a :class:`Formats` method takes or returns is in the units of the *post*
population's model: threshold units for ``graded``, effective weight units (``mantissa *
2**exponent``) for the register-level ``cuba_lif``; the target's ``mapping`` part says how a
model's units become registers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..ir.network import Network, Population
    from ..passes.registry import PassContext
    from ..target import Target


@dataclass(frozen=True)
class WeightGrid:
    """The values one synapse can hold in a format: multiples of ``step`` in [lo, hi] (model units),
    and the same as stored mantissas (what a learning rule's ``dw`` counts in)."""

    step: float
    lo: float
    hi: float
    mantissa_step: int
    mantissa_lo: int
    mantissa_hi: int


class Formats(Protocol):
    """What generic passes may ask a target about its number formats (see the module docstring)."""

    target: "Target"

    def quantize(self, net: "Network", ctx: "PassContext") -> "Network":
        """Round every weight and register-level parameter to the target's formats, reporting
        (warning, or error in strict mode) every value that changed."""

    def plastic_grid(self, pop: "Population") -> WeightGrid:
        """Storable weights of a plastic (mixed-sign, default-width) projection into ``pop`` at the
        finest exponent."""

    def firing_level(self, pop: "Population") -> float:
        """The summed synaptic input (model units) above which a neuron of ``pop`` fires in one
        step from rest (its largest bias counted), for memoryless units."""

    def input_range(self, pop: "Population") -> float:
        """The largest summed input of one step (model units) that ``pop`` takes without wrapping."""

    def gate_weights(self, pop: "Population", theta: float) -> list[float]:
        """Weights, each storable exactly in one synapse, of a gate that makes a memoryless ``pop``
        fire in the next step iff its other input exceeds ``theta`` (threshold units)."""

    def veto_weight(self, pop: "Population") -> float:
        """The (negative) weight that keeps ``pop`` silent for the widest range of other input
        without wrapping its input."""
