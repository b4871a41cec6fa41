"""Compile and load cost against network size: layered networks of 10^6, 3x10^6 and 10^7 synapses.

    python bench/compile_scale.py                        # random and local, 1M, 3M, 10M synapses
    python bench/compile_scale.py --synapses 1e6,3e6     # a subset
    python bench/compile_scale.py --issue-case           # also the issue's 10,000 -> 10,000 at 10 %

Networks (bench/netgen.py: ``layered_fanin``): an input layer and layers of ``width`` neurons,
every neuron with 100 distinct sources in the previous layer, drawn over the whole layer (random)
or from the 200 nearest (local); synapses = layers x width x 100. Two families:

- ``width`` (the issue's): 4 layers, width = synapses / 400 (2,500, 7,500, 25,000 neurons). Its
  random networks change character with size: at 2,500 a layer's whole source layer fits one
  core's input axons, past 4,096 every slice is input- and output-axon bound (and nearly every
  synapse gets an axon of its own), so work per synapse grows;
- ``depth``: width 10,000 (input-axon bound at every size), 1, 3 and 10 layers: the same structure
  repeated, where linear cost shows as an exponent of 1.

Target: the Loihi-like chip with 64 chips (8,192 cores), "enough chips" for every case.

Each case runs in its own process (so that peak memory is its own), with the memory setting the
``nmc`` command uses (nmc/memtune.py), ``--repeat`` times (default 2;
the fastest by CPU time is shown: the first pays for imports, OR-tools' among them, and the
machine is shared):

1. compile: the target's default pipeline (verify ... partition ... allocate, ``cpsat`` with its
   default budget), the backend and the binary's encoding; wall and CPU seconds per step; peak
   resident memory of the process (the generated IR included) and the binary's bytes per synapse;
2. load: a fresh process reads the binary file and builds the interpreter; wall seconds and peak
   resident memory, also per synapse (above the same process's memory before loading).

The growth exponent is the least-squares slope of log(CPU time) against log(synapses) over the
sizes run, per family and connectivity; 1 is linear. CPU time, not wall time: the machine is
shared, and wall time is also printed. The last line is
``compile_exponent=<worst> compile_exponent_without_search=<worst> load_exponent=<worst>
compile_10M_max_s=<slowest first 10^7-synapse compile, wall>``,
the exponents over the depth family (the width family's when depth is not run). The CP-SAT search
is budgeted (``--partition-time``, 10 deterministic seconds by default): it grows with the network
until it reaches the budget, then stays; the exponent without it is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FAN_IN = 100
LAYERS = 4
DEPTH_WIDTH = 10_000
CHIPS = 64

_COMPILE = r"""
import copy, json, re, resource, sys, time
from nmc.memtune import keep_freed_memory
keep_freed_memory()  # as the nmc command does
sys.path.insert(0, {here!r})
from netgen import layered_fanin
from nmc.backend import emit_binary
from nmc.binary.format import write_binary
from nmc.passes import PassContext, parse_pipeline
from nmc.passes.registry import get_pass
from nmc.target import Target, load_target
width, local, chips, out, extra, repeat = {width}, {local}, {chips}, {out!r}, {extra!r}, {repeat}
base = load_target("loihi"); data = copy.deepcopy(base.data); data["chip"]["chips"] = chips
tgt = Target(base.name, data)
best = None
for run in range(repeat):
    net = layered_fanin(width, layers={layers}, fan_in={fan_in}, local=local) if extra is None else extra_net()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss if run == 0 else rss0
    ctx = PassContext(tgt)
    steps = {{}}
    w0, c0 = time.perf_counter(), time.process_time()
    for step in parse_pipeline(",".join(tgt.default_pipeline)):
        w = time.perf_counter()
        net = get_pass(step.name).fn(net, ctx, **step.options)
        steps[step.name] = steps.get(step.name, 0.0) + time.perf_counter() - w
    w = time.perf_counter()
    binary = emit_binary(net, tgt)
    steps["backend"] = time.perf_counter() - w
    w = time.perf_counter()
    size = len(write_binary(binary, out))
    steps["write"] = time.perf_counter() - w
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    summary = net.attrs.get("partition", {{}})
    search = [float(m.group(1)) for name, lines in ctx.reports if name == "partition" for line in lines
              for m in [re.search(r"CPU (\d+\.\d+) s", line)] if m]
    n_syn = sum(p.n_synapses for p in net.projections)
    res = {{"wall": wall, "cpu": cpu, "steps": steps, "bytes": size, "synapses": n_syn, "rss0": rss0,
            "cores": net.attrs.get("cores_used"), "cores_lb": summary.get("cores_lb"),
            "status": summary.get("status"), "search_cpu": sum(search), "first_wall": wall}}
    if best is None or cpu < best["cpu"]:
        best = dict(res, first_wall=best["first_wall"] if best else wall)
    del net, binary, ctx
best["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(best))
"""

_ISSUE_NET = r"""
def extra_net():
    import numpy as np
    from netgen import LIF, distinct_sources
    from nmc.ir.network import Network, Population, Projection
    rng = np.random.default_rng(0)
    n = 10_000
    net = Network("issue_10k_10pct", {"seed": 0})
    net.add_population(Population("in", n, "input", role="input"))
    net.add_population(Population("out", n, "cuba_lif", params=dict(LIF), role="output"))
    src = distinct_sources(rng, n, n // 10, n)
    pre, post = src.reshape(-1), np.repeat(np.arange(n), n // 10)
    order = np.lexsort((post, pre))
    w = rng.integers(-8, 9, size=pre.size)
    net.add_projection(Projection("in->out", "in", "out", "sparse", w[order], pre_index=pre[order], post_index=post[order]))
    return net
"""

_LOAD = r"""
import json, resource, sys, time
from nmc.memtune import keep_freed_memory
keep_freed_memory()  # as the nmc command does
from nmc.binary.format import read_binary
from nmc.sim import interpreter_for
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
best = None
for _ in range({repeat}):
    w, c = time.perf_counter(), time.process_time()
    chip = interpreter_for(read_binary({path!r}))
    res = (time.perf_counter() - w, time.process_time() - c)
    del chip
    best = res if best is None or res[1] < best[1] else best
print(json.dumps({{"wall": best[0], "cpu": best[1], "rss0": rss0,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def _child(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; its last stdout line is JSON. A failure (a network
    the compiler refuses) comes back as {"error": <its last line>}."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no message)"]
        return {"error": lines[-1][:300]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def exponent(sizes: list[float], times: list[float]) -> float:
    """Least-squares slope of log(time) on log(size)."""
    if len(sizes) < 2:
        return float("nan")
    return float(np.polyfit(np.log(sizes), np.log(times), 1)[0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synapses", default="1e6,3e6,1e7", help="synapse counts, comma-separated")
    ap.add_argument("--kinds", default="random,local")
    ap.add_argument("--families", default="width,depth", help="width (4 layers, width grows), depth (width 10,000)")
    ap.add_argument("--issue-case", action="store_true", help="also the issue's 10,000 -> 10,000 at 10 %")
    ap.add_argument("--repeat", type=int, default=2,
                    help="compile and load each case this many times in its process; the fastest (CPU) counts")
    args = ap.parse_args(argv)
    counts = [int(float(x)) for x in args.synapses.split(",")]
    cases = [(fam, kind, n) for fam in args.families.split(",") for kind in args.kinds.split(",") for n in counts]
    header = (f"{'case':<14}{'synapses':>10}{'cores':>7}{'lb':>6} | {'compile s':>9}{'cpu s':>7}{'partition':>10}"
              f"{'backend':>8}{'B/syn':>7}{'MB':>7} | {'load s':>7}{'cpu s':>7}{'MB':>7}{'B/syn':>7}")
    print(header)
    print("-" * len(header))
    rows: dict[str, list[tuple[int, float, float]]] = {}
    worst_10m = 0.0
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        todo = [(f, k, n, None) for f, k, n in cases]
        todo += [("", "issue 10k10%", 10_000_000, "issue")] if args.issue_case else []
        for fam, kind, n, extra in todo:
            layers = LAYERS if fam == "width" else max(1, n // (DEPTH_WIDTH * FAN_IN))
            width = n // (LAYERS * FAN_IN) if fam == "width" else DEPTH_WIDTH
            out = str(Path(tmp) / f"{fam}_{kind}_{n}.nmcb".replace(" ", "_"))
            code = _COMPILE.format(here=str(HERE), width=width, local=kind == "local", chips=CHIPS, out=out,
                                   extra=extra, layers=layers, fan_in=FAN_IN, repeat=max(1, args.repeat))
            name = f"{fam} {kind}".strip()
            if extra:
                code = code.replace("from netgen import layered_fanin", "from netgen import layered_fanin\n" + _ISSUE_NET)
            c = _child(code)
            if "error" in c:
                print(f"{name:<14}{n:>10}  compile failed: {c['error']}", flush=True)
                failed = True
                continue
            ld = _child(_LOAD.format(path=out, repeat=max(1, args.repeat)))
            if "error" in ld:
                print(f"{name:<14}{n:>10}  load failed: {ld['error']}", flush=True)
                failed = True
                continue
            syn = c["synapses"]
            mb = (c["rss"] - c["rss0"]) / 1024.0
            lmb = ld["rss"] / 1024.0
            lbyte = (ld["rss"] - ld["rss0"]) * 1024.0 / syn
            st = c["steps"]
            print(f"{name:<14}{syn:>10}{c['cores'] or 0:>7}{c['cores_lb'] or 0:>6} | {c['wall']:>9.1f}{c['cpu']:>7.1f}"
                  f"{st.get('partition', 0):>10.1f}{st.get('backend', 0):>8.1f}{c['bytes'] / syn:>7.1f}{mb:>7.0f} | "
                  f"{ld['wall']:>7.1f}{ld['cpu']:>7.1f}{lmb:>7.0f}{lbyte:>7.1f}", flush=True)
            if extra is None:
                rows.setdefault(name, []).append((syn, c["cpu"], ld["cpu"], c["cpu"] - c.get("search_cpu", 0.0)))
            if syn >= 9_000_000:
                worst_10m = max(worst_10m, c["first_wall"])
            steps = ", ".join(f"{k} {v:.1f}" for k, v in st.items() if v >= 0.05)
            print(f"{'':<14}  steps (wall s): {steps}; partition: {c['status']}, CP-SAT search "
                  f"{c.get('search_cpu', 0.0):.1f} CPU s; first compile {c['first_wall']:.1f} s wall")
    print("(compile MB: peak resident memory above the generated IR; load MB: peak resident memory of the "
          "loading process, B/syn above its memory before loading)")
    worst_c = worst_l = worst_x = float("-inf")
    for name, r in rows.items():
        ec = exponent([x[0] for x in r], [x[1] for x in r])
        el = exponent([x[0] for x in r], [x[2] for x in r])
        ex = exponent([x[0] for x in r], [x[3] for x in r])
        print(f"growth exponent {name}: compile {ec:.2f} (without the budgeted CP-SAT search {ex:.2f}), "
              f"load {el:.2f} (CPU seconds against synapses)")
        if name.startswith("depth") or "depth" not in args.families:
            worst_c, worst_l, worst_x = max(worst_c, ec), max(worst_l, el), max(worst_x, ex)
    print(f"compile_exponent={worst_c:.2f} compile_exponent_without_search={worst_x:.2f} load_exponent={worst_l:.2f} "
          f"compile_10M_max_s={worst_10m:.1f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
