"""Training checkpoints: one file in a directory, replaced atomically, and the signal guard.

A checkpoint is ``DIR/checkpoint.npz``: the interpreter's :meth:`state` under ``chip/``, the host's
arrays (averaging snapshots, per-epoch accuracies) under their own prefixes, and one JSON
document (``meta.json``, stored as UTF-8 bytes so the file loads with ``allow_pickle=False``)
holding what is not an array: format version, fingerprints of the binary and the data, the epoch
it was taken at, the shuffle generator and the host's counters. It is written to a temporary file
in DIR and renamed over the old one, so DIR always holds one complete checkpoint.

SIGINT and SIGTERM during training (:class:`SignalGuard`) stop the run at once and roll back: the
epoch in progress is dropped and DIR keeps the last epoch boundary, from which ``--resume``
continues. A signal that arrives while a checkpoint is being written waits until it is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Iterator

import numpy as np

from ..atomic import save_npz
from ..errors import RunError

CHECKPOINT_FILE = "checkpoint.npz"
FORMAT = 1
KIND = "nmc-training-checkpoint"
_META_KEY = "meta.json"


class TrainingInterrupted(RunError):
    """SIGINT or SIGTERM stopped a checkpointed run; ``signum`` says which (exit status 128 + signum)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


def json_array(obj: Any) -> np.ndarray:
    """``obj`` as JSON in a uint8 array (an npz member that needs no pickle). Python's json
    writes floats with ``repr``, which reads back to the same float64, and ints of any size."""
    return np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8).copy()


def from_json_array(arr: np.ndarray) -> Any:
    return json.loads(np.asarray(arr, dtype=np.uint8).tobytes().decode())


def rng_state(rng: np.random.Generator) -> np.ndarray:
    """A generator's complete state (bit generator, position, buffered bits) as an array."""
    return json_array(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, arr: np.ndarray) -> None:
    state = from_json_array(arr)
    if not isinstance(state, dict) or state.get("bit_generator") != type(rng.bit_generator).__name__:
        raise RunError(f"checkpoint holds a random generator state for {state.get('bit_generator') if isinstance(state, dict) else state!r}, "
                       f"not {type(rng.bit_generator).__name__}")
    rng.bit_generator.state = state


def fingerprint(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over names, dtypes, shapes and contents: equal for equal data, whatever the file."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def check_saved_state(want: dict[str, np.ndarray], state: dict[str, np.ndarray],
                      any_shape: tuple[str, ...] = ()) -> None:
    """Refuse a saved chip state that does not match ``want`` (the interpreter's own ``state()``):
    a missing or extra array, or one of another shape or dtype (except the ``any_shape`` ones,
    such as a generator's serialised state), is a RunError naming the first that differs."""
    missing, extra = sorted(set(want) - set(state)), sorted(set(state) - set(want))
    if missing or extra:
        which = f"lacks '{missing[0]}'" if missing else f"has '{extra[0]}', which this binary does not"
        raise RunError(f"the saved chip state does not belong to this binary: it {which}")
    for key, w in want.items():
        got = np.asarray(state[key])
        if key not in any_shape and (got.shape != w.shape or got.dtype != w.dtype):
            raise RunError(f"the saved chip state does not belong to this binary: '{key}' is "
                           f"{got.dtype}{list(got.shape)}, expected {w.dtype}{list(w.shape)}")


def counters_from_meta(counters: dict[str, Any], overflow: dict[str, Any]) -> tuple[dict[str, float | int],
                                                                                   dict[str, int]]:
    """Run counters and overflow counts as a checkpoint's JSON gave them back (floats stay
    floats, the rest are ints); a damaged entry raises TypeError or ValueError for the caller."""
    return ({str(k): float(v) if isinstance(v, float) else int(v) for k, v in counters.items()},
            {str(k): int(v) for k, v in overflow.items()})


class CheckpointDir:
    """The directory of a run's checkpoint."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.path = self.dir / CHECKPOINT_FILE

    def exists(self) -> bool:
        return self.path.is_file()

    def prepare(self) -> None:
        """Create the directory (its parent must exist) and check that it can be written."""
        if self.dir.exists() and not self.dir.is_dir():
            raise RunError(f"checkpoint directory '{self.dir}' is a file, not a directory")
        if not self.dir.parent.is_dir():
            raise RunError(f"cannot create checkpoint directory '{self.dir}': '{self.dir.parent}' does not exist")
        try:
            self.dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create checkpoint directory '{self.dir}': {exc.strerror or exc}") from None
        if not os.access(self.dir, os.W_OK | os.X_OK):
            raise RunError(f"checkpoint directory '{self.dir}' is not writable")

    def write(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Replace the checkpoint atomically with ``arrays`` and ``meta``."""
        payload = dict(arrays)
        payload[_META_KEY] = json_array({"kind": KIND, "format": FORMAT, **meta})
        save_npz(self.path, payload)   # atomic; a failure is an OutputError naming the file

    def read(self, meta_only: bool = False) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The checkpoint's arrays (none with ``meta_only``) and meta; a missing, foreign or
        damaged file is a RunError."""
        if not self.path.is_file():
            what = "does not exist" if not self.dir.exists() else f"holds no {CHECKPOINT_FILE}"
            raise RunError(f"cannot resume: checkpoint directory '{self.dir}' {what}")
        with open(self.path, "rb") as f:
            if f.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):   # numpy would call anything else pickled data
                raise RunError(f"'{self.path}' is not an nmc checkpoint (not an .npz archive)")
        try:
            with np.load(self.path, allow_pickle=False) as z:
                if _META_KEY not in z.files:
                    raise RunError(f"'{self.path}' is not an nmc checkpoint (no {_META_KEY})")
                arrays = {} if meta_only else {k: z[k] for k in z.files if k != _META_KEY}
                meta = from_json_array(z[_META_KEY])
        except RunError:
            raise
        except (OSError, ValueError, EOFError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            raise RunError(f"cannot read checkpoint '{self.path}': {exc}") from None
        if not isinstance(meta, dict) or meta.get("kind") != KIND:
            raise RunError(f"'{self.path}' is not an nmc training checkpoint")
        if meta.get("format") != FORMAT:
            raise RunError(f"checkpoint '{self.path}' has format {meta.get('format')}; this nmc reads format {FORMAT}")
        epoch = meta.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise RunError(f"checkpoint '{self.path}' is damaged: its epoch is {epoch!r}")
        return arrays, meta


class SignalGuard:
    """While active (a context manager, main thread only), SIGINT and SIGTERM raise
    :class:`TrainingInterrupted` through ``message(signum)``, except inside :meth:`deferred`, where
    they wait for the end of the block (a checkpoint being written is always completed)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, message: Callable[[int], str]) -> None:
        self.message = message
        self._defer = 0
        self._pending: int | None = None
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self._defer:
            self._pending = signum
            return
        raise TrainingInterrupted(self.message(signum), signum)

    def __enter__(self) -> "SignalGuard":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._defer += 1
        try:
            yield
        finally:
            self._defer -= 1
        if not self._defer and self._pending is not None:
            signum, self._pending = self._pending, None
            raise TrainingInterrupted(self.message(signum), signum)


def binary_fingerprint(binary: Any) -> str:
    """SHA-256 of a binary's encoding."""
    from ..binary.format import encode_binary
    return hashlib.sha256(encode_binary(binary)).hexdigest()


def open_target(checkpoint: str | Path | None, resume: str | Path | None) -> CheckpointDir:
    """The directory further checkpoints go to (``checkpoint``, else ``resume``); refused when it
    already holds a checkpoint that is not the one being resumed."""
    target = CheckpointDir(checkpoint if checkpoint is not None else resume)  # type: ignore[arg-type]
    same = resume is not None and Path(resume).resolve() == target.dir.resolve()
    if target.exists() and not same:
        raise RunError(f"checkpoint directory '{target.dir}' already holds a checkpoint; continue it with "
                       f"--resume {target.dir}, or give another directory")
    return target


class EpochSaver:
    """What every epoch-checkpointed run shares: the target directory, the identity of the run
    (fingerprints and settings) that a resume must match, the epoch last saved, and the line an
    interrupted run ends with."""

    FLAGS: dict[str, str] = {}

    def __init__(self, target: CheckpointDir, ident: dict[str, Any]) -> None:
        self.target = target
        self.ident = ident          # fingerprint keys, plus "settings": {name: value}
        self.saved_epoch: int | None = None

    WHAT = {"binary_sha256": "another binary", "data_sha256": "other training data",
            "test_sha256": "other test data (or with none where this run has some, or the reverse)"}

    def check(self, source: CheckpointDir, meta: dict[str, Any], epochs: int) -> int:
        """Refuse a checkpoint of another run (one line); returns its epoch."""
        where = f"checkpoint '{source.dir}'"
        for key, what in self.WHAT.items():
            if key in self.ident and meta.get(key) != self.ident[key]:
                raise RunError(f"{where} was made with {what}; resume with the same binary and data")
        got = meta.get("settings", {})
        for key, want in self.ident.get("settings", {}).items():
            if not isinstance(got, dict) or got.get(key) != want:
                have = got.get(key) if isinstance(got, dict) else None
                raise RunError(f"{where} was made with {self.FLAGS.get(key, key)} {have}, this run has {want}")
        done = int(meta["epoch"])
        if done > epochs:
            raise RunError(f"{where} is at epoch {done}, past the {epochs} epoch(s) asked for")
        return done

    def write(self, epoch: int, arrays: dict[str, np.ndarray], meta: dict[str, Any], guard: SignalGuard) -> None:
        with guard.deferred():   # a signal now waits until the file is complete
            self.target.write(arrays, {**self.ident, "epoch": epoch, **meta})
            self.saved_epoch = epoch

    def interrupted(self, signum: int, epoch: int, epochs: int) -> str:
        name = signal.Signals(signum).name
        if self.saved_epoch is None:
            return f"interrupted by {name} during epoch {epoch + 1} of {epochs}; nothing was saved"
        kept = f"'{self.target.dir}' holds the state after epoch {self.saved_epoch} (continue with --resume {self.target.dir})"
        if self.saved_epoch > epoch:   # the signal came while that epoch's checkpoint was written
            return f"interrupted by {name} after epoch {self.saved_epoch} of {epochs}; {kept}"
        return f"interrupted by {name} during epoch {epoch + 1} of {epochs}: that epoch is dropped; {kept}"
