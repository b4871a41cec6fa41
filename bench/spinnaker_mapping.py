"""Mapping three networks onto the SpiNNaker-like target, against sPyNNaker 7.4.1 + PACMAN.

    python bench/spinnaker_mapping.py [--seed 1] [--only a|b|c] [--solver cpsat|ffd|first-fit]

(a) 784 inputs -> 500 -> 500 -> 10 LIF, all-to-all;
(b) 8,000 excitatory + 2,000 inhibitory LIF, connection probability 0.02, plus 1,000 Poisson
    inputs at probability 0.1;
(c) 100 populations of 25 LIF, each projecting all-to-all to 5 random others.

For each: neuron cores, chips, router entries (largest chip and whole machine; the merged
generator's tables, then compressed), SDRAM, and the time ``compile_network`` takes from the IR
(map-neurons, quantize, partition, allocate, backend) with the target's default pipeline
(partitioner ``cpsat``), or another partitioner with ``--solver``. PACMAN on a 48-chip board needs
(a) 5 cores, 1 chip, 3 entries; (b) 40 cores, 4 chips, 31 entries (15 compressed), ~50 s of data
generation; (c) 100 cores, 7 chips, 525 entries (389 compressed, 94 of them unnecessary with
default routing). Targets: cores <= 5/40/100, compressed entries <= 3/15/295, (b) in <= 5 s.
Last line::

    cores=<a>/<b>/<c> router_entries=<a>/<b>/<c> compile_s_b=<t>
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmc.binary.format import Binary  # noqa: E402
from nmc.driver import compile_network  # noqa: E402
from nmc.ir.network import Network, Population, Projection  # noqa: E402

PACMAN = {"a": (5, 3), "b": (40, 15), "c": (100, 295)}
LIF = {"tau_m": 20.0, "tau_syn": 5.0, "cm": 1.0, "v_rest": -65.0, "v_reset": -65.0, "v_th": -50.0, "t_ref": 2.0}


def _sparse(rng: np.random.Generator, n_pre: int, n_post: int, p: float) -> tuple[np.ndarray, np.ndarray]:
    """Random connections with probability ``p`` per pair: a binomial count of distinct pairs."""
    k = rng.binomial(n_pre * n_post, p)
    flat = np.unique(rng.integers(0, n_pre * n_post, size=k, dtype=np.int64))
    return flat // n_post, flat % n_post


def net_a(seed: int) -> Network:
    rng = np.random.default_rng(seed)
    net = Network("ff_784_500_500_10", attrs={"dt": 1.0, "seed": seed})
    net.add_population(Population("x", 784, "input", role="input"))
    sizes = [("h1", 500), ("h2", 500), ("o", 10)]
    for name, n in sizes:
        net.add_population(Population(name, n, "lif", dict(LIF), role="output" if name == "o" else "hidden"))
    pre = ("x", 784)
    for name, n in sizes:
        w = rng.normal(0.05, 0.05, (pre[1], n)).round(4)
        net.add_projection(Projection(f"{pre[0]}->{name}", pre[0], name, "dense", w))
        pre = (name, n)
    return net


def net_b(seed: int) -> Network:
    rng = np.random.default_rng(seed)
    net = Network("balanced_10k", attrs={"dt": 1.0, "seed": seed})
    net.add_population(Population("poisson", 1000, "input", role="input"))
    net.add_population(Population("exc", 8000, "lif", dict(LIF, i_bias=0.5), role="output"))
    net.add_population(Population("inh", 2000, "lif", dict(LIF, i_bias=0.5)))
    for pre, post, n_pre, n_post, p, w in (("exc", "exc", 8000, 8000, 0.02, 0.1), ("exc", "inh", 8000, 2000, 0.02, 0.1),
                                          ("inh", "exc", 2000, 8000, 0.02, -0.4), ("inh", "inh", 2000, 2000, 0.02, -0.4),
                                          ("poisson", "exc", 1000, 8000, 0.1, 0.1),
                                          ("poisson", "inh", 1000, 2000, 0.1, 0.1)):
        pi, qi = _sparse(rng, n_pre, n_post, p)
        net.add_projection(Projection(f"{pre}->{post}", pre, post, "sparse", np.full(pi.size, w),
                                      pre_index=pi, post_index=qi))
    return net


def net_c(seed: int) -> Network:
    rng = np.random.default_rng(seed)
    net = Network("pops_100x25", attrs={"dt": 1.0, "seed": seed})
    net.add_population(Population("drive", 25, "input", role="input"))
    for k in range(100):
        net.add_population(Population(f"p{k:02d}", 25, "lif", dict(LIF)))
    net.add_projection(Projection("drive->p00", "drive", "p00", "dense", np.full((25, 25), 0.2)))
    for k in range(100):
        for j in rng.choice([i for i in range(100) if i != k], size=5, replace=False).tolist():
            net.add_projection(Projection(f"p{k:02d}->p{j:02d}", f"p{k:02d}", f"p{j:02d}", "dense",
                                          rng.uniform(0.05, 0.2, (25, 25)).round(3)))
    return net


def summary(binary: Binary) -> dict[str, int]:
    chips = binary.meta["chips"]
    with_cores = [c for c in chips if c["cores"]]
    return {
        "cores": int(binary.meta["n_cores"]), "chips": len(with_cores), "routing_chips": len(chips),
        "entries_max": max((c["router_entries_uncompressed"] for c in chips), default=0),
        "entries_total": sum(c["router_entries_uncompressed"] for c in chips),
        "compressed_max": max((c["router_entries_compressed"] for c in chips), default=0),
        "compressed_total": sum(c["router_entries_compressed"] for c in chips),
        "raw_total": sum(c["router_entries_raw"] for c in chips),
        "sdram_total": sum(c["sdram_bytes"] for c in chips),
        "sdram_max": max((c["sdram_bytes"] for c in chips), default=0),
    }


def map_network(name: str, seed: int, solver: str | None = None) -> tuple[dict[str, int], float, float]:
    """(summary, wall seconds, CPU seconds of this process) of compiling network ``name``."""
    net = {"a": net_a, "b": net_b, "c": net_c}[name](seed)
    t0, c0 = time.perf_counter(), time.process_time()
    binary = compile_network(net, "spinnaker", settings={"partition.solver": solver} if solver else None)
    return summary(binary), time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=("a", "b", "c"))
    ap.add_argument("--solver", choices=("cpsat", "ffd", "first-fit"),
                    help="partitioner (default: the target's pipeline, i.e. cpsat)")
    args = ap.parse_args(argv)
    names = [args.only] if args.only else ["a", "b", "c"]
    results = {}
    for name in names:
        s, secs, cpu = map_network(name, args.seed, args.solver)
        results[name] = (s, secs)
        cores, entries = PACMAN[name]
        print(f"({name}) cores {s['cores']} (PACMAN {cores}), chips {s['chips']} ({s['routing_chips']} with router "
              f"tables); router entries: max per chip {s['entries_max']}, total {s['entries_total']} before "
              f"compression ({s['raw_total']} one per source and chip, default routes left out), max "
              f"{s['compressed_max']}, total {s['compressed_total']} after (target <= {entries}); SDRAM "
              f"{s['sdram_total'] / 2**20:.1f} MiB (largest chip {s['sdram_max'] / 2**20:.1f} MiB); "
              f"compiled in {secs:.2f} s (CPU {cpu:.2f} s)")
    fmt = (lambda key: "/".join(str(results[n][0][key]) if n in results else "-" for n in "abc"))
    t_b = f"{results['b'][1]:.2f}" if "b" in results else "-"
    print(f"cores={fmt('cores')} router_entries={fmt('compressed_total')} compile_s_b={t_b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
