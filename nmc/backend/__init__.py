"""Backends: IR -> binary, one per target family, found through the target's ``backend`` part."""

from __future__ import annotations

from ..binary.format import Binary
from ..errors import NmcError
from ..ir.annotations import check_annotations
from ..ir.network import Network
from ..target import Target


def emit_binary(net: Network, target: Target) -> Binary:
    """Lower ``net`` with the backend the target file names (``[parts] backend``)."""
    check_annotations(net.attrs)  # a pipeline may have skipped the passes that check them
    supported = set(target.neuron_models) | {"input"}
    for pop in net.populations:
        if pop.model not in supported:
            hint = ("the pass pipeline must include 'map-neurons'" if pop.model in target.mapped_models
                    else f"target '{target.name}' implements {', '.join(sorted(supported))}")
            raise NmcError(f"backend: neuron model '{pop.model}' is not register level; {hint}",
                           location=f"population '{pop.name}'")
    return target.part("backend")(net, target)
