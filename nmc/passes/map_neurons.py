"""``map-neurons``: the W/tau mapping of target-neutral neuron models to the target's registers.

Populations of the physical-unit models (``lif``, ``if``) and of the ``graded`` unit become the
target's register-level model; weights into them are scaled from the model's units (nA per spike,
fractions of the threshold) to the target's. The work is the target's ``mapping`` part (for the
Loihi-like chip :class:`nmc.lowering.loihi_mapping.LoihiNeuronMapping`; equations in
docs/mapping.md). Each lowered population keeps what it was in ``attrs["mapped"]`` (model,
parameters, time step, and how its probed registers read in model units). The report -- decays,
thresholds, biases and refractory times as realised against as asked, and per projection the
weights that round to zero or saturate -- is printed by ``nmc compile --report``.
"""

from __future__ import annotations

from ..errors import IrError
from ..ir.models import NEURON_MODELS
from ..ir.network import Network
from .registry import PassContext, register_pass


@register_pass("map-neurons")
def map_neurons(net: Network, ctx: PassContext) -> Network:
    """Lower physical-unit and graded neuron models and their weights to the target's registers."""
    mapped = set(ctx.target.mapped_models)
    for pop in net.populations:
        if pop.is_input or pop.model in ctx.target.neuron_models:
            continue
        if NEURON_MODELS.get(pop.model) is not None and NEURON_MODELS[pop.model].ann:
            raise IrError(f"'{pop.model}' is an artificial (non-spiking) unit of an imported network: the pipeline "
                          "must run convert-ann before map-neurons", location=f"population '{pop.name}'")
        if pop.model not in mapped:
            raise IrError(f"target '{ctx.target.name}' cannot map neuron model '{pop.model}' (it maps: "
                          f"{', '.join(sorted(mapped)) or 'none'}; it implements: "
                          f"{', '.join(ctx.target.neuron_models)})", location=f"population '{pop.name}'")
    ctx.report("map-neurons", ctx.target.part("mapping")(ctx.target).lower(net, ctx))
    return net
