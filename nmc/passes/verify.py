"""``verify``: structural checks, plus the target's support for each neuron model."""

from __future__ import annotations

from ..errors import IrError
from ..ir.eprop import is_eprop
from ..ir.models import NEURON_MODELS
from ..ir.network import Network
from ..ir.verify import verify_network
from .registry import PassContext, register_pass


@register_pass("verify")
def verify(net: Network, ctx: PassContext) -> Network:
    """Check the IR is well formed and every neuron model is implemented or mapped by the target."""
    verify_network(net)
    # Artificial units of an imported network are convert-ann's to turn into models the target maps.
    ann = {m.name for m in NEURON_MODELS.values() if m.ann}
    supported = set(ctx.target.neuron_models) | set(ctx.target.mapped_models) | {"input"} | ann
    for pop in net.populations:
        if pop.model not in supported:
            raise IrError(f"neuron model '{pop.model}' is not supported by target '{ctx.target.name}' "
                          f"(it supports: {', '.join(sorted(supported))})", location=f"population '{pop.name}'")
    rules = set(ctx.target.data.get("learning_rules", []))
    for proj in net.projections:
        if is_eprop(proj.learning) and "eprop" not in rules:
            raise IrError(f"target '{ctx.target.name}' has no e-prop learning (rule kind 'eprop')",
                          location=f"projection '{proj.name}'")
    return net
