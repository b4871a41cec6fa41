"""Golden model of binary spiking backprop for any depth, in the order the deep circuit runs it.

Layers 0..L (0: binary input, L: output); weights W[l] (layer l-1 -> l) as 8-bit mixed-sign
mantissas (units of 1024; even, in [-256, 254]); for l >= 2 two transposes Tp[l] (= W[l]ᵀ) and
Tm[l] (= -W[l]ᵀ), kept as separate matrices as on the chip. Per sample:

    forward: a_l = h_{l-1} W_l;  h_l = a_l > 512;  lt_l = a_l > lo·1024;  gt_l = a_l > hi·1024
    output error: E+ = lt_L ∧ t ∧ ¬h_L ;  E− = lt_L ∧ h_L ∧ ¬t ∧ ¬gt_L
    for l = L .. 2:
        W_l += 2·h_{l−1} ⊗ E+ ;  Tp_l += 2·E+ ⊗ h_{l−1} ;  Tm_l += 2·E− ⊗ h_{l−1}       (clip)
        δ+ = [E+·Tp_l + E−·Tm_l > 0] ∧ f'_{l−1}          f'_l = lt_l ∧ ¬gt_l
        W_l −= 2·h_{l−1} ⊗ E− ;  Tp_l −= 2·E− ⊗ h_{l−1} ;  Tm_l −= 2·E+ ⊗ h_{l−1}       (clip)
        δ− = [E−·Tp_l + E+·Tm_l > 0] ∧ f'_{l−1}
        E± ← δ±
    W_1 += 2·x ⊗ E+ ;  W_1 −= 2·x ⊗ E−                                                (clip)

For one hidden layer this equals the published circuit's order (W1 changes never feed the error
computation), which nmc/reference/golden_backprop.py implements independently; the test checks both agree.
"""

from __future__ import annotations

import numpy as np

WMIN, WMAX, STEP = -256, 254, 2


def he_normal_all(sizes: list[int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        w = rng.normal(0, np.sqrt(2 / (a + b)), (a, b)) * 1024
        out.append((np.floor(np.clip(w, -240, 240) / 2) * 2).astype(np.int64))
    return out


class DeepState:
    def __init__(self, weights: list[np.ndarray]) -> None:
        self.W = [None] + [np.asarray(w, dtype=np.int64).copy() for w in weights]
        L = len(weights)
        self.Tp = {l: self.W[l].T.copy() for l in range(2, L + 1)}
        self.Tm = {l: np.clip(-self.W[l].T, WMIN, WMAX) for l in range(2, L + 1)}

    @property
    def L(self) -> int:
        return len(self.W) - 1


def _add(m: np.ndarray, rows: np.ndarray, cols: np.ndarray, delta: int) -> np.ndarray:
    m[np.ix_(rows, cols)] += delta
    return np.clip(m, WMIN, WMAX, out=m)


def train_sample(s: DeepState, x: np.ndarray, t: np.ndarray, lo: float = -1.0, hi: float = 1.0,
                 margin: float = 0.0, lo_h: float | None = None, d_th: float = 0.0) -> dict:
    L = s.L
    h = [np.asarray(x, dtype=bool)]
    lt, gt, a = [None], [None], [None]
    for l in range(1, L + 1):
        al = h[l - 1].astype(np.int64) @ s.W[l]
        a.append(al)
        h.append(al > 512)
        lt.append(al > (lo if l == L or lo_h is None else lo_h) * 1024)
        gt.append(al > hi * 1024)
    t = np.asarray(t, dtype=bool)
    ep = lt[L] & t & ~(a[L] > (0.5 + margin) * 1024)
    em = lt[L] & (a[L] > (0.5 - margin) * 1024) & ~t & ~gt[L]
    out = {"h": h, "a_out": a[L], "o": h[L]}
    for l in range(L, 1, -1):
        prev = h[l - 1]
        _add(s.W[l], prev, ep, STEP)
        _add(s.Tp[l], ep, prev, STEP)
        _add(s.Tm[l], em, prev, STEP)
        fprime = lt[l - 1] & ~gt[l - 1]
        dp = ((ep.astype(np.int64) @ s.Tp[l] + em.astype(np.int64) @ s.Tm[l]) > d_th * 1024) & fprime
        _add(s.W[l], prev, em, -STEP)
        _add(s.Tp[l], em, prev, -STEP)
        _add(s.Tm[l], ep, prev, -STEP)
        dm = ((em.astype(np.int64) @ s.Tp[l] + ep.astype(np.int64) @ s.Tm[l]) > d_th * 1024) & fprime
        ep, em = dp, dm
    _add(s.W[1], h[0], ep, STEP)
    _add(s.W[1], h[0], em, -STEP)
    return out
