"""The SpiNNaker-like target's mapping of the e-prop models: ``alif`` -> ``eprop_alif`` and ``li`` ->
``eprop_li`` host words, the weights into them as signed 16-bit voltage-step words, and each
neuron's learning-rate factor (docs/eprop.md, "Mapping").

Both models take each input spike as a current pulse of w nA lasting one step, so V jumps by
g w with g = R (1 - e^(-dt/tau_m)), R = tau_m / cm (the exact solution of tau dV/dt = -(V - v_rest)
+ R I over one step). The core works in mV relative to v_rest and never needs g: the host writes
the jump. Per population, one left shift L for both signs (a plastic weight may change sign):

    M = weight_headroom x max |g w| over the incoming projections     L = ring_buffer_shift(M)

(or M = max(max |g w|, g w_max) when the rule gives w_max, the largest |w| learning may reach)
    word = rint(g w 2^(15 - L))  (signed; |word| < 2^15)

The learning-rate factor turns the chip's gradient (normalised by theta for ``alif``) into a
weight-word step: with dw = -eta dE/dw in the post model's units (nA), the jump changes by
g dw = -eta g^2 dE/d(jump), so

    alif: factor = eta g^2 2^(15 - L) / theta        li: factor = eta g^2 2^(15 - L)

and with ``update = sign`` (dw = -eta sign(dE/dw), eta in nA) or ``update = adam`` (dw = -eta
m^/sqrt(v^), a dimensionless step times eta nA) factor = eta g 2^(15 - L) for both.

stored as a 15-bit mantissa and an exponent (:func:`nmc.formats.eprop.lr_words`).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import IrError, QuantizationError
from ..formats import spinnaker as fx
from ..formats.eprop import lr_words
from ..ir.eprop import eprop_rule, is_eprop
from ..ir.network import Network, Population, Projection
from ..target import Target
from .common import as_param, num

#: Target-neutral model -> the chip's e-prop core model.
EPROP_MODELS = {"alif": "eprop_alif", "li": "eprop_li"}
ALIF_WORDS = ("tau_m", "tau_a", "theta", "beta", "bias", "tau_refrac", "lr_mant", "lr_exp")
LI_WORDS = ("tau_m", "bias", "lr_mant", "lr_exp")
WORDS = {"eprop_alif": ALIF_WORDS, "eprop_li": LI_WORDS}
#: Largest magnitude of a signed 16-bit weight word.
SIGNED_MAX = (1 << 15) - 1


def gain(pop: Population, dt: float) -> np.ndarray:
    """g = R (1 - e^(-dt / tau_m)) in mV per nA: the voltage jump of a one-step pulse of 1 nA."""
    tau = np.asarray(pop.param_array("tau_m"), dtype=np.float64)
    cm = np.asarray(pop.param_array("cm"), dtype=np.float64)
    return tau / cm * -np.expm1(-dt / tau)


def _check(pop: Population) -> dict[str, np.ndarray]:
    loc = f"population '{pop.name}'"
    p = {k: np.asarray(pop.param_array(k), dtype=np.float64) for k in pop.params}
    for k, v in p.items():
        if not np.all(np.isfinite(v)):
            raise IrError(f"parameter '{k}' must be finite", location=loc)
    for k in ("tau_m", "cm", "tau_a"):
        if k in p and np.any(p[k] <= 0):
            raise IrError(f"{k} must be positive (lowest {num(float(p[k].min()))})", location=loc)
    if "v_th" in p and np.any(p["v_th"] <= p["v_rest"]):
        raise IrError("v_th must lie above v_rest (the threshold distance theta = v_th - v_rest is positive)",
                      location=loc)
    for k in ("t_ref", "beta"):
        if k in p and np.any(p[k] < 0):
            raise IrError(f"{k} must not be negative (lowest {num(float(p[k].min()))})", location=loc)
    return p


def lower_eprop(net: Network, target: Target, dt: float,
                store: Callable[[Projection, np.ndarray, int], None]) -> list[str]:
    """Lower every ``alif`` / ``li`` population and the weights into it (``store`` writes a
    projection's words back in its own storage); returns report lines."""
    pops = [p for p in net.populations if p.model in EPROP_MODELS]
    if not pops:
        return []
    headroom = float(target.get("eprop.weight_headroom"))
    report: list[str] = []
    for pop in pops:
        rules = [eprop_rule(q.learning, f"projection '{q.name}'") for q in net.projections
                 if q.post == pop.name and is_eprop(q.learning)]
        eta = rules[0]["eta"] if rules else 0.0
        # Sign descent and Adam both step by eta nA times a dimensionless amount.
        sign = bool(rules) and rules[0]["update"] in ("sign", "adam")
        p = _check(pop)
        g = gain(pop, dt)
        into = [q for q in net.projections if q.post == pop.name]
        jumps: list[tuple[Projection, np.ndarray, np.ndarray]] = []
        top = 0.0
        for q in into:
            _, post, w = q.coo(net.population(q.pre).size, pop.size)
            jump = np.asarray(w, dtype=np.float64) * g[np.asarray(post, dtype=np.int64)]
            jumps.append((q, np.asarray(post, dtype=np.int64), jump))
            top = max(top, float(np.abs(jump).max(initial=0.0)))
        # The weight scale: room for w_max (the rule's bound on |w|, nA) or headroom x the largest
        # initial weight, whichever the rule gives; never less than the initial weights.
        w_max = rules[0].get("w_max") if rules else None
        room = max(top, float(np.max(g)) * w_max) if w_max is not None else headroom * top
        shift = fx.ring_buffer_shift(room)
        if shift > 15:
            raise QuantizationError(f"weights up to {top:.4g} mV per spike need a shift of {shift} (above 15)",
                                    location=f"population '{pop.name}'")
        words: dict[str, Any] = {"tau_m": fx.s1615(p["tau_m"], "tau_m"), "bias": fx.s1615(g * p["i_bias"], "bias")}
        # Gradient descent scales G (dE/d(jump), normalised by theta for alif) into weight words;
        # sign descent moves each weight by eta nA, the jump by g eta mV.
        factor = eta * g * 2.0 ** (15 - shift) if sign else eta * g ** 2 * 2.0 ** (15 - shift)
        if pop.model == "alif":
            theta = p["v_th"] - p["v_rest"]
            if not sign:
                factor = factor / theta
            words.update(tau_a=fx.s1615(p["tau_a"], "tau_a"), theta=fx.s1615(theta, "theta"),
                         beta=fx.s1615(p["beta"], "beta"), tau_refrac=fx.s1615(p["t_ref"], "t_ref"))
            if np.any(words["theta"] <= 0):
                raise QuantizationError("the threshold distance v_th - v_rest rounds to 0 in s16.15",
                                        location=f"population '{pop.name}'")
        words["lr_mant"], words["lr_exp"] = lr_words(factor)
        model = EPROP_MODELS[pop.model]
        lines = [f"  population '{pop.name}' ({pop.model}, {pop.size} neurons) as {model}: dt {dt:g} ms, gain "
                 f"{float(g.min()):.4g}..{float(g.max()):.4g} mV/nA, weight shift {shift} (step "
                 f"{2.0 ** (shift - 15):.3g} mV, largest initial jump {top:.4g} mV, "
                 + (f"w_max {w_max:g} nA)" if w_max is not None else f"headroom x{headroom:g})")]
        for q, post, jump in jumps:
            w = np.rint(jump * 2.0 ** (15 - shift))
            zeros = int(np.count_nonzero((w == 0) & (jump != 0)))
            if zeros and zeros == int(np.count_nonzero(jump)):
                raise QuantizationError(f"all {zeros} non-zero weights round to zero (step {2.0 ** (shift - 15):.3g} mV)",
                                        location=f"projection '{q.name}'")
            store(q, w.astype(np.int64), pop.size)
            q.sign = "mixed"
            lines.append(f"  projection '{q.name}': {w.size} synapses as signed words; {zeros} round to zero"
                         + ("; plastic (e-prop)" if is_eprop(q.learning) else ""))
        pop.attrs["mapped"] = {"model": pop.model, "params": dict(pop.params), "dt": dt,
                               "units": {"v": [float(fx.ONE), 0.0]}}
        params = {k: as_param(np.asarray(words[k], dtype=np.int64)) for k in WORDS[model]}
        params["time_step"] = int(fx.s1615(dt, "dt"))
        params["shift"] = int(shift)
        pop.model, pop.params = model, params
        report += lines
    return report
