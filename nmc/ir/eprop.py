"""e-prop in the IR: the rule on a projection and the trial structure of the network.

An e-prop rule is target-neutral data on each plastic projection (``Projection.learning``)::

    {"kind": "eprop",
     "eta": 0.002,                 # gradient-descent step: dw = -eta dE/dw, w in the post model's units
     "feedback_seed": 3,           # the fixed random feedback matrix B ~ N(0, 1) is drawn from this seed
     "rate_target": 10.0,          # Hz: firing-rate regularisation target
     "rate_reg": 0.01,             # c in E_reg = c/2 sum_j (f_j - rate_target)^2, f in Hz
     "loss": "cross_entropy",      # or "mse"
     "gamma": 0.3,                 # the pseudo-derivative's dampening factor
     "update": "gradient",         # dw = -eta G (gradient descent), -eta sign(G) (sign descent) or
                                   # -eta m^/sqrt(v^) (Adam: Kingma & Ba, beta1 0.9, beta2 0.999)
     "w_max": 2.0}                 # optional: the largest |w| learning may reach in the post population

and the trial structure is ``net.attrs["trial"]`` (from ``schedule trial``, ``schedule batch`` and
``score``)::

    {"duration": 2250.0,           # ms per trial; every trial starts from the resting state
     "batch": 1,                   # trials per weight update
     "score": {"population": "y", "target": "t", "from": 2100.0}}   # window [from, duration) ms

Equations and the chip's realisation: docs/eprop.md.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import IrError

LOSSES = ("cross_entropy", "mse")
#: How a batch's gradient G changes a weight: dw = -eta G, or dw = -eta sign(G) (signSGD,
#: Bernstein et al. 2018: the step no longer depends on the gradient's scale, which differs by
#: orders of magnitude between synapses; no multiply on the chip), or dw = -eta m^/sqrt(v^) (Adam,
#: Kingma & Ba 2015, the optimiser of Bellec et al. 2020; its moments live in SDRAM on the chip).
UPDATES = ("gradient", "sign", "adam")
RULE_KEYS = ("kind", "eta", "feedback_seed", "rate_target", "rate_reg", "loss", "gamma", "update", "w_max")
#: Defaults of the optional parts of a rule.
DEFAULTS: dict[str, Any] = {"rate_target": 10.0, "rate_reg": 0.0, "loss": "cross_entropy", "gamma": 0.3,
                            "update": "gradient"}


def is_eprop(learning: Any) -> bool:
    """Whether a projection's ``learning`` is an e-prop rule (not a sum-of-products rule)."""
    return isinstance(learning, dict) and learning.get("kind") == "eprop"


def _number(d: dict[str, Any], key: str, where: str, lo: float, lo_open: bool) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise IrError(f"e-prop {key} must be a number, got {v!r}", location=where)
    if v < lo or (lo_open and v == lo):
        raise IrError(f"e-prop {key} must be {'>' if lo_open else '>='} {lo:g}, got {v:g}", location=where)
    return float(v)


def eprop_rule(learning: Any, where: str) -> dict[str, Any]:
    """Check an e-prop rule dict; returns it with the defaults filled in (IrError naming the fault)."""
    if not is_eprop(learning):
        raise IrError(f"not an e-prop rule: {learning!r}", location=where)
    unknown = sorted(set(learning) - set(RULE_KEYS))
    if unknown:
        raise IrError(f"e-prop rule has unknown key '{unknown[0]}' (known: {', '.join(RULE_KEYS)})", location=where)
    rule = {**DEFAULTS, **learning}
    if "eta" not in learning:
        raise IrError("e-prop rule has no learning rate 'eta'", location=where)
    rule["eta"] = _number(rule, "eta", where, 0.0, True)
    rule["rate_target"] = _number(rule, "rate_target", where, 0.0, False)
    rule["rate_reg"] = _number(rule, "rate_reg", where, 0.0, False)
    rule["gamma"] = _number(rule, "gamma", where, 0.0, True)
    seed = learning.get("feedback_seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise IrError(f"e-prop feedback_seed must be a non-negative integer, got {seed!r}", location=where)
    if rule["loss"] not in LOSSES:
        raise IrError(f"e-prop loss must be one of {', '.join(LOSSES)}, got {rule['loss']!r}", location=where)
    if "w_max" in learning:
        rule["w_max"] = _number(rule, "w_max", where, 0.0, True)
    if rule["update"] not in UPDATES:
        raise IrError(f"e-prop update must be one of {', '.join(UPDATES)}, got {rule['update']!r}", location=where)
    return rule


def whole_steps(value: float, dt: float, what: str) -> str | None:
    """A complaint when ``value`` ms is not a whole number of time steps of ``dt`` ms (None if it is)."""
    steps = value / dt
    if abs(steps - round(steps)) > 1e-9 * max(1.0, abs(steps)):
        return f"{what} must be a whole number of time steps of {dt:g} ms, got {value:g} ms"
    return None


def trial_spec(attrs: dict[str, Any], where: str = "network") -> dict[str, Any] | None:
    """Check ``net.attrs["trial"]`` (None when absent); IrError naming the fault."""
    trial = attrs.get("trial")
    if trial is None:
        return None
    if not isinstance(trial, dict):
        raise IrError(f"trial must be a dictionary, got {trial!r}", location=where)
    duration = trial.get("duration")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not duration > 0:
        raise IrError(f"trial duration must be a positive number of ms, got {duration!r}", location=where)
    batch = trial.get("batch", 1)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise IrError(f"trial batch must be a positive integer, got {batch!r}", location=where)
    score = trial.get("score")
    if score is not None:
        if not (isinstance(score, dict) and {"population", "target", "from"} <= set(score)):
            raise IrError("trial score needs population, target and from", location=where)
        start = score["from"]
        if isinstance(start, bool) or not isinstance(start, (int, float)) or not 0 <= start < duration:
            raise IrError(f"the scored window must start inside the trial [0, {duration:g}) ms, got {start!r}",
                          location=where)
    dt = attrs.get("dt")
    if isinstance(dt, (int, float)) and not isinstance(dt, bool) and dt > 0:
        for what, value in (("the trial", duration), ("the scored window's start", score["from"] if score else 0.0)):
            problem = whole_steps(float(value), float(dt), what)
            if problem is not None:
                raise IrError(problem, location=where)
    return {"duration": float(duration), "batch": batch, "score": score}
