"""Speed benchmark of the Loihi interpreter against numpy baselines that compute the same spikes.

Two networks, each: ``n_in`` Poisson input ports (rate ``rate``, seeded) -> one projection of
mixed-sign 8-bit weights (even mantissas in [-256, 254], exponent 0, seeded) -> ``n_out`` CUBA
LIF neurons, ``steps`` steps:

* **sparse** (printed first): 10,000 inputs at 1 % -> 10,000 LIF, each synapse present with
  probability 10 % (about 10 million synapses, compiled for a board of several chips);
* **P1** (the last line): 1000 inputs at 5 % -> dense 1000 x 1000 -> 1000 LIF, 1000 steps.

The interpreter path goes through the whole tool chain: IR -> ``compile_network`` -> bytes ->
``decode_binary`` -> ``LoihiInterpreter.run``; the interpreter is configured outside the timed
region, as a chip is configured once and then run. It runs its compiled path (numba, the
``fast`` extra; ``--engine numpy`` for the numpy path): the output says which path ran and what
its first run cost (importing numba, loading or compiling the kernel, building its tables), which
the timed runs do not include; the numpy path is timed beside it for reference. Against it, in
the same process and on the same inputs, numpy baselines that differ only in how a step's
synaptic input is delivered:

* ``dense int64``: ``64 * (W.T @ s)`` in int64 every step (numpy's integer product, no BLAS);
* ``dense float32 BLAS``: the same product in float32 through BLAS;
* ``event rows``: the sum of the rows of W (float32, dense rows) of the inputs that spiked, one
  BLAS vector-matrix product over the gathered rows;
* ``event CSR``: the same sum from compressed rows (only the synapses that exist), gathered and
  added with ``np.bincount``: what a user would write for a sparse matrix.

Every baseline shares one neuron update, written as well as numpy allows (:func:`run_baseline`:
float64 registers holding integers, decays as multiply-and-truncate, exact; overflow checks only
where a bound says they can trigger), and is exact: float32 sums are used only while the number
of spiking inputs times the largest weight stays below 2^24, float64 otherwise. All must produce
the interpreter's spike raster bit for bit, and the interpreter must count one synaptic event per
(input spike, synapse): otherwise the bench prints ``MISMATCH`` and exits with status 1. The
time of the shared neuron update alone (no input) is printed too: no baseline can go below it.

Timing: ``time.perf_counter``, best of ``--repeats`` runs of each implementation, more while
its runs add up to less than ``--min-time`` seconds (short runs are repeated until then: on a
shared machine the best of many is nearer the uncontended time), and an implementation stops
repeating once its runs add up to ``--budget`` seconds (the dense products of the sparse network
take seconds per run; the number of runs is printed). The same rule for every implementation.
BLAS runs on one thread for everyone (the interpreter holds itself to one thread as well).

Output: per network the problem, compile and load times, output rate, synaptic events, every
implementation's time, and a summary line; the **last line** is P1's::

    speedup_vs_best_numpy=<x> speedup_vs_dense_int64=<y> events_per_s=<z>

``speedup_vs_best_numpy``: the fastest baseline's time / the interpreter's; ``events_per_s``:
synaptic events per second of interpreter time. The sparse network's line, above, starts with
``sparse:``.

Run: ``python bench/interpreter.py`` (``--help`` for the sizes; ``--networks P1`` skips the
sparse network, whose compile takes minutes and several GB of memory).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from nmc.binary.format import decode_binary, encode_binary
from nmc.driver import compile_network
from nmc.ir.network import Network, Population, Probe, Projection
from nmc.sim.loihi import LoihiInterpreter, RunResult
from nmc.sim.loihi_fast import numba_available
from nmc.target import Target, load_target


@dataclass(frozen=True)
class LifParams:
    """CUBA LIF registers shared by all benchmark neurons (docs/loihi-facts.md §1.1 units).

    Chosen so that 1000 inputs at 5 % through zero-mean 8-bit weights make the neurons fire at a
    moderate rate: the summed input has a standard deviation of roughly 64 * 1050 per step, u
    integrates it over ~4 steps (decay 1025/4096) and v over ~16 (256/4096). With seed 0 the mean
    output rate is about 5.6 % of steps (per neuron 0 ... 34 %, since each neuron's weight sum
    gives it its own mean drive). The sparse network's neurons see about 100 inputs per step,
    twice P1's 50, and fire at about 2 %.
    """

    decay_u: int = 1024
    decay_v: int = 256
    threshold: int = 4000
    refractory: int = 2
    bias: int = 0


@dataclass(frozen=True)
class Problem:
    """One benchmark network: sizes, input rate, synapse probability, steps."""

    label: str
    n_in: int
    n_out: int
    rate: float
    connectivity: float   # probability that a synapse exists (1.0: dense)
    steps: int

    def describe(self, seed: int) -> str:
        conn = (f"dense {self.n_in}x{self.n_out}" if self.connectivity >= 1.0
                else f"{100 * self.connectivity:g} % random connectivity ({self.n_in}x{self.n_out})")
        return (f"network {self.label}: {self.n_in} Poisson inputs (rate {self.rate:g}) -> {conn}, mixed 8-bit "
                f"-> {self.n_out} LIF, {self.steps} steps, seed {seed}")


# Widths of the nmc choice (docs/loihi-facts.md §1.4; targets/loihi.toml neuron.*).
_INPUT_BITS = 22
_CURRENT_BITS = 24
_V_MAX = (1 << 23) - 1
_F32_EXACT = 1 << 24        # integers below this are exact in float32
_CORES_PER_CHIP = 128


# ---------------------------------------------------------------------------------------------
# Problem construction
# ---------------------------------------------------------------------------------------------
def make_weights(n_in: int, n_out: int, seed: int, connectivity: float = 1.0) -> np.ndarray:
    """(n_in, n_out) int64 mixed-sign 8-bit mantissas: even values in [-256, 254]; with
    ``connectivity`` < 1 each synapse exists with that probability (absent ones are 0). Drawn in
    blocks of rows so that a 10,000 x 10,000 matrix needs no float64 temporary of its size."""
    rng = np.random.default_rng(seed)
    w = np.empty((n_in, n_out), dtype=np.int64)
    block = max(1, 4_000_000 // max(n_out, 1))
    for lo in range(0, n_in, block):
        rows = min(block, n_in - lo)
        w[lo:lo + rows] = 2 * rng.integers(-128, 128, size=(rows, n_out), dtype=np.int64)
        if connectivity < 1.0:
            w[lo:lo + rows] *= rng.random((rows, n_out), dtype=np.float32) < connectivity
    return w


def make_inputs(steps: int, n_in: int, rate: float, seed: int) -> np.ndarray:
    """(steps, n_in) uint8 Poisson (Bernoulli per step) spike trains."""
    rng = np.random.default_rng(seed + 1)  # a stream independent of the weights'
    return (rng.random((steps, n_in), dtype=np.float32) < rate).astype(np.uint8)


def build_network(weights: np.ndarray, lif: LifParams, sparse: bool = False) -> Network:
    """Input port ``x`` -> one projection -> output population ``y`` (dense, or ``sparse``: only
    the non-zero weights become synapses).

    The weights are exactly representable with exponent 0 (they are the mantissas), so
    ``quantize`` must leave them unchanged; the bench compiles strictly to enforce that.
    """
    n_in, n_out = weights.shape
    net = Network("bench_interpreter")
    net.add_population(Population("x", n_in, "input", role="input"))
    net.add_population(Population("y", n_out, "cuba_lif", {
        "decay_u": lif.decay_u, "decay_v": lif.decay_v, "threshold": lif.threshold,
        "refractory": lif.refractory, "bias": lif.bias}, role="output"))
    if sparse:
        pre, post = np.nonzero(weights)
        net.add_projection(Projection("x->y", "x", "y", "sparse", weights[pre, post].astype(np.float64),
                                      pre_index=pre, post_index=post, sign="mixed", exponent=0))
    else:
        net.add_projection(Projection("x->y", "x", "y", "dense", weights.astype(np.float64),
                                      sign="mixed", exponent=0))
    net.add_probe(Probe("y.spikes", "y", "spikes"))
    return net


def board(chips: int) -> Target:
    """The loihi target with ``chips`` chips on the board (the sparse network needs more than one)."""
    base = load_target("loihi")
    if chips == 1:
        return base
    data = copy.deepcopy(base.data)
    data["chip"]["chips"] = chips
    return Target(name=base.name, data=data, source=f"{base.source} (chips = {chips})")


def compile_to_bytes(weights: np.ndarray, lif: LifParams, sparse: bool = False, chips: int = 1) -> bytes:
    """IR -> passes -> backend -> the bytes of the binary file."""
    net = build_network(weights, lif, sparse)
    return encode_binary(compile_network(net, board(chips), strict=True))


# ---------------------------------------------------------------------------------------------
# The interpreter
# ---------------------------------------------------------------------------------------------
def load_interpreter(data: bytes, engine: str | None = None) -> LoihiInterpreter:
    """Decode the binary (as the chip loader would) and configure an interpreter from it;
    ``engine``: the interpreter's path ("compiled", "numpy", "auto"; None: $NMC_INTERPRETER)."""
    return LoihiInterpreter(decode_binary(data), engine=engine)


def default_engine() -> str:
    """The compiled path when numba is installed, else the numpy path."""
    return "compiled" if numba_available() else "numpy"


def run_interpreter(chip: LoihiInterpreter, inputs: np.ndarray) -> tuple[np.ndarray, RunResult]:
    """Run from the zero state; returns the (steps, n_out) bool raster and the full result."""
    chip.reset()
    result = chip.run(inputs.shape[0], inputs={"x": inputs})
    return np.asarray(result.spikes["y"], dtype=bool), result


# ---------------------------------------------------------------------------------------------
# The baselines: one neuron update, four ways to deliver the input
# ---------------------------------------------------------------------------------------------
# A delivery: called once per run with the inputs (inside the timed region), returns the per-step
# function giving step t's synaptic input (float array, 64 * sum of weights) and a bound on its |values|.
Delivery = Callable[[np.ndarray], Callable[[int], tuple[np.ndarray, float]]]


def run_baseline(deliver: Delivery, lif: LifParams, n_out: int, inputs: np.ndarray) -> np.ndarray:
    """The bench's LIF equations (docs/loihi-facts.md §1.2, nmc widths §1.4) for ``n_out`` neurons, with the
    synaptic input of ``deliver``; returns the (steps, n_out) spike raster.

    Registers are float64 holding integers: |u|, |v| < 2^24 and the decay factors are below 4096,
    so x * (keep / 4096) is exact and trunc() is the chip's shift toward zero. An input spike at
    step t reaches u at t + 1 (docs/loihi-facts.md §1.5): step t reads the input of spikes sent at t - 1. The
    wraps of a and u are applied only when a bound on them says they could happen (never, for
    these networks); v is clipped every step."""
    steps = inputs.shape[0]
    step_input = deliver(inputs)
    keep_u = (4096 - (lif.decay_u + 1)) / 4096.0
    keep_v = (4096 - lif.decay_v) / 4096.0
    a_half, u_half = float(1 << (_INPUT_BITS - 1)), float(1 << (_CURRENT_BITS - 1))
    theta = float(lif.threshold << 6)
    u = np.zeros(n_out)
    v = np.zeros(n_out)
    ready = np.zeros(n_out, dtype=np.int64)   # a neuron integrates again from step `ready` on
    raster = np.zeros((steps, n_out), dtype=bool)
    u_bound = 0.0
    for t in range(steps):
        if t:
            a, a_bound = step_input(t - 1)
            if a_bound >= a_half:
                a = _wrap(a, _INPUT_BITS)
                a_bound = a_half
        else:
            a, a_bound = 0.0, 0.0
        u *= keep_u
        np.trunc(u, out=u)
        u += a
        u_bound = u_bound * keep_u + a_bound
        if u_bound >= u_half:
            u = _wrap(u, _CURRENT_BITS)
            u_bound = u_half
        v *= keep_v
        np.trunc(v, out=v)
        v += u
        if lif.bias:
            v += lif.bias
        np.clip(v, -_V_MAX, _V_MAX, out=v)
        v[ready > t] = 0.0
        s = raster[t]
        np.greater(v, theta, out=s)
        fired = s.nonzero()[0]
        v[fired] = 0.0
        ready[fired] = t + lif.refractory
    return raster


def _wrap(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap to ``bits`` bits (as float64 holding integers)."""
    half = 1 << (bits - 1)
    return (((np.asarray(x).astype(np.int64) + half) & ((1 << bits) - 1)) - half).astype(np.float64)


def _spike_lists(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Input ids that spike, sorted by step, and the per-step bounds into them."""
    t, i = np.nonzero(inputs)
    return i, np.searchsorted(t, np.arange(inputs.shape[0] + 1))


def dense_int64(weights: np.ndarray) -> Delivery:
    """Every step the whole int64 product 64 * (W.T @ s)."""
    wt = np.ascontiguousarray(weights.T) * 64        # (n_out, n_in): row-major matrix-vector
    w_max = float(np.abs(wt).max(initial=0))

    def prepare(inputs: np.ndarray) -> Callable[[int], tuple[np.ndarray, float]]:
        s = inputs.astype(np.int64)
        k = inputs.sum(axis=1)
        return lambda t: ((wt @ s[t]).astype(np.float64), float(k[t]) * w_max)
    return prepare


def dense_float32(weights: np.ndarray) -> Delivery:
    """Every step the whole product through BLAS: float32 while exact (spiking inputs x the
    largest |64 w| below 2^24: zeros add nothing, so every partial sum is such a sum), else float64."""
    wt32 = np.ascontiguousarray(weights.T * 64, dtype=np.float32)
    w_max = float(np.abs(wt32).max(initial=0))
    wt64: list[np.ndarray] = []

    def prepare(inputs: np.ndarray) -> Callable[[int], tuple[np.ndarray, float]]:
        s32 = inputs.astype(np.float32)
        k = inputs.sum(axis=1)

        def step(t: int) -> tuple[np.ndarray, float]:
            bound = float(k[t]) * w_max
            if bound < _F32_EXACT:
                return wt32 @ s32[t], bound
            if not wt64:
                wt64.append(wt32.astype(np.float64))
            return wt64[0] @ s32[t].astype(np.float64), bound
        return step
    return prepare


def event_rows(weights: np.ndarray) -> Delivery:
    """The rows of W (dense, float32) of the inputs that spiked, summed by one BLAS product."""
    w32 = np.ascontiguousarray(weights * 64, dtype=np.float32)
    w_max = float(np.abs(w32).max(initial=0))
    ones = np.ones(weights.shape[0], dtype=np.float32)
    zero = np.zeros(weights.shape[1])

    def prepare(inputs: np.ndarray) -> Callable[[int], tuple[np.ndarray, float]]:
        ids, bounds = _spike_lists(inputs)

        def step(t: int) -> tuple[np.ndarray, float]:
            rows = ids[bounds[t]:bounds[t + 1]]
            bound = rows.size * w_max
            if rows.size == 0:
                return zero, 0.0
            if bound < _F32_EXACT:
                return ones[:rows.size] @ w32[rows], bound
            return w32[rows].sum(axis=0, dtype=np.float64), bound
        return step
    return prepare


def event_csr(weights: np.ndarray) -> Delivery:
    """The same sum from compressed rows: the synapses of the spiking inputs, added into the
    neurons with ``np.bincount`` (float64 sums, exact)."""
    n_out = weights.shape[1]
    rows, cols = np.nonzero(weights)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=weights.shape[0]))]).astype(np.int64)
    indices = cols.astype(np.intp)
    data = (weights[rows, cols] * 64).astype(np.float64)
    w_max = float(np.abs(data).max(initial=0))

    def prepare(inputs: np.ndarray) -> Callable[[int], tuple[np.ndarray, float]]:
        ids, bounds = _spike_lists(inputs)

        def step(t: int) -> tuple[np.ndarray, float]:
            src = ids[bounds[t]:bounds[t + 1]]
            starts = indptr[src]
            lens = indptr[src + 1] - starts
            # Concatenated ranges [start, start + len) of every spiking row.
            pos = np.arange(int(lens.sum())) + np.repeat(starts - (np.cumsum(lens) - lens), lens)
            return np.bincount(indices[pos], weights=data[pos], minlength=n_out), src.size * w_max
        return step
    return prepare


BASELINES: dict[str, Callable[[np.ndarray], Delivery]] = {
    "dense int64": dense_int64,
    "dense float32 BLAS": dense_float32,
    "event rows (float32 BLAS)": event_rows,
    "event CSR (bincount)": event_csr,
}


def no_input(n_out: int) -> Delivery:
    """No synaptic input: the neuron update alone, the floor under every baseline."""
    zero = np.zeros(n_out)
    return lambda inputs: (lambda t: (zero, 0.0))


def run_dense_numpy(weights: np.ndarray, lif: LifParams, inputs: np.ndarray) -> np.ndarray:
    """The int64 dense baseline on its own (kept for the smoke test and for reading)."""
    return run_baseline(dense_int64(weights), lif, weights.shape[1], inputs)


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------
def best_time(fn: Callable[[], object], repeats: int, budget: float = math.inf,
              min_time: float = 0.0) -> tuple[float, object, int]:
    """Best wall-clock time of calls to ``fn``, the last call's return value and the number of
    calls: at least one; up to ``repeats`` while they add up to less than ``budget`` seconds; and
    more while they add up to less than ``min_time`` (as ``timeit`` autoranges: on a shared
    machine the best of many short calls is nearer the uncontended time; every implementation
    is timed by the same rule)."""
    best, out, spent, n = math.inf, None, 0.0, 0
    while n == 0 or (spent < budget and (n < repeats or spent < min_time)):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best, spent, n = min(best, dt), spent + dt, n + 1
    return best, out, n


@dataclass
class Timing:
    name: str
    seconds: float
    runs: int


def bench_network(p: Problem, lif: LifParams, seed: int, repeats: int, budget: float,
                  cache: Path | None, out: Callable[[str], None],
                  engine: str = "compiled", min_time: float = 0.0) -> tuple[Timing, list[Timing], int] | None:
    """Compile, run and time one network; returns (interpreter, baselines, synaptic events), or
    None after printing a MISMATCH to stderr. ``engine``: the interpreter's path; when it is the
    compiled one, the numpy path is timed too (for reference, not in the summary)."""
    weights = make_weights(p.n_in, p.n_out, seed, p.connectivity)
    inputs = make_inputs(p.steps, p.n_in, p.rate, seed)
    sparse = p.connectivity < 1.0
    data, t_compile, chips = _compiled(weights, lif, sparse, cache)
    t0 = time.perf_counter()
    chip = load_interpreter(data, engine)
    t_load = time.perf_counter() - t0
    n_cores = int(chip.binary.meta["n_cores"])

    out(p.describe(seed))
    need = math.ceil(n_cores / _CORES_PER_CHIP)
    board_txt = f" ({need} chips of {_CORES_PER_CHIP} cores)" if need > 1 else ""
    out(f"compile: {t_compile:.1f} s, binary {len(data)} bytes, {n_cores} core(s) used{board_txt}, load {t_load:.1f} s")
    # The first run of the compiled path also imports numba, loads (or, on a new machine,
    # compiles) the kernel and builds its tables: timed apart, then the runs are timed as usual.
    t_first, _, _ = best_time(lambda: run_interpreter(chip, inputs), 1)
    t_int, (raster, result), n_int = best_time(lambda: run_interpreter(chip, inputs), repeats, budget, min_time)
    ran = chip.last_engine
    del chip
    out(f"interpreter path: {ran}" + (" (numba)" if ran == "compiled" else "")
        + f"; first run {t_first:.2f} s" + (" (numba import, kernel load or compile, kernel tables)"
                                             if ran == "compiled" else ""))
    # Synaptic events: every input spike touches all synapses of its axon (a dense projection keeps
    # its zero weights as synapses; the sparse one has only the drawn, non-zero ones). The
    # interpreter does that work in the step the spike is sent, so the last step's spikes count.
    per_input = (weights != 0).sum(axis=1) if sparse else np.full(p.n_in, p.n_out)
    events_expected = int(inputs.sum(axis=0).astype(np.int64) @ per_input)
    events = int(result.counters["synaptic_ops"])
    out(f"output rate: {raster.mean():.4f} spikes/neuron/step ({int(raster.sum())} spikes)")
    out(f"synaptic events: {events} (expected {events_expected})")
    if events != events_expected:
        print(f"MISMATCH: interpreter counted {events} synaptic events, expected {events_expected}", file=sys.stderr)
        return None
    interp = Timing("interpreter", t_int, n_int)
    _line(out, interp, p.steps)
    if ran == "compiled":
        ref = load_interpreter(data, "numpy")
        t_ref, (ref_raster, ref_result), n_ref = best_time(lambda: run_interpreter(ref, inputs), repeats, budget,
                                                           min_time)
        del ref
        _line(out, Timing("interpreter, numpy path", t_ref, n_ref), p.steps, "  (the reference path; not a baseline)")
        # The two paths must agree on everything, not only the spikes: counters (time, energy), per core.
        same = (np.array_equal(ref_raster, raster) and ref_result.counters == result.counters
                and ref_result.overflow == result.overflow
                and all(np.array_equal(ref_result.per_core[k], result.per_core[k]) for k in ref_result.per_core))
        if not same:
            print(f"MISMATCH ({p.label}): the interpreter's numpy and compiled paths differ", file=sys.stderr)
            return None
    base: list[Timing] = []
    for name, make in BASELINES.items():
        deliver = make(weights)
        t, got, n = best_time(lambda: run_baseline(deliver, lif, p.n_out, inputs), repeats, budget, min_time)
        del deliver
        base.append(Timing(name, t, n))
        _line(out, base[-1], p.steps)
        if not np.array_equal(got, raster):
            t_bad, i_bad = np.argwhere(got != raster)[0]
            print(f"MISMATCH ({p.label}): {name} differs from the interpreter in {int((got != raster).sum())} "
                  f"places; first at step {t_bad} neuron {i_bad}", file=sys.stderr)
            return None
    floor, _, n = best_time(lambda: run_baseline(no_input(p.n_out), lif, p.n_out, inputs), repeats, budget, min_time)
    _line(out, Timing("neuron update alone", floor, n), p.steps, "  (no input: the floor under every baseline)")
    out(f"spike rasters identical ({1 + len(base)} implementations)")
    return interp, base, events


def _line(out: Callable[[str], None], t: Timing, steps: int, note: str = "") -> None:
    runs = f"best of {t.runs}" if t.runs > 1 else "1 run"
    out(f"  {t.name:<27}: {t.seconds:9.4f} s  {1e6 * t.seconds / steps:9.1f} us/step  ({runs}){note}")


def _compiled(weights: np.ndarray, lif: LifParams, sparse: bool, cache: Path | None) -> tuple[bytes, float, int]:
    """The binary's bytes, the compile time (0 when read from ``cache``) and the chips on the board.
    The board has as many chips as a first estimate of the cores needs (each core takes at most
    4096 input axons: about 10,000 * (1 - (1 - p)^k) for k neurons at connectivity p)."""
    n_in, n_out = weights.shape
    p = float(np.count_nonzero(weights)) / max(weights.size, 1)
    per_core = 1024
    while per_core > 1 and n_in * (1 - (1 - p) ** per_core) > 4096:
        per_core //= 2
    chips = max(1, math.ceil(2 * math.ceil(n_out / per_core) / _CORES_PER_CHIP))  # room for 2x the estimate
    path = None
    if cache is not None:
        key = hashlib.sha256(weights.tobytes() + repr((lif, sparse, chips)).encode()).hexdigest()[:16]
        path = cache / f"bench_interpreter_{key}.nmcb"
        if path.is_file():
            return path.read_bytes(), 0.0, chips
    t0 = time.perf_counter()
    data = compile_to_bytes(weights, lif, sparse, chips)
    t = time.perf_counter() - t0
    if path is not None:
        cache.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return data, t, chips


def summary(interp: Timing, base: list[Timing], events: int) -> str:
    best = min(base, key=lambda b: b.seconds)
    dense = next(b for b in base if b.name == "dense int64")
    return (f"speedup_vs_best_numpy={best.seconds / interp.seconds:.2f} "
            f"speedup_vs_dense_int64={dense.seconds / interp.seconds:.2f} events_per_s={events / interp.seconds:.4g}")


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", choices=("both", "P1", "sparse"), default="both")
    ap.add_argument("--inputs", type=int, default=1000, help="P1: input ports (default 1000)")
    ap.add_argument("--neurons", type=int, default=1000, help="P1: LIF neurons (default 1000)")
    ap.add_argument("--steps", type=int, default=1000, help="P1: timesteps (default 1000)")
    ap.add_argument("--rate", type=float, default=0.05, help="P1: input spike probability per step (default 0.05)")
    ap.add_argument("--sparse-inputs", type=int, default=10000, help="sparse network: inputs (default 10000)")
    ap.add_argument("--sparse-neurons", type=int, default=10000, help="sparse network: LIF neurons (default 10000)")
    ap.add_argument("--sparse-steps", type=int, default=300, help="sparse network: timesteps (default 300)")
    ap.add_argument("--sparse-rate", type=float, default=0.01, help="sparse network: input rate (default 0.01)")
    ap.add_argument("--connectivity", type=float, default=0.1, help="sparse network: synapse probability (default 0.1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats; the best is reported (default 7)")
    ap.add_argument("--min-time", type=float, default=2.0,
                    help="keep repeating an implementation until its runs took this many seconds (default 2)")
    ap.add_argument("--budget", type=float, default=20.0,
                    help="stop repeating an implementation once its runs took this many seconds (default 20)")
    ap.add_argument("--cache", type=Path, help="keep compiled binaries in this directory and reuse them")
    ap.add_argument("--engine", choices=("compiled", "numpy"), default=None,
                    help="the interpreter's path (default: compiled when numba is installed, else numpy)")
    args = ap.parse_args(argv)
    engine = args.engine or default_engine()

    lif = LifParams()
    problems = []
    if args.networks in ("both", "sparse"):
        problems.append(Problem("sparse", args.sparse_inputs, args.sparse_neurons, args.sparse_rate,
                                args.connectivity, args.sparse_steps))
    if args.networks in ("both", "P1"):
        problems.append(Problem("P1", args.inputs, args.neurons, args.rate, 1.0, args.steps))
    last = None
    with threadpool_limits(limits=1, user_api="blas"):
        for p in problems:
            got = bench_network(p, lif, args.seed, args.repeats, args.budget, args.cache, print, engine,
                                min(args.min_time, args.budget))
            if got is None:
                return 1
            print(f"fastest baseline: {min(got[1], key=lambda b: b.seconds).name}")
            if p.label == "P1":
                last = summary(*got)      # P1's figures are the last line
            else:
                print(f"{p.label}: {summary(*got)}")
            sys.stdout.flush()
    if last is not None:
        print(last)
    return 0


if __name__ == "__main__":
    sys.exit(main())
