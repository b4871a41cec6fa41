"""The ``mapping`` part of the Loihi-2-like target: everything the Loihi-like mapping does, plus
``sigma_delta`` units lowered to ``sdn`` registers (docs/conversion.md, "Sigma-delta on loihi2").

A sigma_delta population m holds its activation in register units S_m = 2^p_m per activation
unit, p_m = max(mapping.sigma_delta_act_bits, ceil(log2(1 / threshold))) so that the delta
threshold is at least one register unit, lowered when payloads (up to 2 range S_m) would not fit
graded_spikes.payload_bits. A sender l
sends payloads in its own units: S_l for a sigma_delta unit, the input's payload scale for a
graded input port, and graded_spikes.binary_payload (64) for a binary spike, which thus counts as
one activation unit. The receiver's sigma sums w_eff * payload and its activation is
(sigma >> shift_m) + bias, so

    w_eff = w * 2^shift_m * S_m / S_l

and shift_m is the smallest shift that gives the largest incoming weight at least
2^mapping.sigma_delta_weight_bits effective units (8-bit mantissas then keep 7 bits of their
magnitude), bounded so that |sigma| <= range * S_m * 2^shift_m stays inside graded_spikes.state_bits.
Registers: threshold = max(1, round(threshold S_m)), clip = round(clip S_m) (0: none),
bias = round(bias S_m) in the bias format, decay = round(4096 (1 - exp(-dt / tau))) in [1, 4096]
(4096 for tau = 0: no low-pass).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import IrError
from ..formats import loihi as fmt
from ..ir.models import NEURON_MODELS
from ..ir.network import Network, Population
from ..passes.registry import PassContext
from . import RegisterView
from .common import report_lossy
from .loihi_mapping import LoihiNeuronMapping, _uniform


#: A low-pass time constant realised further off than this (relative) is reported.
_TAU_TOLERANCE = 0.05


class Loihi2NeuronMapping(LoihiNeuronMapping):
    """The Loihi-like mapping plus ``sigma_delta`` -> ``sdn`` (module docstring)."""

    def __init__(self, target: Any) -> None:
        super().__init__(target)
        self.state_bits = int(target.get("graded_spikes.state_bits"))
        self.payload_bits = int(target.get("graded_spikes.payload_bits"))
        self.shift_max = int(target.get("graded_spikes.shift_max"))
        self.binary_payload = float(target.get("graded_spikes.binary_payload"))
        self.act_bits = int(target.get("mapping.sigma_delta_act_bits"))
        self.weight_bits = int(target.get("mapping.sigma_delta_weight_bits"))

    def registers(self, pop: Population, dt: float | None = None) -> RegisterView:
        if pop.model == "sdn":
            params = {k: pop.params.get(k, v) for k, v in NEURON_MODELS["sdn"].defaults().items()}
            return RegisterView("sdn", params, 1.0, {"v": (1.0, 0.0), "u": (1.0, 0.0)})
        if pop.model == "sigma_delta":
            raise IrError("a sigma_delta unit's registers depend on the units sending to it; map-neurons lowers "
                          "them with the whole network", location=f"population '{pop.name}'")
        return super().registers(pop, dt)

    def lower(self, net: Network, ctx: PassContext) -> list[str]:
        return self._lower_sigma_delta(net, ctx) + super().lower(net, ctx)

    # -- sigma_delta ------------------------------------------------------------------------------
    def _lower_sigma_delta(self, net: Network, ctx: PassContext) -> list[str]:
        pops = [p for p in net.populations if p.model == "sigma_delta"]
        if not pops:
            return []
        names = {p.name for p in pops}
        for proj in net.projections:
            if proj.pre in names and proj.post not in names:
                raise IrError(f"a sigma_delta unit sends graded spikes; its targets must be sigma_delta units, not "
                              f"'{net.population(proj.post).model}'", location=f"projection '{proj.name}'")
        scale = {p.name: self._act_scale(p) for p in pops}
        into = {p.name: net.projections_into(p.name) for p in pops}
        sender = self._sender_scales(net, pops, scale)
        report: list[str] = []
        for pop in pops:
            loc = f"population '{pop.name}'"
            rng = float(np.max(pop.param_array("range")))
            s_m = scale[pop.name]
            need = 0.0
            for proj in into[pop.name]:
                top = float(np.abs(np.asarray(proj.weights, dtype=np.float64)).max(initial=0.0))
                if top > 0:
                    need = max(need, math.log2(2.0 ** self.weight_bits * sender[proj.pre] / (s_m * top)))
            room = math.floor(math.log2(2.0 ** (self.state_bits - 1) / (s_m * rng)))
            if room < 0:
                raise IrError(f"range {rng:g} at {s_m:g} register units per activation does not fit the "
                              f"{self.state_bits}-bit state (graded_spikes.state_bits); lower range or raise the "
                              "threshold", location=loc)
            shift = min(max(0, math.ceil(need)), self.shift_max)
            if shift > room:
                report_lossy(ctx, f"the shift that gives the weights {self.weight_bits} bits ({shift}) would let sigma "
                                  f"overflow at range {rng:g}; using {room}, which rounds small weights harder", loc)
                shift = room
            report += self._registers_of(pop, s_m, shift, net.attrs.get("dt"), ctx)
            for proj in into[pop.name]:
                proj.weights = np.asarray(proj.weights, dtype=np.float64) * (2.0 ** shift * s_m / sender[proj.pre])
                report += self._round_weights(proj, ctx)
        return report

    def _act_scale(self, pop: Population) -> float:
        loc = f"population '{pop.name}'"
        theta = pop.param_array("threshold").astype(np.float64)
        rng = float(np.max(pop.param_array("range")))
        if not np.all(theta > 0) or not np.all(np.isfinite(theta)):
            raise IrError("threshold must be positive and finite", location=loc)
        if not (math.isfinite(rng) and rng > 0):
            raise IrError(f"range must be positive and finite, got {rng:g}", location=loc)
        p = max(self.act_bits, math.ceil(math.log2(1.0 / float(theta.min()))))
        # A payload is a change of the activation: at most 2 range S, inside payload_bits.
        p = min(p, self.payload_bits - 2 - math.ceil(math.log2(rng)))
        return 2.0 ** p

    def _sender_scales(self, net: Network, pops: list[Population], scale: dict[str, float]) -> dict[str, float]:
        """Payload units per activation unit of every population that sends to a sigma_delta unit."""
        names = {p.name for p in pops}
        out = dict(scale)
        for proj in net.projections:
            if proj.post not in names or proj.pre in out:
                continue
            pre = net.population(proj.pre)
            if pre.is_input:
                # The host sends the input's values as graded payloads at the finest receiver's scale.
                receivers = [scale[p.post] for p in net.projections_from(pre.name) if p.post in names]
                others = [p.post for p in net.projections_from(pre.name) if p.post not in names]
                if others:
                    raise IrError(f"input '{pre.name}' feeds sigma_delta units (graded payloads) and '{others[0]}' "
                                  "(binary spikes); give them separate inputs", location=f"population '{pre.name}'")
                out[pre.name] = max(receivers)
                pre.attrs["graded_scale"] = max(receivers)
            else:
                out[pre.name] = self.binary_payload  # a binary spike counts as one activation unit
        return out

    def _registers_of(self, pop: Population, s_m: float, shift: int, dt: Any, ctx: PassContext) -> list[str]:
        loc = f"population '{pop.name}'"
        theta = pop.param_array("threshold").astype(np.float64)
        bias = pop.param_array("bias").astype(np.float64)
        clip = pop.param_array("clip").astype(np.float64)
        tau = pop.param_array("tau").astype(np.float64)
        relu = int(np.asarray(pop.param_array("relu")).reshape(-1)[0])
        if np.any(tau > 0):
            if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
                raise IrError("a sigma_delta unit with tau > 0 needs the network's time step dt (ms)", location=loc)
        one = float(self.one)
        a = np.where(tau > 0, np.exp(-float(dt or 1.0) / np.where(tau > 0, tau, 1.0)), 0.0)
        decay = np.clip(np.round(one * (1.0 - a)), 1, one)
        thr = np.maximum(1.0, np.round(theta * s_m))
        bias_q = fmt.quantize_bias(bias * s_m, self.target)
        if bias_q.report.n_saturated:
            report_lossy(ctx, f"bias: {bias_q.report.n_saturated} of {pop.size} values saturated at the bias format's "
                              "range", loc)
        params = {"threshold": _uniform(thr), "shift": int(shift), "relu": relu,
                  "clip": _uniform(np.where(np.isfinite(clip), np.round(clip * s_m), 0.0)),
                  "decay": _uniform(decay), "bias": _uniform(bias_q.values)}
        pop.attrs["mapped"] = {"model": "sigma_delta", "params": dict(pop.params),
                               "units": {"v": [s_m, 0.0], "u": [s_m * 2.0 ** shift, 0.0]}}
        if np.any(tau > 0):
            pop.attrs["mapped"]["dt"] = float(dt)
        pop.model, pop.params = "sdn", params
        line = (f"  population '{pop.name}' (sigma_delta -> sdn, {pop.size} units): {s_m:g} register units per "
                f"activation, shift {shift}, delta threshold {float(thr.max()):g} (asked {float(theta.max()):g}, "
                f"realised {float(thr.max()) / s_m:.4g} activation units)")
        if np.any(tau > 0):
            real = (one - decay) / one
            with np.errstate(divide="ignore"):
                tau_r = np.where(real > 0, -float(dt) / np.log(np.where(real > 0, real, 0.5)), 0.0)
            err = float(np.max(np.abs(tau_r - tau) / np.where(tau > 0, tau, 1.0)))
            line += f"; low-pass tau {float(tau.min()):.4g}..{float(tau.max()):.4g} ms realised within {100 * err:.3g} %"
            if err > _TAU_TOLERANCE:
                worst = int(np.argmax(np.abs(tau_r - tau) / np.where(tau > 0, tau, 1.0)))
                report_lossy(ctx, f"tau {float(tau[worst]):.4g} ms is realised as {float(tau_r[worst]):.4g} ms "
                                  f"({100 * err:.3g} % off): the decay register has {self.one.bit_length() - 1} bits; "
                                  "fewer steps per item (a shorter tau in steps) keep it closer", loc)
        return [line]
