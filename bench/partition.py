"""Partitioning quality: cores against the lower bound, and inter-core traffic against ``ffd``.

    python bench/partition.py                    # the full table (several minutes)
    python bench/partition.py --sizes 50,200 --budget-scale 0.5

For generated layered and recurrent networks (bench/netgen.py: ``population_graph``, layers or
clusters of n/5 populations, at most 50) of 50 to 5,000 populations (up to about 10^6 neurons) on a 64-chip copy of the Loihi-like target, each
network is partitioned three times:

- ``ffd``: first fit decreasing in layer order (the greedy start);
- ``cpsat``: the default solver (fewest cores, then least traffic) -> its cores against the
  lower bound (docs/partitioning.md, "Bounds");
- ``cpsat`` with ``objective=traffic``: ffd's cores kept, least traffic -> the traffic cut at the
  same core count.

Traffic is the exact inter-core spike count per step (per axon and destination core) with each
population's estimated rate. Budgets are CP-SAT deterministic seconds (--budget-scale scales them).
The last line is ``worst_core_ratio=<r> median_traffic_cut=<c>``: the largest cpsat cores / bound
over all cases, and the median traffic cut over the mid-size cases (200 and 1,000 populations).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from netgen import population_graph  # noqa: E402

from nmc.passes import PassContext  # noqa: E402
from nmc.passes.registry import get_pass  # noqa: E402
from nmc.target import Target, load_target  # noqa: E402

#: Populations -> CP-SAT budget (deterministic seconds) of each cpsat run.
BUDGETS = {50: 10.0, 200: 20.0, 1000: 40.0, 5000: 60.0}
MID_SIZE = (200, 1000)


def target(chips: int = 64) -> Target:
    base = load_target("loihi")
    data = copy.deepcopy(base.data)
    data["chip"]["chips"] = chips
    return Target(base.name, data)


def network(n_pops: int, recurrent: bool, seed: int):  # noqa: ANN201
    """The bench network: layers (clusters) of n/5 populations, at most 50."""
    return population_graph(n_pops, recurrent=recurrent, seed=seed, per_layer=min(50, max(1, n_pops // 5)))


def partition(n_pops: int, recurrent: bool, seed: int, tgt: Target, **options: object) -> tuple[dict, float]:
    """One partition of a fresh copy of the network: (the pass's summary, wall seconds)."""
    net = network(n_pops, recurrent, seed)
    ctx = PassContext(tgt)
    get_pass("quantize").fn(net, ctx)
    t0 = time.perf_counter()
    get_pass("partition").fn(net, ctx, **options)
    return dict(net.attrs["partition"]), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="50,200,1000,5000", help="populations per network, comma-separated")
    ap.add_argument("--kinds", default="layered,recurrent")
    ap.add_argument("--budget-scale", type=float, default=1.0, help="multiply every CP-SAT budget")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    kinds = args.kinds.split(",")
    tgt = target()
    head = (f"{'network':<16}{'neurons':>9}{'groups':>7}{'lb':>6} | {'ffd cores':>9}{'spikes':>10} | "
            f"{'cpsat cores':>11}{'ratio':>7}{'spikes':>10}{'s':>7} | {'same-cores spikes':>17}{'cut':>7}{'s':>7}")
    print(head)
    print("-" * len(head))
    ratios, cuts_mid, cuts_all = [], [], []
    for n in sizes:
        budget = BUDGETS.get(n, 20.0) * args.budget_scale
        for kind in kinds:
            rec = kind == "recurrent"
            f, _ = partition(n, rec, args.seed, tgt, solver="ffd")
            c, tc = partition(n, rec, args.seed, tgt, solver="cpsat", time=budget)
            t, tt = partition(n, rec, args.seed, tgt, solver="cpsat", time=budget, objective="traffic")
            neurons = network(n, rec, args.seed)
            n_neurons = sum(p.size for p in neurons.populations if not p.is_input)
            ratio = c["cores"] / c["cores_lb"]
            cut = 1.0 - t["inter_core_spikes"] / f["inter_core_spikes"] if f["inter_core_spikes"] else 0.0
            assert t["cores"] <= f["cores"], "objective=traffic must keep ffd's cores"
            ratios.append(ratio)
            cuts_all.append(cut)
            if n in MID_SIZE:
                cuts_mid.append(cut)
            print(f"{kind + ' ' + str(n):<16}{n_neurons:>9}{c['groups']:>7}{c['cores_lb']:>6} | {f['cores']:>9}"
                  f"{f['inter_core_spikes']:>10.1f} | {c['cores']:>11}{ratio:>7.3f}{c['inter_core_spikes']:>10.1f}"
                  f"{tc:>7.1f} | {t['inter_core_spikes']:>17.1f}{100 * cut:>6.1f}%{tt:>7.1f}", flush=True)
    print(f"(budgets in CP-SAT deterministic seconds: {', '.join(f'{k}: {v * args.budget_scale:g}' for k, v in BUDGETS.items())};"
          f" times are wall seconds of the partition pass)")
    median = statistics.median(cuts_mid) if cuts_mid else statistics.median(cuts_all)
    print(f"worst_core_ratio={max(ratios):.3f} median_traffic_cut={median:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
