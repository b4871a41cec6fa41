"""A float64 host model of the chip's e-prop rule on the evidence-accumulation task.

``bench/eprop_evidence.py`` trains on the bit-exact SpiNNaker-like interpreter at 0.3-0.5 s per
trial, so a 16,000-trial run takes 1.5-2.5 hours. This model runs the same rule in float64 at
about 0.025 s per trial (numba), to answer one question before chip hours are spent: does a
setting fail because of the chip's number formats, or because of the rule and the task? It is
not the product and nothing in ``nmc`` uses it.

What it shares with the chip bench, so that the two curves are comparable: the network and its
initial weights (``write_program`` of eprop_evidence.py, seed 1), the trial generator, the training
and validation streams (validation every ``--eval-every`` batches: the only stream settings are
chosen on), balanced batches, the curriculum and its promotion rule, the learning-rate halving at 7
cues, random feedback B ~ N(0, 1) with seed 7 (numpy's generator, not the chip's), and the weight
bounds (``w_max``). Its test stream is its own, so that exploring settings here never sees the
trials the chip's figure is scored on.

The rule is docs/eprop.md sections 1-3 with real numbers instead of fixed point: every synapse
has a delay of one tick; v, a, the refractory count and psi^ = gamma max(0, 1 - |v - A|/theta)
(0 while refractory) as the e-prop cores compute them; the presynaptic trace zbar (membrane decay)
per source; eps~ only for adaptive neurons; ebar from ``ebar_from`` (the window start less
7 tau_out); G += L ebar with the pairing of ``--pairing`` (below); G summed over the batch; the
regulariser's factorised gradient at the end of each trial; one update per batch. ``--update`` is
the chip's ``sign`` or ``gradient``, or one the chip does not have: ``adam`` (Kingma & Ba, b1 0.9,
b2 0.999, eps 1e-8, on the batch-mean gradient; Bellec et al. train with it) or ``rprop``
(iRprop-, class Rprop). With the chip bench's weights its recurrent spikes equal the interpreter's
tick for tick until the first near-threshold difference of float64 and fixed point, 100-250 ticks
into a trial (tests/test_bench_eprop_float.py); from there the two runs are different samples of
the same dynamics.

    python bench/eprop_float_model.py                          # the chip bench's defaults
    python bench/eprop_float_model.py --update adam --eta 0.0855 --eta-out 2.5e-4 --reg 3e-4 \\
        --curriculum 7 --pairing exact                         # Bellec et al.'s settings, in nA
    python bench/eprop_float_model.py --trials 64 --test 20    # a short smoke run

Pairing of learning signal and eligibility (``--pairing``). The readout's y at tick t holds the
spikes of tick t - 1 (a delay of one tick), so the exact e-prop gradient multiplies the error of
tick t by ebar of tick t - 1 (``exact``). The chip sends the error of tick t as payload packets
that arrive for tick t + 1, where the cores multiply it by that tick's ebar: the error of t - 1
with the ebar of t, two ticks apart (``chip``). ``prev`` (the error of t - 1 with the ebar of
t - 1, one tick apart) is what the chip would compute by adding to G before updating ebar;
``same`` (error and ebar of tick t) is one tick apart the other way.

The last line is ``error=<e> trials=<n> model=float64`` with the test error.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is in the test extras
    numba = None

sys.path.insert(0, str(Path(__file__).resolve().parent))

import eprop_evidence as EV  # noqa: E402  (the task, its trial streams and the initial weights)
T = EV.T
THETA = EV.THETA
ALPHA = math.exp(-1.0 / EV.TAU_M)
RHO = math.exp(-1.0 / EV.TAU_A)
KAPPA = math.exp(-1.0 / EV.TAU_OUT)
GAIN = EV.TAU_M * (1 - ALPHA)         # mV per nA of a one-tick pulse (cm = 1 nF); also the readout's (tau 20 ms)
GAMMA = 0.3
N_REF = 5
WINDOW = T - EV.RECALL                # the scored window: the last 150 ticks
EBAR_FROM = WINDOW - math.ceil(7 * EV.TAU_OUT)


def _gadd(g: float, inc: float, fixed: bool) -> float:
    """G + inc; with ``fixed``, as the chip's 16-bit Q5.10 G: the increment rounded half up to
    2^-10, the sum saturated at +-32 (docs/eprop.md section 3)."""
    if not fixed:
        return g + inc
    return min(max(g + math.floor(inc * 1024.0 + 0.5) / 1024.0, -32.0), 32.0 - 1.0 / 1024.0)


def _synapses(j: int, psi: float, beta_n: float, sig: float, zbar: np.ndarray, eps: np.ndarray,
              ebar: np.ndarray, g: np.ndarray, adaptive: bool, full: bool, old: bool, g_fixed: bool,
              skip: int) -> None:
    """One tick of neuron j's synapses from one source group (``skip``: the absent autapse):
    e = psi (zbar - eps~); eps~ for adaptive neurons; from ebar_from (``full``) ebar and G."""
    for i in range(zbar.size):
        if i == skip:
            continue
        e = psi * (zbar[i] - eps[j, i])
        if adaptive:
            eps[j, i] = RHO * eps[j, i] + beta_n * e
        if full:
            if old:
                g[i, j] = _gadd(g[i, j], sig * ebar[j, i], g_fixed)
            ebar[j, i] = KAPPA * ebar[j, i] + (1 - KAPPA) * e
            if not old:
                g[i, j] = _gadd(g[i, j], sig * ebar[j, i], g_fixed)


def _trial(x: np.ndarray, label: int, w_in: np.ndarray, w_rec: np.ndarray, w_out: np.ndarray,
           beta: np.ndarray, fb: np.ndarray, learn: bool, lag: int, old: bool, g_fixed: bool, reg: float,
           g_in: np.ndarray, g_rec: np.ndarray, g_out: np.ndarray, spikes: np.ndarray) -> tuple[int, float]:
    """One trial from rest; adds its gradient to g_* when ``learn`` and records the recurrent spikes
    in ``spikes`` when it is (T, n). Returns (decision, mean rate in Hz)."""
    n_in, n = w_in.shape
    v = np.zeros(n)
    a = np.zeros(n)
    ref = np.zeros(n, np.int64)
    z = np.zeros(n)
    psi = np.zeros(n)
    zb_in = np.zeros(n_in)
    zb_rec = np.zeros(n)
    eps_in = np.zeros((n, n_in))
    eps_rec = np.zeros((n, n))
    eb_in = np.zeros((n, n_in))
    eb_rec = np.zeros((n, n))
    y = np.zeros(2)
    zk = np.zeros(n)
    err = np.zeros(2)
    err_prev = np.zeros(2)
    ysum = np.zeros(2)
    count = np.zeros(n)
    psum = np.zeros(n)
    zs_in = np.zeros(n_in)
    zs_rec = np.zeros(n)
    x_prev = np.zeros(n_in)
    beta_n = beta / THETA
    big = np.zeros(n)
    for t in range(T):
        # Deliveries of tick t - 1's spikes (delay 1) into the neurons and the readout.
        cur = np.zeros(n)
        for i in range(n_in):
            if x_prev[i] > 0:
                cur += w_in[i]
        for k in range(n):
            if z[k] > 0:
                cur += w_rec[k]
        for u in range(2):
            s = 0.0
            for j in range(n):
                if z[j] > 0:
                    s += w_out[j, u]
            y[u] = KAPPA * y[u] + GAIN * s
        for j in range(n):
            zk[j] = KAPPA * zk[j] + z[j]
        for i in range(n_in):
            zb_in[i] = ALPHA * zb_in[i] + x_prev[i]
            zs_in[i] += zb_in[i]
        for k in range(n):
            zb_rec[k] = ALPHA * zb_rec[k] + z[k]
            zs_rec[k] += zb_rec[k]
        z_new = np.zeros(n)
        for j in range(n):
            v[j] = ALPHA * v[j] + GAIN * cur[j] - z[j] * THETA
            a[j] = RHO * a[j] + z[j]
            thr = THETA + beta[j] * a[j]
            refractory = ref[j] > 0
            if v[j] > thr and not refractory:
                z_new[j] = 1.0
            psi[j] = 0.0 if refractory else GAMMA * max(0.0, 1.0 - abs(v[j] - thr) / THETA)
            ref[j] = min(max(ref[j] + N_REF * int(z_new[j]) - 1, 0), N_REF)
            count[j] += z_new[j]
            psum[j] += psi[j]
        if spikes.shape[0] == T:
            spikes[t] = z_new
        if t >= WINDOW:
            m = max(y[0], y[1])
            e0 = math.exp(y[0] - m)
            e1 = math.exp(y[1] - m)
            err[0] = e0 / (e0 + e1) - (1.0 if label == 0 else 0.0)
            err[1] = e1 / (e0 + e1) - (1.0 if label == 1 else 0.0)
            ysum += y
        else:
            err[:] = 0.0
        if learn:
            if t >= WINDOW:
                for j in range(n):
                    for u in range(2):
                        g_out[j, u] += err[u] * zk[j]
            sig = err_prev if lag else err
            for j in range(n):
                big[j] = fb[j, 0] * sig[0] + fb[j, 1] * sig[1]
            full = t >= EBAR_FROM
            for j in range(n):
                adaptive = beta[j] != 0.0
                if not (adaptive or full):
                    continue
                p, b, lj = psi[j], beta_n[j], big[j]
                _synapses(j, p, b, lj, zb_in, eps_in, eb_in, g_in, adaptive, full, old, g_fixed, -1)
                _synapses(j, p, b, lj, zb_rec, eps_rec, eb_rec, g_rec, adaptive, full, old, g_fixed, j)
        err_prev[:] = err
        for i in range(n_in):
            x_prev[i] = x[t, i]
        z = z_new
    if learn and reg > 0:
        # The chip's factorised regulariser: c (1000/dt) (f_j - 10 Hz) mean(psi_j) mean(zbar_i).
        for j in range(n):
            q = reg * 1000.0 * (count[j] / T * 1000.0 - 10.0) * psum[j] / T
            for i in range(n_in):
                g_in[i, j] += q * zs_in[i] / T
            for i in range(n):
                if i != j:
                    g_rec[i, j] += q * zs_rec[i] / T
    return (0 if ysum[0] >= ysum[1] else 1), count.sum() / n / T * 1000.0


# Not cache=True: numba's cache pickles the module it compiled in, and this file runs both as a
# script and imported by the tests under another name; a cache written by one broke the other.
# Compiling takes about 4 s.
if numba is not None:
    _gadd = numba.njit(_gadd)
    _synapses = numba.njit(_synapses)
    trial = numba.njit(_trial)
else:
    trial = _trial


#: --pairing: (the error one tick late, ebar before this tick's update).
PAIRINGS = {"chip": (1, False), "prev": (1, True), "same": (0, False), "exact": (0, True)}


class Adam:
    """Kingma & Ba's Adam on one weight matrix (host float64)."""

    def __init__(self, shape: tuple[int, ...], b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> None:
        self.m, self.v = np.zeros(shape), np.zeros(shape)
        self.b1, self.b2, self.eps, self.t = b1, b2, eps, 0

    def step(self, g: np.ndarray, lr: float, bits: int = 0) -> np.ndarray:
        """The weight change of batch-mean gradient ``g``. With ``bits`` > 0, m and v are stored with
        that many significant bits and 1/sqrt(v) is taken to 8 (what a chip's 16-bit small floats
        and a 256-entry table would give)."""
        self.t += 1
        self.m = _significant(self.b1 * self.m + (1 - self.b1) * g, bits)
        self.v = _significant(self.b2 * self.v + (1 - self.b2) * g * g, bits)
        mh = self.m / (1 - self.b1 ** self.t)
        vh = self.v / (1 - self.b2 ** self.t)
        if bits:
            with np.errstate(divide="ignore"):
                r = np.where(vh > 0, _significant(1 / np.sqrt(vh), 8), 0.0)
            return lr * mh * r
        return lr * mh / (np.sqrt(vh) + self.eps)


def _significant(x: np.ndarray, bits: int) -> np.ndarray:
    """x rounded to ``bits`` significant bits (unchanged for bits = 0)."""
    if not bits:
        return x
    m, e = np.frexp(x)
    return np.ldexp(np.round(m * 2.0 ** bits) / 2.0 ** bits, e)


class Rprop:
    """iRprop- (Igel & Huesken 2000) on one weight matrix: each weight's step grows by 2^(1/4)
    while the sign of its batch gradient holds and halves when it flips (that batch then moves
    nothing), between step0 / 1024 and 8 step0: the levels a chip can keep as a 6-bit exponent in
    quarter octaves."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.level = np.zeros(shape, dtype=np.int64)       # quarter octaves relative to step0
        self.prev = np.zeros(shape)

    def step(self, g: np.ndarray, step0: float) -> np.ndarray:
        s = np.sign(g)
        agree = s * self.prev
        self.level = np.clip(self.level + np.where(agree > 0, 1, np.where(agree < 0, -4, 0)), -40, 12)
        s = np.where(agree < 0, 0.0, s)
        self.prev = s
        return step0 * 2.0 ** (self.level / 4) * s


class Model:
    """The network's float weights, their bounds and the update rule."""

    def __init__(self, args: argparse.Namespace) -> None:
        with TemporaryDirectory() as tmp:
            EV.write_program(Path(tmp), args.eta, args.eta_out, args.reg, args.batch, args.seed,
                             beta_factor=args.beta_factor)
            w = np.load(Path(tmp) / "w.npz")
            rec = np.load(Path(tmp) / "rec.npz")
            self.w_in, self.w_out, self.beta = w["w_in"].copy(), w["w_out"].copy(), w["beta"].copy()
            self.w_rec = np.zeros((EV.N_REC, EV.N_REC))
            self.w_rec[rec["pre"], rec["post"]] = rec["weights"]
        # The chip's default weight scale: w_max 4x the largest initial weight of the post
        # population's plastic synapses; the readout's is the program's 0.5 nA.
        self.w_max = args.w_max_factor * max(np.abs(self.w_in).max(), np.abs(self.w_rec).max())
        self.w_out_max = 0.5
        self.fb_random = np.random.default_rng(7).standard_normal((EV.N_REC, 2))
        self.args = args
        shapes = {"in": self.w_in.shape, "rec": self.w_rec.shape, "out": self.w_out.shape}
        self.adam = {k: Adam(shape) for k, shape in shapes.items()}
        self.rprop = {k: Rprop(shape) for k, shape in shapes.items()}
        self.diag = np.eye(EV.N_REC, dtype=bool)
        self.scale = 1.0           # the learning-rate factor of the halving schedule

    def feedback(self) -> np.ndarray:
        # Symmetric e-prop: B = W_out (as mV per spike); only its direction matters to the update.
        return self.w_out * GAIN if self.args.feedback == "symmetric" else self.fb_random

    def run(self, x: np.ndarray, label: int, learn: bool, grads: tuple[np.ndarray, ...],
            spikes: np.ndarray | None = None) -> tuple[int, float]:
        """One trial (``spikes``: a (T, 100) array to record the recurrent spikes in)."""
        lag, old = PAIRINGS[self.args.pairing]
        return trial(x.astype(np.float64), int(label), self.w_in, self.w_rec, self.w_out, self.beta,
                     self.feedback(), learn, lag, old, self.args.g_fixed, self.args.reg if learn else 0.0, *grads,
                     np.zeros((1, 1)) if spikes is None else spikes)

    def update(self, grads: tuple[np.ndarray, ...]) -> None:
        """One batch's update from its summed gradients (in, rec, out), then the weight bounds."""
        a = self.args
        g_in, g_rec, g_out = grads
        g_rec[self.diag] = 0.0
        for key, w, g, eta in (("in", self.w_in, g_in, a.eta), ("rec", self.w_rec, g_rec, a.eta),
                               ("out", self.w_out, g_out, a.eta_out)):
            eta *= self.scale
            if a.update == "sign":
                w -= eta * np.sign(g)
            elif a.update == "gradient":
                # The chip's units (docs/eprop.md section 3): G is normalised by theta for the
                # recurrent neurons' synapses; eta is in nA^2.
                w -= eta * GAIN ** 2 * (g if key == "out" else g / THETA)
            elif a.update == "rprop":
                w -= self.rprop[key].step(g, eta)
            else:
                w -= self.adam[key].step(g / a.batch, eta, a.adam_bits)
        np.clip(self.w_in, -self.w_max, self.w_max, out=self.w_in)
        np.clip(self.w_rec, -self.w_max, self.w_max, out=self.w_rec)
        np.clip(self.w_out, -self.w_out_max, self.w_out_max, out=self.w_out)
        self.w_rec[self.diag] = 0.0


def evaluate(model: Model, rng: np.random.Generator, n: int) -> float:
    """The error on ``n`` fresh 7-cue trials of a stream, learning off."""
    wrong = 0
    none = (np.zeros((1, 1)),) * 3
    for _ in range(n):
        x, lab = EV.trials(rng, 1)
        wrong += int(model.run(x[0], int(lab[0]), False, none)[0] != lab[0])
    return wrong / n if n else float("nan")      # no trials, no error: nan, not 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=16000, help="most training trials")
    ap.add_argument("--test", type=int, default=500, help="test trials (a stream of its own, not the chip "
                    "bench's), scored once at the end")
    ap.add_argument("--update", choices=("sign", "gradient", "adam", "rprop"), default="sign")
    ap.add_argument("--eta", type=float, default=0.0513, help="learning rate of the input and recurrent synapses (nA)")
    ap.add_argument("--eta-out", type=float, default=1.54e-4, help="learning rate of the readout synapses (nA)")
    ap.add_argument("--eta-halve-every", type=int, default=0,
                    help="at 7 cues, halve both learning rates every this many training trials (0: never)")
    ap.add_argument("--reg", type=float, default=1e-3, help="firing-rate regularisation coefficient (1/Hz^2)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--curriculum", default="1,3,5,7")
    ap.add_argument("--promote", type=float, default=0.15)
    ap.add_argument("--pairing", choices=tuple(PAIRINGS), default="chip",
                    help="which tick's error multiplies which tick's ebar (module docstring)")
    ap.add_argument("--feedback", choices=("random", "symmetric"), default="random")
    ap.add_argument("--w-max-factor", type=float, default=4.0,
                    help="weight bound of the input and recurrent synapses, times the largest initial weight")
    ap.add_argument("--beta-factor", type=float, default=1.0,
                    help="the adaptive neurons' beta, times Bellec et al.'s heuristic value")
    ap.add_argument("--g-fixed", action="store_true",
                    help="accumulate the input and recurrent synapses' G as the chip does (Q5.10, rounded every tick)")
    ap.add_argument("--adam-bits", type=int, default=0,
                    help="with --update adam: keep m and v to this many significant bits, 1/sqrt(v) to 8 (0: float64)")
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--eval", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if numba is None:
        print("note: numba is not installed; the model runs in plain Python, about 1,000 times slower",
              file=sys.stderr)
    stages = EV.check_options(ap, args)
    if args.adam_bits < 0:
        ap.error(f"--adam-bits is a number of significant bits (0: float64), got {args.adam_bits}")
    model = Model(args)
    rng = np.random.default_rng(args.seed + 100)
    stage, batch_errors, done, final_from = 0, [], 0, -1
    t0 = time.time()
    while done < args.trials:
        grads = (np.zeros_like(model.w_in), np.zeros_like(model.w_rec), np.zeros_like(model.w_out))
        wrong, rates = 0, []
        for i in range(args.batch):
            x, lab = EV.trials(rng, 1, stages[stage])
            while int(lab[0]) != i % 2:
                x, lab = EV.trials(rng, 1, stages[stage])
            guess, rate = model.run(x[0], int(lab[0]), True, grads)
            wrong += int(guess != lab[0])
            rates.append(rate)
        model.update(grads)
        done += args.batch
        batch_errors.append(wrong / args.batch)
        line = (f"trial {done} ({stages[stage]} cues): training error {batch_errors[-1]:.3f}, "
                f"rate {np.mean(rates):.1f} Hz")
        if args.eval_every and (done // args.batch) % args.eval_every == 0:
            error = evaluate(model, np.random.default_rng(args.seed + 20_000 + done), args.eval)
            line += f"; held-out error {error:.3f} ({args.eval} trials, 7 cues)"
        print(line, flush=True)
        if stage + 1 < len(stages) and len(batch_errors) >= 3 and np.mean(batch_errors[-3:]) < args.promote:
            stage += 1
            batch_errors = []
            print(f"  -> {stages[stage]} cues", flush=True)
        if stage + 1 == len(stages) and final_from < 0:
            final_from = done
        if args.eta_halve_every and final_from >= 0:
            model.scale = 0.5 ** ((done - final_from) // args.eta_halve_every)
    # A test stream of its own (not the chip bench's, seed + 10,000): settings explored with this
    # model must not have seen the trials the chip's figure is scored on.
    error = evaluate(model, np.random.default_rng(args.seed + 30_000), args.test)
    print(f"held-out error {error:.3f} on {args.test} fresh trials; update {args.update} eta {args.eta} "
          f"eta_out {args.eta_out} pairing {args.pairing} feedback {args.feedback} batch {args.batch} "
          f"curriculum {args.curriculum} beta x{args.beta_factor:g}; {time.time() - t0:.0f} s")
    print(f"error={error:.3f} trials={done} model=float64")
    return 0


if __name__ == "__main__":
    sys.exit(main())
