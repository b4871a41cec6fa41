"""``convert-ann``: the artificial units of an imported network -> spiking neurons.

Networks from the ONNX (and IR) front ends hold ``relu``, ``linear`` and ``lprnn`` units; this
pass rewrites them into target-neutral spiking models (``if`` with reset by subtraction where
the target's ``features`` list ``soft_reset``, else reset to zero; or ``sigma_delta`` units with
graded spikes) that ``map-neurons`` lowers for the target. It scales
every layer by a percentile of its activations on calibration data (``nmc compile
--calibrate DATA.npz``, or the option ``calibrate=PATH``), records how the input must be encoded
and the output read (network attributes ``encoding`` and ``readout``, which the backend passes to
``nmc run``), and reports per layer the scale, the activations above it, and the activation error
the conversion's rounding causes on the calibration data. Networks without artificial units pass
unchanged. Equations and choices: docs/conversion.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..conversion import convert as cv
from ..conversion.ann import has_ann
from ..errors import IrError
from ..ir.network import Network
from .registry import PassContext, register_pass


@register_pass("convert-ann", {"mode": str, "percentile": float, "threshold": float, "steps": int,
                               "item_steps": int, "init": float, "calibrate": str, "samples": int})
def convert_ann(net: Network, ctx: PassContext, mode: str = "auto", percentile: float = 99.9,
                threshold: float = 1 / 1024, steps: int = 0, item_steps: int = 16, init: float = 0.5,
                calibrate: str = "", samples: int = 1000) -> Network:
    """Convert the network's artificial (ANN) units into spiking neurons (rate or sigma-delta)."""
    if not has_ann(net):
        return net
    if not 0 < percentile <= 100:
        raise IrError(f"convert-ann: percentile must be in (0, 100], got {percentile:g}")
    if not threshold > 0:
        raise IrError(f"convert-ann: threshold must be positive, got {threshold:g}")
    if item_steps < 2:
        raise IrError(f"convert-ann: item_steps must be at least 2, got {item_steps}")
    chosen = cv.check_mode(mode, ctx.target.mapped_models)
    if chosen == "rate":
        cv.check_rate_convertible(net)
    data = ctx.calibration
    if calibrate:
        data = _load(calibrate)
    calib = cv.calibration_inputs(net, data, samples)
    if calib is None:
        ctx.diagnostics.warn("no calibration data (nmc compile --calibrate DATA.npz): layer scales come from the "
                             "weights for inputs in [0, 1], which gives low spike rates", location="convert-ann")
    elif chosen == "rate" and any(np.min(a) < 0 for a in calib.inputs.values()):
        raise IrError("rate coding needs non-negative inputs, but the calibration data has negative values; use "
                      "the sigma-delta conversion (a target that maps sigma_delta, such as loihi2)",
                      location="convert-ann")
    soft = ctx.target.has("soft_reset")
    if chosen == "rate" and not soft:
        ctx.diagnostics.remark(f"target '{ctx.target.name}' has no reset by subtraction (no 'soft_reset' in its "
                               "features): rate-coded neurons reset to zero, losing the charge above threshold at "
                               "each spike, and the output layer integrates without spiking (docs/conversion.md)",
                               location="convert-ann")
    plan = cv.plan(net, chosen, calib, percentile, soft_reset=soft)
    default_steps = steps if steps > 0 else 64
    quantum = 1.0 / default_steps if chosen == "rate" else threshold
    errs = cv.simulate_quantised(net, plan, calib, quantum) if calib is not None else None
    cv.apply(net, plan, threshold=threshold, item_steps=item_steps, init_charge=init)
    if steps > 0:
        net.attrs["encoding"]["steps"] = int(steps)
    ctx.report("convert-ann", cv.format_report(plan, errs, quantum))
    return net


def _load(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(Path(path), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise IrError(f"cannot read calibration data: {exc}", location=path) from None
