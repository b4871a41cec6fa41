"""Small helpers shared by every target's lowering code: lossy-change reports and number text."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ..errors import PipelineError, QuantizationError, ResourceError

if TYPE_CHECKING:
    from ..ir.network import Network
    from ..passes.registry import PassContext
    from ..target import Target


def report_lossy(ctx: "PassContext", message: str, location: str) -> None:
    """A change that alters a value: a warning, or an error in strict mode."""
    if ctx.strict:
        raise QuantizationError(message + " (strict mode)", location=location)
    ctx.diagnostics.warn(message, location=location)


@contextmanager
def located(location: str) -> Iterator[None]:
    """Attach ``location`` to QuantizationErrors raised by (location-free) format functions."""
    try:
        yield
    except QuantizationError as exc:
        if exc.location is not None:
            raise
        raise QuantizationError(exc.message, location=location) from None


def num(x: float) -> str:
    """A number for a message: integers without a trailing .0, others in short form."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def as_param(values: np.ndarray) -> int | float | np.ndarray:
    """One value for every neuron stays a plain scalar (so the IR prints it inline); else an array."""
    v = np.asarray(values)
    if v.ndim and v.size and np.all(v == v.reshape(-1)[0]):
        v = v.reshape(-1)[0]
    if v.ndim == 0:
        x = v.item()
        return int(x) if float(x).is_integer() else float(x)
    return v.astype(np.int64) if v.dtype.kind in "iub" or np.all(v == np.floor(v)) else v.astype(np.float64)


def resource_message(resource: str, needed: int, limit_name: str, limit: int, hint: str) -> str:
    """The standard resource error text: ``<resource> (<needed>) exceeded max (<name> = <limit>) by <n>; <hint>``."""
    return f"{resource} ({needed}) exceeded max ({limit_name} = {limit}) by {needed - limit}; {hint}"


def quantized_for(net: "Network", target: "Target") -> str | None:
    """The target the network is already quantized for (None if none); PipelineError if it is
    another target than ``target`` (quantize works on unquantized IR)."""
    done = net.attrs.get("quantized")
    if done is not None and done != target.name:
        raise PipelineError(f"quantize: the network is already quantized for target '{done}', "
                            f"not '{target.name}'; quantize the unquantized IR instead")
    return done


@dataclass
class SizeLimit:
    """What a whole machine can hold, so that population sizes are refused as soon as they are
    read -- before any array, placement or table that grows with them is made. A population
    larger than this could never be placed, however the passes split it.

    ``neurons`` bounds all non-input neurons together (each needs a compartment), ``input_units``
    each input population (each unit that reaches the chip needs an input axon somewhere); the
    ``*_key`` strings name the limits as target keys, for messages."""

    neurons: int
    neurons_key: str
    input_units: int
    input_key: str
    used: int = 0  # neurons of the populations admitted so far

    def admit(self, name: str, size: int, is_input: bool) -> None:
        """Count population ``name``; ResourceError (located at the population) past a limit."""
        where = f"population '{name}'"
        if is_input:
            if size > self.input_units:
                raise ResourceError(resource_message("input units of one population", size, self.input_key,
                                                     self.input_units, "shrink the input population"),
                                    location=where)
            return
        self.used += size
        if self.used > self.neurons:
            what = "neurons" if self.used == size else f"neurons of the network up to '{name}'"
            raise ResourceError(resource_message(what, self.used, self.neurons_key, self.neurons,
                                                 "shrink the network or use a target with more cores"),
                                location=where)
