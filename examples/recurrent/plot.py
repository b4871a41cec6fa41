"""Plot the result of the E/I example: spike raster of the excitatory cells, population rate and
one membrane trace. Needs matplotlib (``pip install matplotlib``).

    python examples/recurrent/plot.py ei_result.npz [-o ei.png]
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("result", help="RESULT.npz written by `nmc run ... --out`")
    ap.add_argument("-o", "--output", default="ei.png")
    args = ap.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = np.load(args.result)
    spikes, v = r["spikes/e"], r["probe/e.v"]
    t, n = np.nonzero(spikes)
    fig, ax = plt.subplots(3, 1, figsize=(9, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1, 1]})
    ax[0].plot(t, n, "|", markersize=2, color="k")
    ax[0].set_ylabel("excitatory cell")
    ax[1].plot(spikes.sum(axis=1), color="tab:red")
    ax[1].set_ylabel("spikes / step")
    busiest = int(spikes.sum(axis=0).argmax())
    ax[2].plot(v[:, busiest] / 64.0, color="tab:blue")
    ax[2].set_ylabel(f"v[{busiest}] / 64")
    ax[2].set_xlabel("timestep")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
