"""``quantize`` for the Loihi-like target: weights and cuba_lif registers into its number formats.

Reads every projection's ``weights`` (effective units), ``sign``, ``weight_bits``, ``exponent``
and ``delay``, and every population's ``params``; writes integer mantissas, the chosen sign mode,
weight_bits and exponent, integer parameters, and ``net.attrs["quantized"] = <target>``.
Anything that changes a value is reported as a warning (an error with ``ctx.strict``).

The pass is idempotent: on a network already quantized for the same target it only checks that
the stored mantissas are valid in their recorded format (the IR may have been edited). Formats:
:mod:`nmc.formats.loihi`; equations: docs/passes.md.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import QuantizationError, ResourceError
from ..formats import loihi as fmt
from ..ir.network import Network, Population, Projection
from ..passes.registry import PassContext
from ..target import Target
from .common import located, num, quantized_for, report_lossy


def _as_param(values: np.ndarray) -> int | np.ndarray:
    """Scalars stay plain ints (so the IR prints them inline), arrays become int64."""
    return int(values) if values.ndim == 0 else values.astype(np.int64)


def quantize_network(net: Network, ctx: PassContext,
                     registers: dict[str, Callable[[Population, PassContext], None]] | None = None) -> Network:
    """The ``quantize`` pass for the Loihi-like target (see the module docstring). ``registers``
    maps each register-level model to the function that quantizes its parameters (default: only
    ``cuba_lif``; a chip variant with more models passes its own)."""
    registers = registers if registers is not None else {"cuba_lif": _quantize_cuba_lif}
    target = ctx.target
    done = quantized_for(net, target)
    for proj in net.projections:
        _check_delay(proj, target)
        if done is None:
            _quantize_projection(proj, ctx)
        else:
            _check_quantized_projection(proj, ctx)
    for pop in net.populations:
        if pop.is_input:
            continue
        if pop.model not in registers:
            raise QuantizationError(f"target '{target.name}' has no number format for neuron model "
                                    f"'{pop.model}'", location=f"population '{pop.name}'")
        registers[pop.model](pop, ctx)
    net.attrs["quantized"] = target.name
    return net


def _check_delay(proj: Projection, target: Target) -> None:
    limit = int(target.get("synapse.max_delay"))
    if proj.delay > limit:
        raise ResourceError(f"delay ({proj.delay}) exceeded max (synapse.max_delay = {limit}) by "
                            f"{proj.delay - limit}; use a shorter delay or chain relay neurons",
                            location=f"projection '{proj.name}'")


def projection_sign(proj: Projection, w: np.ndarray, loc: str) -> str:
    """The user's sign (checked against the weights) or the one the weights imply."""
    if proj.sign is None:
        # Learning may move a weight across zero: plastic synapses need the mixed format.
        return "mixed" if proj.learning is not None else fmt.infer_sign(w)
    if proj.sign not in fmt.SIGNS:
        raise QuantizationError(f"sign must be one of {', '.join(fmt.SIGNS)}, got {proj.sign!r}", location=loc)
    bad = fmt.sign_violations(w, proj.sign)
    if bad:
        worst = w.min() if proj.sign == "excitatory" else w.max()
        raise QuantizationError(f"sign is '{proj.sign}' but {bad} of {w.size} weights have the opposite "
                                f"sign (e.g. {num(float(worst))}); fix the weights or use sign 'mixed'",
                                location=loc)
    return proj.sign


def _quantize_projection(proj: Projection, ctx: PassContext) -> None:
    target = ctx.target
    loc = f"projection '{proj.name}'"
    w = np.asarray(proj.weights, dtype=np.float64)
    sign = projection_sign(proj, w, loc)
    weight_bits = fmt.projection_weight_bits(proj, target)
    with located(loc):
        fmt.check_weight_bits(weight_bits, target)
        if proj.exponent is not None:
            fmt.check_weight_exponent(proj.exponent, target)
            exponent = int(proj.exponent)
        else:
            exponent = fmt.choose_weight_exponent(w, weight_bits, sign, target)
        q = fmt.quantize_weights(w, weight_bits, sign, exponent, target)
    _report_weights(ctx, q.report, weight_bits, sign, exponent, w, proj.exponent is None, loc)
    proj.weights = q.mantissas
    proj.sign = sign
    proj.weight_bits = weight_bits
    proj.exponent = exponent


def _report_weights(ctx: PassContext, rep: fmt.Rounding, weight_bits: int, sign: str, exponent: int,
                    w: np.ndarray, auto_exponent: bool, loc: str) -> None:
    fmt_name = f"{weight_bits}-bit {sign}, exponent {exponent}"
    if rep.n_rounded:
        msg = (f"{rep.n_rounded} of {rep.n_values} weights rounded to the format ({fmt_name}); "
               f"max abs error {num(rep.max_error)} (effective weight units)")
        if exponent < 0:
            msg += (f"; with exponent {exponent} < 0 the chip shifts each weight on its own "
                    f"(effective weight floor(m / 2^{-exponent})), so per-weight shifts lose the low bits")
        report_lossy(ctx, msg, loc)
    if rep.n_saturated:
        ends = ", ".join(num(v) for v in rep.saturated_to)
        msg = (f"{rep.n_saturated} of {rep.n_values} weights saturated at {ends} (the largest effective "
               f"weights of the format {fmt_name})")
        if auto_exponent:
            msg += (f"; no exponent up to synapse.weight_exp_max = {exponent} fits max |w| = "
                    f"{num(float(np.abs(w).max()))}")
        report_lossy(ctx, msg, loc)


def _check_quantized_projection(proj: Projection, ctx: PassContext) -> None:
    """Second run: the weights must already be valid mantissas of the recorded format. With a
    negative exponent the chip shifts each weight on its own (docs/loihi-facts.md §2.2), so a
    mantissa that is not a multiple of 2^-exponent loses its low bits: reported, as on the first
    run."""
    target = ctx.target
    loc = f"projection '{proj.name}'"
    if proj.sign is None or proj.weight_bits is None or proj.exponent is None:
        raise QuantizationError("the network is marked quantized but the projection has no sign, "
                                "weight_bits or exponent; quantize the unquantized IR", location=loc)
    with located(loc):
        fmt.check_weight_bits(proj.weight_bits, target)
        fmt.check_weight_exponent(proj.exponent, target)
        bad = fmt.invalid_mantissas(proj.weights, proj.weight_bits, proj.sign, target)
    if bad:
        lo, hi, step = fmt.mantissa_range(proj.weight_bits, proj.sign, target)
        raise QuantizationError(f"{bad} weights are not mantissas of the format ({proj.weight_bits}-bit "
                                f"{proj.sign}: multiples of {step} in [{lo}, {hi}]) although the network "
                                "is marked quantized", location=loc)
    w = np.asarray(proj.weights)
    if w.dtype != np.int64:
        proj.weights = w.astype(np.int64)
    e = int(proj.exponent)
    if e < 0:
        m = np.asarray(proj.weights, dtype=np.int64)
        lost = int(np.count_nonzero(m != (m >> -e) << -e))
        if lost:
            worst = int(np.max(np.abs(m - ((m >> -e) << -e))))
            report_lossy(ctx, f"{lost} of {m.size} weights lose low bits to the chip's per-weight shift "
                              f"(exponent {e}: effective weight floor(m / 2^{-e}); largest loss {worst} mantissa "
                              f"units); use mantissas that are multiples of {1 << -e}", loc)


def quantize_cuba_lif(pop: Population, ctx: PassContext) -> None:
    """Round a cuba_lif population's registers and bias into their formats (warnings as usual)."""
    _quantize_cuba_lif(pop, ctx)


def _quantize_cuba_lif(pop: Population, ctx: PassContext) -> None:
    loc = f"population '{pop.name}'"
    for name in fmt.REGISTER_PARAMS:
        if name in pop.params:
            requested = pop.params[name]
            values, rep = fmt.quantize_register(requested, name, ctx.target)
            _report_param(ctx, name, requested, values, rep,
                          f"range {fmt.register_range(name, ctx.target)[2]}", loc)
            pop.params[name] = _as_param(values)
    if "bias" in pop.params:
        requested = pop.params["bias"]
        q = fmt.quantize_bias(requested, ctx.target)
        _report_param(ctx, "bias", requested, q.values, q.report,
                      "bias = bm * 2^be, bm in [neuron.bias_mant_min, neuron.bias_mant_max], "
                      "be in [0, neuron.bias_exp_max]", loc)
        pop.params["bias"] = _as_param(q.values)


def report_param(ctx: PassContext, name: str, requested: Any, got: np.ndarray, rep: fmt.Rounding,
                 limits: str, loc: str) -> None:
    """Warn about a parameter that changed when quantized (scalars by value, arrays by counts)."""
    _report_param(ctx, name, requested, got, rep, limits, loc)


def _report_param(ctx: PassContext, name: str, requested: Any, got: np.ndarray, rep: fmt.Rounding,
                  limits: str, loc: str) -> None:
    """Scalars name the old and new value; arrays give counts and the largest error."""
    if rep.exact:
        return
    if np.ndim(requested) == 0:
        old, new = num(float(requested)), num(float(got))
        what = "saturated" if rep.n_saturated else "rounded"
        report_lossy(ctx, f"{name} {old} {what} to {new} ({limits})", loc)
        return
    if rep.n_rounded:
        report_lossy(ctx, f"{name}: {rep.n_rounded} of {rep.n_values} values rounded to representable values "
                     f"(max abs error {num(rep.max_error)}; {limits})", loc)
    if rep.n_saturated:
        ends = ", ".join(num(v) for v in rep.saturated_to)
        report_lossy(ctx, f"{name}: {rep.n_saturated} of {rep.n_values} values saturated at {ends} ({limits})", loc)
