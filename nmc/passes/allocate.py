"""``allocate``: build the concrete layout of a partitioned network and check it against every
per-core limit; record per-core resource use in ``net.attrs["cores"]``.

Output axons (one per source neuron and destination core) are checked here first: they depend
on where every population sits, so only a complete placement can count them. The other limits
are checked again as a safety net (a hand-written placement, or a partitioner with a bug).
The backend calls :func:`build_layout` itself (re-exported here).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import PipelineError, ResourceError
from ..ir.network import Network
from ..target import Target
from .layout import (Layout, build_layout, check_chip_cores, core_limit_violations, core_population_names,
                     resource_message)
from .registry import PassContext, register_pass

__all__ = ["allocate", "build_layout", "Layout", "core_table"]


@register_pass("allocate")
def allocate(net: Network, ctx: PassContext) -> Network:
    """Lay out compartments, axons and synapses per core and check every per-core limit."""
    for pop in net.populations:
        if not pop.is_input and "placement" not in pop.attrs:
            raise PipelineError(f"allocate: population '{pop.name}' has no placement; run partition first")
    layout = build_layout(net, ctx.target)
    names = core_population_names(layout, net)
    check_layout(layout, names, ctx.target)
    net.attrs["cores"] = core_table(layout, names)
    return net


def check_layout(layout: Layout, names: list[list[str]], target: Target) -> None:
    """Raise ResourceError for the first broken limit: the board's core count, then per core
    output axons and the other limits (in the order of ``CORE_LIMITS``)."""
    used = np.flatnonzero(layout.core_compartments > 0)
    per_pop = {name: int(np.unique(cores).size) for name, cores in layout.pop_core.items()}
    check_chip_cores(int(used.size), per_pop, target)
    problems = core_limit_violations(layout, target)
    # Output axons first: no earlier pass could check them.
    problems.sort(key=lambda p: p[1] != "output axons")
    if not problems:
        return
    core, resource, needed, key, limit, hint = problems[0]
    others = sum(1 for p in problems if p[1] == resource) - 1
    more = f" ({others} more cores over this limit)" if others else ""
    pops = ", ".join(f"'{n}'" for n in names[core])
    raise ResourceError(resource_message(resource, needed, key, limit, hint) + more,
                        location=f"core {core} (populations {pops})")


def core_table(layout: Layout, names: list[list[str]]) -> list[dict[str, Any]]:
    """Per-core resource use as plain ints and strings (printable in the IR)."""
    return [
        {
            "core": c,
            "compartments": int(layout.core_compartments[c]),
            "input_axons": int(layout.core_input_axons[c]),
            "output_axons": int(layout.core_output_axons[c]),
            "synapse_bits": int(layout.core_synapse_bits[c]),
            "compartment_configs": int(layout.core_compartment_configs[c]),
            "synapse_formats": int(layout.core_synapse_formats[c]),
            "populations": list(names[c]),
        }
        for c in range(layout.n_cores)
    ]
