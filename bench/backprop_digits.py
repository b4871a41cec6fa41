"""On-chip backprop on scikit-learn's 8x8 digits (binarised), one and two hidden layers.

Trains the circuits that `learn backprop(...)` expands to, on the interpreter (the compiled binary,
not a model of it), and prints test accuracy after each epoch with the spike readout (the output
spike vector equals the one-hot target) and the membrane readout (argmax of the output's input).
Inputs: a 7-level thermometer code (448 binary inputs: pixel > 2, 4, ..., 14; the encoding
bench/backprop_study.py found to matter most) or, with ``--encoding binary``, pixel > 8 (64 inputs).
1437 training / 360 test samples (nmc/reference/golden_backprop.py, seed 0).
Last line: ``<arch>: test_accuracy=<a> test_accuracy_membrane=<m>`` per network.

    python bench/backprop_digits.py [--epochs 5] [--seed 1] [--hidden 200] [--deep-hidden 200,100]
                                    [--encoding thermometer|binary]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: nmc without an install
from nmc.reference.golden_backprop import digits_data, digits_thermometer  # noqa: E402  (the data split the tests use)

from nmc.driver import compile_network  # noqa: E402
from nmc.frontend.dsl import parse_dsl  # noqa: E402
from nmc.sim.loihi import LoihiInterpreter  # noqa: E402
from nmc.sim.schedule_runner import train  # noqa: E402


def circuit(sizes: list[int], seed: int, window: float) -> str:
    names = ["x"] + [f"h{i}" for i in range(1, len(sizes) - 1)] + ["o"]
    pops = "".join(f"population {n}[{s}] : graded\n" for n, s in zip(names[1:], sizes[1:]))
    return (f"network digits\nseed {seed}\ninput x[{sizes[0]}]\ninput t[{sizes[-1]}]\n{pops}output o\n"
            f"learn backprop({' -> '.join(names)}, target = t, window = {window}, weights = he_normal(seed = {seed}))\n")


def run(sizes: list[int], epochs: int, seed: int, window: float, encoding: str) -> tuple[float, float]:
    X, T, Xt, Tt = digits_thermometer(seed=0) if encoding == "thermometer" else digits_data(seed=0)
    chip = LoihiInterpreter(compile_network(parse_dsl(circuit(sizes, seed, window)), "loihi"))
    arch = "-".join(map(str, sizes))
    t0 = time.perf_counter()

    def report(epoch: int, r) -> None:
        print(f"{arch} epoch {epoch + 1:2d}: train {100 * r.accuracy[-1]:5.1f}%  test {100 * r.test_accuracy[-1]:5.1f}% "
              f"(membrane {100 * r.test_accuracy_membrane[-1]:5.1f}%)  [{time.perf_counter() - t0:.0f} s]", flush=True)

    r = train(chip, {"x": X.astype(np.uint8), "t": T.astype(np.uint8)}, epochs=epochs,
              test={"x": Xt.astype(np.uint8), "t": Tt.astype(np.uint8)}, seed=seed, report=report)
    return r.test_accuracy[-1], r.test_accuracy_membrane[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--deep-hidden", default="200,100")
    ap.add_argument("--window", type=float, default=-1.0)
    ap.add_argument("--encoding", choices=("thermometer", "binary"), default="thermometer")
    args = ap.parse_args()
    n_x = 448 if args.encoding == "thermometer" else 64
    nets = [[n_x, args.hidden, 10], [n_x, *map(int, args.deep_hidden.split(",")), 10]]
    results = [(n, run(n, args.epochs, args.seed, args.window, args.encoding)) for n in nets]
    print(" ".join(f"{'-'.join(map(str, n))}: test_accuracy={a:.4f} test_accuracy_membrane={m:.4f}"
                   for n, (a, m) in results))


if __name__ == "__main__":
    main()
