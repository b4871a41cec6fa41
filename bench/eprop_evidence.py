"""e-prop on the SpiNNaker-like interpreter: the evidence-accumulation task (Bellec et al. 2020, Fig. 3).

40 inputs in four groups of 10 (left cues, right cues, recall cue, background noise at 10 Hz); 7
cues of 100 ms at 40 Hz spaced 150 ms, each on the left with probability 0.7 or 0.3 (the majority
side drawn per trial); the recall cue in the last 150 ms; a trial is 7 * 150 + 1200 = 2250 ms. 100
recurrent neurons (50 LIF, 50 ALIF with tau_a = 2000 ms), a 2-unit leaky readout scored over the
last 150 ms by cross entropy; the answer is the side with more cues. Everything runs through the
normal pipeline: a DSL program (written below, with its initial weights in an npz) compiled with
``--target spinnaker``, run on the bit-exact interpreter with on-chip e-prop.

Three independent trial streams (separate seeds): training trials (in batches with as many left as
right answers); a validation stream, fresh 7-cue trials with learning off every ``--eval-every``
batches (the learning curve, printed as ``held-out error after <n> trials``; the only stream on
which settings may be chosen); and the test trials (``--test``, 7 cues, learning off), scored once
at the end, after training stops (early stop on the training error or, with ``--stop-on
validation``, on a confirmed validation point; ``--trials`` or ``--max-minutes``). The last line
is ``error=<e> trials=<n> overruns=<k> neurons_per_core=<m>`` with the test error (and
``host_assisted=adam`` after it with ``--host-adam``).

Learning-rate schedule (``--eta-halve-every H``): once training is at the task's 7 cues, the host
halves both learning rates every H training trials. It does so between runs, as a SpiNNaker host
rewrites a core's parameters between two runs: the chip's state (weights, fractions, traces,
trial counters) is read, the program is compiled again with the new rates and the state is loaded
into the new binary, which differs only in the learning-rate words.

``--checkpoint DIR`` saves the chip's state and the bench's own (trial generator, curriculum stage,
counters) at every validation point as ``DIR/trial_<n>.npz``; ``--resume FILE`` continues from one
exactly as the run that wrote it would have gone on (the same trials, updates and errors), with
the options given now, so one run can be branched into several schedules and compared on the
validation stream.

    python bench/eprop_evidence.py --max-minutes 85      # the defaults: Adam on the chip, beta x10, 7 cues,
                                                         # up to 10,000 trials, stop on validation
    python bench/eprop_evidence.py --trials 40 --test 20 # a short smoke run

The earlier recorded runs (bench/README.md) used the defaults of their day, sign descent::

    OLD="--update sign --eta 0.0513 --eta-out 1.54e-4 --reg 1e-3 --curriculum 1,3,5,7 --beta-factor 1 \
         --trials 16000 --stop-on training"
    python bench/eprop_evidence.py $OLD --max-minutes 75                    # the first
    python bench/eprop_evidence.py $OLD --eta-halve-every 2000              # the second
    python bench/eprop_evidence.py $OLD --beta-factor 10 --eta-halve-every 2000   # the third
    python bench/eprop_evidence.py $OLD --host-adam --eta 0.0855 --eta-out 2.5e-4 --reg 3e-4 \
        --curriculum 7 --beta-factor 10 --trials 10000 --max-minutes 58     # host-assisted Adam
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nmc.atomic import save_npz  # noqa: E402
from nmc.backend import emit_binary  # noqa: E402
from nmc.driver import load_network, run_passes  # noqa: E402
from nmc.errors import NmcError, RunError  # noqa: E402
from nmc.sim import interpreter_for  # noqa: E402
from nmc.sim.spinnaker_eprop import EpropEngine  # noqa: E402
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

rule ep = eprop(eta = {eta}, feedback = random(seed = 7), rate_target = 10 Hz, rate_reg = {reg}, update = {update})
rule ep_out = eprop(eta = {eta_out}, feedback = random(seed = 7), rate_target = 10 Hz, rate_reg = {reg}, update = {update},
                    w_max = 0.5 nA)
connect x -> r : dense(weights = npz("w.npz", "w_in"), rule = ep)
connect r -> r : sparse(file = npz("rec.npz"), rule = ep)
connect r -> y : dense(weights = npz("w.npz", "w_out"), rule = ep_out)

schedule trial = 2250 ms            # every trial starts from rest
schedule batch = {batch}            # trials per weight update
score y against label from 2100 ms  # cross entropy over the recall window
probe y.v
"""


def write_program(folder: Path, eta: float, eta_out: float, reg: float, batch: int, seed: int,
                  update: str = "gradient", beta_factor: float = 1.0) -> Path:
    """The DSL program and its initial weights. Input and recurrent weights as Bellec et al.'s
    N(0, 1)/sqrt(fan-in) in units of their threshold (0.6), converted to nA through the gain of a
    one-step pulse; no autapses. Their readout is (1 - kappa) times the kappa-filtered spikes times
    W_out (Glorot-uniform, std ~0.14) and its logits are dimensionless; ours integrates the spikes
    (y = kappa y + W z) and its logits are mV, so W_out(mV) = (1 - kappa) 0.14 N(0, 1) -- small:
    larger readout weights saturate the softmax and its error signal from the first trial."""
    rng = np.random.default_rng(seed)
    g = TAU_M * (1 - np.exp(-1.0 / TAU_M))          # mV per nA (cm = 1 nF)
    to_na = THETA / 0.6 / g
    w_in = rng.standard_normal((N_IN, N_REC)) / np.sqrt(N_IN) * to_na
    w_rec = rng.standard_normal((N_REC, N_REC)) / np.sqrt(N_REC) * to_na
    pre, post = np.nonzero(~np.eye(N_REC, dtype=bool))
    g_out = TAU_OUT * (1 - np.exp(-1.0 / TAU_OUT))
    w_out = rng.standard_normal((N_REC, 2)) * 0.14 * (1 - np.exp(-1.0 / TAU_OUT)) / g_out
    beta = np.concatenate([np.zeros(N_REC - N_ADAPT), np.full(N_ADAPT, beta_factor * BETA_BELLEC / 0.6 * THETA)])
    np.savez(folder / "w.npz", w_in=w_in, w_out=w_out, beta=beta)
    np.savez(folder / "rec.npz", pre=pre, post=post, weights=w_rec[pre, post])
    path = folder / "evidence.nmc"
    path.write_text(SOURCE.format(eta=eta, eta_out=eta_out, reg=reg, batch=batch, update=update))
    return path


def trials(rng: np.random.Generator, n: int, n_cues: int = N_CUES) -> tuple[np.ndarray, np.ndarray]:
    """n trials of the task (Bellec et al.'s generate_click_task_data): spikes (n, T, 40), labels (n,).
    With fewer than 7 cues (a curriculum) they take the last ``n_cues`` of the 7 cue slots, so the
    delay before the recall cue stays the same; the trial length does not change."""
    side = rng.integers(0, 2, n)
    p_left = np.where(side == 0, 0.7, 0.3)
    cues = (rng.random((n, n_cues)) >= p_left[:, None]).astype(int)    # 0 left, 1 right
    rate = np.zeros((n, T, N_IN))
    silence = CUE_SPACING - CUE_LEN
    for k in range(n_cues):
        a = silence + (N_CUES - n_cues + k) * CUE_SPACING
        for c in (0, 1):
            sel = cues[:, k] == c
            rate[sel, a:a + CUE_LEN, c * 10:(c + 1) * 10] = 0.04
    rate[:, -RECALL:, 20:30] = 0.04
    rate[:, :, 30:] = 0.01
    spikes = (rng.random(rate.shape) < rate).astype(np.uint8)
    labels = (2 * cues.sum(axis=1) > n_cues).astype(int)
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


def finish_update(chip) -> None:
    """Run the first ticks of a next trial (learning on), which apply the last batch's update: one
    tick, or Adam's adam_ticks (its update is spread over them)."""
    chip.run(1)
    ep = chip.eprop
    while ep is not None and ep.adam_chunk < ep.adam_ticks:
        chip.run(1)


def evaluate(chip, rng: np.random.Generator, n: int) -> tuple[float, int]:
    """The error on ``n`` fresh 7-cue trials with learning off (restored afterwards); (error, overruns)."""
    learning = chip.learning_enabled
    chip.learning_enabled = False
    wrong = overruns = 0
    for _ in range(n):
        x, lab = trials(rng, 1)
        guess, ov = run_trial(chip, x[0], None, RECALL)
        overruns += ov
        wrong += int(guess != lab[0])
    chip.learning_enabled = learning
    return (wrong / n if n else float("nan")), overruns      # no trials, no error: nan, not 0


class Chip:
    """The compiled program and its interpreter at the current learning rates; :meth:`set_level`
    halves them ``level`` times by recompiling and carrying the chip's state over."""

    def __init__(self, folder: Path, args: argparse.Namespace) -> None:
        self.folder, self.args, self.level = folder, args, 0
        if args.host_adam:
            # The chip computes G and never updates (a batch longer than any run); its learning-rate
            # words (sign descent, eta = 1 nA) give each post neuron's weight-word units per nA.
            self.path = write_program(folder, 1.0, 1.0, args.reg, HOST_BATCH, args.seed, "sign", args.beta_factor)
        else:
            self.path = write_program(folder, args.eta, args.eta_out, args.reg, args.batch, args.seed, args.update,
                                      args.beta_factor)
        self.sim, self.binary, self.per_core = compile_chip(self.path)
        self.adam = HostAdam(self.sim.eprop, args.eta, args.eta_out) if args.host_adam else None

    def set_level(self, level: int) -> None:
        if level == self.level or self.adam is not None:      # host Adam: the host scales its own rate
            self.level = level
            return
        a, f = self.args, 0.5 ** level
        state, learning = self.sim.state(), self.sim.learning_enabled
        self.path.write_text(SOURCE.format(eta=a.eta * f, eta_out=a.eta_out * f, reg=a.reg, batch=a.batch,
                                           update=a.update))
        self.sim, self.binary, _ = compile_chip(self.path)
        self.sim.load_state(state)
        self.sim.learning_enabled = learning
        self.level = level


#: --host-adam: the program's batch, longer than any run, so that the chip never updates itself.
HOST_BATCH = 1 << 30


class HostAdam:
    """Adam (Kingma & Ba; b1 0.9, b2 0.999, eps 1e-8) run by the host on the gradients the chip
    computed: after a batch the host reads each e-prop block's G (the batch sum, with the
    regulariser), steps the batch-mean gradient in nA and writes the plastic words back
    (``EpropEngine.host_write``, which zeroes G). A host-assisted figure: the chip has no room for
    Adam's moments yet (docs/eprop.md section 7)."""

    def __init__(self, engine: EpropEngine, eta: float, eta_out: float) -> None:
        self.engine = engine
        self.lr = {"learn": eta, "out": eta_out}
        # Weight-word units (2^-16 of a weight word) per nA of each post neuron: the learning-rate
        # words of sign descent with eta = 1 nA.
        self.per_na = {"learn": self._per_na(*engine.lr), "out": self._per_na(*engine.lr_out)}
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self.t = 0

    @staticmethod
    def _per_na(mant: np.ndarray, exp: np.ndarray) -> np.ndarray:
        return mant.astype(np.float64) * 2.0 ** (16 - exp.astype(np.float64))

    def update(self, batch: int, scale: float) -> None:
        """One Adam step from the chip's G (``scale``: the learning-rate schedule's factor)."""
        self.t += 1
        for block, frac in (("learn", 10), ("out", 15)):
            blk = getattr(self.engine, block)        # its plastic words and G, read where they are
            words = blk.weight
            if not words.size:
                continue
            g = blk.grad.astype(np.float64) / 2.0 ** frac / batch
            m = self.m.get(block, np.zeros_like(g))
            v = self.v.get(block, np.zeros_like(g))
            self.m[block] = m = 0.9 * m + 0.1 * g
            self.v[block] = v = 0.999 * v + 0.001 * g * g
            step = self.lr[block] * scale * (m / (1 - 0.9 ** self.t)) / (np.sqrt(v / (1 - 0.999 ** self.t)) + 1e-8)
            self.engine.host_write(block, words - np.rint(step * self.per_na[block]).astype(np.int64))


def save_checkpoint(folder: Path, chip: Chip, host: dict) -> Path:
    """The chip's state and the bench's (JSON, with the trial generator's state) in one npz."""
    path = folder / f"trial_{host['done']}.npz"
    arrays = {f"chip/{k}": v for k, v in chip.sim.state().items()}
    arrays["host"] = np.array(json.dumps(host))
    save_npz(path, arrays)
    return path


_HOST_KEYS = ("rng", "stage", "batch_errors", "overruns", "done", "final_from", "seconds")


def load_checkpoint(path: Path) -> tuple[dict, dict]:
    """(chip state, bench state) of a :func:`save_checkpoint` file; ValueError naming what is
    wrong with any other file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            state = {k[len("chip/"):]: z[k] for k in z.files if k.startswith("chip/")}
            host = json.loads(str(z["host"])) if "host" in z.files else None
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"cannot read it as an npz file ({exc})") from None
    if not isinstance(host, dict) or any(k not in host for k in _HOST_KEYS) or not state:
        raise ValueError("it is not a checkpoint of this bench (no chip state or bench state in it)")
    return state, host


def check_options(ap: argparse.ArgumentParser, args: argparse.Namespace) -> list[int]:
    """The options this bench and bench/eprop_float_model.py share, checked (one argparse line
    for a bad one); returns the curriculum's cue counts."""
    try:
        stages = [int(c) for c in args.curriculum.split(",")]
    except ValueError:
        stages = []
    if not stages or stages[-1] != N_CUES or any(c % 2 == 0 or not 0 < c <= N_CUES for c in stages):
        ap.error(f"the curriculum is odd cue counts ending with {N_CUES}, got {args.curriculum}")
    if args.eta_halve_every < 0:
        ap.error(f"--eta-halve-every is a number of trials (0: never), got {args.eta_halve_every}")
    if args.batch < 1:
        ap.error(f"--batch is a number of trials (1 or more), got {args.batch}")
    if not (np.isfinite(args.beta_factor) and args.beta_factor >= 0):
        ap.error(f"--beta-factor is a finite factor, 0 or more, got {args.beta_factor}")
    return stages


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10000, help="most training trials")
    ap.add_argument("--test", type=int, default=500, help="test trials (7 cues, a stream of their own), scored once at the end")
    ap.add_argument("--update", choices=("gradient", "sign", "adam"), default="adam",
                    help="the e-prop rule's update (adam: on the chip, its moments in SDRAM)")
    ap.add_argument("--eta", type=float, default=0.0855, help="learning rate of the recurrent neurons' synapses "
                    "(nA per step with sign and adam, nA^2 with gradient)")
    ap.add_argument("--eta-out", type=float, default=2.5e-4, help="learning rate of the readout synapses")
    ap.add_argument("--eta-halve-every", type=int, default=0,
                    help="at 7 cues, halve both learning rates every this many training trials (0: never)")
    ap.add_argument("--reg", type=float, default=3e-4, help="firing-rate regularisation coefficient (1/Hz^2)")
    ap.add_argument("--batch", type=int, default=32, help="trials per weight update")
    ap.add_argument("--curriculum", default="7", help="cue counts in turn (the last is the task)")
    ap.add_argument("--promote", type=float, default=0.15,
                    help="go to the next cue count when the training error of the last 3 batches is below this")
    ap.add_argument("--stop-on", choices=("training", "validation"), default="validation",
                    help="early stop on the training error of the last 5 batches at 7 cues, or on a validation "
                         "point confirmed by --stop-confirm more validation trials (both below --stop-at)")
    ap.add_argument("--stop-confirm", type=int, default=300, help="validation trials that confirm a --stop-on "
                    "validation stop")
    ap.add_argument("--stop-at", type=float, default=0.05,
                    help="the early stop's mark (--stop-on; 0: never stop early)")
    ap.add_argument("--eval-every", type=int, default=25,
                    help="every this many batches, print the error on --eval fresh 7-cue trials of the validation stream (learning off)")
    ap.add_argument("--eval", type=int, default=100)
    ap.add_argument("--max-minutes", type=float, default=0.0,
                    help="stop training after this much wall time (0: no limit); the test trials are still scored")
    ap.add_argument("--checkpoint", type=Path, help="save the run at every validation point as DIR/trial_<n>.npz")
    ap.add_argument("--resume", type=Path, help="continue from a checkpoint file")
    ap.add_argument("--host-adam", action="store_true",
                    help="host-assisted: the chip computes the e-prop gradients, the host runs Adam on them "
                         "(--eta, --eta-out: Adam's learning rates in nA) and writes the weights back")
    ap.add_argument("--beta-factor", type=float, default=10.0,
                    help="the adaptive neurons' beta, times Bellec et al.'s heuristic value")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    stages = check_options(ap, args)
    if args.stop_confirm < 1:
        ap.error(f"--stop-confirm is a number of validation trials (1 or more), got {args.stop_confirm}")
    if args.host_adam and (args.checkpoint or args.resume):
        ap.error("--host-adam keeps Adam's moments on the host, outside the checkpoints: no --checkpoint or --resume")
    if args.checkpoint:
        args.checkpoint.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory()
    t0 = time.time()
    try:
        chip = Chip(Path(tmp.name), args)
    except NmcError as exc:          # e.g. a learning rate the chip's words cannot hold
        ap.error(f"the program does not compile: {exc}")
    print(f"compiled in {time.time() - t0:.1f} s: {chip.binary.meta['n_cores']} cores, recurrent neurons per core "
          f"{chip.per_core}, DTCM {[c['dtcm_bytes'] for c in chip.binary.meta['cores']]}", flush=True)
    rng = np.random.default_rng(args.seed + 100)
    stage, batch_errors, overruns, done, final_from, spent = 0, [], 0, 0, -1, 0.0
    if args.resume:
        try:
            state, host = load_checkpoint(args.resume)
            rng.bit_generator.state = host["rng"]
            stage, batch_errors, overruns = host["stage"], host["batch_errors"], host["overruns"]
            done, final_from, spent = host["done"], host["final_from"], host["seconds"]
            if final_from >= 0 and args.eta_halve_every:
                chip.set_level((done - final_from) // args.eta_halve_every)
            chip.sim.load_state(state)
            if not 0 <= stage < len(stages):
                raise ValueError(f"its curriculum stage {stage} is not one of --curriculum {args.curriculum}")
        except (ValueError, TypeError, KeyError, IndexError, RunError) as exc:
            ap.error(f"--resume {args.resume}: {exc}")
        print(f"resumed from {args.resume} after {done} trials ({stages[stage]} cues, learning rates "
              f"halved {chip.level} times)", flush=True)
    t0 = time.time() - spent
    while done < args.trials:
        wrong = 0
        for i in range(args.batch):
            # Every batch has as many 'left' as 'right' answers (drawn until the answer is the one
            # wanted), so the readout's gradient is not dominated by the classes' common activity.
            x, lab = trials(rng, 1, stages[stage])
            while int(lab[0]) != i % 2:
                x, lab = trials(rng, 1, stages[stage])
            guess, ov = run_trial(chip.sim, x[0], int(lab[0]), RECALL)
            overruns += ov
            wrong += int(guess != lab[0])
        done += args.batch
        if chip.adam is not None:
            chip.sim.run(1)           # the last trial's regulariser joins G at the next trial's first tick
            chip.adam.update(args.batch, 0.5 ** chip.level)
        batch_errors.append(wrong / args.batch)
        print(f"trial {done} ({stages[stage]} cues): training error {batch_errors[-1]:.3f}, "
              f"{(time.time() - t0) / done:.2f} s/trial", flush=True)
        if args.eval_every and (done // args.batch) % args.eval_every == 0:
            # Progress on trials the training never sees (a stream of its own); the batch's update
            # is applied first by the first ticks of a next trial.
            finish_update(chip.sim)
            error, ov = evaluate(chip.sim, np.random.default_rng(args.seed + 20_000 + done), args.eval)
            overruns += ov
            print(f"  held-out error after {done} trials: {error:.3f} ({args.eval} trials, 7 cues)", flush=True)
            if args.stop_on == "validation" and stage + 1 == len(stages) and error < args.stop_at:
                # Bellec et al.'s two-stage check: a validation point below the mark, then more fresh
                # validation trials (a stream of their own) that must be below it too.
                confirm, ov = evaluate(chip.sim, np.random.default_rng(args.seed + 40_000 + done), args.stop_confirm)
                overruns += ov
                print(f"  confirming: {confirm:.3f} on {args.stop_confirm} more validation trials", flush=True)
                if confirm < args.stop_at:
                    print(f"  stopping: the validation error is below {args.stop_at:g}", flush=True)
                    break
        if stage + 1 < len(stages) and len(batch_errors) >= 3 and np.mean(batch_errors[-3:]) < args.promote:
            stage += 1
            batch_errors = []
            print(f"  -> {stages[stage]} cues", flush=True)
        elif (args.stop_on == "training" and stage + 1 == len(stages) and len(batch_errors) >= 5
              and np.mean(batch_errors[-5:]) < args.stop_at):
            print(f"  stopping: the training error of the last 5 batches is below {args.stop_at:g}", flush=True)
            break
        if stage + 1 == len(stages) and final_from < 0:
            final_from = done
        if args.eta_halve_every and final_from >= 0:
            level = (done - final_from) // args.eta_halve_every
            if level != chip.level:
                chip.set_level(level)
                print(f"  learning rates halved: eta {args.eta * 0.5 ** level:.4g} "
                      f"eta_out {args.eta_out * 0.5 ** level:.4g}", flush=True)
        if args.checkpoint and args.eval_every and (done // args.batch) % args.eval_every == 0:
            host = {"rng": rng.bit_generator.state, "stage": stage, "batch_errors": batch_errors,
                    "overruns": overruns, "done": done, "final_from": final_from, "seconds": time.time() - t0}
            print(f"  saved {save_checkpoint(args.checkpoint, chip, host)}", flush=True)
        if args.max_minutes and time.time() - t0 > 60 * args.max_minutes:
            print(f"  stopping: the wall-time limit of {args.max_minutes:g} min is reached", flush=True)
            break
    finish_update(chip.sim)
    error, ov = evaluate(chip.sim, np.random.default_rng(args.seed + 10_000), args.test)
    overruns += ov
    update = "adam on the host" if args.host_adam else args.update
    print(f"held-out error {error:.3f} on {args.test} fresh trials; update {update} eta {args.eta} "
          f"eta_out {args.eta_out} halved every {args.eta_halve_every or 'never'} trials at 7 cues, "
          f"reg {args.reg} batch {args.batch} curriculum {args.curriculum} beta x{args.beta_factor:g}; "
          f"{time.time() - t0:.0f} s")
    # A host-assisted run says so in its figure's line (the weight update did not run on the chip).
    host = " host_assisted=adam" if args.host_adam else ""
    print(f"error={error:.3f} trials={done} overruns={overruns} neurons_per_core={min(chip.per_core)}{host}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
