"""Write examples/physical/ff_input.npz: the input of ff_lif.nmc (seeded, reproducible).

1,000 steps of 1 ms for the 64 units of port x: four phases of 250 steps, in phase k the units
16k .. 16k+15 fire as Poisson trains at 40 Hz and the rest at 4 Hz.

    python examples/physical/make_ff_input.py [--out PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def make(seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rate = np.full((1000, 64), 4.0)
    for k in range(4):
        rate[250 * k:250 * (k + 1), 16 * k:16 * (k + 1)] = 40.0
    return (rng.random(rate.shape) < rate / 1000.0).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).with_name("ff_input.npz")))
    args = ap.parse_args()
    np.savez_compressed(args.out, x=make())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
