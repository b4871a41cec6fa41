"""XOR on the chip, 20 seeds: how many solve within a budget of presentations, and how fast.

Each seed compiles examples/xor_backprop.nmc with that seed (weights and presentation order) and
trains it on the interpreter, one epoch = the four patterns in a shuffled order, stopping when
all four are right (spike readout). Solved stays solved: with no error the circuit makes no
updates. Last line: ``solved=<k>/20 median_presentations=<m>`` (median over the solved seeds).

    python bench/xor_seeds.py [--seeds 20] [--max-presentations 3000]
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np

from nmc.driver import compile_network
from nmc.frontend.dsl import parse_dsl
from nmc.sim.loihi import LoihiInterpreter
from nmc.sim.schedule_runner import train

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "examples" / "xor_backprop.nmc"
DATA = ROOT / "examples" / "xor.npz"


def presentations_to_solve(seed: int, max_presentations: int) -> int | None:
    """Presentations until all four patterns are right, or None within the budget."""
    src = re.sub(r"^seed \d+", f"seed {seed}", SOURCE.read_text(), flags=re.MULTILINE)
    chip = LoihiInterpreter(compile_network(parse_dsl(src, filename=str(SOURCE)), "loihi"))
    with np.load(DATA) as z:
        data = {k: z[k] for k in z.files}
    n = len(data["labels"])
    result = train(chip, data, epochs=max_presentations // n, seed=seed, stop=lambda r: r.accuracy[-1] == 1.0)
    acc = np.array(result.accuracy)
    return int((np.argmax(acc == 1.0) + 1) * n) if (acc == 1.0).any() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--max-presentations", type=int, default=3000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    solved = []
    for seed in range(args.seeds):
        p = presentations_to_solve(seed, args.max_presentations)
        print(f"seed {seed:2d}: " + (f"solved after {p} presentations" if p else "not solved"), flush=True)
        if p:
            solved.append(p)
    print(f"wall time {time.perf_counter() - t0:.1f} s")
    med = int(np.median(solved)) if solved else 0
    print(f"solved={len(solved)}/{args.seeds} median_presentations={med}")


if __name__ == "__main__":
    main()
