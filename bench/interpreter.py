"""Speed benchmark of the Loihi interpreter against a plain dense numpy transcription.

Network (the issue's benchmark): ``n_in`` Poisson input ports (rate ``rate``, seeded) -> one dense
projection of mixed-sign 8-bit weights (even mantissas in [-256, 254], exponent 0, seeded) ->
``n_out`` CUBA LIF neurons, run for ``steps`` steps.

The interpreter path goes through the whole tool chain: IR -> ``compile_network`` -> bytes ->
``decode_binary`` -> ``LoihiInterpreter.run``. The baseline is a dense matrix-vector step (int64
``W.T @ s`` every step) with the same equations (docs/loihi-facts.md §1.2, nmc widths §1.4). Both
must produce the same spike raster (exit status 1 otherwise). Timing is the best of ``--repeats``
runs (``time.perf_counter``); the interpreter is constructed outside the timed region, as a chip is
configured once and then run.

The last line of the output is machine-readable::

    speedup_vs_dense_numpy=<dense time / interpreter time> events_per_s=<synaptic events / interpreter s>

Run: ``python bench/interpreter.py`` (``--help`` for the sizes).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from nmc.binary.format import decode_binary, encode_binary
from nmc.driver import compile_network
from nmc.ir.network import Network, Population, Probe, Projection
from nmc.sim.loihi import LoihiInterpreter, RunResult


@dataclass(frozen=True)
class LifParams:
    """CUBA LIF registers shared by all benchmark neurons (docs/loihi-facts.md §1.1 units).

    Chosen so that 1000 inputs at 5 % through zero-mean 8-bit weights make the neurons fire at a
    moderate rate: the summed input has a standard deviation of roughly 64 * 1050 per step, u
    integrates it over ~4 steps (decay 1025/4096) and v over ~16 (256/4096). With seed 0 the mean
    output rate is about 5.6 % of steps (per neuron 0 ... 34 %, since each neuron's weight sum
    gives it its own mean drive).
    """

    decay_u: int = 1024
    decay_v: int = 256
    threshold: int = 4000
    refractory: int = 2
    bias: int = 0


# Widths of the nmc choice (docs/loihi-facts.md §1.4; targets/loihi.toml neuron.*).
_INPUT_BITS = 22
_CURRENT_BITS = 24
_V_MAX = (1 << 23) - 1


# ---------------------------------------------------------------------------------------------
# Problem construction
# ---------------------------------------------------------------------------------------------
def make_weights(n_in: int, n_out: int, seed: int) -> np.ndarray:
    """(n_in, n_out) int64 mixed-sign 8-bit mantissas: even values in [-256, 254]."""
    rng = np.random.default_rng(seed)
    return 2 * rng.integers(-128, 128, size=(n_in, n_out), dtype=np.int64)


def make_inputs(steps: int, n_in: int, rate: float, seed: int) -> np.ndarray:
    """(steps, n_in) uint8 Poisson (Bernoulli per step) spike trains."""
    rng = np.random.default_rng(seed + 1)  # a stream independent of the weights'
    return (rng.random((steps, n_in)) < rate).astype(np.uint8)


def build_network(weights: np.ndarray, lif: LifParams) -> Network:
    """Input port ``x`` -> dense projection -> output population ``y``.

    The weights are exactly representable with exponent 0 (they are the mantissas), so
    ``quantize`` must leave them unchanged; the bench compiles strictly to enforce that.
    """
    n_in, n_out = weights.shape
    net = Network("bench_interpreter")
    net.add_population(Population("x", n_in, "input", role="input"))
    net.add_population(Population("y", n_out, "cuba_lif", {
        "decay_u": lif.decay_u, "decay_v": lif.decay_v, "threshold": lif.threshold,
        "refractory": lif.refractory, "bias": lif.bias}, role="output"))
    net.add_projection(Projection("x->y", "x", "y", "dense", weights.astype(np.float64),
                                  sign="mixed", exponent=0))
    net.add_probe(Probe("y.spikes", "y", "spikes"))
    return net


def compile_to_bytes(weights: np.ndarray, lif: LifParams) -> bytes:
    """IR -> passes -> backend -> the bytes of the binary file."""
    return encode_binary(compile_network(build_network(weights, lif), "loihi", strict=True))


# ---------------------------------------------------------------------------------------------
# The two implementations
# ---------------------------------------------------------------------------------------------
def load_interpreter(data: bytes) -> LoihiInterpreter:
    """Decode the binary (as the chip loader would) and configure an interpreter from it."""
    return LoihiInterpreter(decode_binary(data))


def run_interpreter(chip: LoihiInterpreter, inputs: np.ndarray) -> tuple[np.ndarray, RunResult]:
    """Run from the zero state; returns the (steps, n_out) bool raster and the full result."""
    chip.reset()
    result = chip.run(inputs.shape[0], inputs={"x": inputs})
    return np.asarray(result.spikes["y"], dtype=bool), result


def _wrap(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap to ``bits`` bits."""
    half = 1 << (bits - 1)
    return (x + half) % (1 << bits) - half


def _decay(x: np.ndarray, k: int) -> np.ndarray:
    """sgn(x) * ((|x| * (4096 - k)) >> 12)."""
    return np.sign(x) * ((np.abs(x) * (4096 - k)) >> 12)


def run_dense_numpy(weights: np.ndarray, lif: LifParams, inputs: np.ndarray) -> np.ndarray:
    """Dense transcription: every step multiplies the whole matrix by the previous step's input.

    An input spike at step t reaches u at t + 1 (docs/loihi-facts.md §1.5), so step t reads
    inputs[t - 1].
    """
    steps, _ = inputs.shape
    n_out = weights.shape[1]
    wt = np.ascontiguousarray(weights.T.astype(np.int64))  # (n_out, n_in): row-major mat-vec
    s_in = inputs.astype(np.int64)
    u = np.zeros(n_out, dtype=np.int64)
    v = np.zeros(n_out, dtype=np.int64)
    ref = np.zeros(n_out, dtype=np.int64)
    theta = lif.threshold << 6
    raster = np.zeros((steps, n_out), dtype=bool)
    for t in range(steps):
        a = 64 * (wt @ s_in[t - 1]) if t > 0 else np.zeros(n_out, dtype=np.int64)
        u = _wrap(_decay(u, lif.decay_u + 1) + _wrap(a, _INPUT_BITS), _CURRENT_BITS)
        v = np.clip(_decay(v, lif.decay_v) + u + lif.bias, -_V_MAX, _V_MAX)
        v[ref > 0] = 0
        fired = v > theta
        v[fired] = 0
        ref[fired] = lif.refractory
        ref = np.maximum(ref - 1, 0)
        raster[t] = fired
    return raster


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Best wall-clock time of ``repeats`` calls, and the last call's return value."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=1000, help="input ports (default 1000)")
    ap.add_argument("--neurons", type=int, default=1000, help="LIF neurons (default 1000)")
    ap.add_argument("--steps", type=int, default=1000, help="timesteps (default 1000)")
    ap.add_argument("--rate", type=float, default=0.05, help="input spike probability per step (default 0.05)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats; the best is reported (default 7)")
    args = ap.parse_args(argv)

    lif = LifParams()
    weights = make_weights(args.inputs, args.neurons, args.seed)
    inputs = make_inputs(args.steps, args.inputs, args.rate, args.seed)

    t0 = time.perf_counter()
    data = compile_to_bytes(weights, lif)
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    chip = load_interpreter(data)
    t_load = time.perf_counter() - t0
    n_cores = int(chip.binary.meta["n_cores"])

    t_interp, (raster_i, result) = best_time(lambda: run_interpreter(chip, inputs), args.repeats)
    t_dense, raster_d = best_time(lambda: run_dense_numpy(weights, lif, inputs), args.repeats)

    # Synaptic events: every input spike touches all n_out synapses of its axon. The interpreter
    # does that work in the step the spike is sent (the result waits in the delay buffer), so the
    # spikes of the last step count although they would only reach u after the run.
    events_expected = int(inputs.sum()) * args.neurons
    events = int(result.counters["synaptic_ops"])
    rate_out = float(raster_i.mean())

    print(f"network: {args.inputs} Poisson inputs (rate {args.rate}) -> dense {args.inputs}x{args.neurons} "
          f"mixed 8-bit -> {args.neurons} LIF, {args.steps} steps, seed {args.seed}")
    print(f"compile: {t_compile:.3f} s, binary {len(data)} bytes, {n_cores} core(s) used, load {t_load:.3f} s")
    print(f"output rate: {rate_out:.4f} spikes/neuron/step ({int(raster_i.sum())} spikes)")
    print(f"synaptic events: {events} (expected {events_expected})")
    print(f"interpreter : {t_interp:.4f} s  {args.steps / t_interp:10.1f} steps/s  (best of {args.repeats})")
    print(f"dense numpy : {t_dense:.4f} s  {args.steps / t_dense:10.1f} steps/s  (best of {args.repeats})")

    if not np.array_equal(raster_i, raster_d):
        t, i = np.argwhere(raster_i != raster_d)[0]
        print(f"MISMATCH: spike rasters differ in {int((raster_i != raster_d).sum())} places; first at step {t} "
              f"neuron {i} (interpreter {raster_i[t, i]}, dense numpy {raster_d[t, i]})", file=sys.stderr)
        return 1
    if events != events_expected:
        print(f"MISMATCH: interpreter counted {events} synaptic events, expected {events_expected}", file=sys.stderr)
        return 1
    print("spike rasters identical")
    print(f"speedup_vs_dense_numpy={t_dense / t_interp:.2f} events_per_s={events / t_interp:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
