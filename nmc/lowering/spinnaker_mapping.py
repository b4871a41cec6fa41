"""The ``mapping`` part of the SpiNNaker-like target: ``lif`` / ``if`` to sPyNNaker's IF_curr_exp,
and the target's ``quantize`` (docs/spinnaker.md, "The W/tau mapping", has each equation).

The chip runs PyNN's IF_curr_exp, so a ``lif`` population needs no change of model: the host
writes its parameters as raw s16.15 words (:func:`nmc.formats.spinnaker.s1615`, round half to
even) and the core derives R, exp(-dt/tau_m), the refractory ticks and the synaptic decay and
init factors itself at load time. Per neuron, with the network step dt:

    lif:  v_init = v_rest; v_rest, cm, tau_m, v_reset, v_thresh = v_th, tau_refrac = t_ref,
          i_offset = i_bias, tau_syn_e = tau_syn_i = tau_syn
    if:   as lif with tau_m = mapping.if_tau_m and v_rest = v_reset (no leak is not expressible;
          the leak is 1/if_tau_m per ms, the gain dt/cm exact); v_init = v_reset +
          init_charge (v_th - v_reset). soft_reset = 1 is refused: the core resets to v_reset
    tau_syn = 0 (a current pulse lasting one step): tau_syn = dt / mapping.pulse_factor and the
          weights into the population times pulse_factor (the pulse then carries the same charge
          and leaves e^-pulse_factor of itself in the next step)

Weights (nA, the sign choosing the synapse type) become 16-bit words with one left shift per
population and type, chosen as sPyNNaker 7.4.1 does from the incoming projections
(``get_ring_buffer_shifts``, equal-delay branch: nmc projections have one delay each, so the
pooled delay variance is 0):

    M[s] = max( sum over projections p of spikes_per_tick * max|w_p,s| * max in-degree_p,s ,
                max over p of max|w_p,s| )
    L[s] = max(0, ceil(log2 M[s])) + (1 if 2^L <= M[s])           word = rint(|w| 2^(15 - L)) & 0xFFFF

The report gives, per population, the parameters as the core realises them against as asked, and
per population and type the shift, the resolution and range of a weight, the weights that round
to zero and the worst-case ring-slot sum against the slot's capacity (the saturation risk).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np

from ..errors import IrError, QuantizationError
from ..formats import spinnaker as fx
from ..ir.eprop import is_eprop
from ..ir.models import NEURON_MODELS
from ..ir.network import Network, Population, Projection
from ..passes.registry import PassContext
from ..target import Target
from . import RegisterView
from .common import as_param, num, quantized_for, report_lossy
from .eprop_mapping import EPROP_MODELS, SIGNED_MAX, WORDS as EPROP_WORDS, lower_eprop

#: Models this mapping lowers; everything else must already be register level.
PHYSICAL = ("lif", "if")
MODEL = "if_curr_exp"
#: Host words of an if_curr_exp population, one per neuron (the rest are per population).
NEURON_WORDS = ("v_init", "v_rest", "cm", "tau_m", "i_offset", "v_reset", "tau_refrac", "v_thresh",
                "tau_syn_e", "tau_syn_i")
POPULATION_WORDS = ("time_step", "shift_exc", "shift_inh")
#: The largest left shift: a 16-bit word shifted further would reach the sign bit of a REAL.
MAX_SHIFT = 15


def _span(x: np.ndarray, unit: str) -> str:
    lo, hi = float(np.min(x)), float(np.max(x))
    return f"{lo:.6g} {unit}" if lo == hi else f"{lo:.6g}..{hi:.6g} {unit}"


def _pct(got: np.ndarray, asked: np.ndarray) -> float:
    got, asked = np.asarray(got, dtype=np.float64), np.asarray(asked, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(got == asked, 0.0, np.abs(got - asked) / np.abs(asked))
    return float(np.max(rel, initial=0.0) * 100.0)


class SpiNNakerNeuronMapping:
    """Lowers ``lif`` and ``if`` populations to ``if_curr_exp`` host words (module docstring)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.if_tau_m = float(target.get("mapping.if_tau_m"))
        self.pulse_factor = int(target.get("mapping.pulse_factor"))
        self.rate = float(target.get("routing.spikes_per_second"))

    # -- the register view of one population ---------------------------------------------------
    def registers(self, pop: Population, dt: float | None = None) -> RegisterView:
        units = {"v": (float(fx.ONE), 0.0), "u": (float(fx.ONE), 0.0)}
        if pop.model == MODEL:
            params = {k: pop.params.get(k, v) for k, v in NEURON_MODELS[MODEL].defaults().items()}
            scale = 2.0 ** (fx.S1615_FRAC - int(params["shift_exc"]))
            return RegisterView(MODEL, params, scale, units)
        if pop.model in EPROP_WORDS:
            params = {k: pop.params.get(k, v) for k, v in NEURON_MODELS[pop.model].defaults().items()}
            return RegisterView(pop.model, params, 2.0 ** (fx.S1615_FRAC - int(params["shift"])), {"v": units["v"]})
        if pop.model in EPROP_MODELS:
            if dt is None:
                raise IrError(f"model '{pop.model}' is in physical units and needs the network's time step "
                              "(write 'dt = 1 ms' in the source)", location=f"population '{pop.name}'")
            return RegisterView(EPROP_MODELS[pop.model], {}, 1.0, {"v": units["v"]})
        if pop.model in PHYSICAL:
            if dt is None:
                raise IrError(f"model '{pop.model}' is in physical units and needs the network's time step "
                              "(write 'dt = 1 ms' in the source)", location=f"population '{pop.name}'")
            words, _ = self._words(pop, dt)
            return RegisterView(MODEL, words, 1.0, units)
        raise IrError(f"target '{self.target.name}' cannot map neuron model '{pop.model}'",
                      location=f"population '{pop.name}'")

    def _words(self, pop: Population, dt: float, current_scale: float = 1.0) -> tuple[dict[str, Any],
                                                                                   dict[str, np.ndarray]]:
        """Host words of a lif / if population, and what was asked (for the report). The core's
        currents are the model's divided by ``current_scale`` (c_m and i_offset with them)."""
        loc = f"population '{pop.name}'"
        p = {k: np.asarray(pop.param_array(k), dtype=np.float64) for k in NEURON_MODELS[pop.model].params}
        bad = [k for k, v in p.items() if not np.all(np.isfinite(v))]
        if bad:
            raise IrError(f"parameter '{bad[0]}' must be finite", location=loc)
        for key in ("cm", "tau_m"):
            if key in p and np.any(p[key] <= 0):
                raise IrError(f"{key} must be positive (lowest {num(float(p[key].min()))})", location=loc)
        for key in ("tau_syn", "t_ref"):
            if np.any(p[key] < 0):
                raise IrError(f"{key} must not be negative (lowest {num(float(p[key].min()))} ms)", location=loc)
        if pop.model == "if":
            # IF_curr_exp resets V to v_reset: reset by subtraction is a feature this core lacks
            # (its target file does not list 'soft_reset'; convert-ann then resets to zero).
            if np.any(p["soft_reset"] != 0):
                raise IrError(f"target '{self.target.name}' has no reset by subtraction (soft_reset = 1): its "
                              "IF_curr_exp core resets the voltage to v_reset; compile this network for a target "
                              "whose features list 'soft_reset' (e.g. --target loihi)", location=loc)
            outside = (p["init_charge"] < 0) | (p["init_charge"] >= 1)
            if np.any(outside):
                raise IrError(f"init_charge must lie in [0, 1), got {num(float(p['init_charge'][outside][0]))}",
                              location=loc)
            p["tau_m"] = np.full(pop.size, self.if_tau_m)
            p["v_rest"] = p["v_reset"]
        # The core's V starts at the host word v_init (PyNN's initial value of v): at rest, or for
        # an 'if' with a start charge that far above v_reset.
        v_init = p["v_rest"] + p["init_charge"] * (p["v_th"] - p["v_reset"]) if pop.model == "if" else p["v_rest"]
        pulse = p["tau_syn"] == 0
        tau_syn = np.where(pulse, dt / self.pulse_factor, p["tau_syn"])
        asked = {"tau_m": p["tau_m"], "cm": p["cm"], "v_rest": p["v_rest"], "v_reset": p["v_reset"],
                 "v_th": p["v_th"], "t_ref": p["t_ref"], "i_bias": p["i_bias"], "tau_syn": tau_syn,
                 "pulse": pulse, "v_init": v_init}
        values = {"v_init": v_init, "v_rest": p["v_rest"], "cm": p["cm"] / current_scale, "tau_m": p["tau_m"],
                  "i_offset": p["i_bias"] / current_scale, "v_reset": p["v_reset"], "tau_refrac": p["t_ref"],
                  "v_thresh": p["v_th"], "tau_syn_e": tau_syn, "tau_syn_i": tau_syn}
        words: dict[str, Any] = {}
        for key, v in values.items():
            try:
                raw = fx.s1615(v, key)
            except QuantizationError as exc:
                raise QuantizationError(exc.message, location=loc) from None
            if key in ("cm", "tau_m", "tau_syn_e", "tau_syn_i") and np.any(raw <= 0):
                raise QuantizationError(f"{key} {num(float(v[raw <= 0][0]))} rounds to 0 in s16.15 "
                                        f"(resolution {2.0 ** -fx.S1615_FRAC:g})", location=loc)
            words[key] = as_param(raw)
        words["time_step"] = int(fx.s1615(dt, "dt"))
        words["shift_exc"] = words["shift_inh"] = 0
        if pop.model == "if":
            words["cm"] = as_param(self._if_cm(p["cm"] / current_scale, dt, words["time_step"], loc))
        return words, asked

    def _if_cm(self, cm: np.ndarray, dt: float, ts: int, loc: str) -> np.ndarray:
        """The c_m word that gives an 'if' neuron the exact gain dt/c_m with the leak the core
        realises for tau_m = if_tau_m: with k = 2^15 - exp_TC (exp_TC from the core's expk, 32759
        for 4096 ms, not the correctly rounded 32760), R (1 - exp_TC) = dt / c_m needs
        c_m' = c_m tau_m k / (2^15 dt), whose word is round-half-even(c_m tau_m k / dt)."""
        tau = fx.s1615(self.if_tau_m, "mapping.if_tau_m")
        k = fx.ONE - int(fx.expk(-fx.kdivk(ts, tau)))
        scale = Decimal(repr(self.if_tau_m)) * k / Decimal(repr(float(dt)))
        uniq, inverse = np.unique(cm, return_inverse=True)
        raw = np.array([int((Decimal(repr(float(c))) * scale).to_integral_value(rounding=ROUND_HALF_EVEN))
                        for c in uniq.tolist()], dtype=np.int64)[inverse.reshape(-1)]
        if raw.max() > fx.REAL_MAX:
            raise QuantizationError(f"cm {num(float(cm.max()))} nF is too large for an 'if' neuron on this target",
                                    location=loc)
        return raw

    # -- lowering a network ---------------------------------------------------------------------
    def lower(self, net: Network, ctx: PassContext) -> list[str]:
        mapped = [p for p in net.populations if p.model in PHYSICAL or p.model in EPROP_MODELS]
        if not mapped:
            return []
        dt = net.attrs.get("dt")
        if dt is None:
            raise IrError(f"model '{mapped[0].model}' is in physical units and needs the network's time step "
                          "(write 'dt = 1 ms' in the source, or set the network attribute dt in ms)",
                          location=f"population '{mapped[0].name}'")
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise IrError(f"the time step dt must be a positive number of ms, got {dt!r}", location="network")
        dt = float(dt)
        report: list[str] = lower_eprop(net, self.target, dt, self._store)
        mapped = [p for p in mapped if p.model in PHYSICAL]
        factors: dict[str, np.ndarray] = {}
        by_post: dict[str, list[Projection]] = {p.name: [] for p in mapped}
        for proj in net.projections:
            if proj.post in by_post:
                by_post[proj.post].append(proj)
        for pop in mapped:
            pulse = np.asarray(pop.param_array("tau_syn"), dtype=np.float64) == 0
            factor = np.where(pulse, float(self.pulse_factor), 1.0)
            scale = self._current_scale(net, pop, by_post[pop.name], factor, dt)
            words, asked = self._words(pop, dt, scale)
            report += self._population_report(pop, words, asked, dt, scale)
            factors[pop.name] = factor / scale
            # v reads in mV (s16.15); the current the u probe records is the model's over the scale.
            pop.attrs["mapped"] = {"model": pop.model, "params": dict(pop.params), "dt": dt,
                                   "units": {"v": [float(fx.ONE), 0.0], "u": [float(fx.ONE) / scale, 0.0]}}
            if scale != 1.0:
                pop.attrs["mapped"]["current_scale"] = scale
            pop.model, pop.params = MODEL, words
        for pop in mapped:
            report += self._weights(net, pop, by_post[pop.name], factors[pop.name], dt, ctx)
        return report

    def _slot_sums(self, net: Network, post: Population, projs: list[Projection], factor: np.ndarray,
                   dt: float) -> tuple[np.ndarray, list[tuple[Projection, np.ndarray, np.ndarray]]]:
        """sPyNNaker's expected ring-slot sum per synapse type (exc, inh) in nA, and each
        projection's (post index, weight in nA times the per-post ``factor``)."""
        spikes_per_tick = max(1.0, self.rate * dt / 1000.0)
        syn: list[tuple[Projection, np.ndarray, np.ndarray]] = []
        total = np.zeros(2)
        biggest = np.zeros(2)
        for proj in projs:
            _, post_idx, w = proj.coo(net.population(proj.pre).size, post.size)
            w = np.asarray(w, dtype=np.float64) * factor[post_idx]
            syn.append((proj, post_idx, w))
            for s, sel in enumerate((w >= 0, w < 0)):
                if not sel.any():
                    continue
                w_max = float(np.abs(w[sel]).max())
                in_degree = int(np.bincount(post_idx[sel], minlength=post.size).max())
                total[s] += spikes_per_tick * w_max * in_degree
                biggest[s] = max(biggest[s], w_max)
        return np.maximum(total, biggest), syn

    def _current_scale(self, net: Network, pop: Population, projs: list[Projection], factor: np.ndarray,
                       dt: float) -> float:
        """The power of two k by which the core's currents are the model's divided: 1 unless the
        input a tick can bring exceeds the ring buffer's range at the largest shift (a c_m of
        1000 nF, NIR's IF with r = 1, needs 1000 nA per mV). Dividing the currents, c_m and the
        bias by k leaves V unchanged (V follows I R with R = tau_m / c_m), so k is exact up to the
        words' rounding; R = k tau_m / c_m must stay below the s16.15 range, which bounds k."""
        expected, _ = self._slot_sums(net, pop, projs, factor, dt)
        top = float(expected.max(initial=0.0))
        if not math.isfinite(top):
            return 1.0  # _weights reports the weights that cannot be represented
        scale = 1.0
        while fx.ring_buffer_shift(top / scale) > MAX_SHIFT:
            scale *= 2.0
        if scale == 1.0:
            return scale
        cm = np.asarray(pop.param_array("cm"), dtype=np.float64)
        tau = np.asarray(pop.param_array("tau_m") if pop.model == "lif" else self.if_tau_m, dtype=np.float64)
        if not (np.all(np.isfinite(cm)) and np.all(cm > 0) and np.all(np.isfinite(tau)) and np.all(tau > 0)):
            return 1.0  # _words names the bad parameter
        # R as the core derives it, kdivk(tau_m, c_m), from the words the scaled c_m gets.
        loc = f"population '{pop.name}'"
        tau_w = fx.s1615(tau, "tau_m").astype(np.float64)
        cm_w = (self._if_cm(cm / scale, dt, int(fx.s1615(dt, "dt")), loc) if pop.model == "if"
                else fx.s1615(cm / scale, "cm")).astype(np.float64)
        r_max = float(np.max(tau_w / np.maximum(cm_w, 1.0)))
        if r_max >= 2.0 ** (31 - fx.S1615_FRAC):
            raise QuantizationError(f"input can sum to {num(top)} nA in one tick, beyond the ring buffer's range: "
                                    f"the currents would have to be divided by {scale:g}, which makes the core's R = "
                                    f"tau_m / c_m {num(r_max)} MOhm, past the s16.15 range; lower the weights or the "
                                    "fan-in", location=loc)
        return scale

    def _weights(self, net: Network, post: Population, projs: list[Projection], factor: np.ndarray,
                 dt: float, ctx: PassContext) -> list[str]:
        """Choose the population's two shifts from its incoming projections and turn their weights
        (nA, times ``factor``: the pulse factor over the current scale) into signed 16-bit words;
        returns the report lines."""
        for proj in projs:
            if proj.learning is not None:
                raise QuantizationError(f"target '{self.target.name}' has no on-chip learning engine for "
                                        f"sum-of-products rules (rule '{proj.learning.get('rule', '?')}')",
                                        location=f"projection '{proj.name}'")
        expected, syn = self._slot_sums(net, post, projs, factor, dt)
        shifts = [fx.ring_buffer_shift(float(m)) for m in expected]
        loc = f"population '{post.name}'"
        for s, shift in enumerate(shifts):
            if shift > MAX_SHIFT:
                kind = ("excitatory", "inhibitory")[s]
                raise QuantizationError(f"{kind} input can sum to {num(float(expected[s]))} nA in one tick: a weight "
                                        f"shift of {shift} exceeds {MAX_SHIFT} (a word would reach the sign bit); "
                                        "lower the weights or the fan-in", location=loc)
        post.params["shift_exc"], post.params["shift_inh"] = shifts
        lines = [f"  population '{post.name}' weights: shift exc {shifts[0]} (expected slot sum "
                 f"{expected[0]:.4g} nA, step "
                 f"{2.0 ** (shifts[0] - 15):.3g} nA), inh {shifts[1]} (expected slot sum {expected[1]:.4g} nA, "
                 f"step {2.0 ** (shifts[1] - 15):.3g} nA)"]
        slot_sum = np.zeros((2, post.size))
        for proj, post_idx, w in syn:
            lines.append(self._encode(proj, post_idx, w, shifts, slot_sum, ctx, post.size))
        capacity = np.array([fx.weight_value(fx.WEIGHT_MAX, s) for s in shifts])
        worst = slot_sum.max(axis=1) / capacity
        lines.append(f"    ring slot: worst case (every input in one tick) {100 * worst[0]:.3g} % of the exc "
                     f"capacity, {100 * worst[1]:.3g} % of the inh capacity"
                     + ("; can saturate" if np.any(worst > 1) else "; cannot saturate"))
        if np.any(worst > 1):
            report_lossy(ctx, f"the ring buffer can saturate: all inputs in one tick reach "
                              f"{100 * float(worst.max()):.3g} % of a slot's capacity", loc)
        return lines

    def _encode(self, proj: Projection, post_idx: np.ndarray, w: np.ndarray, shifts: list[int],
                slot_sum: np.ndarray, ctx: PassContext, n_post: int) -> str:
        """Signed 16-bit words of one projection (the sign is the synapse type)."""
        loc = f"projection '{proj.name}'"
        inh = w < 0
        words = np.where(inh, fx.weight_words(w, shifts[1]), fx.weight_words(w, shifts[0]))
        got = np.where(inh, -fx.weight_value(words, shifts[1]), fx.weight_value(words, shifts[0]))
        np.add.at(slot_sum[0], post_idx[~inh], got[~inh])
        np.add.at(slot_sum[1], post_idx[inh], -got[inh])
        nonzero = w != 0
        zeros = int(np.count_nonzero(nonzero & (words == 0)))
        if zeros and zeros == int(np.count_nonzero(nonzero)):
            step = 2.0 ** (shifts[1 if inh.any() else 0] - 15)
            raise QuantizationError(f"all {zeros} non-zero weights round to zero (the largest, "
                                    f"{num(float(np.abs(w).max()))} nA, is below half the weight step "
                                    f"{step:.3g} nA that the population's other inputs need); raise the weights",
                                    location=loc)
        if zeros:
            report_lossy(ctx, f"{zeros} of {w.size} weights round to zero (below half the weight step)", loc)
        top = float(np.abs(w).max(initial=0.0))
        worst = float(np.abs(got - w).max(initial=0.0)) / top * 100 if top else 0.0
        signed = np.where(inh, -words, words)
        self._store(proj, signed, n_post)
        proj.sign = "excitatory" if not inh.any() else ("inhibitory" if inh.all() else "mixed")
        return (f"  projection '{proj.name}': {w.size} synapses ({int((~inh).sum())} exc, {int(inh.sum())} inh); "
                f"{zeros} round to zero, largest rounding error {worst:.3g} % of the largest weight")

    @staticmethod
    def _store(proj: Projection, signed: np.ndarray, n_post: int) -> None:
        """Write the words back in the projection's own storage (coo order)."""
        if proj.connectivity == "dense":
            proj.weights = signed.reshape(-1, n_post)
        elif proj.connectivity == "one_to_all":
            # One weight per pre neuron unless a per-post factor (tau_syn = 0 pulses) made them differ.
            per_pre = signed.reshape(-1, n_post)
            if n_post == 0 or np.all(per_pre == per_pre[:, :1]):
                proj.weights = per_pre[:, 0].copy() if n_post else np.zeros(per_pre.shape[0], dtype=np.int64)
            else:
                proj.weights, proj.connectivity = per_pre, "dense"
        else:
            proj.weights = signed

    def _population_report(self, pop: Population, words: dict[str, Any], asked: dict[str, np.ndarray],
                           dt: float, current_scale: float = 1.0) -> list[str]:
        """The parameters as the core derives them at load time against as asked (R, the gain and
        the bias back in the model's nA where the currents are scaled)."""
        scale = current_scale
        n = pop.size
        w = {k: np.broadcast_to(np.asarray(words[k], dtype=np.int64), (n,)) for k in NEURON_WORDS}
        ts = words["time_step"]
        r, exp_tc, t_ref = fx.lif_derived(w["tau_m"], w["cm"], w["tau_refrac"], ts)
        decay, init = fx.synapse_derived(w["tau_syn_e"], ts)
        exact_a = np.exp(-dt / asked["tau_m"])
        exact_d = np.exp(-dt / asked["tau_syn"])
        lines = [f"  population '{pop.name}' ({pop.attrs.get('mapped', {}).get('model', pop.model)}, {n} neurons) "
                 f"as IF_curr_exp: dt {dt:g} ms"]
        gain = (dt / asked["cm"] if pop.model == "if" else asked["tau_m"] / asked["cm"] * (1 - exact_a))
        rows = [("R", "MOhm", asked["tau_m"] / asked["cm"], fx.real(r) / scale)] if pop.model == "lif" else []
        rows += [("exp_TC", "", exact_a, fx.real(exp_tc)),
                ("gain", "mV/nA", gain, fx.real(r) * (1 - fx.real(exp_tc)) / scale),
                ("decay", "", exact_d, decay / 2.0 ** 32),
                ("init", "", asked["tau_syn"] / dt * (1 - exact_d), init / 2.0 ** 32),
                ("v_th", "mV", asked["v_th"], fx.real(w["v_thresh"])),
                ("i_bias", "nA", asked["i_bias"], fx.real(w["i_offset"]) * scale),
                ("t_ref", "ms", asked["t_ref"], t_ref * dt)]
        if np.any(asked["v_init"] != asked["v_rest"]):  # a start charge (init_charge of an 'if')
            rows.append(("v_init", "mV", asked["v_init"], fx.real(w["v_init"])))
        for name, unit, a, g in rows:
            lines.append(f"    {name:<7} asked {_span(a, unit):<26} realised {_span(g, unit):<26} "
                         f"error {_pct(g, a):.3g} %")
        if pop.model == "if":
            lines.append(f"    'if' as IF_curr_exp with tau_m {self.if_tau_m:g} ms and c_m set for the exact gain "
                         f"dt/c_m: the voltage leaks {100 * (1 - float(fx.real(exp_tc).max())):.3g} % of V - v_reset "
                         "per step")
        if scale != 1.0:
            lines.append(f"    currents, c_m and i_offset scaled by 1/{scale:g} (the ring buffer's range; V is "
                         f"unchanged, the u probe reads in units of {scale:g} nA)")
        if np.any(asked["pulse"]):
            lines.append(f"    tau_syn 0 (a one-step pulse) realised as tau_syn {dt / self.pulse_factor:g} ms with "
                         f"weights x {self.pulse_factor}: {100 * math.exp(-self.pulse_factor):.3g} % of a pulse "
                         "remains in the next step")
        return lines


# ---------------------------------------------------------------------------------------------
# quantize: register-level if_curr_exp populations and weight words
# ---------------------------------------------------------------------------------------------
def quantize_network(net: Network, ctx: PassContext) -> Network:
    """The ``quantize`` pass for the SpiNNaker-like target: every neuron population must be
    ``if_curr_exp`` (map-neurons lowers lif / if); its words are rounded to int32 and its shifts
    checked; weights are rounded to signed 16-bit words. Idempotent."""
    target = ctx.target
    quantized_for(net, target)  # refuses IR quantized for another target
    for pop in net.populations:
        if pop.is_input:
            continue
        loc = f"population '{pop.name}'"
        if pop.model in EPROP_WORDS:
            _quantize_eprop(pop, ctx)
            continue
        if pop.model != MODEL:
            raise QuantizationError(f"target '{target.name}' has no number format for neuron model "
                                    f"'{pop.model}'", location=loc)
        for key in (*NEURON_WORDS, *POPULATION_WORDS):
            pop.params[key] = _integer(pop, key, ctx)
        for key in ("shift_exc", "shift_inh"):
            if not 0 <= int(pop.params[key]) <= MAX_SHIFT:
                raise QuantizationError(f"{key} {pop.params[key]} is outside [0, {MAX_SHIFT}]", location=loc)
        for key in ("cm", "tau_m", "tau_syn_e", "tau_syn_i", "time_step"):
            if np.any(np.asarray(pop.params[key]) <= 0):
                raise QuantizationError(f"{key} must be a positive s16.15 word", location=loc)
    eprop_posts = {p.name for p in net.populations if p.model in EPROP_WORDS}
    for proj in net.projections:
        loc = f"projection '{proj.name}'"
        if proj.post in eprop_posts:
            _quantize_signed(proj, ctx)
            continue
        if is_eprop(proj.learning):
            raise QuantizationError("an e-prop projection must end on an e-prop population (alif or li)", location=loc)
        if proj.learning is not None:
            raise QuantizationError(f"target '{target.name}' has no on-chip learning engine for sum-of-products "
                                    f"rules (rule '{proj.learning.get('rule', '?')}')", location=loc)
        w = np.asarray(proj.weights, dtype=np.float64)
        words = np.rint(w)
        if np.any(words != w):
            report_lossy(ctx, f"{int(np.count_nonzero(words != w))} of {w.size} weights are not integer words "
                              "and were rounded", loc)
        if w.size and np.abs(words).max() > fx.WEIGHT_MAX:
            raise QuantizationError(f"a weight word ({num(float(np.abs(words).max()))}) exceeds the 16-bit "
                                    f"magnitude {fx.WEIGHT_MAX}", location=loc)
        proj.weights = words.astype(np.int64)
        neg, pos = bool(np.any(words < 0)), bool(np.any(words > 0))
        proj.sign = "mixed" if neg and pos else ("inhibitory" if neg else "excitatory")
    net.attrs["quantized"] = target.name
    return net


def _integer(pop: Population, key: str, ctx: PassContext) -> int | np.ndarray:
    """A host word (scalar or per neuron) as int32, rounding floats half to even (reported)."""
    spec = NEURON_MODELS[MODEL].params[key]
    v = np.asarray(pop.params.get(key, spec.default), dtype=np.float64)
    r = np.rint(v)
    if np.any(r != v):
        report_lossy(ctx, f"parameter '{key}' is not an integer word and was rounded", f"population '{pop.name}'")
    if r.size and (r.min() < fx.REAL_MIN or r.max() > fx.REAL_MAX):
        raise QuantizationError(f"parameter '{key}' does not fit a 32-bit word", location=f"population '{pop.name}'")
    return as_param(r.astype(np.int64))


def _quantize_eprop(pop: Population, ctx: PassContext) -> None:
    """Round an e-prop core's host words to integers and check their ranges."""
    loc = f"population '{pop.name}'"
    for key in (*EPROP_WORDS[pop.model], "time_step", "shift"):
        spec = NEURON_MODELS[pop.model].params[key]
        v = np.asarray(pop.params.get(key, spec.default), dtype=np.float64)
        r = np.rint(v)
        if np.any(r != v):
            report_lossy(ctx, f"parameter '{key}' is not an integer word and was rounded", loc)
        if r.size and (r.min() < fx.REAL_MIN or r.max() > fx.REAL_MAX):
            raise QuantizationError(f"parameter '{key}' does not fit a 32-bit word", location=loc)
        pop.params[key] = as_param(r.astype(np.int64))
    if not 0 <= int(pop.params["shift"]) <= MAX_SHIFT:
        raise QuantizationError(f"shift {pop.params['shift']} is outside [0, {MAX_SHIFT}]", location=loc)
    for key in ("tau_m", "time_step") + (("tau_a", "theta") if pop.model == "eprop_alif" else ()):
        if np.any(np.asarray(pop.params[key]) <= 0):
            raise QuantizationError(f"{key} must be a positive s16.15 word", location=loc)
    mant = np.asarray(pop.params["lr_mant"])
    if np.any((mant < 0) | (mant >= 1 << 15)):
        raise QuantizationError("lr_mant must lie in 0 .. 2^15 - 1", location=loc)


def _quantize_signed(proj: Projection, ctx: PassContext) -> None:
    """Weights into an e-prop population: signed 16-bit words (the sign is the synapse type)."""
    loc = f"projection '{proj.name}'"
    w = np.asarray(proj.weights, dtype=np.float64)
    words = np.rint(w)
    if np.any(words != w):
        report_lossy(ctx, f"{int(np.count_nonzero(words != w))} of {w.size} weights are not integer words "
                          "and were rounded", loc)
    if w.size and np.abs(words).max() > SIGNED_MAX:
        raise QuantizationError(f"a weight word ({num(float(np.abs(words).max()))}) exceeds the signed 16-bit "
                                f"magnitude {SIGNED_MAX} of an e-prop synapse", location=loc)
    proj.weights = words.astype(np.int64)
    proj.sign = "mixed"
