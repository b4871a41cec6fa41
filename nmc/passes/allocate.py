"""``allocate``: lay out a partitioned network on cores and check it against every limit of the
target; record per-core resource use in ``net.attrs["cores"]``.

The layout is target lowering: the pass calls the ``layout`` part the target file names (for the
Loihi-like chip :class:`nmc.lowering.loihi_layout.LoihiLayoutModel`). Limits that depend on where
every population sits (output axons, router entries) can only be checked here; the others are
checked again as a safety net (a hand-written placement, or a partitioner with a bug).
"""

from __future__ import annotations

from ..errors import PipelineError
from ..ir.network import Network
from .registry import PassContext, register_pass


@register_pass("allocate")
def allocate(net: Network, ctx: PassContext) -> Network:
    """Lay out compartments, axons and synapses per core and check every per-core limit."""
    for pop in net.populations:
        if not pop.is_input and "placement" not in pop.attrs:
            raise PipelineError(f"allocate: population '{pop.name}' has no placement; run partition first")
    net.attrs["cores"] = ctx.target.part("layout")(ctx.target).allocate(net, ctx.diagnostics)
    return net
