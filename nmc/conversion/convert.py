"""ANN-to-SNN conversion: artificial units -> spiking target-neutral models (docs/conversion.md).

Two conversions, both with data-based normalisation (Diehl et al. 2015; Rueckauer et al. 2017):
each layer l gets a scale lambda_l, the ``percentile`` of its activations on calibration data, so
that its normalised activation a = y / lambda_l is mostly in [0, 1]. Weights become
W lambda_pre / lambda_l and biases b / lambda_l.

- ``rate``: every unit becomes an ``if`` neuron (v_th = 1 mV, so one spike per step is the
  normalised activation 1), starting half-way to threshold (rounding instead of flooring the
  spike count; Bu et al. 2022). Where the target has reset by subtraction (its ``features`` list
  ``soft_reset``) a spike subtracts the threshold; elsewhere it resets to zero (Diehl et al.
  2015), losing the charge above threshold, and the output layer integrates without spiking.
  Inputs are rate coded (x / lambda_in spikes per step); the output layer's charge (spikes plus
  membrane) is the readout.
- ``sigma-delta``: every unit becomes a ``sigma_delta`` unit with graded spikes: it sends its
  normalised activation as changes of at least ``threshold``, so a receiver holds every sender's
  activation to within that threshold after as many steps as the network is deep. An ``lprnn``
  unit keeps its low-pass: tau = -T_item / ln(alpha), with T_item = item_steps time steps, and
  its recurrent projections are delayed by half an item (docs/conversion.md, "lpRNN").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import IrError
from ..ir.network import Network, Population
from .ann import Activations, activation, evaluation_order, forward, is_recurrent, output_population

MODES = ("rate", "sigma-delta")
#: The network time step the conversions use (ms); rates and thresholds are per step.
DT_MS = 1.0
#: The threshold of a rate-coded neuron (mV): the charge of one normalised activation unit.
V_TH_MV = 1.0
#: Without reset by subtraction the output layer integrates instead of spiking: a spike would
#: reset it to zero and lose the charge above its threshold, which is the readout. Its threshold,
#: in activation units, lies beyond what a run reaches (1000 steps of the largest normalised
#: activation; nmc's NIR importer puts non-spiking readouts 1000 mV above their start too). Should
#: it still fire, the readout counts each spike as this many units, off by at most one step's input.
OUTPUT_THRESHOLD = 1000.0


@dataclass
class Calibration:
    """Calibration inputs (input population -> (samples, ...)) and optional labels."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None = None


@dataclass
class LayerScale:
    """What the conversion measured and chose for one layer."""

    name: str
    model: str
    scale: float                  # lambda: activation 1 after normalisation
    top: float                    # largest |activation| on the calibration data, normalised
    zrange: float                 # largest |pre-activation| (sigma + bias), normalised
    above: float                  # fraction of calibration activations above the scale


@dataclass
class Plan:
    """The scales of a conversion, in network order, plus the input scale."""

    mode: str
    input_scale: float
    layers: dict[str, LayerScale] = field(default_factory=dict)
    depth: int = 1
    soft_reset: bool = True       # rate coding: reset by subtraction (else to zero)


def calibration_inputs(net: Network, data: dict[str, np.ndarray] | None, max_samples: int) -> Calibration | None:
    """The calibration arrays for the network's inputs (reshaped to (samples, [items,] n))."""
    if data is None:
        return None
    inputs = {}
    items = (net.attrs.get("source") or {}).get("items")
    for pop in net.populations:
        if not pop.is_input:
            continue
        if pop.name not in data:
            have = ", ".join(sorted(k for k in data if k != "labels")) or "none"
            raise IrError(f"the calibration data has no array '{pop.name}' for the network's input (it has: {have})")
        a = np.asarray(data[pop.name], dtype=np.float64)[:max_samples]
        want = (a.shape[0], items, pop.size) if items else (a.shape[0], pop.size)
        if a.size != int(np.prod(want)):
            shape = f"(samples, {items}, {pop.size})" if items else f"(samples, {pop.size})"
            raise IrError(f"calibration array '{pop.name}' has shape {a.shape}; the input needs {shape} "
                          "(or any shape with that many values per sample)")
        if not np.all(np.isfinite(a)):
            raise IrError(f"calibration array '{pop.name}' holds NaN or infinite values")
        inputs[pop.name] = a.reshape(want)
    labels = data.get("labels")
    if labels is not None:
        labels = np.asarray(labels)[:max_samples]
    return Calibration(inputs, labels)


def network_depth(net: Network) -> int:
    """Populations on the longest feed-forward path from an input to the output (the steps a
    sigma-delta network needs to settle)."""
    order = evaluation_order(net)
    depth = {p.name: 0 for p in net.populations if p.is_input}
    for pop in order:
        pres = [depth.get(pr.pre, 0) for pr in net.projections_into(pop.name) if not is_recurrent(pr)]
        depth[pop.name] = 1 + max(pres, default=0)
    return max((depth[p.name] for p in order), default=1)


def plan(net: Network, mode: str, calib: Calibration | None, percentile: float, soft_reset: bool = True) -> Plan:
    """Choose every layer's scale from the calibration data (or, without data, from the weights:
    the largest activation inputs in [0, 1] can cause, Diehl et al. 2015's model-based
    normalisation). ``soft_reset``: whether rate-coded neurons reset by subtraction (else to zero)."""
    order = evaluation_order(net)
    if calib is not None:
        acts = forward(net, calib.inputs)
        x = np.concatenate([v.reshape(-1) for v in calib.inputs.values()])
        input_scale = float(np.max(np.abs(x))) or 1.0
    else:
        acts = _bound_activations(net, order)
        input_scale = 1.0
    p = Plan(mode, input_scale, depth=network_depth(net), soft_reset=soft_reset)
    for pop in order:
        y, z = acts.y[pop.name], acts.z[pop.name]
        pos = y[y > 0] if pop.model != "linear" else np.abs(y).reshape(-1)
        scale = float(np.percentile(pos, percentile)) if pos.size else 0.0
        if pop.model == "relu":
            scale = min(scale, float(np.min(pop.param_array("clip")))) or scale
        scale = scale if scale > 0 else 1.0
        top = float(np.abs(y).max(initial=0.0)) / scale
        zr = float(np.abs(z).max(initial=0.0)) / scale
        above = float(np.mean(np.abs(y) > scale * (1 + 1e-12))) if y.size else 0.0
        p.layers[pop.name] = LayerScale(pop.name, pop.model, scale, top, zr, above)
    return p


def _bound_activations(net: Network, order: list[Population]) -> Activations:
    """Upper bounds of every layer's activation for inputs in [0, 1] (no calibration data): the
    positive weights times the bounds of the layer below, plus the positive bias."""
    out = Activations()
    bound = {p.name: np.ones(p.size) for p in net.populations if p.is_input}
    for pop in order:
        b = np.maximum(pop.param_array("bias").astype(np.float64), 0.0).copy()
        for pr in net.projections_into(pop.name):
            w = pr.dense_matrix(net.population(pr.pre).size, pop.size).astype(np.float64)
            b += np.maximum(w, 0.0).T @ bound.get(pr.pre, np.zeros(w.shape[0]))
        bound[pop.name] = b  # an lprnn state is an average of such values, so the same bound holds
        out.y[pop.name] = b[None, None, :]
        out.z[pop.name] = b[None, None, :]
    return out


def simulate_quantised(net: Network, plan_: Plan, calib: Calibration, quantum: float) -> dict[str, float]:
    """The float network with every normalised activation rounded to a multiple of ``quantum``
    (and, for rate coding, clipped to one spike per step; with reset to zero a hidden unit's
    activation a is first taken as 1/ceil(1/a), the rate reset to zero gives a constant input):
    per layer the RMS error of the activation in units of its scale; and the accuracies with and
    without the rounding when labels are given (keys ``ann_accuracy``, ``quantised_accuracy``)."""
    order = evaluation_order(net)
    exact = forward(net, calib.inputs)
    first = next(iter(calib.inputs.values()))
    n, items = first.shape[0], (first.shape[1] if first.ndim == 3 else 1)
    y: dict[str, np.ndarray] = {}
    for name, arr in calib.inputs.items():
        y[name] = arr.reshape(n, items, -1)
    errs: dict[str, float] = {}
    out_name = output_population(net).name
    for t in range(items):
        for pop in order:
            if t == 0:
                y[pop.name] = np.zeros((n, items, pop.size))
            z = np.broadcast_to(pop.param_array("bias").astype(np.float64), (n, pop.size)).copy()
            for pr in net.projections_into(pop.name):
                w = pr.dense_matrix(net.population(pr.pre).size, pop.size).astype(np.float64)
                if is_recurrent(pr):
                    if t:
                        z += y[pr.pre][:, t - 1] @ w
                else:
                    z += y[pr.pre][:, t] @ w
            v = activation(pop, z, y[pop.name][:, t - 1] if t else None)
            s = plan_.layers[pop.name].scale
            a = v / s
            if plan_.mode == "rate":
                a = np.clip(a, None if pop.model == "linear" else 0.0, None if pop.model == "linear" else 1.0)
                if not plan_.soft_reset and pop.name != out_name:
                    a = _reset_to_zero_rate(a)
            y[pop.name][:, t] = np.round(a / quantum) * quantum * s
    for pop in order:
        s = plan_.layers[pop.name].scale
        errs[pop.name] = float(np.sqrt(np.mean((y[pop.name] - exact.y[pop.name]) ** 2))) / s
    if calib.labels is not None and calib.labels.shape[0] == n:
        out = output_population(net).name
        errs["ann_accuracy"] = float(np.mean(exact.y[out][:, -1].argmax(axis=1) == calib.labels))
        errs["quantised_accuracy"] = float(np.mean(y[out][:, -1].argmax(axis=1) == calib.labels))
    return errs


def _reset_to_zero_rate(a: np.ndarray) -> np.ndarray:
    """Spikes per step of an ``if`` neuron that resets to zero under a constant input of a (in
    [0, 1]) thresholds per step: it fires every ceil(1/a) steps, losing the rest of the charge."""
    pos = a > 0
    with np.errstate(divide="ignore"):
        return np.where(pos, 1.0 / np.ceil(1.0 / np.where(pos, a, 1.0)), 0.0)


def apply(net: Network, plan_: Plan, *, threshold: float, item_steps: int, init_charge: float) -> None:
    """Rewrite ``net`` in place: every artificial unit becomes the plan's spiking model, weights and
    biases normalised; records ``dt``, ``encoding``, ``readout`` and ``conversion`` in the network's
    attributes."""
    order = evaluation_order(net)
    scales = {name: ls.scale for name, ls in plan_.layers.items()}
    inputs = [p for p in net.populations if p.is_input]
    for pop in inputs:
        scales[pop.name] = plan_.input_scale
    sequence = (net.attrs.get("source") or {}).get("items")
    for proj in net.projections:
        if proj.post not in plan_.layers:
            continue
        ratio = scales[proj.pre] / scales[proj.post]
        proj.weights = np.asarray(proj.weights, dtype=np.float64) * ratio
        if is_recurrent(proj):
            # Half an item of delay makes the continuous low-pass see the previous item's state on
            # average (docs/conversion.md, "lpRNN"); the chip adds one step of its own.
            proj.delay = max(0, item_steps // 2 - 1)
    out = output_population(net)
    for pop in order:
        ls = plan_.layers[pop.name]
        bias = pop.param_array("bias").astype(np.float64) / ls.scale
        if plan_.mode == "rate":
            _to_rate(pop, bias, init_charge, plan_.soft_reset, pop is out)
        else:
            _to_sigma_delta(pop, bias, ls, threshold, item_steps)
    net.attrs["dt"] = DT_MS
    depth = plan_.depth
    if plan_.mode == "rate":
        net.attrs["readout"] = {"population": out.name, "kind": "charge", "activation_mv": V_TH_MV}
    else:
        net.attrs["readout"] = {"population": out.name, "kind": "value"}
    enc: dict[str, Any] = {"input": inputs[0].name if inputs else "", "kind": "rate" if plan_.mode == "rate" else "graded",
                           "scale": plan_.input_scale}
    if sequence:
        enc["items"] = int(sequence)
        enc["item_steps"] = int(item_steps)
        # The last item's state is complete at step items * item_steps; the layers after it need
        # one step each to pass it on.
        enc["steps"] = int(sequence) * int(item_steps) + depth
    else:
        enc["steps"] = 64 if plan_.mode == "rate" else depth + 2
    net.attrs["encoding"] = enc
    net.attrs["conversion"] = {
        "mode": plan_.mode, "input_scale": plan_.input_scale, "depth": depth,
        "scales": {name: ls.scale for name, ls in plan_.layers.items()},
    }
    if plan_.mode == "rate":
        net.attrs["conversion"]["reset"] = "subtract" if plan_.soft_reset else "zero"


def check_rate_convertible(net: Network) -> None:
    """Refuse what rate coding cannot carry: the low-pass RNN (docs/conversion.md, "lpRNN")."""
    for pop in net.populations:
        if pop.model == "lprnn":
            raise IrError("lprnn units need the sigma-delta conversion (mode=sigma-delta, on a target that maps "
                          "sigma_delta such as loihi2)", location=f"population '{pop.name}'")


def _to_rate(pop: Population, bias: np.ndarray, init_charge: float, soft_reset: bool, output: bool) -> None:
    """``pop`` as rate-coded ``if`` neurons: one spike per step is the normalised activation 1.
    With reset by subtraction every layer spikes and keeps its charge; with reset to zero the
    output layer integrates without spiking (OUTPUT_THRESHOLD) from zero."""
    if pop.model == "relu" and np.any(np.isfinite(pop.param_array("clip"))):
        clip = pop.param_array("clip").astype(np.float64)
        if np.any(np.isfinite(clip) & (np.abs(clip - np.min(clip)) > 0)):
            raise IrError("rate coding bounds every unit at one spike per step: Clip needs one upper bound per "
                          "layer, which becomes the layer's scale", location=f"population '{pop.name}'")
    pop.model = "if"
    if soft_reset:
        pop.params = {"v_th": V_TH_MV, "v_reset": 0.0, "cm": 1.0, "tau_syn": 0.0, "t_ref": 0.0,
                      "soft_reset": 1, "init_charge": float(init_charge)}
    elif output:
        pop.params = {"v_th": OUTPUT_THRESHOLD * V_TH_MV, "v_reset": 0.0, "cm": 1.0, "tau_syn": 0.0, "t_ref": 0.0}
    else:
        pop.params = {"v_th": V_TH_MV, "v_reset": 0.0, "cm": 1.0, "tau_syn": 0.0, "t_ref": 0.0}
        if init_charge:
            pop.params["init_charge"] = float(init_charge)
    if np.any(bias):
        # A bias of b (normalised) per step is a current of b nA: cm dV/dt = I gives b mV per 1 ms step.
        pop.params["i_bias"] = _compact(bias)


def _to_sigma_delta(pop: Population, bias: np.ndarray, ls: LayerScale, threshold: float, item_steps: int) -> None:
    params: dict[str, Any] = {"threshold": float(threshold), "range": float(max(1.0, ls.zrange, ls.top) * 1.25)}
    if np.any(bias):
        params["bias"] = _compact(bias)
    if pop.model == "linear":
        params["relu"] = 0
    elif pop.model == "relu":
        clip = pop.param_array("clip").astype(np.float64)
        if np.any(np.isfinite(clip)):
            params["clip"] = _compact(clip / ls.scale)
    else:  # lprnn: the low-pass of one item (item_steps steps of DT_MS) with retention alpha
        alpha = pop.param_array("alpha").astype(np.float64)
        with np.errstate(divide="ignore"):
            tau = np.where(alpha > 0, -item_steps * DT_MS / np.log(np.where(alpha > 0, alpha, 0.5)), 0.0)
        params["tau"] = _compact(tau)
    pop.model = "sigma_delta"
    pop.params = params


def _compact(v: np.ndarray) -> Any:
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    if v.size and np.all(v == v[0]):
        return float(v[0])
    return v


def check_mode(mode: str, mapped: list[str]) -> str:
    """The conversion to use: ``auto`` picks sigma-delta where the target maps sigma_delta units."""
    if mode == "auto":
        return "sigma-delta" if "sigma_delta" in mapped else "rate"
    if mode not in MODES:
        raise IrError(f"convert-ann: unknown mode '{mode}' (modes: auto, {', '.join(MODES)})")
    return mode


def format_report(plan_: Plan, errs: dict[str, float] | None, quantum: float) -> list[str]:
    """The lines ``nmc compile --report`` prints for convert-ann."""
    reset = "reset by subtraction" if plan_.soft_reset else "reset to zero, the output layer integrating"
    what = (f"rate coding, {reset}, {quantum:g} of the scale per spike at the default steps" if plan_.mode == "rate"
            else f"sigma-delta, delta threshold {quantum:g} of the scale")
    lines = [f"  mode {plan_.mode} ({what}); input scale {plan_.input_scale:.6g}; depth {plan_.depth}"]
    for ls in plan_.layers.values():
        err = "" if errs is None else f", activation RMS error {100 * errs[ls.name]:.3g} % of the scale"
        lines.append(f"  layer '{ls.name}' ({ls.model}): scale {ls.scale:.6g}, largest activation {ls.top:.3g} x scale, "
                     f"{100 * ls.above:.3g} % of activations above the scale{err}")
    if errs is not None and "ann_accuracy" in errs:
        lines.append(f"  calibration accuracy: float {100 * errs['ann_accuracy']:.2f} %, with activations rounded "
                     f"as converted {100 * errs['quantised_accuracy']:.2f} %")
    if plan_.mode == "rate" and not plan_.soft_reset:
        lines.append("  reset to zero loses the charge above threshold at every spike; the rounding above takes a "
                     "hidden activation a as 1/ceil(1/a), the rate a constant input gives (inputs that arrive as "
                     "spikes lose less: docs/conversion.md has measured figures)")
    return lines

