"""Run a binary on data: a continuous stream, or samples presented one after another.

Data (``DATA.npz``): one array per input port. Shape (steps, n) is one continuous stream;
shape (samples, steps, n) presents each sample for ``steps`` steps, the host resetting the chip
state between samples. An optional ``labels`` array (samples,) turns on accuracy: the predicted
class of a sample is the output unit with the most spikes (lowest index on ties).

A converted network (an ONNX model) takes real values instead: the array named after the model's
input holds one row per sample, and the runner encodes each sample as the binary's metadata says
(``encoding``: rate-coded spikes or graded payloads; :mod:`nmc.sim.encoding`) and predicts from
its ``readout`` (the output's v or its charge at the last step) instead of spike counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import RunError
from .protocol import Interpreter


@dataclass
class Session:
    """Aggregated result of a run over one stream or many samples."""

    steps_per_sample: int
    samples: int
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    probes: dict[str, np.ndarray] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    per_core: dict[str, np.ndarray] = field(default_factory=dict)
    overflow: dict[str, int] = field(default_factory=dict)
    labels: np.ndarray | None = None
    predictions: np.ndarray | None = None
    accuracy: float | None = None
    weights: dict[str, np.ndarray] = field(default_factory=dict)   # plastic projections, after the run
    warnings: list[str] = field(default_factory=list)              # what the interpreter warned about (overruns)
    readout: np.ndarray | None = None   # converted networks: per-sample output values (samples, n)
    epochs: int = 1   # e-prop runs over several epochs: outputs of the last, counters of all (trial_runner)

    def to_npz_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self.spikes.items():
            out[f"spikes/{k}"] = v
        for k, v in self.probes.items():
            out[f"probe/{k}"] = v
        for k, v in self.counters.items():
            out[k] = np.asarray(v)
        for k, v in self.per_core.items():
            out[f"core/{k}"] = v
        for k, v in self.overflow.items():
            out[f"overflow/{k}"] = np.asarray(v)
        if self.predictions is not None:
            out["predictions"] = self.predictions
        if self.accuracy is not None:
            out["accuracy"] = np.asarray(self.accuracy)
        if self.readout is not None:
            out["readout"] = self.readout
        for k, v in self.weights.items():
            out[f"weights/{k}"] = v
        if self.epochs != 1:
            out["epochs"] = np.asarray(self.epochs)
        return out


def accumulate(counters: dict[str, float], overflow: dict[str, int], res: Any) -> None:
    """Add a run result's counters and overflow counts into running totals."""
    for k, v in res.counters.items():
        counters[k] = counters.get(k, 0) + v
    for k, v in res.overflow.items():
        overflow[k] = overflow.get(k, 0) + v


def accumulate_per_core(per_core: dict[str, np.ndarray], res: Any) -> None:
    """Add a run result's per-core counters into running totals; ``time_ns_max_step`` (the
    slowest step of each core) keeps the maximum."""
    for k, v in res.per_core.items():
        if k not in per_core:
            per_core[k] = np.array(v, copy=True)
        elif k == "time_ns_max_step":
            np.maximum(per_core[k], v, out=per_core[k])
        else:
            per_core[k] = per_core[k] + v


def _plastic(chip: Interpreter) -> dict[str, np.ndarray]:
    return chip.plastic_weights() if hasattr(chip, "plastic_weights") else {}


def check_labels(labels: Any, n_samples: int, n_classes: int, what: str) -> np.ndarray:
    """``labels`` as class indices: a 1-D integer array of one label per sample, each in
    [0, n_classes). Floats are refused rather than truncated."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise RunError(f"{what}: 'labels' must be integers (class indices), got dtype {labels.dtype}")
    if labels.shape != (n_samples,):
        raise RunError(f"{what}: 'labels' must have shape ({n_samples},), got {labels.shape}")
    bad = (labels < 0) | (labels >= n_classes)
    if bad.any():
        raise RunError(f"{what}: label {int(labels[bad][0])} of sample {int(np.argmax(bad))} is outside "
                       f"0..{n_classes - 1} (the classes the output can tell apart)")
    return labels


def _memory_bytes() -> int | None:
    """This machine's physical memory, where the system says."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def check_run_size(meta: dict[str, Any], steps: int, samples: int, what: str) -> None:
    """Refuse a run whose records (outputs, probes and per-core counters of every step) could not
    fit in this machine's memory, before running it rather than after hours of it."""
    sizes = {p["name"]: p["size"] for p in meta.get("populations", [])}
    per_step = 16 * int(meta.get("n_cores", 0)) + sum(o["size"] for o in meta.get("outputs", []))
    per_step += sum(4 * sizes.get(p["population"], 0) for p in meta.get("probes", []))
    need = steps * samples * max(per_step, 1)
    memory = _memory_bytes()
    if memory is not None and need > memory:
        raise RunError(f"{what}: the run would record about {need / 2**30:.3g} GiB (outputs, probes and per-core "
                       f"counters for {steps * samples} steps), more than this machine's {memory / 2**30:.3g} GiB")


def split_data(data: dict[str, np.ndarray], ports: dict[str, int]) -> tuple[dict[str, np.ndarray], np.ndarray | None, bool]:
    """Validate ``data`` against the binary's input ports (name -> size).

    Returns (port arrays, labels or None, sample_mode)."""
    data = dict(data)
    labels = data.pop("labels", None)
    for name in data:
        if name not in ports:
            raise RunError(f"input data has array '{name}' but the binary has no input port '{name}' "
                           f"(ports: {', '.join(ports) or 'none'})")
    missing = [p for p in ports if p not in data]
    if data and missing:
        raise RunError(f"input data has no array for input port '{missing[0]}' (size {ports[missing[0]]})")
    ndims = {np.asarray(a).ndim for a in data.values()}
    if len(ndims) > 1:
        raise RunError("input arrays mix streams (steps, n) and samples (samples, steps, n)")
    sample_mode = ndims == {3}
    for name, arr in data.items():
        a = np.asarray(arr)
        if a.ndim not in (2, 3) or a.shape[-1] != ports[name]:
            want = f"(steps, {ports[name]}) or (samples, steps, {ports[name]})"
            raise RunError(f"input '{name}': expected shape {want}, got {a.shape}")
    if sample_mode:
        shapes = {np.asarray(a).shape[:2] for a in data.values()}
        if len(shapes) > 1:
            raise RunError(f"input arrays disagree on (samples, steps): {sorted(shapes)}")
    for name, arr in data.items():
        a = np.asarray(arr)
        if a.shape[0] == 0 or (sample_mode and a.shape[1] == 0):
            raise RunError(f"input '{name}' holds no {'samples' if a.shape[0] == 0 and sample_mode else 'steps'} "
                           f"(shape {a.shape})")
    if labels is not None and not sample_mode:
        raise RunError("'labels' needs sample data shaped (samples, steps, n)")
    return data, labels, sample_mode


def _real_input(chip: Interpreter, data: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """The binary's encoding when ``data`` holds real values for a converted network's input (not
    spike trains already shaped (samples, steps, n))."""
    enc = chip.meta.get("encoding")
    if not enc or enc.get("input") not in data:
        return None
    a = np.asarray(data[enc["input"]])
    if a.ndim == 3 and not enc.get("items") and a.dtype.kind in "biu":
        return None  # spikes the user encoded already
    return enc


def run_session(chip: Interpreter, data: dict[str, np.ndarray] | None, steps: int | None,
                progress: Callable[[int], None] | None = None) -> Session:
    """Run ``chip`` (an interpreter) on ``data`` for ``steps`` steps (per sample in sample mode)."""
    ports = dict(chip.port_size)
    enc = _real_input(chip, data or {})
    if enc is not None:
        return _run_encoded(chip, dict(data or {}), enc, steps, progress)
    arrays, labels, sample_mode = split_data(data or {}, ports)
    if labels is not None:
        outputs = chip.meta.get("outputs", [])
        if len(outputs) != 1:
            raise RunError(f"accuracy needs exactly one output population, the binary has {len(outputs)}")
        labels = check_labels(labels, next(iter(arrays.values())).shape[0], int(outputs[0]["size"]), "input data")
    if not sample_mode:
        if steps is None:
            if not arrays:
                raise RunError("--steps is required when no input data is given")
            steps = max(np.asarray(a).shape[0] for a in arrays.values())
        check_run_size(chip.meta, steps, 1, f"{steps} steps")
        chip.reset()
        res = chip.run(steps, arrays, progress=progress)
        sess = Session(steps, 1, res.spikes, res.probes, res.counters, res.per_core, res.overflow)
        sess.warnings = list(getattr(res, "warnings", []))
        sess.weights = _plastic(chip)
        return sess
    n_samples, data_steps = next(iter(arrays.values())).shape[:2]
    steps = data_steps if steps is None else steps
    check_run_size(chip.meta, steps, n_samples, f"{n_samples} samples of {steps} steps")
    sess = _run_samples(chip, n_samples, steps, lambda i: {k: np.asarray(v)[i] for k, v in arrays.items()},
                        labels, progress)
    if labels is not None:
        counts = next(iter(sess.spikes.values())).sum(axis=1)
        sess.predictions = counts.argmax(axis=1)
        sess.accuracy = float(np.mean(sess.predictions == labels))
    return sess


def _run_encoded(chip: Interpreter, data: dict[str, np.ndarray], enc: dict[str, Any], steps: int | None,
                 progress: Callable[[int], None] | None) -> Session:
    """A converted network on real-valued inputs: encode each sample as the binary says, run it,
    decode its readout."""
    from .encoding import check_real_input, encode_sample, encoded_steps, readout_values
    port = enc.get("port", enc["input"])
    ports = dict(chip.port_size)
    if port not in ports:
        raise RunError(f"the binary's encoding names input port '{port}', which it does not have")
    labels = data.pop("labels", None)
    x = check_real_input(enc, data.pop(enc["input"]), ports[port])
    extra = sorted(data)
    if extra or len(ports) != 1:
        raise RunError(f"a converted network takes only its input '{enc['input']}' (and labels); the data also has "
                       f"{', '.join(repr(k) for k in extra) or 'nothing'} and the binary has ports {', '.join(ports)}")
    if x.shape[0] == 0:
        raise RunError(f"input '{enc['input']}' holds no samples (shape {x.shape})")
    if steps is not None and steps < 1:
        raise RunError("--steps must be at least 1 for a converted network")
    n_steps = encoded_steps(enc, steps)
    payload = enc.get("payload_scale")
    readout = chip.meta.get("readout")
    if labels is not None:
        sizes = {p["name"]: int(p["size"]) for p in chip.meta.get("populations", [])}
        n_classes = sizes.get(readout["population"], 0) if readout else \
            int(next(iter(chip.meta.get("outputs", [])), {}).get("size", 0))
        labels = check_labels(labels, x.shape[0], n_classes, "input data")
    check_run_size(chip.meta, n_steps, x.shape[0], f"{x.shape[0]} samples of {n_steps} steps")
    sess = _run_samples(chip, x.shape[0], n_steps, lambda i: {port: encode_sample(enc, x[i], n_steps, payload)},
                        labels, progress)
    if readout:
        spikes = sess.spikes.get(readout["population"])
        v = sess.probes.get(readout["probe"])
        if v is None:
            raise RunError(f"the binary's readout names probe '{readout['probe']}', which it does not record")
        sess.readout = readout_values(readout, spikes, v)
        if labels is not None:
            sess.predictions = sess.readout.argmax(axis=1)
            sess.accuracy = float(np.mean(sess.predictions == labels))
    return sess


def _run_samples(chip: Interpreter, n_samples: int, steps: int, inputs_of: Callable[[int], dict[str, np.ndarray]],
                 labels: np.ndarray | None, progress: Callable[[int], None] | None) -> Session:
    """Present ``n_samples`` samples for ``steps`` steps each, resetting the chip in between."""
    outs: dict[str, list[np.ndarray]] = {}
    probes: dict[str, list[np.ndarray]] = {}
    counters: dict[str, float] = {}
    per_core: dict[str, np.ndarray] = {}
    overflow: dict[str, int] = {}
    warnings: list[str] = []
    for i in range(n_samples):
        chip.reset()
        res = chip.run(steps, inputs_of(i), progress=progress)
        for k, v in res.spikes.items():
            outs.setdefault(k, []).append(v)
        for k, v in res.probes.items():
            probes.setdefault(k, []).append(v)
        accumulate(counters, overflow, res)
        warnings += [f"sample {i}: {w}" for w in getattr(res, "warnings", [])]
        accumulate_per_core(per_core, res)
    sess = Session(steps, n_samples, {k: np.stack(v) for k, v in outs.items()},
                   {k: np.stack(v) for k, v in probes.items()}, counters, per_core, overflow, labels)
    sess.weights = _plastic(chip)
    sess.warnings = warnings
    return sess
