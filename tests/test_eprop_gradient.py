"""The e-prop cores' gradient is the float e-prop gradient, to the precision of their formats.

test_reference_eprop.py shows that the interpreter does what docs/eprop.md says, bit for bit; this
test shows that what it says is accurate enough to learn with. The chip's own pseudo-derivatives,
presynaptic traces and learning signals of one trial are recorded and fed to a float64 transcription
of Bellec et al.'s eligibility traces (eps, e, ebar, G = sum L ebar); the chip's 16-bit gradient must
agree with it, in particular for synapses whose input fell silent long before the scored window:
their eligibility survives only through the slowly decaying adaptation trace, a few thousandths,
which is what the task has to learn from. The float transcription filters ebar from the start of
the trial, the chip from 7 readout time constants before the scored window (0.1 % of ebar
forgotten). (A Q1.12 ebar rounded such values to a constant that
never decayed, a Q3.14 eps decayed them too fast or not at all: 38 % too large a gradient for
these synapses here, and several times too large in the evidence-accumulation bench.)
"""

from __future__ import annotations

import numpy as np

from nmc.backend import emit_binary
from nmc.driver import run_passes
from nmc.frontend.dsl import parse_dsl
from nmc.sim.spinnaker import SpiNNakerInterpreter
from nmc.target import load_target

T = 1500
SRC = """
dt = 1 ms
seed 3
input x[20]
input t[2]
population r[24] : alif(tau_m = 20 ms, v_rest = 0 mV, v_th = 10 mV, t_ref = 5 ms, tau_a = 2000 ms,
                        beta = uniform(0 mV, 0.3 mV, seed = 4), i_bias = 0.2 nA)
population y[2] : li(tau_m = 20 ms)
rule ep = eprop(eta = 0.1, feedback = random(seed = 3), rate_target = 10 Hz, rate_reg = 0)
connect x -> r : dense(weights = normal(1 nA, 4 nA, seed = 1), rule = ep)
connect r -> r : dense(weights = normal(0, 2 nA, seed = 2), rule = ep)
connect r -> y : dense(weights = normal(0, 0.05 nA, seed = 5), rule = ep)
schedule trial = 1500 ms
score y against t from 1350 ms
"""


def _run() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """One trial with learning; the chip's per-tick psi, zbar, L and its gradient, and the sources."""
    target = load_target("spinnaker")
    chip = SpiNNakerInterpreter(emit_binary(run_passes(parse_dsl(SRC), target), target))
    ep = chip.eprop
    rec: dict[str, list[np.ndarray]] = {"psi": [], "zbar": [], "L": []}
    traces = ep._traces

    def recording(blk, learning, full):       # the values the synapse loop reads, before it runs
        rec["psi"].append(ep.kernel.psi[blk.pos].copy())
        rec["zbar"].append(ep.zbar[blk.slot].copy())
        rec["L"].append(ep.L_now[blk.nrn].copy())
        traces(blk, learning, full)

    ep._traces = recording
    rng = np.random.default_rng(1)
    rate = np.full((T, 20), 0.01)
    rate[:300, :10] = 0.05                    # inputs 0-9: a burst at the start, then silence
    rate[300:, :10] = 0.0
    x = (rng.random((T, 20)) < rate).astype(np.uint8)
    tgt = np.zeros((T, 2))
    tgt[:, 1] = 1.0
    chip.run(T, {"x": x, "t": tgt})           # exactly one trial: the gradient is not applied yet
    blk = ep.learn
    src = ep.slot_src[np.minimum(blk.slot[0], ep.slot_src.size - 1)]
    return {k: np.array(v, dtype=np.float64) for k, v in rec.items()}, blk.grad / 2.0 ** 10, src, \
        chip.port_base["x"] + np.arange(10)


def _float_gradient(r: dict[str, np.ndarray], rho: np.ndarray, beta_n: np.ndarray, kappa: float) -> np.ndarray:
    """Bellec et al.'s traces in float64 (normalised by theta as on the chip: psi^ = theta psi)."""
    n, s = r["psi"].shape[1], r["zbar"].shape[2]
    eps, ebar, G = np.zeros((n, s)), np.zeros((n, s)), np.zeros((n, s))
    for psi, zbar, L in zip(r["psi"] / 2.0 ** 15, r["zbar"] / 2.0 ** 15, r["L"] / 2.0 ** 15):
        e = psi[:, None] * (zbar - eps)
        eps = (rho[:, None] - psi[:, None] * beta_n[:, None]) * eps + psi[:, None] * beta_n[:, None] * zbar
        ebar = kappa * ebar + (1 - kappa) * e
        G += L[:, None] * ebar
    return G


def test_the_chip_gradient_is_the_float_eprop_gradient() -> None:
    r, G_chip, src, silent = _run()
    target = load_target("spinnaker")
    chip = SpiNNakerInterpreter(emit_binary(run_passes(parse_dsl(SRC), target), target))
    ep = chip.eprop
    G = _float_gradient(r, ep.rho / 2.0 ** 32, ep.beta_n / 2.0 ** 15, ep.kappa / 2.0 ** 32)
    assert np.abs(r["L"]).max() > 0 and np.abs(G).max() > 1.0      # the window's learning signal arrived
    early = np.isin(src, silent)
    assert early.sum() == 10
    # The inputs silent for a second carry a gradient a quarter of the others', through eps~ alone.
    assert 0.1 < np.abs(G[:, early]).mean() / np.abs(G[:, ~early]).mean() < 0.5
    for cols in (early, ~early):
        a, b = G_chip[:, cols].ravel(), G[:, cols].ravel()
        # Q1.12 ebar and Q3.14 eps gave 0.84 and 1.38 on the silent inputs (docs/eprop.md, section 3).
        assert np.corrcoef(a, b)[0, 1] > 0.99
        assert abs(np.linalg.norm(a) / np.linalg.norm(b) - 1) < 0.05
