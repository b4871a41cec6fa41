"""e-prop on the SpiNNaker-like interpreter: pattern generation (Bellec et al. 2020, Fig. S7 tutorial).

A recurrent network of 100 LIF neurons (the ``alif`` model with beta = 0, tau_m = 30 ms) driven by
100 frozen Poisson inputs at 50 Hz -- the same 1-s input pattern every trial -- learns to produce
three target signals of 1 s on three leaky readouts (tau = 30 ms). Each target is a sum of sines
of periods 1000, 500, 333 and 200 ms with random amplitudes in [0.5, 2] and phases, shifted to
start at 0 and scaled to [-1, 1] mV (Bellec et al.'s ``sum_of_sines_target``). The loss is the
squared error over the whole trial; random feedback weights carry it to the recurrent neurons; the
weights change after every trial (plain gradient descent) with the firing-rate regulariser pulling
rates to 10 Hz. Everything runs through the normal pipeline: a DSL program compiled with
``--target spinnaker``, run on the bit-exact interpreter with on-chip e-prop.

The mean squared error is measured over a whole trial with learning off, before training and after
it; the last line is ``mse_drop=<%> mse_start=<a> mse_end=<b> trials=<n> overruns=<k>
neurons_per_core=<m>``.

    nice python bench/eprop_pattern.py                  # the recorded run (bench/README.md)
    python bench/eprop_pattern.py --trials 20           # a short smoke run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nmc.backend import emit_binary  # noqa: E402
from nmc.driver import load_network, run_passes  # noqa: E402
from nmc.sim import interpreter_for  # noqa: E402
from nmc.target import load_target  # noqa: E402

N_IN, N_REC, N_OUT, T = 100, 100, 3, 1000
TAU_M = TAU_OUT = 30.0
THETA = 10.0                               # mV: v_th - v_rest
INPUT_RATE = 0.05                          # spikes per ms

SOURCE = """\
# Pattern generation with e-prop (bench/eprop_pattern.py writes this file and its weights).
network pattern
dt = 1 ms
seed 1
input x[100]                        # frozen Poisson noise, the same every trial
input target[3]                     # the three target signals (mV, data given per tick)
population r[100] : alif(tau_m = 30 ms, v_rest = 0 mV, v_th = 10 mV, t_ref = 2 ms, beta = 0 mV)
population y[3] : li(tau_m = 30 ms)
output y

rule ep = eprop(eta = {eta}, feedback = random(seed = 5), loss = mse, rate_target = 10 Hz, rate_reg = {reg})
rule ep_out = eprop(eta = {eta_out}, feedback = random(seed = 5), loss = mse, rate_target = 10 Hz, rate_reg = {reg})
connect x -> r : dense(weights = npz("w.npz", "w_in"), rule = ep)
connect r -> r : sparse(file = npz("rec.npz"), rule = ep)
connect r -> y : dense(weights = npz("w.npz", "w_out"), rule = ep_out)

schedule trial = 1000 ms
score y against target from 0 ms    # the squared error of the whole trial
probe y.v
"""


def sum_of_sines(rng: np.random.Generator) -> np.ndarray:
    """A target of T ms: sines of periods 1000, 500, 333 and 200 ms, amplitudes in [0.5, 2], random
    phases, shifted to start at 0 and scaled to [-1, 1]."""
    out = np.zeros(T)
    for period in (1000, 500, 333, 200):
        phase = rng.uniform(0, 2 * np.pi)
        cycles = T // period
        out += rng.uniform(0.5, 2.0) * np.sin(np.linspace(phase, 2 * np.pi * cycles + phase, T))
    out -= out[0]
    return out / max(np.abs(out).max(), 1e-6)


def write_program(folder: Path, eta: float, eta_out: float, reg: float, seed: int) -> Path:
    """The DSL program and its initial weights: Bellec et al.'s N(0, 1)/sqrt(fan-in) scaled to one
    step's voltage jump of about 0.1 threshold per unit (their LightLIF takes (1 - decay) of the
    input current), no autapses; readout weights scaled likewise, in nA through the gain of a
    one-step pulse (cm = 1 nF)."""
    rng = np.random.default_rng(seed)
    g = TAU_M * (1 - np.exp(-1.0 / TAU_M))          # mV per nA
    jump = (1 - np.exp(-1.0 / TAU_M)) * THETA / 0.03     # mV per unit of Bellec's weight
    w_in = rng.standard_normal((N_IN, N_REC)) / np.sqrt(N_IN) * jump / g
    w_rec = rng.standard_normal((N_REC, N_REC)) / np.sqrt(N_REC) * jump / g
    pre, post = np.nonzero(~np.eye(N_REC, dtype=bool))
    w_out = rng.standard_normal((N_REC, N_OUT)) / np.sqrt(N_REC) * (1 - np.exp(-1.0 / TAU_OUT)) / g
    np.savez(folder / "w.npz", w_in=w_in, w_out=w_out)
    np.savez(folder / "rec.npz", pre=pre, post=post, weights=w_rec[pre, post])
    path = folder / "pattern.nmc"
    path.write_text(SOURCE.format(eta=eta, eta_out=eta_out, reg=reg))
    return path


def compile_chip(path: Path):
    target = load_target("spinnaker")
    binary = emit_binary(run_passes(load_network(path), target), target)
    per_core = [c["neurons"] for c in binary.meta["cores"] if "r" in c["populations"]]
    return interpreter_for(binary), binary, per_core


def run_trial(chip, x: np.ndarray, target: np.ndarray) -> tuple[float, int]:
    """One trial from rest; (the mean squared error of the readout over the trial, overruns)."""
    res = chip.run(T, {"x": x, "target": target})
    y = res.probes["y.v"].astype(np.float64) / 2 ** 15            # REAL -> mV
    return float(np.mean((y - target) ** 2)), int(res.counters["overruns"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=300, help="training trials (one weight update each)")
    ap.add_argument("--eta", type=float, default=0.005, help="learning rate of the recurrent neurons' synapses (nA^2)")
    ap.add_argument("--eta-out", type=float, default=5e-6, help="learning rate of the readout synapses (nA^2)")
    ap.add_argument("--reg", type=float, default=1e-3, help="firing-rate regularisation coefficient (1/Hz^2)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--report-every", type=int, default=50)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed + 100)
    x = (rng.random((T, N_IN)) < INPUT_RATE).astype(np.uint8)
    target = np.stack([sum_of_sines(rng) for _ in range(N_OUT)], axis=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_program(Path(tmp), args.eta, args.eta_out, args.reg, args.seed)
        t0 = time.time()
        chip, binary, per_core = compile_chip(path)
        print(f"compiled in {time.time() - t0:.1f} s: {binary.meta['n_cores']} cores, recurrent neurons per core "
              f"{per_core}, DTCM {[c['dtcm_bytes'] for c in binary.meta['cores']]}", flush=True)
    t0 = time.time()
    chip.learning_enabled = False
    mse_start, overruns = run_trial(chip, x, target)
    chip.learning_enabled = True
    done = 0
    for i in range(args.trials):
        mse, ov = run_trial(chip, x, target)
        overruns += ov
        done = i + 1
        if done % args.report_every == 0:
            rate = chip.eprop.count[chip.eprop.learn.nrn].mean() * 1000.0 / T
            print(f"trial {done}: training mse {mse:.4f}, rate {rate:.1f} Hz ({(time.time() - t0) / done:.2f} s/trial)",
                  flush=True)
    chip.run(1)                    # the first tick of a next trial applies the last trial's update
    chip.learning_enabled = False
    chip.reset()
    mse_end, ov = run_trial(chip, x, target)
    overruns += ov
    drop = 100.0 * (1.0 - mse_end / mse_start)
    print(f"mse before {mse_start:.4f} after {mse_end:.4f} (mV^2); eta {args.eta} eta_out {args.eta_out} "
          f"reg {args.reg}; {time.time() - t0:.0f} s")
    print(f"mse_drop={drop:.1f}% mse_start={mse_start:.4f} mse_end={mse_end:.4f} trials={done} overruns={overruns} "
          f"neurons_per_core={max(per_core)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
