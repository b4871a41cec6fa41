"""Bit-exact test of the e-prop cores against an independent numpy transcription of docs/eprop.md §3.

The network (inputs -> recurrent ALIF with mixed adaptation and a refractory time -> leaky readout)
is compiled by the real pipeline from DSL text. ``reference`` takes only the host's words from the
binary (neuron words, initial weight words, feedback weights, the trial words) and runs the core
side on dense matrices with its own integer helpers: no ring buffers, rows, keys or routes, and no
nmc arithmetic except spinn_common's ``expk``/``expulr`` (checked against the library binary in
test_spinnaker.py). Every tick's membrane, every spike and the weights after each update (the
whole 32-bit words, and with Adam its moments, in one tick or spread over three) must equal the
interpreter's; a reference that stores traces by floor and fires 2 mV below the threshold
must give other spikes, so the comparison can fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nmc.backend import emit_binary
from nmc.binary.format import decode_binary, encode_binary
from nmc.driver import run_passes
from nmc.formats.spinnaker import expk, expulr
from nmc.frontend.dsl import parse_dsl
from nmc.sim.spinnaker import SpiNNakerInterpreter
from nmc.target import load_target

T, TRIALS = 40, 5
SRC = """
dt = 1 ms
seed 2
input x[6]
input t[2]
population r[5] : alif(tau_m = 20 ms, v_rest = 0 mV, v_th = 10 mV, t_ref = 3 ms, tau_a = 200 ms,
                       beta = uniform(0 mV, 4 mV, seed = 4), i_bias = 0.3 nA)
population y[2] : li(tau_m = 2 ms)
rule ep = eprop(eta = ETA, feedback = random(seed = 3), rate_target = 20 Hz, rate_reg = 0.05, loss = LOSS, update = UPD)
rule eo = eprop(eta = ETO, feedback = random(seed = 3), rate_target = 20 Hz, rate_reg = 0.05, loss = LOSS, update = UPD)
connect x -> r : dense(weights = normal(2 nA, 4 nA, seed = 1), rule = ep)
connect r -> r : dense(weights = normal(0, 3 nA, seed = 2), rule = ep)
connect r -> y : dense(weights = normal(0, 2 nA, seed = 5), rule = eo)
schedule trial = 40 ms
schedule batch = 2
score y against t from 25 ms
probe r.v
probe r.spikes
probe y.v
"""


def amul(a, b):
    return (np.asarray(a, np.int64) * np.asarray(b, np.int64)) >> 15


def dmul(a, d):
    return (np.asarray(a, np.int64) * np.asarray(d, np.int64)) >> 32


def kdiv(a, b):
    return (np.asarray(a, np.int64) << 15) // np.asarray(b, np.int64)


ROUND = [True]
#: The reference's last 32-bit plastic words and Adam moments, (post, pre) as the chip's blocks.
FULL: dict = {}


def q(x, bits, frac):
    s = 15 - frac
    half = (1 << (s - 1)) if ROUND[0] else 0
    return np.clip((np.asarray(x, np.int64) + half) >> s, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def small_float(x, keep, top):
    """A trace's storage: the value with ``keep`` significant bits, ties away from zero, at most ``top``."""
    x = np.asarray(x, np.int64)
    a = np.abs(x)
    k = np.zeros_like(a)
    while np.any((a >> (k + keep)) > 0):      # shift until ``keep`` bits are left
        k += (a >> (k + keep)) > 0
    half = np.where(k > 0, np.left_shift(1, np.maximum(k - 1, 0)), 0) if ROUND[0] else 0
    m = np.minimum(((a + half) >> k) << k, top)
    return np.sign(x) * m


def step_words(W32, G, mant, exp, frac):
    """W32 - round(G mant 2^-(exp + frac - 16)): the 32-bit plastic words after an update."""
    p = G * mant
    s = exp + frac - 16
    d = np.where(s > 0, (p + np.left_shift(1, np.maximum(s - 1, 0))) >> np.maximum(s, 0),
                 p << np.maximum(-s, 0))
    return np.clip(W32 - d, -(1 << 31), (1 << 31) - 1)


def rsqrt(v):
    """1/sqrt(v) ~ r 2^-16 2^-h: v shifted right by an even 2h to below 1024, r from the 256-entry
    table of round(2^16 / sqrt(4 i + 2)) at its top 8 bits; r = 0 for v = 0."""
    v = np.asarray(v, np.int64)
    h = np.zeros_like(v)
    while np.any((v >> (2 * h)) >= 1024):
        h += (v >> (2 * h)) >= 1024
    i = (v >> (2 * h)) >> 2
    return np.where(v > 0, np.rint(65536 / np.sqrt(4.0 * i + 2)).astype(np.int64), 0), h


class Adam:
    """The chip's Adam (docs/eprop.md, "Adam") on one block's plastic words W (post, pre)."""

    B1, B2 = (1 << 32) - (6554 << 16), (1 << 32) - (1049 << 12)

    def __init__(self, shape):
        self.m, self.v = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
        self.p1 = self.p2 = 1 << 32

    def k(self):
        self.p1, self.p2 = (self.p1 * self.B1) >> 32, (self.p2 * self.B2) >> 32
        return (math.isqrt(((1 << 32) - self.p2) << 32) << 16) // ((1 << 32) - self.p1)

    def step(self, W, g, k, mant, exp, cols):
        m, v = self.m[:, cols], self.v[:, cols]
        m = small_float(m + ((((g << 4) - m) * 6554 + (1 << 15)) >> 16), 12, 4095 << 14)
        v = small_float(v + (((((g * g) << 10) - v) * 1049 + (1 << 19)) >> 20), 11, 2047 << 30)
        self.m[:, cols], self.v[:, cols] = m, v
        r, h = rsqrt(v)
        a = (k * m * r + np.left_shift(1, 14 + h)) >> (15 + h)
        W = W.copy()
        W[:, cols] = step_words(W[:, cols], a, mant, exp, 16)
        return W


def reference(b, x: np.ndarray, tgt: np.ndarray, shifted: bool = False) -> tuple[list, list]:
    """Membranes and spikes per tick and the weights after the run (x: (ticks, 6), tgt: (ticks, 2))."""
    s, m = b.sections, b.meta["eprop"]
    rec = np.arange(5)                       # global neuron ids: r is core 0, y core 1
    w = {k: s[f"nrn_ep_{k}"].astype(np.int64) for k in ("tau_m", "tau_a", "theta", "beta", "bias", "tau_refrac",
                                                       "lr_mant", "lr_exp")}
    ts = 32768
    al, rho = expulr(-kdiv(ts, w["tau_m"][rec])), expulr(-kdiv(ts, w["tau_a"][rec]))
    kap = int(expulr(-kdiv(ts, w["tau_m"][5:7]))[0])
    th, beta, bias = w["theta"][rec], w["beta"][rec], w["bias"]
    inv_th, bn = kdiv(32768, th), kdiv(beta, th)
    nref = (kdiv(w["tau_refrac"][rec], ts) + 32767) >> 15
    fb = s["nrn_ep_fb"].astype(np.int64).reshape(-1, 2)[rec]
    chip = SpiNNakerInterpreter(b)
    W = chip.plastic_weights()
    # The plastic words (weight word << 16 | fraction; the fraction starts at 0), as (post, pre).
    W_r = np.hstack([W["x->r"].T, W["r->r"].T]) << 16
    W_y = W["r->y"].T << 16
    sh_r, sh_y = int(b.sections["core_shift_exc"][0]), int(b.sections["core_shift_exc"][1])
    gam, f0, creg = m["gamma"], m["rate_target"], m["rate_reg"]
    tau_out = w["tau_m"][5] / 32768                       # ms (dt = 1 ms)
    ebar_from = max(0, m["window_from"] - int(np.ceil(7 * tau_out)))
    assert 0 < ebar_from < m["window_from"]               # the test covers both parts of a trial
    vs, zs, ys = [], [], []
    G = np.zeros((5, 11), np.int64)
    Go = np.zeros((2, 5), np.int64)
    trials = 0
    adam = m["update"] == "adam"
    K = m["adam_ticks"] if adam else 0
    ad_r, ad_y, chunk, k_t = Adam((5, 11)), Adam((2, 5)), K, 0
    for tr in range(TRIALS):
        if tr > 0:
            trials += 1
            fr = cnt * m["rate_scale"] - f0
            qj = amul(amul(creg, fr), dmul(psum, m["inv_ticks"]))
            G = q((G << 5) + amul(qj[:, None], dmul(zsum[:11], m["inv_ticks"])[None, :]), 16, 10)
            if trials % 2 == 0 and adam:         # spread over the first K ticks of this trial
                k_t = ad_r.k()
                ad_y.k()
                chunk = 0
            elif trials % 2 == 0:
                if m["update"] == "sign":            # -eta sign(G): the factor is the step itself
                    W_r = step_words(W_r, np.sign(G), w["lr_mant"][rec][:, None], w["lr_exp"][rec][:, None], 0)
                    W_y = step_words(W_y, np.sign(Go), w["lr_mant"][5:7][:, None], w["lr_exp"][5:7][:, None], 0)
                else:
                    W_r = step_words(W_r, G, w["lr_mant"][rec][:, None], w["lr_exp"][rec][:, None], 10)
                    W_y = step_words(W_y, Go, w["lr_mant"][5:7][:, None], w["lr_exp"][5:7][:, None], 15)
                G[:] = 0
                Go[:] = 0
        w_in, w_rec, w_out = (W_r[:, :6] >> 16).T, (W_r[:, 6:] >> 16).T, (W_y >> 16).T
        v = np.zeros(5, np.int64); a = np.zeros(5, np.int64); ref = np.zeros(5, np.int64)
        z = np.zeros(5, bool); y = np.zeros(2, np.int64)
        zb = np.zeros(16, np.int64)          # columns: x (6), r (5) for r; r (5) for y
        eps = np.zeros((5, 11), np.int64)    # units of 2^-22
        eb = np.zeros((5, 11), np.int64)     # units of 2^-22
        L_next = np.zeros(5, np.int64)
        cnt = np.zeros(5, np.int64); psum = np.zeros(5, np.int64); zsum = np.zeros(16, np.int64)
        for tau in range(T):
            k = tr * T + tau
            pre = np.concatenate([x[k - 1] if tau else np.zeros(6), z]) if tau else np.zeros(11)
            pre = pre.astype(bool) & (tau > 0)
            wr = np.vstack([w_in, w_rec])
            exc = np.minimum(np.where(wr > 0, wr, 0)[pre].sum(0), 65535) << sh_r
            inh = np.minimum(np.where(wr < 0, -wr, 0)[pre].sum(0), 65535) << sh_r
            zp = z.astype(np.int64)
            v = dmul(v, al) + exc - inh + bias[rec] - zp * th
            a = dmul(a, rho) + zp * 32768
            A = th + amul(beta, a)
            blocked = ref > 0
            z = ((v > A) if ROUND[0] else (v >= A - 65536)) & ~blocked
            ref = np.clip(ref + nref * z - 1, 0, nref)
            psi = np.where(blocked, 0, amul(gam, np.maximum(0, 32768 - np.abs(amul(v - A, inv_th)))))
            zr = pre[6:]
            eo = np.minimum(np.where(w_out > 0, w_out, 0)[zr].sum(0), 65535) << sh_y
            io = np.minimum(np.where(w_out < 0, -w_out, 0)[zr].sum(0), 65535) << sh_y
            y = dmul(y, kap) + eo - io + bias[5:7]
            vs.append(v.copy()); zs.append(z.copy()); ys.append(y.copy())
            if chunk < K:
                # Adam chunk ``chunk``: state columns [c S / K, (c + 1) S / K) of each block, at the
                # start of the tick (this tick's inputs were sent with the weights before it).
                cr, cy = slice(chunk * 11 // K, (chunk + 1) * 11 // K), slice(chunk * 5 // K, (chunk + 1) * 5 // K)
                gy = np.clip((Go[:, cy] + (1 << 12)) >> 13, -32767, 32767)
                W_r = ad_r.step(W_r, G[:, cr], k_t, w["lr_mant"][rec][:, None], w["lr_exp"][rec][:, None], cr)
                W_y = ad_y.step(W_y, gy, k_t, w["lr_mant"][5:7][:, None], w["lr_exp"][5:7][:, None], cy)
                G[:, cr] = 0
                Go[:, cy] = 0
                chunk += 1
                w_in, w_rec, w_out = (W_r[:, :6] >> 16).T, (W_r[:, 6:] >> 16).T, (W_y >> 16).T
            if tau == 0:
                continue
            decay = np.concatenate([np.full(11, al[0]), np.full(5, kap)])
            arrived = np.concatenate([pre, pre[6:]])
            zb = dmul(zb, decay) + arrived * 32768
            zsum += zb
            L_now, L_next = L_next, np.zeros(5, np.int64)
            cnt += z; psum += psi
            # Traces in units of 2^-22: e = psi (zbar - eps~); eps~ <- rho eps~ + beta~ e (14 significant
            # bits, up to 64); ebar filtered by kappa (10 significant bits, up to 4).
            d = (np.minimum(zb[None, :11], (1 << 24) - 1) << 7) - eps
            e_ = (psi[:, None] * d) >> 15
            eps = small_float(dmul(eps, rho[:, None]) + ((bn[:, None] * e_) >> 15), 14, ((1 << 14) - 1) << 14)
            if tau >= ebar_from:             # ebar is filtered from 7 readout time constants before the window
                eb = small_float(dmul(eb, kap) + dmul(e_, 0xFFFFFFFF - kap), 10, 1023 << 14)
            if np.any(L_now):
                G = np.clip(G + ((L_now[:, None] * eb + (1 << 26)) >> 27), -32768, 32767)
            if tau >= m["window_from"]:
                tv = np.rint(tgt[k] * 32768).astype(np.int64)
                if m["loss"] == "cross_entropy":
                    ex = expk(y - y.max())
                    err = kdiv(ex, ex.sum()) - tv
                else:
                    err = y - tv
                Go = Go + amul(err[:, None], zb[None, 11:])
                L = (fb * err[None, :] >> 12).sum(1)
                if shifted:
                    G = np.clip(G + ((L[:, None] * eb + (1 << 26)) >> 27), -32768, 32767)
                else:
                    L_next = L
    FULL.update(W_r=W_r, W_y=W_y, m_r=ad_r.m, v_r=ad_r.v, m_y=ad_y.m, v_y=ad_y.v)
    return [vs, zs, ys], [(W_r[:, :6] >> 16).T, (W_r[:, 6:] >> 16).T, (W_y >> 16).T]


@pytest.mark.parametrize("loss, update, chunks", [("cross_entropy", "gradient", 0), ("mse", "gradient", 0),
                                                  ("cross_entropy", "sign", 0), ("cross_entropy", "adam", 0),
                                                  ("mse", "adam", 3)])
def test_eprop_cores_match_the_transcription_exactly(loss: str, update: str, chunks: int) -> None:
    target = load_target("spinnaker")
    etas = {"gradient": ("3000", "0.05"), "sign": ("0.3", "0.02"), "adam": ("0.3", "0.02")}[update]
    src = SRC.replace("LOSS", loss).replace("UPD", update).replace("ETA", etas[0]).replace("ETO", etas[1])
    net = run_passes(parse_dsl(src), target)
    b = decode_binary(encode_binary(emit_binary(net, target)))
    if update == "adam":
        assert b.meta["eprop"]["adam_ticks"] == 1          # a small core's update fits one tick
        if chunks:                                          # spread it as a larger core's would be
            b.meta["eprop"]["adam_ticks"] = chunks
    rng = np.random.default_rng(5)
    ticks = T * TRIALS + 1
    x = (rng.random((ticks, 6)) < 0.15).astype(np.uint8)
    tgt = np.zeros((ticks, 2))
    tgt[:, 0] = 1.0 if loss == "cross_entropy" else 0.5
    if loss == "mse":
        tgt[:, 1] = np.sin(np.arange(ticks) / 7.0)
    chip = SpiNNakerInterpreter(b)
    res = chip.run(ticks, {"x": x, "t": tgt})
    (vs, zs, ys), (w_in, w_rec, w_out) = reference(b, x, tgt)
    assert np.array_equal(res.probes["r.v"][:len(vs)], np.array(vs))
    assert np.array_equal(res.probes["r.spikes"][:len(zs)], np.array(zs))
    assert np.array_equal(res.probes["y.v"][:len(ys)], np.array(ys))
    assert res.probes["r.spikes"].sum() > 20
    W = chip.plastic_weights()
    assert chip.eprop.trials_done == TRIALS   # the extra tick applied the last batch
    assert not np.array_equal(W["x->r"], SpiNNakerInterpreter(b).plastic_weights()["x->r"])  # it learned
    assert np.array_equal(W["x->r"], w_in) and np.array_equal(W["r->r"], w_rec) and np.array_equal(W["r->y"], w_out)
    # The whole 32-bit words (the fraction below the weight word too) and, with Adam, the moments.
    ep = chip.eprop
    assert np.array_equal(ep.learn.weight, FULL["W_r"]) and np.array_equal(ep.out.weight, FULL["W_y"])
    if update == "adam":
        assert np.array_equal(ep.learn.m, FULL["m_r"]) and np.array_equal(ep.learn.v, FULL["v_r"])
        assert np.array_equal(ep.out.m, FULL["m_y"]) and np.array_equal(ep.out.v, FULL["v_y"])
        assert np.count_nonzero(ep.learn.v) > 20 and np.count_nonzero(ep.out.m) > 3
    ROUND[0] = False                      # floor storage and a threshold 2 mV lower
    try:
        (_, wrong_z, _), _ = reference(b, x, tgt)
    finally:
        ROUND[0] = True
    assert not np.array_equal(np.array(wrong_z), res.probes["r.spikes"][:len(zs)])
