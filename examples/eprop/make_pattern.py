"""Data for examples/eprop/pattern.nmc, and the score of a run of it.

``python examples/eprop/make_pattern.py`` writes, next to this file, the initial weights
(``w.npz``: input and readout weights in nA; ``rec.npz``: recurrent synapses without autapses) and
``train.npz``: TRIALS trials of the same frozen Poisson input ``x`` and the same target signal
``target`` (a sum of sines scaled to [-1, 1] mV, as in Bellec et al. 2020's pattern-generation
tutorial). ``--score RESULT.npz`` reads what ``nmc run --out`` wrote and prints the readout's mean
squared error over the first and the last trials: e-prop on the chip makes it fall.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
N_IN, N_REC, T, TRIALS = 50, 50, 500, 100
TAU = 30.0          # ms: membrane and readout time constants of pattern.nmc
THETA = 10.0        # mV: v_th - v_rest
RATE = 0.05         # input spikes per ms


def target_signal(rng: np.random.Generator) -> np.ndarray:
    """T ms of sines of periods 500, 250, 167 and 100 ms with random amplitudes and phases,
    starting at 0 and scaled to [-1, 1] (mV)."""
    t = np.arange(T)
    out = sum(rng.uniform(0.5, 2.0) * np.sin(2 * np.pi * t / p + rng.uniform(0, 2 * np.pi)) for p in (500, 250, 167, 100))
    out = out - out[0]
    return out / np.abs(out).max()


def write(folder: Path = HERE, trials: int = TRIALS, seed: int = 1) -> None:
    """w.npz, rec.npz and train.npz in ``folder`` (pattern.nmc's folder by default). Weights as N(0, 1)/sqrt(fan-in), scaled so
    that one unit of weight moves the membrane by about a tenth of the threshold in one step (in nA
    through the gain of a one-step current pulse, c_m = 1 nF)."""
    rng = np.random.default_rng(seed)
    gain = TAU * (1 - np.exp(-1.0 / TAU))                 # mV per nA held for one step
    jump = (1 - np.exp(-1.0 / TAU)) * THETA / 0.03
    w_in = rng.standard_normal((N_IN, N_REC)) / np.sqrt(N_IN) * jump / gain
    w_rec = rng.standard_normal((N_REC, N_REC)) / np.sqrt(N_REC) * jump / gain
    pre, post = np.nonzero(~np.eye(N_REC, dtype=bool))
    w_out = rng.standard_normal((N_REC, 1)) / np.sqrt(N_REC) * (1 - np.exp(-1.0 / TAU)) / gain
    np.savez(folder / "w.npz", w_in=w_in, w_out=w_out)
    np.savez(folder / "rec.npz", pre=pre, post=post, weights=w_rec[pre, post])
    x = (rng.random((T, N_IN)) < RATE).astype(np.uint8)
    target = target_signal(rng)[:, None]
    np.savez(folder / "train.npz", x=np.repeat(x[None], trials, axis=0),
             target=np.repeat(target[None], trials, axis=0))
    print(f"wrote w.npz, rec.npz and train.npz ({trials} trials of {T} ms) in {folder}")


def score(result: Path, folder: Path = HERE) -> int:
    """The readout's mean squared error (mV^2) per trial of a RESULT.npz of pattern.nmc."""
    from nmc.errors import NmcError
    from nmc.npz import read_npz

    try:   # nmc's npz reader: a missing, foreign or damaged file is one line
        r = read_npz(result, NmcError)
        train = read_npz(folder / "train.npz", NmcError)
    except NmcError as exc:
        print(f"make_pattern.py: {exc}", file=sys.stderr)
        return 1
    if "probe/y.v" not in r or "eprop_trials" not in r or "target" not in train:
        print(f"{result}: no probe 'y.v' or no 'eprop_trials' (was it written by nmc run --out for pattern.nmc?)",
              file=sys.stderr)
        return 1
    y = r["probe/y.v"].astype(np.float64)[..., 0] / 2 ** 15      # s16.15 words -> mV
    target = train["target"][: y.shape[0], :, 0]
    mse = np.mean((y - target) ** 2, axis=1)
    k = max(1, len(mse) // 10)
    print(f"readout mse (mV^2): first {k} trials {mse[:k].mean():.4f}, last {k} trials {mse[-k:].mean():.4f} "
          f"({100 * (1 - mse[-k:].mean() / mse[:k].mean()):.0f} % lower); e-prop trials learned from: "
          f"{int(r['eprop_trials'])}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--score", type=Path, metavar="RESULT.npz", help="print the error per trial of a run's result")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--trials", type=int, default=TRIALS, help=f"trials in train.npz (default {TRIALS})")
    ap.add_argument("--dir", type=Path, default=HERE, help="where the npz files go (default: beside pattern.nmc)")
    args = ap.parse_args(argv)
    if args.score is not None:
        return score(args.score, args.dir)
    write(args.dir, args.trials, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
