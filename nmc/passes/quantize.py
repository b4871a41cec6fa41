"""``quantize``: weights and neuron parameters into the target's number formats.

The work is the target's: the pass calls the ``quantize`` of the formats part the target file
names (for the Loihi-like chip :func:`nmc.lowering.loihi_quantize.quantize_network`). Anything
that changes a value is reported as a warning (an error with ``--strict``).
"""

from __future__ import annotations

from ..ir.network import Network
from .registry import PassContext, register_pass


@register_pass("quantize")
def quantize(net: Network, ctx: PassContext) -> Network:
    """Quantize weights and neuron parameters to the target's number formats."""
    return ctx.target.formats.quantize(net, ctx)
