"""The ``mapping`` part of the Loihi-like target: the W/tau mapping of target-neutral neuron models
to ``cuba_lif`` compartment registers (docs/mapping.md has every equation next to its continuous
counterpart).

``lif`` / ``if`` (physical units: ms, mV, nA, nF), per neuron, with the network step dt:

    a_syn = exp(-dt/tau_syn)              decay_u = round(4096 (1 - a_syn)) - 1   (the chip adds 1)
    a_m   = exp(-dt/tau_m)                decay_v = round(4096 (1 - a_m))          (if: 0)
    g     = (tau_m/cm)(1 - a_m')          mV per nA and step: exact DC gain with the realised a_m'
            (dt/cm where the leak is off)
    c     = tau_syn (1 - a_syn') / dt     a spike's current, per step, that delivers the continuous
            (1 for tau_syn = 0)           model's charge w * tau_syn with the realised a_syn'
    lam   = 64 * lif_threshold_mant / max(v_th - v_0)   voltage units per mV (v_0 = v_rest; if: v_reset)
    threshold = round(lam (v_th - v_0) / 64);   bias = lam g i_bias;   refractory = round(t_ref/dt) + 1
    w_eff = lam g c w / 64                (effective weight of a synapse of w nA)

``graded`` (threshold units): a memoryless compartment (decay_u 4095, decay_v 4096), threshold
mantissa ``mapping.graded_threshold_mant`` = T, bias = b * T * 64, and w_eff = w * T.

Primes mark values as realised in the registers. ``64`` above stands for 2^neuron.threshold_shift
and 2^synapse.weight_shift, read from the target file.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import IrError, QuantizationError
from ..formats import loihi as fmt
from ..ir.models import NEURON_MODELS
from ..ir.network import Network, Population, Projection
from ..passes.registry import PassContext
from ..target import Target
from . import RegisterView
from .common import num, report_lossy
from .loihi_quantize import projection_sign

#: Models this mapping lowers; everything else must already be register level.
PHYSICAL = ("lif", "if")


def _uniform(values: np.ndarray) -> Any:
    """One value for every neuron as a plain number (the IR prints it inline), else the array."""
    v = np.asarray(values)
    if v.size and np.all(v == v.reshape(-1)[0]):
        x = v.reshape(-1)[0].item()
        return int(x) if float(x).is_integer() else float(x)
    return v.astype(np.int64) if np.all(v == np.floor(v)) else v.astype(np.float64)


def _tau(a: np.ndarray, dt: float) -> np.ndarray:
    """The time constant a per-step factor a realises: -dt / ln a (0 for a = 0, inf for a = 1)."""
    with np.errstate(divide="ignore"):
        return np.where(a <= 0, 0.0, np.where(a >= 1, np.inf, -dt / np.log(np.clip(a, 1e-300, 1.0))))


def _pct(got: np.ndarray, asked: np.ndarray) -> float:
    """Largest relative difference in percent (0 where both are 0; inf asked vs inf got is 0)."""
    got, asked = np.asarray(got, dtype=np.float64), np.asarray(asked, dtype=np.float64)
    same = (got == asked)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(same, 0.0, np.abs(got - asked) / np.abs(asked))
    return float(np.max(rel, initial=0.0) * 100.0)


def _span(x: np.ndarray, unit: str) -> str:
    lo, hi = float(np.min(x)), float(np.max(x))
    return f"{lo:.6g} {unit}" if lo == hi else f"{lo:.6g}..{hi:.6g} {unit}"


class LoihiNeuronMapping:
    """Lowers ``lif``, ``if`` and ``graded`` populations to ``cuba_lif`` registers (module docstring)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.ts = int(target.get("neuron.threshold_shift"))
        self.ws = int(target.get("synapse.weight_shift"))
        self.one = 1 << int(target.get("neuron.decay_shift"))        # 4096: decays are k / 4096
        self.du_max = int(target.get("neuron.decay_u_max"))
        self.dv_max = int(target.get("neuron.decay_v_max"))

    # -- the register view of one population --------------------------------------------------
    def registers(self, pop: Population, dt: float | None = None) -> RegisterView:
        if pop.model == "cuba_lif":
            params = {k: pop.params.get(k, v) for k, v in NEURON_MODELS["cuba_lif"].defaults().items()}
            return RegisterView("cuba_lif", params, 1.0, {"v": (1.0, 0.0), "u": (1.0, 0.0)})
        if pop.model == "graded":
            return self._graded(pop)
        if pop.model in PHYSICAL:
            if dt is None:
                raise IrError(f"model '{pop.model}' is in physical units and needs the network's time step "
                              "(write 'dt = 1 ms' in the source)", location=f"population '{pop.name}'")
            return self._physical(pop, dt)[0]
        raise IrError(f"target '{self.target.name}' cannot map neuron model '{pop.model}'",
                      location=f"population '{pop.name}'")

    def _graded(self, pop: Population) -> RegisterView:
        t = int(self.target.get("mapping.graded_threshold_mant"))
        bias = float(np.max(pop.param_array("bias")))
        params = {"decay_u": self.du_max, "decay_v": self.dv_max, "threshold": t,
                  "bias": _uniform(np.asarray(bias * t * (1 << self.ts))), "refractory": 1}
        scale = float(t * (1 << self.ts) / (1 << self.ws))
        return RegisterView("cuba_lif", params, scale, {"v": (float(t << self.ts), 0.0)})

    def _physical(self, pop: Population, dt: float) -> tuple[RegisterView, dict[str, Any]]:
        """Registers of a lif / if population and what they realise (for the report)."""
        p = {k: np.asarray(pop.param_array(k), dtype=np.float64) for k in NEURON_MODELS[pop.model].params}
        loc = f"population '{pop.name}'"
        is_lif = pop.model == "lif"
        bad = [k for k, v in p.items() if not np.all(np.isfinite(v))]
        if bad:
            raise IrError(f"parameter '{bad[0]}' must be finite", location=loc)
        if not is_lif and int(p["soft_reset"][0]):
            return self._soft_reset(pop, p, dt)
        if not is_lif and float(p["init_charge"][0]):
            raise IrError("init_charge needs soft_reset = 1 (the chip starts a neuron at its reset value)", location=loc)
        v0 = p["v_rest"] if is_lif else p["v_reset"]
        if is_lif and np.any(p["v_reset"] != p["v_rest"]):
            i = int(np.flatnonzero(p["v_reset"] != p["v_rest"])[0])
            raise IrError(f"target '{self.target.name}' resets the voltage to its resting value, so a lif needs "
                          f"v_reset = v_rest (neuron {i}: v_reset {num(p['v_reset'][i])} mV, v_rest "
                          f"{num(p['v_rest'][i])} mV)", location=loc)
        span = p["v_th"] - v0
        if np.any(span <= 0):
            what = "v_rest" if is_lif else "v_reset"
            raise IrError(f"v_th must lie above {what} (lowest v_th - {what} = {num(float(span.min()))} mV)",
                          location=loc)
        one = float(self.one)
        # Current decay (the chip adds 1 to decay_u): a_syn' = (4096 - decay_u - 1) / 4096.
        tau_s = p["tau_syn"]
        a_s = np.where(tau_s > 0, np.exp(-dt / np.where(tau_s > 0, tau_s, 1.0)), 0.0)
        du_raw = np.round(one * (1.0 - a_s)) - 1
        du = np.clip(du_raw, 0, self.du_max)
        a_s_real = (one - du - 1) / one
        c = np.where(tau_s > 0, tau_s * (1.0 - a_s_real) / dt, 1.0)
        # Voltage decay: a_m' = (4096 - decay_v) / 4096.
        if is_lif:
            a_m = np.exp(-dt / p["tau_m"])
            dv_raw = np.round(one * (1.0 - a_m))
            dv = np.clip(dv_raw, 0, self.dv_max)
        else:
            a_m = np.ones(pop.size)
            dv_raw = dv = np.zeros(pop.size)
        a_m_real = (one - dv) / one
        leak = dv > 0
        gain = np.where(leak, (p["tau_m"] if is_lif else 1.0) / p["cm"] * (1.0 - a_m_real), dt / p["cm"])
        lam = float(int(self.target.get("mapping.lif_threshold_mant")) * (1 << self.ts) / float(span.max()))
        thr = np.round(lam * span / (1 << self.ts))
        refr_raw = np.round(p["t_ref"] / dt) + 1
        r_lo, r_hi = int(self.target.get("neuron.refractory_min")), int(self.target.get("neuron.refractory_max"))
        refr = np.clip(refr_raw, r_lo, r_hi)
        bias_q = fmt.quantize_bias(lam * gain * p["i_bias"], self.target)
        params = {"decay_u": _uniform(du), "decay_v": _uniform(dv), "threshold": _uniform(thr),
                  "bias": _uniform(bias_q.values), "refractory": _uniform(refr)}
        w_scale = lam * gain * c / (1 << self.ws)
        units = {"v": (lam, float(v0[0]) if np.all(v0 == v0[0]) else 0.0)}
        if np.all(gain == gain[0]):
            units["u"] = (lam * float(gain[0]), 0.0)
        view = RegisterView("cuba_lif", params, w_scale if np.any(w_scale != w_scale[0]) else float(w_scale[0]),
                            units)
        realised = {
            "p": p, "lam": lam, "dt": dt, "v0": v0,
            "tau_syn": (tau_s, _tau(a_s_real, dt)), "tau_m": (p["tau_m"] if is_lif else None, _tau(a_m_real, dt)),
            "v_th": (p["v_th"], v0 + thr * (1 << self.ts) / lam),
            "i_bias": (p["i_bias"], np.where(gain > 0, bias_q.values / (lam * gain), 0.0)),
            "t_ref": (p["t_ref"], (refr - 1) * dt),
            "a_m": (a_m, a_m_real), "gain": gain,
            "saturated": {"decay_u": int(np.count_nonzero(du != du_raw)),
                          "decay_v": int(np.count_nonzero(dv != dv_raw)),
                          "refractory": int(np.count_nonzero(refr != refr_raw)),
                          "bias": bias_q.report.n_saturated},
        }
        return view, realised

    def _soft_reset(self, pop: Population, p: dict[str, np.ndarray], dt: float) -> tuple[RegisterView, dict[str, Any]]:
        """An ``if`` with reset by subtraction on a compartment that resets v to 0: the current
        register u integrates (decay_u 0), v = u each step (decay_v memoryless), and a synapse from
        the neuron onto itself subtracts the threshold span the step after a spike -- the negative
        self-feedback of a sigma-delta modulator. The bias enters through a neuron that fires
        every step (a bias added to v would only move the threshold). Starting at init_charge of
        the span is the same as a threshold lowered by it. Returns the view and, for ``lower``,
        the self-weights and the bias (model units)."""
        loc = f"population '{pop.name}'"
        if np.any(p["tau_syn"] != 0) or np.any(p["t_ref"] != 0):
            raise IrError(f"target '{self.target.name}' realises soft_reset = 1 with its current register as the "
                          "integrator, so it needs tau_syn = 0 and t_ref = 0", location=loc)
        init = float(p["init_charge"][0])
        if not 0.0 <= init < 1.0:
            raise IrError(f"init_charge must lie in [0, 1), got {init:g}", location=loc)
        span = p["v_th"] - p["v_reset"]
        if np.any(span <= 0):
            raise IrError(f"v_th must lie above v_reset (lowest v_th - v_reset = {num(float(span.min()))} mV)", location=loc)
        one = 1 << self.ts
        lam = float(int(self.target.get("mapping.soft_reset_threshold_mant")) * one / float(span.max()))
        gain = dt / p["cm"]
        thr = np.round(lam * span * (1.0 - init) / one)
        params = {"decay_u": 0, "decay_v": self.dv_max, "threshold": _uniform(thr), "bias": 0, "refractory": 1}
        w_scale = lam * gain / (1 << self.ws)
        offset = p["v_reset"] + init * span
        v_units = (lam, float(offset[0]) if np.all(offset == offset[0]) else 0.0)
        view = RegisterView("cuba_lif", params, w_scale if np.any(w_scale != w_scale[0]) else float(w_scale[0]),
                            {"v": v_units, "u": v_units})
        # Self-feedback of -span mV and the bias current, both as weights in nA (the model's unit).
        realised = {"soft": True, "lam": lam, "dt": dt, "self_weight": -span / gain,
                    "bias_weight": p["i_bias"].copy(), "leak": 1.0 / self.one, "threshold": thr, "init": init}
        return view, realised

    def _add_soft_reset_synapses(self, net: Network, pop: Population, real: dict[str, Any]) -> list[str]:
        """The self-feedback projection and, for a non-zero bias, an always-firing neuron with a
        projection carrying the bias; returns the report lines."""
        net.add_projection(Projection(net.unique_projection_name(pop.name, pop.name), pop.name, pop.name, "one_to_one",
                                      np.asarray(real["self_weight"], dtype=np.float64)))
        lines = [f"  population '{pop.name}' (if, soft reset, {pop.size} neurons): the current register integrates "
                 f"(decay_u 0 leaks {real['leak']:.3g} per step, where the model has no leak); v = u; a self-synapse "
                 f"subtracts the threshold span after each spike; threshold at {1 - real['init']:g} of the span "
                 f"(init_charge {real['init']:g}); voltage scale {real['lam']:.6g} units/mV"]
        bias = np.asarray(real["bias_weight"], dtype=np.float64)
        if np.any(bias):
            name = f"{pop.name}/bias"
            # Memoryless, threshold mantissa 1 and a bias of two thresholds: fires every step from the first.
            net.add_population(Population(name, 1, "cuba_lif", {"decay_u": self.du_max, "decay_v": self.dv_max,
                                                                 "threshold": 1, "bias": 2 << self.ts,
                                                                 "refractory": 1}))
            net.add_projection(Projection(net.unique_projection_name(name, pop.name), name, pop.name, "dense",
                                          bias.reshape(1, -1).copy()))
            lines.append(f"    bias: from neuron '{name}', which fires every step (the bias applies from step 1, "
                         "when the first input spikes arrive)")
        return lines

    # -- lowering a network ---------------------------------------------------------------------
    def lower(self, net: Network, ctx: PassContext) -> list[str]:
        mapped = [p for p in net.populations if p.model in ("graded", *PHYSICAL)]
        if not mapped:
            return []
        dt = net.attrs.get("dt")
        if any(p.model in PHYSICAL for p in mapped):
            if dt is None:
                first = next(p for p in mapped if p.model in PHYSICAL)
                raise IrError(f"model '{first.model}' is in physical units and needs the network's time step "
                              "(write 'dt = 1 ms' in the source, or set the network attribute dt in ms)",
                              location=f"population '{first.name}'")
            if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
                raise IrError(f"the time step dt must be a positive number of ms, got {dt!r}", location="network")
        report: list[str] = []
        views: dict[str, RegisterView] = {}
        soft: list[tuple[Population, dict[str, Any]]] = []
        for pop in mapped:
            loc = f"population '{pop.name}'"
            record: dict[str, Any] = {"model": pop.model, "params": dict(pop.params)}
            if pop.model == "graded":
                view = self._graded(pop)
            else:
                view, real = self._physical(pop, float(dt))
                if real.get("soft"):
                    soft.append((pop, real))
                    real = {"saturated": {}}
                else:
                    report += self._population_report(pop, real)
                for key, n in real["saturated"].items():
                    if n:
                        report_lossy(ctx, f"{key}: {n} of {pop.size} neurons saturated at the register's range "
                                          f"(see the map-neurons report, --report)", loc)
                record["dt"] = float(dt)
            record["units"] = {k: [float(a), float(b)] for k, a, b in
                               ((k, *v) for k, v in view.units.items())}
            pop.model, pop.params = view.model, dict(view.params)
            pop.attrs["mapped"] = record
            views[pop.name] = view
        for pop, real in soft:
            report += self._add_soft_reset_synapses(net, pop, real)
        for proj in net.projections:
            view = views.get(proj.post)
            if view is None:
                continue
            post = net.population(proj.post)
            self._scale_weights(proj, np.broadcast_to(np.asarray(view.weight_scale, dtype=np.float64), (post.size,)),
                                net.population(proj.pre).size)
            if post.attrs["mapped"]["model"] in PHYSICAL:
                report += self._round_weights(proj, ctx)
        return report

    @staticmethod
    def _scale_weights(proj: Projection, scale: np.ndarray, n_pre: int) -> None:
        """Weights from the post model's units to effective units, per post neuron."""
        w = np.asarray(proj.weights, dtype=np.float64)
        uniform = bool(np.all(scale == scale[0]))
        if proj.connectivity == "dense":
            proj.weights = w * (scale[0] if uniform else scale[None, :])
        elif proj.connectivity == "one_to_one":
            proj.weights = w * scale
        elif proj.connectivity == "sparse":
            proj.weights = w * scale[np.asarray(proj.post_index, dtype=np.int64)]
        elif uniform:  # one_to_all
            proj.weights = w * scale[0]
        else:  # one weight per pre neuron cannot carry a scale per post neuron: store it dense
            proj.weights = np.repeat(w[:, None], scale.size, axis=1) * scale[None, :]
            proj.connectivity = "dense"

    def _round_weights(self, proj: Projection, ctx: PassContext) -> list[str]:
        """Round the effective weights of a projection into a physical model to the format, with the
        one exponent per projection that the weight range needs; returns the report lines."""
        loc = f"projection '{proj.name}'"
        w = np.asarray(proj.weights, dtype=np.float64)
        sign = projection_sign(proj, w, loc)
        bits = fmt.projection_weight_bits(proj, self.target)
        try:
            fmt.check_weight_bits(bits, self.target)
            exponent = int(proj.exponent) if proj.exponent is not None else \
                fmt.choose_weight_exponent(w, bits, sign, self.target)
            fmt.check_weight_exponent(exponent, self.target)
            q = fmt.quantize_weights(w, bits, sign, exponent, self.target)
        except QuantizationError as exc:
            raise QuantizationError(exc.message, location=loc) from None
        got = fmt.effective_weight(q.mantissas, exponent).astype(np.float64)
        nonzero = w != 0
        zeros = int(np.count_nonzero(nonzero & (got == 0)))
        top = float(np.abs(w).max(initial=0.0))
        worst = float(np.abs(got - w).max(initial=0.0)) / top * 100 if top else 0.0
        proj.weights, proj.sign, proj.weight_bits, proj.exponent = got, sign, bits, exponent
        if zeros == int(np.count_nonzero(nonzero)) and zeros:
            raise QuantizationError(f"all {zeros} non-zero weights round to zero at the smallest effective weight "
                                    f"of the format (the largest is {num(float(np.abs(w).max()))} effective units); "
                                    "raise the weights", location=loc)
        if zeros:
            report_lossy(ctx, f"{zeros} of {w.size} weights round to zero (smaller than half the weight step "
                              f"{num(2.0 ** max(exponent, 0))} effective units)", loc)
        if q.report.n_saturated:
            report_lossy(ctx, f"{q.report.n_saturated} of {w.size} weights saturated at the format's largest "
                              f"effective weight ({bits}-bit {sign}, exponent {exponent})", loc)
        return [f"  projection '{proj.name}': {bits}-bit {sign}, exponent {exponent}; {zeros} of {w.size} weights "
                f"round to zero, {q.report.n_saturated} saturate, largest rounding error {worst:.3g} % of the largest weight"]

    def _population_report(self, pop: Population, r: dict[str, Any]) -> list[str]:
        """What was asked against what the registers realise, per parameter, and the step-response
        error bound of docs/mapping.md."""
        lines = [f"  population '{pop.name}' ({pop.model}, {pop.size} neurons): dt {r['dt']:g} ms, "
                 f"voltage scale {r['lam']:.6g} units/mV"]
        rows = [("tau_syn", "ms", *r["tau_syn"])]
        if r["tau_m"][0] is not None:
            rows.append(("tau_m", "ms", *r["tau_m"]))
        rows += [("v_th", "mV", *r["v_th"]), ("i_bias", "nA", *r["i_bias"]), ("t_ref", "ms", *r["t_ref"])]
        for name, unit, asked, got in rows:
            lines.append(f"    {name:<8} asked {_span(asked, unit):<24} realised {_span(got, unit):<24} "
                         f"error {_pct(got, asked):.3g} %")
        e_rel, e_abs = step_response_bound(*r["a_m"], r["i_bias"][0], r["i_bias"][1], r["lam"])
        lines.append(f"    step response: |V - V_exact| <= {100 * e_rel:.3g} % of the step's size + {e_abs:.3g} mV")
        return lines


def step_response_bound(a: np.ndarray, a_real: np.ndarray, i_asked: np.ndarray, i_real: np.ndarray,
                        lam: float) -> tuple[float, float]:
    """Bound on |v[k]/lam - (V(t_k) - v_0)| for a current step from rest (docs/mapping.md,
    "Discretisation error"): a relative part, max_k |a'^k - a^k| plus the relative error of the
    realised bias current, and an absolute part, the truncation of the decay (< 1 voltage unit per
    step, decaying with a'): 1 / (lam (1 - a')) mV, or per step 1/lam without leak.

    Returned as (relative, absolute mV), worst over the neurons."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    a_real = np.asarray(a_real, dtype=np.float64).reshape(-1)
    worst_pow = 0.0
    for x, y in set(zip(a.tolist(), a_real.tolist())):
        if x == y:
            continue
        top = max(x, y)
        n = 1 if top <= 0 else int(min(1e6, max(10.0, 60.0 / max(-math.log(top), 1e-12))))
        k = np.arange(1, n + 1, dtype=np.float64)
        worst_pow = max(worst_pow, float(np.max(np.abs(y ** k - x ** k))))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_bias = np.where(i_asked != 0, np.abs(i_real - i_asked) / np.abs(i_asked), 0.0)
    leak = 1.0 - a_real
    trunc = np.where(leak > 0, 1.0 / (lam * np.where(leak > 0, leak, 1.0)), 0.0)
    return worst_pow + float(np.max(rel_bias, initial=0.0)), float(np.max(trunc, initial=0.0))
