"""Study of the golden backprop model (nmc/reference/golden_backprop.py): XOR convergence and digits accuracy.

Guides the default derivative window (``lo``) and hidden size of the on-chip XOR example.

XOR: for every window ``lo`` and hidden size, seeds ``0..seeds-1``; seed s initialises the
weights with ``init_state(n_x, n_h, 1, s)`` and presents one pattern per presentation, cycling
through passes over the four patterns in a fresh random order each pass
(``shuffled_order(4, ., s)``), for at most ``--max-presentations``. A seed *solves* XOR once all
four patterns are correct by the spike readout (checked after every presentation). Once solved
the weights never change again (no output error -> no update), so the solution is permanent.
Reported: solved seeds and the median (and 90th percentile) presentations over the solved seeds.

Digits: 64-``--digits-hidden``-10 on ``digits_data(seed=0)`` (1437 train / 360 test); each run
seed s uses ``init_state(64, n_h, 10, s)`` and reshuffles every epoch (``shuffled_order(1437, .,
s)``); test (and train) accuracy by spike and membrane readout after the listed epochs.

Run from the repository root::

    python bench/golden_xor_study.py                 # the default table (about 15 s)
    python bench/golden_xor_study.py --extended      # plus encodings / hi / larger hidden layers
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: nmc without an install

from nmc.reference.golden_backprop import (  # noqa: E402
    digits_data,
    evaluate,
    init_state,
    presentations_to_solve,
    shuffled_order,
    train,
    xor_data,
)


def xor_row(
    lo: float,
    hi: float,
    n_h: int,
    seeds: int,
    max_presentations: int,
    copies: int = 2,
    bias_units: int = 3,
) -> dict:
    """Run the XOR protocol for seeds 0..seeds-1; returns counts and statistics."""
    X, T = xor_data(copies=copies, bias_units=bias_units)
    res = []
    for s in range(seeds):
        st = init_state(X.shape[1], n_h, 1, s)
        res.append(presentations_to_solve(st, X, T, s, max_presentations, lo=lo, hi=hi))
    ok = [r for r in res if r is not None]
    return {
        "lo": lo,
        "hi": hi,
        "n_h": n_h,
        "copies": copies,
        "bias_units": bias_units,
        "solved": len(ok),
        "seeds": seeds,
        "median": float(np.median(ok)) if ok else None,
        "p90": float(np.percentile(ok, 90)) if ok else None,
        "per_seed": res,
    }


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def print_xor_row(r: dict, show_seeds: bool = False) -> None:
    line = (
        f"lo={r['lo']:+.1f} hi={r['hi']:.1f} copies={r['copies']} bias={r['bias_units']} "
        f"n_h={r['n_h']:3d}: solved {r['solved']:3d}/{r['seeds']}  "
        f"median {_fmt(r['median']):>5}  p90 {_fmt(r['p90']):>5}"
    )
    print(line, flush=True)
    if show_seeds:
        print("    per seed:", ["-" if v is None else v for v in r["per_seed"]], flush=True)


def digits_runs(
    n_h: int, lo: float, hi: float, epochs: list[int], seeds: list[int]
) -> list[tuple[int, int, tuple[float, float], tuple[float, float]]]:
    """(seed, epoch, test (spike, membrane), train (spike, membrane)) after each listed epoch."""
    Xtr, Ttr, Xte, Tte = digits_data(seed=0)
    n = len(Xtr)
    out = []
    for s in seeds:
        st = init_state(64, n_h, 10, s)
        order = shuffled_order(n, max(epochs), s)
        for ep in range(1, max(epochs) + 1):
            train(st, Xtr, Ttr, order=order[(ep - 1) * n : ep * n], lo=lo, hi=hi)
            if ep in epochs:
                out.append((s, ep, evaluate(st, Xte, Tte), evaluate(st, Xtr, Ttr)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=20, help="XOR seeds 0..N-1 (default 20)")
    p.add_argument("--hidden", type=int, nargs="+", default=[4, 8, 16], help="XOR hidden sizes")
    p.add_argument("--lo", type=float, nargs="+", default=[0.0, -1.0], help="window lower bounds")
    p.add_argument("--hi", type=float, default=1.0, help="window upper bound (default 1.0)")
    p.add_argument("--copies", type=int, default=2, help="XOR: units per bit and per complement")
    p.add_argument("--bias-units", type=int, default=3, help="XOR: always-on units")
    p.add_argument("--max-presentations", type=int, default=3000)
    p.add_argument("--show-seeds", action="store_true", help="print presentations per seed")
    p.add_argument("--extended", action="store_true",
                   help="also sweep encodings, hi and larger hidden layers at lo = -1")
    p.add_argument("--no-digits", action="store_true")
    p.add_argument("--digits-hidden", type=int, default=100)
    p.add_argument("--digits-epochs", type=int, nargs="+", default=[1, 3, 5])
    p.add_argument("--digits-seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    print(f"# XOR: solved = all 4 patterns correct by spike readout within "
          f"{args.max_presentations} presentations; median/p90 over solved seeds")
    for lo in args.lo:
        for n_h in args.hidden:
            r = xor_row(lo, args.hi, n_h, args.seeds, args.max_presentations, args.copies,
                        args.bias_units)
            print_xor_row(r, args.show_seeds)

    if args.extended:
        print("# XOR extended sweep (lo = -1)")
        for copies, bias in ((2, 3), (3, 3), (2, 4), (1, 3)):
            for hi in (1.0, 1.5):
                for n_h in (8, 16, 32):
                    r = xor_row(-1.0, hi, n_h, args.seeds, args.max_presentations, copies, bias)
                    print_xor_row(r, args.show_seeds)

    if not args.no_digits:
        print(f"# digits 64-{args.digits_hidden}-10, test set 360 (train 1437), "
              f"seeds {args.digits_seeds}: accuracy spike / membrane")
        for lo in args.lo:
            runs = digits_runs(args.digits_hidden, lo, args.hi, args.digits_epochs, args.digits_seeds)
            for ep in args.digits_epochs:
                sel = [r for r in runs if r[1] == ep]
                te = np.array([r[2] for r in sel])
                tr = np.array([r[3] for r in sel])
                per = "  ".join(f"s{r[0]}: {r[2][0]:.3f}/{r[2][1]:.3f}" for r in sel)
                print(f"lo={lo:+.1f} epoch {ep}: test mean {te[:, 0].mean():.3f} / "
                      f"{te[:, 1].mean():.3f}  (train {tr[:, 0].mean():.3f} / {tr[:, 1].mean():.3f})"
                      f"   [{per}]", flush=True)
    print(f"# {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
