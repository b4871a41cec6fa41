"""e-prop on the SpiNNaker-like interpreter: the evidence-accumulation task (Bellec et al. 2020, Fig. 3).

40 inputs in four groups of 10 (left cues, right cues, recall cue, background noise at 10 Hz); 7
cues of 100 ms at 40 Hz spaced 150 ms, each on the left with probability 0.7 or 0.3 (the majority
side drawn per trial); the recall cue in the last 150 ms; a trial is 7 * 150 + 1200 = 2250 ms. 100
recurrent neurons (50 LIF, 50 ALIF with tau_a = 2000 ms), a 2-unit leaky readout scored over the
last 150 ms by cross entropy; the answer is the side with more cues. Everything runs through the
normal pipeline: a DSL program (written below, with its initial weights in an npz) compiled with
``--target spinnaker``, run on the bit-exact interpreter with on-chip e-prop.

Training trials are drawn from one stream, the reported error is on fresh held-out trials with
learning off. The last line is ``error=<e> trials=<n> overruns=<k> neurons_per_core=<m>``.

    nice python bench/eprop_evidence.py                      # the recorded run (bench/README.md)
    python bench/eprop_evidence.py --trials 40 --test 20     # a short smoke run
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

N_IN, N_REC, N_ADAPT = 40, 100, 50
CUE_SPACING, CUE_LEN, N_CUES, RECALL = 150, 100, 7, 150
T = CUE_SPACING * N_CUES + 1200          # 2250 ms
THETA = 10.0                             # mV: v_th - v_rest
TAU_M, TAU_A, TAU_OUT = 20.0, 2000.0, 20.0
# Bellec et al.'s heuristic adaptation strength, given in units of their threshold 0.6.
BETA_BELLEC = 1.7 * (1 - np.exp(-1 / TAU_A)) / (1 - np.exp(-1 / TAU_M))

SOURCE = """\
# Evidence accumulation with e-prop (bench/eprop_evidence.py writes this file and its weights).
network evidence
dt = 1 ms
seed 1
input x[40]                         # 10 left-cue, 10 right-cue, 10 recall, 10 noise channels
input label[2]                      # the desired readout: one-hot class (data given per tick)
population r[100] : alif(tau_m = 20 ms, v_rest = 0 mV, v_th = 10 mV, t_ref = 5 ms, tau_a = 2000 ms,
                         beta = npz("w.npz", "beta"))
population y[2] : li(tau_m = 20 ms)
output y

rule ep = eprop(eta = {eta}, feedback = random(seed = 7), rate_target = 10 Hz, rate_reg = {reg})
rule ep_out = eprop(eta = {eta_out}, feedback = random(seed = 7), rate_target = 10 Hz, rate_reg = {reg})
connect x -> r : dense(weights = npz("w.npz", "w_in"), rule = ep)
connect r -> r : sparse(file = npz("rec.npz"), rule = ep)
connect r -> y : dense(weights = npz("w.npz", "w_out"), rule = ep_out)

schedule trial = 2250 ms            # every trial starts from rest
schedule batch = {batch}            # trials per weight update
score y against label from 2100 ms  # cross entropy over the recall window
probe y.v
"""


def write_program(folder: Path, eta: float, eta_out: float, reg: float, batch: int, seed: int) -> Path:
    """The DSL program and its initial weights (Bellec et al.: N(0, 1)/sqrt(fan-in), no autapses),
    converted from units of their threshold (0.6) to nA through the gain of a one-step pulse."""
    rng = np.random.default_rng(seed)
    g = TAU_M * (1 - np.exp(-1.0 / TAU_M))          # mV per nA (cm = 1 nF)
    to_na = THETA / 0.6 / g
    w_in = rng.standard_normal((N_IN, N_REC)) / np.sqrt(N_IN) * to_na
    w_rec = rng.standard_normal((N_REC, N_REC)) / np.sqrt(N_REC) * to_na
    pre, post = np.nonzero(~np.eye(N_REC, dtype=bool))
    w_out = rng.standard_normal((N_REC, 2)) / np.sqrt(N_REC) * to_na
    beta = np.concatenate([np.zeros(N_REC - N_ADAPT), np.full(N_ADAPT, BETA_BELLEC / 0.6 * THETA)])
    np.savez(folder / "w.npz", w_in=w_in, w_out=w_out, beta=beta)
    np.savez(folder / "rec.npz", pre=pre, post=post, weights=w_rec[pre, post])
    path = folder / "evidence.nmc"
    path.write_text(SOURCE.format(eta=eta, eta_out=eta_out, reg=reg, batch=batch))
    return path


def trials(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n trials of the task (Bellec et al.'s generate_click_task_data): spikes (n, T, 40), labels (n,)."""
    side = rng.integers(0, 2, n)
    p_left = np.where(side == 0, 0.7, 0.3)
    cues = (rng.random((n, N_CUES)) >= p_left[:, None]).astype(int)    # 0 left, 1 right
    rate = np.zeros((n, T, N_IN))
    silence = CUE_SPACING - CUE_LEN
    for k in range(N_CUES):
        a = silence + k * CUE_SPACING
        for c in (0, 1):
            sel = cues[:, k] == c
            rate[sel, a:a + CUE_LEN, c * 10:(c + 1) * 10] = 0.04
    rate[:, -RECALL:, 20:30] = 0.04
    rate[:, :, 30:] = 0.01
    spikes = (rng.random(rate.shape) < rate).astype(np.uint8)
    labels = (cues.sum(axis=1) > N_CUES // 2).astype(int)
    return spikes, labels


def compile_chip(path: Path):
    target = load_target("spinnaker")
    net = run_passes(load_network(path), target)
    binary = emit_binary(net, target)
    per_core = [c["neurons"] for c in binary.meta["cores"] if "r" in c["populations"]]
    return interpreter_for(binary), binary, per_core


def run_trial(chip, spikes: np.ndarray, label: int | None, window: int) -> tuple[int, int]:
    """One trial from rest; returns (the readout's decision: argmax of the mean membrane over the
    window, overruns)."""
    chip.reset()
    inputs = {"x": spikes}
    if label is not None:
        t = np.zeros((T, 2))
        t[:, label] = 1.0
        inputs["label"] = t
    res = chip.run(T, inputs)
    y = res.probes["y.v"][-window:].astype(np.float64).mean(axis=0)
    return int(np.argmax(y)), int(res.counters["overruns"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=2000, help="training trials")
    ap.add_argument("--test", type=int, default=200, help="held-out test trials")
    ap.add_argument("--eta", type=float, default=0.5, help="learning rate of the recurrent neurons' synapses (nA^2)")
    ap.add_argument("--eta-out", type=float, default=0.02, help="learning rate of the readout synapses (nA^2)")
    ap.add_argument("--reg", type=float, default=0.001, help="firing-rate regularisation coefficient")
    ap.add_argument("--batch", type=int, default=1, help="trials per weight update")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--report-every", type=int, default=50)
    ap.add_argument("--stop-at", type=float, default=0.0,
                    help="stop training once the error over the last 100 training trials is below this")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_program(Path(tmp), args.eta, args.eta_out, args.reg, args.batch, args.seed)
        t0 = time.time()
        chip, binary, per_core = compile_chip(path)
        print(f"compiled in {time.time() - t0:.1f} s: {binary.meta['n_cores']} cores, recurrent neurons per core "
              f"{per_core}, DTCM {[c['dtcm_bytes'] for c in binary.meta['cores']]}", flush=True)
    rng = np.random.default_rng(args.seed + 100)
    recent: list[int] = []
    overruns = 0
    t0 = time.time()
    done = 0
    for i in range(args.trials):
        x, lab = trials(rng, 1)
        guess, ov = run_trial(chip, x[0], int(lab[0]), RECALL)
        overruns += ov
        recent = (recent + [int(guess != lab[0])])[-100:]
        done = i + 1
        if done % args.report_every == 0:
            print(f"trial {done}: training error (last {len(recent)}) {np.mean(recent):.3f}  "
                  f"{(time.time() - t0) / done:.2f} s/trial", flush=True)
        if args.stop_at and len(recent) == 100 and np.mean(recent) < args.stop_at:
            break
    chip.run(1)  # the first tick of a next trial applies the last trial's update
    chip.learning_enabled = False
    test_rng = np.random.default_rng(args.seed + 10_000)
    wrong = 0
    for _ in range(args.test):
        x, lab = trials(test_rng, 1)
        guess, ov = run_trial(chip, x[0], None, RECALL)
        overruns += ov
        wrong += int(guess != lab[0])
    print(f"held-out error {wrong}/{args.test}; eta {args.eta} eta_out {args.eta_out} reg {args.reg} "
          f"batch {args.batch}; {time.time() - t0:.0f} s")
    print(f"error={wrong / max(args.test, 1):.3f} trials={done} overruns={overruns} neurons_per_core={max(per_core)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
