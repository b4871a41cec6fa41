"""MNIST on the synfire-gated spiking backprop circuit (Renner et al.), trained on the interpreter.

The real chip path: a DSL program with ``learn backprop(x -> h -> o, target = t, ...)`` is
parsed, compiled with ``compile_network(..., "loihi")``, loaded into a ``LoihiInterpreter`` and
trained with ``nmc.sim.schedule_runner.train`` (one 12-tick cycle per sample, learning on; the
validation images are presented after every epoch with the learning engine off).

Protocol: ``--validation`` images (default 10,000) are held out of the 60,000 training images
(``validation_split``: a fixed random choice, the same as bench/backprop_study.py's); the circuit
trains on the other 50,000 and is scored on the validation images after every epoch. The defaults
below (margin, error threshold, windows, shift, averaging window) were chosen on validation
scores of the golden model (bench/backprop_study.py; bench/README.md has the table). The 10,000 test images are scored
once, after the last epoch: the training chip with its last-epoch weights (``test_accuracy``), and
the averaged weights compiled inference-only (``test_accuracy_averaged``). ``--validation 0``
trains on all 60,000 (the paper's protocol) and reports no validation figures.

Circuit: the paper's 400-400-10 with the output layer's derivative window -1 < a <= 1
(``--window``; the paper's is 0 < a <= 1), the hidden layer's the paper's 0 < a <= 1
(``--window-hidden``), the output margin 0.5 (``--margin``; the paper's circuit has none) and
the error units' threshold 1/16 (``--error-threshold``; the paper's 0).

Preprocessing (docs/backprop.md, Sources: Data and protocol): crop 4 px per side
(28 x 28 -> 20 x 20), binarise at 0.5 (pixel > 127) -> 400 binary inputs; the label is sent one-hot to the target port. Training data
is augmented (``--shift``, default 1; 0 is the paper's protocol): in epoch e each training
image's 20 x 20 window moves by a random offset of up to 1 px, drawn from a generator seeded
with (seed, 2, e), so a resumed run sees the same images; evaluation images keep the fixed crop.

Weight averaging (``--average``, default 30): the host reads the plastic weights after every
epoch (``train(..., average_last=K)``); after training, the mean of the last K snapshots, rounded
to the 8-bit weight step, is compiled inference-only (``mode = inference``) and scored on the
validation and test images. ``--average 0``: the last epoch's weights only, as the paper.

Checkpoints (``--checkpoint DIR``, ``--resume DIR``): as ``nmc run``'s (docs/schedules.md); an
interrupted run resumed gives the same figures (the wall times are those of the resumed part).

Run from the repository root::

    python bench/backprop_mnist.py --checkpoint ck                   # 60 epochs (about an hour)
    python bench/backprop_mnist.py --epochs 1 --train 2000 --validation 1000 --test 1000
    python bench/backprop_mnist.py --data /path/to/idx/dir           # the standard IDX files

Last line::

    test_accuracy=<a> test_accuracy_averaged=<b> test_accuracy_membrane=<m> test_accuracy_membrane_averaged=<n>
    val_accuracy=<v> val_accuracy_averaged=<w> ms_per_sample=<t> chip_ms_per_sample=<c> energy_mj_per_sample=<e>

(one line; the ``_averaged`` figures only with ``--average``, the ``val_`` ones only with
``--validation``). ``ms_per_sample``: host wall-clock time of the interpreter's training
presentations (learning on) per training sample; ``chip_ms_per_sample`` and
``energy_mj_per_sample``: the interpreter's cost model (simulated chip time and energy) of those
same presentations per training sample. The paper's 1.5 ms and 0.59 mJ per sample were measured
on Loihi; the figures here are a model of such a chip, not a measurement of one.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nmc.errors import NmcError
from nmc.sim.checkpoint import TrainingInterrupted

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (ROOT / ".." / "shared" / "data" / "mnist.npz").resolve()

IDX_FILES = {
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


class DataError(Exception):
    """A missing or malformed data set (reported as one line)."""


# -- data ---------------------------------------------------------------------------------------------
def _read_idx(path: Path) -> np.ndarray:
    """One IDX file (optionally gzip-compressed): unsigned-byte data of 1 or 3 dimensions."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: not a valid gzip file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] not in (1, 3):
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    n = int(np.prod(shape))
    body = raw[4 + 4 * ndim:]
    if len(body) != n:
        raise DataError(f"{path}: IDX header says {shape} ({n} bytes) but the file holds {len(body)} bytes")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _find_idx(folder: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        for cand in (folder / name, folder / f"{name}.gz"):
            if cand.is_file():
                return cand
    raise DataError(f"{folder}: no {names[0]} (or {names[0]}.gz) in this directory")


def load_mnist(path: str | Path) -> dict[str, np.ndarray]:
    """MNIST as uint8 arrays ``x_train`` (n, 28, 28), ``y_train`` (n,), ``x_test``, ``y_test``.

    ``path`` is an ``.npz`` with those four arrays (the Keras layout) or a directory holding the
    four standard IDX files (``train-images-idx3-ubyte`` ... ``t10k-labels-idx1-ubyte``, gzip or
    not). Raises :class:`DataError` with a one-line message if it is missing or malformed.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or directory (give --data an mnist.npz or a directory of IDX files)")
    if p.is_dir():
        d = {k: _read_idx(_find_idx(p, names)) for k, names in IDX_FILES.items()}
    else:
        if not zipfile.is_zipfile(p):
            raise DataError(f"{p}: not a valid .npz file (expected an npz with x_train, y_train, x_test, y_test "
                            "or a directory of the MNIST IDX files)")
        try:
            with np.load(p, allow_pickle=False) as z:
                missing = [k for k in IDX_FILES if k not in z.files]
                if missing:
                    raise DataError(f"{p}: missing array(s) {', '.join(missing)} (has: {', '.join(z.files) or 'none'})")
                d = {k: np.asarray(z[k]) for k in IDX_FILES}
        except DataError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{p}: not a readable .npz file ({exc})") from None
    for part in ("train", "test"):
        x, y = d[f"x_{part}"], d[f"y_{part}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{p}: x_{part} must have shape (n, 28, 28), got {x.shape}")
        if y.shape != (x.shape[0],):
            raise DataError(f"{p}: y_{part} must have shape ({x.shape[0]},), got {y.shape}")
        if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() > 9):
            raise DataError(f"{p}: y_{part} must hold integer labels 0..9")
        if x.size and (x.min() < 0 or x.max() > 255):
            raise DataError(f"{p}: x_{part} must hold pixel values 0..255")
    return d


# Which training images are held out for validation: one fixed permutation, the same for every tool
# (bench/backprop_mnist.py, bench/backprop_study.py), independent of the run's --seed.
VALIDATION_SEED = 20_000_604


def validation_split(n: int, n_val: int) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, validation indices), each sorted: ``n_val`` of the ``n`` training images,
    drawn at random with :data:`VALIDATION_SEED`, are held out. Variants, thresholds and the
    averaging window are chosen on the validation images; the test set is scored once, after."""
    if not 0 <= n_val < n:
        raise DataError(f"--validation must be 0..{n - 1} (of {n} training images), got {n_val}")
    perm = np.random.default_rng(VALIDATION_SEED).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def preprocess(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) pixels 0..255 -> (n, 400) uint8 spikes: crop 4 px per side, binarise at 0.5."""
    crop = np.asarray(images)[:, 4:24, 4:24]
    return (crop > 127).reshape(crop.shape[0], 400).astype(np.uint8)


def shifted(images: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Data augmentation: ``preprocess`` with each image's 20x20 window moved by a random
    (dy, dx) in [-k, k]^2 (k <= 4: the window stays inside the 28x28 image)."""
    images = np.asarray(images)
    offs = rng.integers(-k, k + 1, size=(images.shape[0], 2))
    out = np.empty((images.shape[0], 400), dtype=np.uint8)
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            sel = np.flatnonzero((offs[:, 0] == dy) & (offs[:, 1] == dx))
            out[sel] = (images[sel, 4 + dy:24 + dy, 4 + dx:24 + dx] > 127).reshape(sel.size, 400)
    return out


# -- circuit ------------------------------------------------------------------------------------------
def circuit_source(n_h: int = 400, window: float = -1.0, seed: int = 0, n_x: int = 400, n_o: int = 10,
                   margin: float = 0.0, window_hidden: float | None = None, error_threshold: float = 0.0,
                   inference_weights: Path | None = None) -> str:
    """The DSL program of the n_x-n_h-n_o training circuit, or with ``inference_weights`` (an npz
    of W1, W2) its inference-only compile."""
    hidden = "" if window_hidden is None else f"window_hidden = {window_hidden:g}, "
    hidden += f"error_threshold = {error_threshold:g}, " if error_threshold else ""
    weights = (f"he_normal(seed = {seed})" if inference_weights is None
               else f'npz("{inference_weights.as_posix()}"), mode = inference')
    return (f"network mnist_backprop\nseed {seed}\n"
            f"input x[{n_x}]\ninput t[{n_o}]\n"
            f"population h[{n_h}] : graded\npopulation o[{n_o}] : graded\noutput o\n"
            f"learn backprop(x -> h -> o, target = t, window = {window:g}, {hidden}margin = {margin:g}, "
            f"weights = {weights})\n")


@dataclass
class Meter:
    """Splits interpreter wall time and cost-model counters by learning on (train) / off (test)."""

    wall: dict[bool, float] = field(default_factory=lambda: {True: 0.0, False: 0.0})
    counters: dict[bool, dict[str, float]] = field(default_factory=lambda: {True: {}, False: {}})

    def attach(self, chip: Any) -> None:
        run = chip.run

        def metered(*args: Any, **kw: Any) -> Any:
            learn = bool(chip.learning_enabled)
            t0 = time.perf_counter()
            res = run(*args, **kw)
            self.wall[learn] += time.perf_counter() - t0
            acc = self.counters[learn]
            for k, v in res.counters.items():
                acc[k] = acc.get(k, 0) + v
            return res

        chip.run = metered


def build(n_h: int, window: float, seed: int, margin: float = 0.0,
          window_hidden: float | None = None, error_threshold: float = 0.0,
          inference_weights: Path | None = None) -> tuple[Any, float]:
    from nmc.driver import compile_network
    from nmc.frontend.dsl import parse_dsl
    from nmc.sim.loihi import LoihiInterpreter

    t0 = time.perf_counter()
    src = circuit_source(n_h, window, seed, margin=margin, window_hidden=window_hidden,
                         error_threshold=error_threshold, inference_weights=inference_weights)
    chip = LoihiInterpreter(compile_network(parse_dsl(src), "loihi"))
    return chip, time.perf_counter() - t0


def build_averaged(args: argparse.Namespace, weights: dict[str, np.ndarray]) -> Any:
    """The averaged W1, W2 compiled inference-only (``mode = inference``), loaded on a chip."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "averaged.npz"
        np.savez(path, W1=weights["W1"], W2=weights["W2"])
        chip, _ = build(args.hidden, args.window, args.seed, args.margin, args.window_hidden,
                        args.error_threshold, inference_weights=path)
    return chip


def _scores(line: str, acc: tuple[float, float, float]) -> str:
    return f"{line} {acc[0]:.4f} (membrane {acc[1]:.4f}, spike argmax {acc[2]:.4f})"


def run(args: argparse.Namespace, out: Callable[[str], None] = print) -> dict[str, float]:
    from nmc.sim.schedule_runner import evaluate, train

    d = load_mnist(args.data)
    tr, va = validation_split(d["x_train"].shape[0], args.validation)
    tr = tr if args.train is None else tr[:args.train]
    n_tr, n_va = tr.size, va.size
    n_te = d["x_test"].shape[0] if args.test is None else min(args.test, d["x_test"].shape[0])
    if n_tr == 0:
        raise DataError("no training samples (--train 0 or an empty x_train)")
    x_train = d["x_train"][tr]
    train_data = {"x": preprocess(x_train), "labels": d["y_train"][tr].astype(np.int64)}
    val_data = {"x": preprocess(d["x_train"][va]), "labels": d["y_train"][va].astype(np.int64)} if n_va else None
    test_data = {"x": preprocess(d["x_test"][:n_te]), "labels": d["y_test"][:n_te].astype(np.int64)} if n_te else None

    chip, t_build = build(args.hidden, args.window, args.seed, args.margin, args.window_hidden, args.error_threshold)
    wh = "" if args.window_hidden is None else f", window_hidden = {args.window_hidden:g}"
    wh += f", error_threshold = {args.error_threshold:g}"
    out(f"circuit 400-{args.hidden}-10, window = {args.window:g}{wh}, margin = {args.margin:g}, seed {args.seed}: "
        f"{chip.n_cx} compartments on "
        f"{chip.n_cores} cores, compiled and loaded in {t_build:.1f} s")
    aug = f", each epoch's images shifted by up to {args.shift} px" if args.shift else ""
    out(f"data {args.data}: {n_tr} training samples{aug}, {n_va} validation samples held out of the training set, "
        f"{n_te} test samples (scored once, at the end), {args.epochs} epoch(s)")
    meter = Meter()
    meter.attach(chip)
    mark = {"wall": dict(meter.wall), "t": time.perf_counter(), "epochs": 0}

    def report(epoch: int, r: Any) -> None:
        tr_s = meter.wall[True] - mark["wall"][True]
        ev_s = meter.wall[False] - mark["wall"][False]
        line = f"epoch {epoch + 1}/{args.epochs}: train {r.accuracy[-1]:.4f} (membrane {r.accuracy_membrane[-1]:.4f})"
        if r.test_accuracy:   # train() scores its ``test`` argument after each epoch: the validation images
            line += (f"  val {r.test_accuracy[-1]:.4f} (membrane {r.test_accuracy_membrane[-1]:.4f}, "
                     f"spike argmax {r.test_accuracy_spike_argmax[-1]:.4f})")
        line += (f"  wall {time.perf_counter() - mark['t']:.1f} s (train {tr_s:.1f} s = {1e3 * tr_s / n_tr:.2f} "
                 f"ms/sample" + (f", validation {ev_s:.1f} s)" if n_va else ")"))
        out(line)
        sys.stdout.flush()
        mark.update(wall=dict(meter.wall), t=time.perf_counter(), epochs=mark["epochs"] + 1)

    epoch_data = None
    if args.shift:
        # Epoch e's shifts depend on (seed, e) alone, so a resumed run draws the same ones.
        epoch_data = lambda e: {"x": shifted(x_train, args.shift, np.random.default_rng([args.seed, 2, e])),  # noqa: E731
                                "labels": train_data["labels"]}
    r = train(chip, train_data, epochs=args.epochs, test=val_data, seed=args.seed, report=report,
              epoch_data=epoch_data, average_last=args.average, checkpoint=args.checkpoint, resume=args.resume)
    c = dict(meter.counters[True])
    n_presented = n_tr * mark["epochs"]   # the epochs run in this process (fewer after a resume)
    ms = 1e3 * meter.wall[True] / n_presented if n_presented else float("nan")
    mj = 1e3 * c.get("energy_j", 0.0) / n_presented if n_presented else float("nan")
    chip_ms = 1e3 * c.get("time_s", 0.0) / n_presented if n_presented else float("nan")
    out(f"training: {n_presented} samples presented in this run, {int(c.get('timesteps', 0))} timesteps, "
        f"{int(c.get('synaptic_updates', 0))} synaptic updates; interpreter wall time {ms:.2f} ms per sample; "
        f"cost model (simulated chip): chip_ms {chip_ms:.3f} ms and {mj:.4f} mJ per sample "
        f"(the paper's Loihi, measured on the chip: 1.5 ms, 0.59 mJ)")
    if r.overflow and any(r.overflow.values()):
        out("overflow: " + ", ".join(f"{k}={v}" for k, v in r.overflow.items() if v))
    nan3 = (float("nan"),) * 3
    figures: dict[str, float] = {}
    last_val = ((r.test_accuracy[-1], r.test_accuracy_membrane[-1], r.test_accuracy_spike_argmax[-1])
                if r.test_accuracy else nan3)
    # The test set, once: the training chip as it ends (last-epoch weights, learning off).
    last_test = evaluate(chip, test_data) if test_data is not None else nan3
    out(_scores("last epoch's weights (training chip): validation", last_val) + "; " +
        _scores("test", last_test).lstrip())
    figures.update(test_accuracy=last_test[0], test_accuracy_membrane=last_test[1],
                   test_accuracy_spike_argmax=last_test[2])
    if args.average and r.averaged_canonical:
        avg_chip = build_averaged(args, r.averaged_canonical)
        avg_val = evaluate(avg_chip, val_data) if val_data is not None else nan3
        avg_test = evaluate(avg_chip, test_data) if test_data is not None else nan3
        out(_scores(f"weights averaged over the last {r.average_epochs} epochs (inference compile): validation",
                    avg_val) + "; " + _scores("test", avg_test).lstrip())
        figures.update(test_accuracy_averaged=avg_test[0], test_accuracy_membrane_averaged=avg_test[1],
                       test_accuracy_spike_argmax_averaged=avg_test[2])
        if val_data is not None:
            figures.update(val_accuracy_averaged=avg_val[0])
    if val_data is not None:
        figures["val_accuracy"] = last_val[0]
    # The authors' scoring also prints argmax over the binary output ("classification rate");
    # test_accuracy is the exact match. Both, so the paper's figure can be compared.
    out(" ".join(f"{k}={v:.4f}" for k, v in figures.items() if "spike_argmax" in k))
    figures.update(ms_per_sample=ms, chip_ms_per_sample=chip_ms, energy_mj_per_sample=mj)
    order = ["test_accuracy", "test_accuracy_averaged", "test_accuracy_membrane", "test_accuracy_membrane_averaged",
             "val_accuracy", "val_accuracy_averaged", "ms_per_sample", "chip_ms_per_sample", "energy_mj_per_sample"]
    digits = {"ms_per_sample": 3, "chip_ms_per_sample": 3, "energy_mj_per_sample": 5}
    out(" ".join(f"{k}={figures[k]:.{digits.get(k, 4)}f}" for k in order if k in figures))
    return figures


def _positive(v: str) -> int:
    n = int(v)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _count(v: str) -> int:
    n = int(v)
    if n < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {n}")
    return n


def _shift(v: str) -> int:
    n = int(v)
    if not 0 <= n <= 4:
        raise argparse.ArgumentTypeError(f"must be 0..4 (the 20x20 window inside the 28x28 image), got {n}")
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="backprop_mnist", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA),
                    help="mnist.npz (x_train, y_train, x_test, y_test) or a directory of the IDX files "
                         "(default: ../shared/data/mnist.npz from the repository root)")
    ap.add_argument("--epochs", type=_positive, default=60)
    ap.add_argument("--hidden", type=_positive, default=400, help="hidden units (default 400)")
    ap.add_argument("--train", type=_count, default=None,
                    help="use the first N of the training samples left after the validation split (default: all)")
    ap.add_argument("--validation", type=_count, default=10000,
                    help="training images held out for validation, scored after every epoch (default 10000; "
                         "0: train on all, as the paper)")
    ap.add_argument("--test", type=_count, default=None,
                    help="score the first N test samples once, at the end (default: all; 0: none)")
    ap.add_argument("--window", type=float, default=-1.0,
                    help="lower edge of the derivative window in thresholds (paper: 0; default -1)")
    ap.add_argument("--window-hidden", type=float, default=0.0,
                    help="the hidden layer's lower window edge (default 0, the paper's; --window sets the output's)")
    ap.add_argument("--error-threshold", type=float, default=0.0625,
                    help="threshold of the backpropagated error units (paper: 0; default 1/16; any value is exact)")
    ap.add_argument("--margin", type=float, default=0.5,
                    help="output margin of the backprop construct (paper: 0; default 0.5, docs/backprop.md)")
    ap.add_argument("--shift", type=_shift, default=1,
                    help="data augmentation: each epoch moves every training image's 20x20 window by a "
                         "random offset of up to this many pixels (0: the paper's fixed crop; default 1)")
    ap.add_argument("--average", type=_count, default=30,
                    help="also score the mean of the last K end-of-epoch weights (read by the host, rounded to the "
                         "weight step, compiled inference-only); 0: the last epoch's weights only (default 30)")
    ap.add_argument("--seed", type=int, default=0, help="weight init and presentation order (default 0)")
    ap.add_argument("--checkpoint", metavar="DIR", help="save the run in DIR after every epoch (docs/schedules.md)")
    ap.add_argument("--resume", metavar="DIR", help="continue the run saved in DIR (same options and data)")
    args = ap.parse_args(argv)
    try:
        run(args)
    except DataError as exc:
        print(f"backprop_mnist: error: {exc}", file=sys.stderr)
        return 1
    except TrainingInterrupted as exc:
        print(f"backprop_mnist: {exc.message}", file=sys.stderr)
        return 128 + exc.signum
    except NmcError as exc:  # a circuit nmc refuses (e.g. a --window that excludes 0.5), as one line
        print(f"backprop_mnist: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
