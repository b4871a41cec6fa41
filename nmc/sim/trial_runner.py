"""Epochs of trials for binaries that learn trial by trial (e-prop), with checkpoints.

``run_epochs`` presents the samples (trials) of ``data`` ``epochs`` times in the same order, one
:func:`run_session` per epoch. Its result is the **last epoch's session** (outputs, probes,
predictions, accuracy, readout) with the counters, per-core counters and overflow counts
**totalled over all epochs**, the plastic weights at the end and ``epochs`` set; the warnings of
every epoch are kept, each prefixed with its epoch.

With ``checkpoint = DIR`` the run is saved before the first epoch and after every epoch in
``DIR/checkpoint.npz`` (:class:`nmc.sim.checkpoint.CheckpointDir`): the chip's ``state()`` (the
e-prop engine included), the epochs done, the totals so far, the last epoch's session and
fingerprints of the binary and the data. SIGINT/SIGTERM roll back to the last epoch boundary
(:class:`nmc.sim.checkpoint.SignalGuard`, :class:`TrainingInterrupted`). ``resume = DIR`` continues
from such a checkpoint; the result equals that of a run that went straight through
(docs/schedules.md, Checkpoints; docs/eprop.md §6).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import RunError
from .checkpoint import (CheckpointDir, EpochSaver, SignalGuard, binary_fingerprint, counters_from_meta, fingerprint,
                         open_target)
from .protocol import Interpreter
from .runner import Session, accumulate, accumulate_per_core, run_session

_ARRAYS = ("spikes", "probes")            # dicts of arrays in a Session
_OPTIONAL = ("labels", "predictions", "readout")


class _TrialCheckpointing(EpochSaver):
    FLAGS = {"steps": "--steps"}

    def __init__(self, chip: Any, target: CheckpointDir, data: dict[str, np.ndarray], steps: int | None) -> None:
        super().__init__(target, {"binary_sha256": binary_fingerprint(chip.binary),
                                  "data_sha256": fingerprint({k: np.asarray(v) for k, v in data.items()}),
                                  "settings": {"steps": steps}})
        self.chip = chip

    def save(self, epoch: int, totals: Session, last: Session | None, guard: SignalGuard) -> None:
        arrays = {f"chip/{k}": v for k, v in self.chip.state().items()}
        arrays.update({f"per_core/{k}": v for k, v in totals.per_core.items()})
        session: dict[str, Any] | None = None
        if last is not None:
            for part in _ARRAYS:
                arrays.update({f"last/{part}/{k}": v for k, v in getattr(last, part).items()})
            for part in _OPTIONAL:
                if getattr(last, part) is not None:
                    arrays[f"last/{part}"] = np.asarray(getattr(last, part))
            session = {"steps_per_sample": last.steps_per_sample, "samples": last.samples, "accuracy": last.accuracy}
        meta = {"counters": totals.counters, "overflow": totals.overflow, "warnings": totals.warnings,
                "last": session}
        self.write(epoch, arrays, meta, guard)

    def restore(self, source: CheckpointDir, epochs: int, totals: Session) -> tuple[int, Session | None]:
        arrays, meta = source.read()
        done = self.check(source, meta, epochs)
        self.chip.load_state({k[len("chip/"):]: v for k, v in arrays.items() if k.startswith("chip/")})
        last: Session | None = None
        try:   # the fingerprints matched, so a failure here means a damaged (or forged) file
            totals.counters, totals.overflow = counters_from_meta(meta["counters"], meta["overflow"])
            totals.warnings = [str(w) for w in meta["warnings"]]
            if meta["last"] is not None:
                s = meta["last"]
                acc = s["accuracy"]
                last = Session(int(s["steps_per_sample"]), int(s["samples"]),
                               accuracy=None if acc is None else float(acc))
                for part in _ARRAYS:
                    prefix = f"last/{part}/"
                    setattr(last, part, {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
                for part in _OPTIONAL:
                    setattr(last, part, arrays.get(f"last/{part}"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RunError(f"checkpoint '{source.dir}' is damaged: {type(exc).__name__}: {exc}") from None
        if done > 0 and last is None:
            raise RunError(f"checkpoint '{source.dir}' is damaged: it is at epoch {done} but holds no session")
        totals.per_core = {k[len("per_core/"):]: v for k, v in arrays.items() if k.startswith("per_core/")}
        self.saved_epoch = done
        return done, last


def run_epochs(chip: Interpreter, data: dict[str, np.ndarray], epochs: int, steps: int | None = None,
               progress: Callable[[int], None] | None = None,
               report: Callable[[int, Session], None] | None = None,
               checkpoint: str | Path | None = None, resume: str | Path | None = None) -> Session:
    """Present the trials of ``data`` ``epochs`` times (see the module's docstring); ``report(e,
    session)`` is called after every epoch e (0-based) with that epoch's session."""
    if epochs < 1:
        raise RunError(f"--epochs must be at least 1, got {epochs}")
    if not data or any(np.asarray(v).ndim != (1 if k == "labels" else 3) for k, v in data.items()):
        raise RunError("e-prop runs over epochs (--epochs, --checkpoint, --resume) need --input with samples: "
                       "arrays (samples, steps, n) per port")
    totals = Session(0, 0)
    last: Session | None = None
    start = 0
    saver: _TrialCheckpointing | None = None
    if checkpoint is not None or resume is not None:
        target = open_target(checkpoint, resume)
        saver = _TrialCheckpointing(chip, target, data, steps)
        if resume is not None:
            start, last = saver.restore(CheckpointDir(resume), epochs, totals)
        target.prepare()
    current = {"epoch": start}
    guard: Any = SignalGuard(lambda signum: saver.interrupted(signum, current["epoch"], epochs)) if saver else nullcontext()
    with guard:
        if saver is not None and (start == 0 or checkpoint is not None):
            saver.save(start, totals, last, guard)
        for epoch in range(start, epochs):
            current["epoch"] = epoch
            sess = run_session(chip, data, steps, progress=progress)
            accumulate(totals.counters, totals.overflow, sess)
            accumulate_per_core(totals.per_core, sess)
            totals.warnings += [f"epoch {epoch + 1}, {w}" if epochs > 1 else w for w in sess.warnings]
            last = sess
            if saver is not None:
                saver.save(epoch + 1, totals, last, guard)
            if report is not None:
                report(epoch, sess)
    assert last is not None
    last.counters, last.per_core, last.overflow = totals.counters, totals.per_core, totals.overflow
    last.warnings = totals.warnings
    last.weights = chip.plastic_weights() if hasattr(chip, "plastic_weights") else {}
    last.epochs = epochs
    return last
