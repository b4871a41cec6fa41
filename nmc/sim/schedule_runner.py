"""Drive a scheduled network (a synfire-gated learning circuit) with samples, epoch by epoch.

The binary's schedule says: the gate chain repeats every ``cycle`` ticks; input port p receives
a sample's spikes at cycle tick ``inputs[p]``; the ``kick`` port starts the chain (a kick at
step 0, cycle 0 starts at step 1); the readout population fires at cycle tick ``readout.tick``.
One sample is presented per cycle, back to back, as one continuous run (the circuit clears itself
with vetoes). DATA.npz holds one array (samples, n) of 0/1 per sample port, and ``labels``: the
target port then receives the one-hot label. Readouts per sample: *spike* (the readout spikes
equal the one-hot target) and *membrane* (argmax of the readout's u at the readout tick).
Test samples are presented with the learning engine switched off by the host.
"""

from __future__ import annotations

from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import RunError
from .checkpoint import (CheckpointDir, EpochSaver, SignalGuard, binary_fingerprint, counters_from_meta, fingerprint,
                         open_target)
from .protocol import Interpreter
from .runner import accumulate, accumulate_per_core, check_labels, check_run_size

CHUNK = 512  # samples per interpreter call (bounds the size of the input arrays)


@dataclass
class Training:
    """Per-epoch accuracies, final weights and counters of a scheduled run."""

    epochs: int
    accuracy: list[float] = field(default_factory=list)            # training samples, spike readout
    accuracy_membrane: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)       # after each epoch, if test data
    test_accuracy_membrane: list[float] = field(default_factory=list)
    # Argmax over the binary readout vector (the lowest firing unit; none firing reads as unit 0):
    # what the backprop paper's authors' scoring prints as "classification rate".
    test_accuracy_spike_argmax: list[float] = field(default_factory=list)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    per_core: dict[str, np.ndarray] = field(default_factory=dict)   # counter -> (n_cores,), whole run
    overflow: dict[str, int] = field(default_factory=dict)
    canonical: dict[str, np.ndarray] = field(default_factory=dict)  # W1, W2 ... of a backprop construct
    # ``average_last = K``: the mean of the last K end-of-epoch weights, rounded to the format's step.
    average_epochs: int = 0
    averaged: dict[str, np.ndarray] = field(default_factory=dict)
    averaged_canonical: dict[str, np.ndarray] = field(default_factory=dict)

    def to_npz_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"accuracy": np.array(self.accuracy), "accuracy_membrane": np.array(self.accuracy_membrane)}
        if self.test_accuracy:
            out["test_accuracy"] = np.asarray(self.test_accuracy[-1])
            out["test_accuracy_membrane"] = np.asarray(self.test_accuracy_membrane[-1])
            out["test_accuracy_per_epoch"] = np.array(self.test_accuracy)
            out["test_accuracy_spike_argmax"] = np.asarray(self.test_accuracy_spike_argmax[-1])
        for k, v in self.weights.items():
            out[f"weights/{k}"] = v
        out.update(self.canonical)
        for k, v in self.averaged.items():
            out[f"average/weights/{k}"] = v
        for k, v in self.averaged_canonical.items():
            out[f"average/{k}"] = v
        if self.averaged:
            out["average_epochs"] = np.asarray(self.average_epochs)
        for k, v in self.counters.items():
            out[k] = np.asarray(v)
        for k, v in self.per_core.items():
            out[f"core/{k}"] = v
        for k, v in self.overflow.items():
            out[f"overflow/{k}"] = np.asarray(v)
        return out


def _samples(chip: Interpreter, data: dict[str, np.ndarray], sched: dict[str, Any], what: str) -> tuple[dict[str, np.ndarray], int]:
    """Validate a data file against the schedule's sample ports; labels become the target port."""
    data = dict(data)
    labels = data.pop("labels", None)
    target = sched.get("target")
    # Sample ports, and the target port (injected only if the schedule says so; an inference
    # schedule uses the labels for scoring alone).
    ports = {p: chip.port_size[p] for p in [*sched["inputs"], *([target] if target else [])]}
    if labels is not None:
        if target is None:
            raise RunError(f"{what}: 'labels' given but the schedule has no target port")
        # One target unit: the label is that unit's bit. Several: a class index, sent one-hot.
        n_samples = np.shape(labels)[0] if np.ndim(labels) else 0
        labels = check_labels(labels, n_samples, max(ports[target], 2), what)
        if ports[target] == 1:
            onehot = labels.astype(np.uint8)[:, None]
        else:
            onehot = np.zeros((labels.size, ports[target]), dtype=np.uint8)
            onehot[np.arange(labels.size), labels] = 1
        data.setdefault(target, onehot)
    for name in data:
        if name not in ports:
            raise RunError(f"{what}: array '{name}' is not a sample port of the schedule (ports: {', '.join(ports)})")
    n = None
    for name, size in ports.items():
        if name not in data:
            if name == target:
                continue
            raise RunError(f"{what}: no array for input port '{name}' (size {size})")
        a = np.asarray(data[name])
        if a.ndim != 2 or a.shape[1] != size:
            raise RunError(f"{what}: input '{name}': expected shape (samples, {size}), got {a.shape}")
        if a.size and not np.all((a == 0) | (a == 1)):
            raise RunError(f"{what}: input '{name}': values must be spikes (0 or 1)")
        if n is not None and a.shape[0] != n:
            raise RunError(f"{what}: input arrays disagree on the number of samples ({n} vs {a.shape[0]})")
        n = a.shape[0]
    if not n:
        raise RunError(f"{what}: no samples")
    return {k: np.asarray(v) for k, v in data.items()}, int(n or 0)


class ScheduleRunner:
    """Presents samples to a scheduled binary on an interpreter, keeping the chain running."""

    def __init__(self, chip: Interpreter) -> None:
        self.chip = chip
        self.sched = chip.meta.get("schedule")
        if not self.sched:
            raise RunError("the binary has no learning schedule")
        self.cycle = int(self.sched["cycle"])
        ro = self.sched.get("readout")
        self.readout = ro["population"] if ro else None
        self.readout_tick = int(ro["tick"]) if ro else None
        self.started = False
        self.counters: dict[str, float] = {}
        self.per_core: dict[str, np.ndarray] = {}
        self.overflow: dict[str, int] = {}

    def _start(self) -> None:
        self.chip.reset()
        kick = self.sched["kick"]
        self._absorb(self.chip.run(1, {kick: np.ones((1, 1), dtype=np.uint8)}))
        self.started = True

    def _absorb(self, res: Any) -> None:
        accumulate(self.counters, self.overflow, res)
        accumulate_per_core(self.per_core, res)

    def present(self, data: dict[str, np.ndarray], order: np.ndarray, learn: bool,
                progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Present samples ``order`` (one per cycle); returns per-sample (readout spikes, readout u)."""
        if not self.started:
            self._start()
        self.chip.learning_enabled = learn
        C = self.cycle
        spikes, membrane = [], []
        for lo in range(0, order.size, CHUNK):
            idx = order[lo:lo + CHUNK]
            steps = idx.size * C
            inputs = {}
            for port, tick in self.sched["inputs"].items():
                if port not in data:
                    continue
                arr = np.zeros((steps, data[port].shape[1]), dtype=np.uint8)
                arr[np.arange(idx.size) * C + tick] = data[port][idx]
                inputs[port] = arr
            res = self.chip.run(steps, inputs, progress=progress)
            self._absorb(res)
            if self.readout is not None:
                at = np.arange(idx.size) * C + self.readout_tick
                spikes.append(res.spikes[self.readout][at])
                membrane.append(res.probes[f"{self.readout}.u"][at])
        if self.readout is None:
            return np.zeros((order.size, 0), bool), np.zeros((order.size, 0))
        return np.concatenate(spikes), np.concatenate(membrane)

    def drain(self) -> None:
        """One empty cycle, so the last sample's learning phases complete."""
        if self.started:
            self._absorb(self.chip.run(self.cycle))


def _score(spikes: np.ndarray, membrane: np.ndarray, target: np.ndarray) -> tuple[float, float, float]:
    """(spike, membrane, spike-argmax) readout accuracies (docs/schedules.md)."""
    if target.size == 0:
        return float("nan"), float("nan"), float("nan")
    spike_ok = np.all(spikes.astype(bool) == target.astype(bool), axis=1)
    if target.shape[1] == 1:
        # One output unit: the membrane and argmax readouts are the decision at the threshold.
        mem_ok = arg_ok = spike_ok
    else:
        mem_ok = membrane.argmax(axis=1) == target.argmax(axis=1)
        arg_ok = spikes.argmax(axis=1) == target.argmax(axis=1)
    return float(spike_ok.mean()), float(mem_ok.mean()), float(arg_ok.mean())


def _evaluate(runner: ScheduleRunner, data: dict[str, np.ndarray], n: int,
              progress: Callable[[int], None] | None) -> tuple[float, float, float] | None:
    """Present ``data`` in order with learning off; readout scores, or None without a target."""
    target = runner.sched.get("target")
    inputs = {k: v for k, v in data.items() if k != target}
    spk, mem = runner.present(inputs, np.arange(n), learn=False, progress=progress)
    runner.drain()
    return _score(spk, mem, data[target]) if target in data else None


def evaluate(chip: Interpreter, data: dict[str, np.ndarray],
             progress: Callable[[int], None] | None = None) -> tuple[float, float, float]:
    """(spike, membrane, spike-argmax) accuracy of a scheduled binary on labelled ``data``, with the
    learning engine off (e.g. an inference-only compile of trained or averaged weights)."""
    runner = ScheduleRunner(chip)
    samples, n = _samples(chip, data, runner.sched, "test data")
    if runner.sched.get("target") not in samples:
        raise RunError("evaluation needs labels (or the target port's array) in the data")
    scores = _evaluate(runner, samples, n, progress)
    assert scores is not None
    chip.learning_enabled = True
    return scores


def mean_on_grid(arrays: list[np.ndarray], step: int, lo: int, hi: int) -> np.ndarray:
    """The element-wise mean of integer ``arrays``, rounded to the nearest multiple of ``step``
    (ties to the even multiple) and clipped to [lo, hi]."""
    total = np.sum(np.stack(arrays).astype(np.int64), axis=0)
    # total / (n * step) is a correctly rounded float64 (|total| < 2^53), and a true tie (an odd
    # multiple of 1/2) is representable, so np.round's ties-to-even is exact.
    w = np.round(total / (len(arrays) * step)).astype(np.int64) * step
    return np.clip(w, lo, hi)


def _canonical(names: list[str], weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """W1, W2, ... of a backprop construct, from the plastic projections it names."""
    return {f"W{k + 1}": weights[nm] for k, nm in enumerate(names) if nm in weights}


class WeightAverage:
    """Mean of the last ``k`` end-of-epoch weights of every plastic projection (Polyak-Ruppert /
    stochastic weight averaging), read by the host between epochs; docs/schedules.md.

    The mean is rounded to the nearest multiple of the projection's weight step (ties to the even
    multiple) and clipped to its range, so it loads into a compile of the same target unchanged."""

    def __init__(self, chip: Interpreter, k: int) -> None:
        if k < 1:
            raise RunError(f"weight averaging needs at least 1 epoch, got {k}")
        self.snapshots: deque[dict[str, np.ndarray]] = deque(maxlen=k)
        self.formats = {spec["name"]: spec["format"] for spec in chip.meta.get("plastic", [])}

    def add(self, weights: dict[str, np.ndarray]) -> None:
        self.snapshots.append(weights)

    def mean(self) -> dict[str, np.ndarray]:
        out = {}
        for name in self.snapshots[0]:
            fmt = self.formats[name]
            out[name] = mean_on_grid([s[name] for s in self.snapshots], 1 << int(fmt["drop"]),
                                     int(fmt["lo"]), int(fmt["hi"]))
        return out


_RESULT_LISTS = ("accuracy", "accuracy_membrane", "test_accuracy", "test_accuracy_membrane",
                 "test_accuracy_spike_argmax")


class _Checkpointing(EpochSaver):
    """Saves a training run at epoch boundaries and restores it (docs/schedules.md, Checkpoints).

    What a checkpoint holds: the chip's :meth:`state` (weights, traces, membranes, spikes in flight,
    the learning engine's generator), the shuffle generator, the epochs done, the per-epoch
    accuracies, the weight-averaging snapshots, the host's counters, and fingerprints of the binary,
    the data and the settings that shape the run, so that a resume with anything else is refused."""

    FLAGS = {"average_last": "--average-last"}

    def __init__(self, chip: Any, target: CheckpointDir, train_data: dict[str, np.ndarray],
                 test_data: dict[str, np.ndarray] | None, settings: dict[str, Any]) -> None:
        super().__init__(target, {"binary_sha256": binary_fingerprint(chip.binary),
                                  "data_sha256": fingerprint(train_data),
                                  "test_sha256": fingerprint(test_data) if test_data is not None else None,
                                  "settings": settings})
        self.chip = chip

    def save(self, epoch: int, runner: ScheduleRunner, rng: np.random.Generator, result: Training,
             average: WeightAverage | None, guard: SignalGuard) -> None:
        arrays = {f"chip/{k}": v for k, v in self.chip.state().items()}
        arrays.update({f"per_core/{k}": v for k, v in runner.per_core.items()})
        for i, snap in enumerate(average.snapshots if average is not None else ()):
            for name, w in snap.items():
                arrays[f"average/{i}/{name}"] = w
        meta = {"rng": rng.bit_generator.state,
                "runner": {"started": runner.started, "counters": runner.counters, "overflow": runner.overflow},
                "result": {k: getattr(result, k) for k in _RESULT_LISTS},
                "average_snapshots": len(average.snapshots) if average is not None else 0}
        self.write(epoch, arrays, meta, guard)

    def restore(self, source: CheckpointDir, epochs: int, runner: ScheduleRunner, rng: np.random.Generator,
                result: Training, average: WeightAverage | None) -> int:
        """Load ``source`` into the chip and the host objects; returns the epochs already done."""
        arrays, meta = source.read()
        where = f"checkpoint '{source.dir}'"
        done = self.check(source, meta, epochs)
        chip_state = {k[len("chip/"):]: v for k, v in arrays.items() if k.startswith("chip/")}
        self.chip.load_state(chip_state)
        try:   # the fingerprints matched, so a failure here means a damaged (or forged) file
            rng.bit_generator.state = meta["rng"]
            runner.started = bool(meta["runner"]["started"])
            runner.counters, runner.overflow = counters_from_meta(meta["runner"]["counters"],
                                                                  meta["runner"]["overflow"])
            for k in _RESULT_LISTS:
                setattr(result, k, [float(x) for x in meta["result"][k]])
            snapshots = int(meta["average_snapshots"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RunError(f"{where} is damaged: {type(exc).__name__}: {exc}") from None
        runner.per_core = {k[len("per_core/"):]: v for k, v in arrays.items() if k.startswith("per_core/")}
        if average is not None:
            for i in range(snapshots):
                prefix = f"average/{i}/"
                average.add({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
        self.saved_epoch = done
        return done


def train(chip: Interpreter, data: dict[str, np.ndarray], epochs: int = 1, test: dict[str, np.ndarray] | None = None,
          seed: int = 0, shuffle: bool = True, progress: Callable[[int], None] | None = None,
          report: Callable[[int, "Training"], None] | None = None,
          stop: Callable[["Training"], bool] | None = None,
          epoch_data: Callable[[int], dict[str, np.ndarray]] | None = None,
          average_last: int = 0, checkpoint: str | Path | None = None,
          resume: str | Path | None = None) -> Training:
    """Train a scheduled binary for ``epochs`` passes over ``data``; evaluate on ``test`` after each.
    ``stop(result)`` is asked after every epoch and ends training early when it returns True.
    ``epoch_data(e)``, if given, supplies epoch e's training samples instead of ``data`` (data
    augmentation: e.g. each epoch a new random shift of every image); it must keep the number
    of samples, and is validated like ``data``. ``average_last = K`` also returns the mean of the
    last K end-of-epoch weights (:class:`WeightAverage`; fewer if training ran fewer epochs).

    ``checkpoint = DIR`` saves the run in DIR before the first epoch and after every epoch, and
    turns SIGINT/SIGTERM into :class:`TrainingInterrupted` (the epoch in progress is dropped; DIR
    keeps the last boundary). ``resume = DIR`` loads such a checkpoint into ``chip`` (a fresh
    interpreter of the same binary) and trains on from it, with the same data and settings: the
    result is exactly that of a run that was never interrupted. ``epoch_data`` must then depend
    on the epoch alone (not on a generator that advanced in the epochs before), and ``stop`` is
    not remembered. Resuming writes further checkpoints to ``checkpoint``, or to ``resume``."""
    average = WeightAverage(chip, average_last) if average_last else None
    runner = ScheduleRunner(chip)
    sched = runner.sched
    train_data, n = _samples(chip, data, sched, "input data")
    test_data, n_test = _samples(chip, test, sched, "test data") if test is not None else ({}, 0)
    target = sched.get("target")
    for what, samples in (("input data", train_data), ("test data", test_data if test is not None else None)):
        if target is not None and samples is not None and target not in samples:
            # Without labels the target port stays silent: no error signal, so no weight changes
            # (training) or nothing to score (testing). Say so rather than run for nothing.
            raise RunError(f"{what} has no 'labels' (nor an array for the target port '{target}'): the schedule "
                           f"{'learns from them' if what == 'input data' else 'scores against them'}")
    check_run_size(chip.meta, min(CHUNK, max(n, n_test)) * runner.cycle, 1, "one chunk of samples")
    result = Training(epochs=epochs)
    rng = np.random.default_rng(seed)
    start = 0
    saver: _Checkpointing | None = None
    if checkpoint is not None or resume is not None:
        out_dir = open_target(checkpoint, resume)
        saver = _Checkpointing(chip, out_dir, train_data, test_data if test is not None else None,
                               {"seed": seed, "shuffle": shuffle, "average_last": average_last})
        if resume is not None:
            start = saver.restore(CheckpointDir(resume), epochs, runner, rng, result, average)
        out_dir.prepare()
    current = {"epoch": start}
    guard = SignalGuard(lambda signum: saver.interrupted(signum, current["epoch"], epochs)) if saver else nullcontext()
    with guard:
        if saver is not None and (start == 0 or checkpoint is not None):
            saver.save(start, runner, rng, result, average, guard)
        for epoch in range(start, epochs):
            current["epoch"] = epoch
            if epoch_data is not None:
                train_data, n_e = _samples(chip, epoch_data(epoch), sched, f"input data of epoch {epoch + 1}")
                if n_e != n:
                    raise RunError(f"input data of epoch {epoch + 1}: {n_e} samples, the data set has {n}")
            order = rng.permutation(n) if shuffle else np.arange(n)
            spk, mem = runner.present(train_data, order, learn=True, progress=progress)
            runner.drain()
            if target in train_data:
                a, m, _ = _score(spk, mem, train_data[target][order])
                result.accuracy.append(a)
                result.accuracy_membrane.append(m)
            if n_test:
                scores = _evaluate(runner, test_data, n_test, progress)
                if scores is not None:
                    result.test_accuracy.append(scores[0])
                    result.test_accuracy_membrane.append(scores[1])
                    result.test_accuracy_spike_argmax.append(scores[2])
            if average is not None:
                average.add(chip.plastic_weights())
            if saver is not None:
                saver.save(epoch + 1, runner, rng, result, average, guard)
            if report is not None:
                report(epoch, result)
            if stop is not None and stop(result):
                result.epochs = epoch + 1
                break
    chip.learning_enabled = True
    result.weights = chip.plastic_weights()
    names = (chip.meta.get("backprop") or {}).get("weights", [])
    result.canonical = _canonical(names, result.weights)
    if average is not None and average.snapshots:
        result.average_epochs = len(average.snapshots)
        result.averaged = average.mean()
        result.averaged_canonical = _canonical(names, result.averaged)
    result.counters = dict(runner.counters)
    result.per_core = dict(runner.per_core)
    result.overflow = dict(runner.overflow)
    return result
