"""Golden model of the synfire-gated spiking backprop circuit (Renner, Sheldon, Zlotnik, Tao, Sornborger).

This is the independent, non-spiking oracle that the spiking interpreter's run of the 12-phase
training circuit is checked against, weight for weight, after every sample. It is written only
from ``docs``-level knowledge of the circuit (docs/backprop.md: the phase table and its
Sources), in plain numpy, and imports nothing from ``nmc``.

Units and formats
-----------------
All weights are integer mantissas in units where **1024 is the neuron threshold** (weight exponent
0). Plastic weights use the 8-bit mixed-sign format: even integers in ``[WMIN, WMAX] = [-256, 254]``;
every update is followed by a clip to that range. One learning step is ``step = 2`` (one LSB).

The circuit keeps four plastic matrices:

- ``W1`` (n_x, n_h): x -> h (the three copies h, h<, h> stay identical, so one matrix models them),
- ``W2`` (n_h, n_o): h -> o (likewise for o, o<, o>),
- ``W2Tp`` (n_o, n_h): o -> h1T, initially ``W2.T``,
- ``W2Tm`` (n_o, n_h): oT- -> h1T, initially ``clip(-W2.T)``.

``W2Tp`` receives exactly the same updates as ``W2`` (transposed), so it stays equal to ``W2.T``
even in saturation. ``W2Tm`` receives the opposite updates, but in *different phases* (it is
potentiated by d- in phase 5 and depressed by d+ in phase 9), and the range is asymmetric
(``-(-256) = 256`` clips to 254, ``-(254) = -254`` is not the floor), so once ``W2`` saturates
``W2Tm`` may drift from ``-W2.T``; it is never re-synchronised (the chip has no way to do that).

On-chip order (one sample, the spec this module implements exactly)
-------------------------------------------------------------------
With x in {0,1}^n_x, one-hot t in {0,1}^n_o, window ``lo``/``hi`` (units of 1024):

1. ``a1 = x @ W1``; ``h = a1 > 512``; ``h_lt = a1 > lo*1024``; ``h_gt = a1 > hi*1024``.
2. ``a2 = h @ W2``; ``o = a2 > 512``; ``o_lt = a2 > lo*1024``; ``o_gt = a2 > hi*1024``.
3. ``dp = o_lt & t & ~o``; ``dm = o_lt & o & ~t & ~o_gt``.
4. Phase 5 (r1 = 1): ``W2[i,j] += step`` for h[i] & dp[j]; ``W2Tp[j,i] += step`` for dp[j] & h[i];
   ``W2Tm[j,i] += step`` for dm[j] & h[i]; clip.
5. Phase 6: ``z = dp @ W2Tp + dm @ W2Tm`` (after phase 5); ``d1p = z > 0``; ``c_h = h_lt & ~h_gt``.
6. Phase 7 (r1 = 1): ``hp = d1p & c_h``; ``W1[k,i] += step`` for x[k] & hp[i]; clip.
7. Phase 9 (r1 = 0): ``W2[i,j] -= step`` for h[i] & dm[j]; ``W2Tp[j,i] -= step`` for dm[j] & h[i];
   ``W2Tm[j,i] -= step`` for dp[j] & h[i]; clip.
8. Phase 10: ``z = dm @ W2Tp + dp @ W2Tm`` (after phase 9); ``d1m = z > 0``.
9. Phase 11 (r1 = 0): ``hm = d1m & c_h``; ``W1[k,i] -= step`` for x[k] & hm[i]; clip.

Each (pre, post) pair coincides at most once per phase, so each update is a single +-step.

The paper's window is ``lo = 0`` (box(a) = [0 < a <= 1]); this module defaults to ``lo = -1``
(a wider window that lets a silent output that should fire still learn; see
``bench/golden_xor_study.py``).

Readouts (forward pass, before learning): *spike* readout is correct iff ``o == t`` for every
output unit; *membrane* readout is correct iff ``argmax(a2) == argmax(t)`` (numpy argmax: first
index on ties). With a single output unit the membrane readout is trivially always correct.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "WMIN",
    "WMAX",
    "STEP",
    "THRESHOLD",
    "BackpropState",
    "clip_weights",
    "he_normal",
    "init_state",
    "forward",
    "train_sample",
    "train",
    "evaluate",
    "readouts",
    "shuffled_order",
    "xor_data",
    "encode_xor",
    "digits_data",
    "xor_solved",
    "presentations_to_solve",
]

WMIN = -256
"""Smallest 8-bit mixed-sign weight mantissa."""
WMAX = 254
"""Largest 8-bit mixed-sign weight mantissa (even values only)."""
STEP = 2
"""One learning step = one LSB of the 8-bit mixed-sign format."""
THRESHOLD = 1024
"""Neuron threshold mantissa: the unit of all weights and window bounds."""
HALF = 512
"""The ``g`` gate adds half a threshold: a gated neuron fires iff its input sum exceeds 512."""


def clip_weights(w: np.ndarray) -> np.ndarray:
    """Clip to the 8-bit mixed-sign range [-256, 254] (returns a new int64 array)."""
    return np.clip(np.asarray(w, dtype=np.int64), WMIN, WMAX)


@dataclass
class BackpropState:
    """The four plastic matrices of the circuit (int64 mantissas, 1024 = threshold).

    Attributes:
        W1: (n_x, n_h) input -> hidden.
        W2: (n_h, n_o) hidden -> output.
        W2Tp: (n_o, n_h) output -> h1T, the circuit's copy of ``+W2.T``.
        W2Tm: (n_o, n_h) oT- -> h1T, the circuit's copy of ``-W2.T``.
    """

    W1: np.ndarray
    W2: np.ndarray
    W2Tp: np.ndarray
    W2Tm: np.ndarray

    @classmethod
    def from_weights(cls, W1: np.ndarray, W2: np.ndarray) -> "BackpropState":
        """Build a state from W1 and W2; the transposes start as ``W2.T`` and ``clip(-W2.T)``.

        W1 and W2 are clipped to the range (they are not checked for evenness).
        """
        W1 = clip_weights(W1).copy()
        W2 = clip_weights(W2).copy()
        return cls(W1=W1, W2=W2, W2Tp=clip_weights(W2.T).copy(), W2Tm=clip_weights(-W2.T).copy())

    def copy(self) -> "BackpropState":
        """Deep copy (independent arrays)."""
        return BackpropState(
            W1=self.W1.copy(), W2=self.W2.copy(), W2Tp=self.W2Tp.copy(), W2Tm=self.W2Tm.copy()
        )

    def equals(self, other: "BackpropState") -> bool:
        """True iff all four matrices are identical."""
        return all(
            np.array_equal(getattr(self, k), getattr(other, k)) for k in ("W1", "W2", "W2Tp", "W2Tm")
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        """(n_x, n_h, n_o)."""
        return (self.W1.shape[0], self.W1.shape[1], self.W2.shape[1])


def he_normal(n_in: int, n_out: int, rng: np.random.Generator) -> np.ndarray:
    """He-normal init of the paper: N(0, 2/(n_in+n_out)) * 1024, clip to +-240, round down to even.

    ``floor(w / 2) * 2`` rounds towards minus infinity (-3.5 -> -4). Returns (n_in, n_out) int64.
    """
    w = rng.normal(0.0, np.sqrt(2.0 / (n_in + n_out)), (n_in, n_out)) * THRESHOLD
    w = np.clip(w, -240.0, 240.0)
    return (np.floor(w / 2.0) * 2.0).astype(np.int64)


def init_state(n_x: int, n_h: int, n_o: int, seed: int) -> BackpropState:
    """Initial state: ``rng = np.random.default_rng(seed)`` draws W1 = he_normal(n_x, n_h) then
    W2 = he_normal(n_h, n_o); ``W2Tp = W2.T``, ``W2Tm = clip(-W2.T)``."""
    rng = np.random.default_rng(seed)
    W1 = he_normal(n_x, n_h, rng)
    W2 = he_normal(n_h, n_o, rng)
    return BackpropState.from_weights(W1, W2)


def _binary(v: np.ndarray | Sequence[int], n: int, name: str) -> np.ndarray:
    a = np.asarray(v)
    if a.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {a.shape}")
    if not np.all((a == 0) | (a == 1)):
        raise ValueError(f"{name} must be binary (0/1)")
    return a.astype(bool)


def forward(state: BackpropState, x: np.ndarray, lo: float = -1.0, hi: float = 1.0) -> dict:
    """Forward pass (phases 1-3) without learning.

    Args:
        state: the weights.
        x: binary input vector of length n_x.
        lo, hi: the derivative window bounds in units of the threshold (1024).

    Returns:
        dict with ``x`` (bool), ``a1`` (int64 input sums of the hidden layer), ``h``, ``h_lt``,
        ``h_gt`` (bool), ``a2`` (int64 output sums), ``o``, ``o_lt``, ``o_gt`` (bool).
        ``h = a1 > 512``, ``h_lt = a1 > lo*1024``, ``h_gt = a1 > hi*1024`` (strict), same for o.
    """
    xb = _binary(x, state.W1.shape[0], "x")
    a1 = xb.astype(np.int64) @ state.W1
    h = a1 > HALF
    a2 = h.astype(np.int64) @ state.W2
    lo_th = lo * THRESHOLD
    hi_th = hi * THRESHOLD
    return {
        "x": xb,
        "a1": a1,
        "h": h,
        "h_lt": a1 > lo_th,
        "h_gt": a1 > hi_th,
        "a2": a2,
        "o": a2 > HALF,
        "o_lt": a2 > lo_th,
        "o_gt": a2 > hi_th,
    }


def _outer_update(w: np.ndarray, rows: np.ndarray, cols: np.ndarray, delta: int) -> None:
    """In place: ``w[i, j] += delta`` for rows[i] & cols[j], then clip to [WMIN, WMAX]."""
    if rows.any() and cols.any():
        w += delta * np.outer(rows, cols).astype(np.int64)
        np.clip(w, WMIN, WMAX, out=w)


def train_sample(
    state: BackpropState,
    x: np.ndarray,
    t: np.ndarray,
    lo: float = -1.0,
    hi: float = 1.0,
    step: int = STEP,
    margin: float = 0.0,
    lo_h: float | None = None,
    d_th: float = 0.0,
) -> dict:
    """One 12-phase training cycle in the on-chip update order; updates ``state`` in place.

    Args:
        state: the weights (modified in place).
        x: binary input (n_x,).
        t: binary target (n_o,), one-hot for classification.
        lo, hi: derivative window bounds (units of 1024).
        step: weight change per coincidence (2 = one LSB).
        margin: the target output learns while its sum a2 <= (0.5 + margin) * 1024, another output
            while a2 > (0.5 - margin) * 1024 (0: the output spike decides both).
        lo_h: the hidden layer's lower window edge, if not ``lo``.
        d_th: the error units' threshold: d1 = [W2ᵀ(d+ - d-) > d_th * 1024] (the paper's: 0).

    Returns:
        The :func:`forward` dict (computed before any update) plus ``t`` (bool), ``dp``, ``dm``
        (output errors), ``c_h`` (hidden derivative gate), ``z_p``/``z_m`` (h1T input sums in
        phases 6 and 10), ``d1p``, ``d1m`` (backpropagated error signs), ``hp``, ``hm`` (hidden
        units that fire in phases 7 and 11), ``spike_correct`` and ``membrane_correct``.
    """
    f = forward(state, x, lo, hi)
    tb = _binary(t, state.W2.shape[1], "t")
    h, xb = f["h"], f["x"]
    o, o_lt, o_gt = f["o"], f["o_lt"], f["o_gt"]

    o_pos = f["a2"] > (0.5 + margin) * THRESHOLD
    o_neg = f["a2"] > (0.5 - margin) * THRESHOLD
    dp = o_lt & tb & ~o_pos
    dm = o_lt & o_neg & ~tb & ~o_gt

    # Phase 5: potentiation (r1 = 1) of h.d+ (W2, W2Tp) and d-.h (W2Tm).
    _outer_update(state.W2, h, dp, +step)
    _outer_update(state.W2Tp, dp, h, +step)
    _outer_update(state.W2Tm, dm, h, +step)

    # Phase 6: h1T sees W2Tp from o (fired with d+) and W2Tm from oT- (fired with d-).
    z_p = dp.astype(np.int64) @ state.W2Tp + dm.astype(np.int64) @ state.W2Tm
    d1p = z_p > d_th * THRESHOLD
    h_lt = f["h_lt"] if lo_h is None else f["a1"] > lo_h * THRESHOLD
    c_h = h_lt & ~f["h_gt"]

    # Phase 7: W1 potentiation.
    hp = d1p & c_h
    _outer_update(state.W1, xb, hp, +step)

    # Phase 9: depression (r1 = 0) of h.d- (W2, W2Tp) and d+.h (W2Tm).
    _outer_update(state.W2, h, dm, -step)
    _outer_update(state.W2Tp, dm, h, -step)
    _outer_update(state.W2Tm, dp, h, -step)

    # Phase 10: roles swapped: o carries d-, oT- carries d+.
    z_m = dm.astype(np.int64) @ state.W2Tp + dp.astype(np.int64) @ state.W2Tm
    d1m = z_m > d_th * THRESHOLD

    # Phase 11: W1 depression.
    hm = d1m & c_h
    _outer_update(state.W1, xb, hm, -step)

    f.update(
        t=tb,
        dp=dp,
        dm=dm,
        c_h=c_h,
        z_p=z_p,
        d1p=d1p,
        hp=hp,
        z_m=z_m,
        d1m=d1m,
        hm=hm,
    )
    f.update(zip(("spike_correct", "membrane_correct"), readouts(f["o"], f["a2"], tb)))
    return f


def readouts(o: np.ndarray, a2: np.ndarray, t: np.ndarray) -> tuple[bool, bool]:
    """(spike correct, membrane correct) of one sample: ``all(o == t)`` and
    ``argmax(a2) == argmax(t)`` (first index on ties)."""
    t = np.asarray(t).astype(bool)
    return bool(np.array_equal(np.asarray(o, bool), t)), bool(np.argmax(a2) == np.argmax(t))


def shuffled_order(n_samples: int, n_passes: int, seed: int | np.random.Generator) -> np.ndarray:
    """Concatenation of ``n_passes`` independent permutations of ``range(n_samples)``.

    ``seed`` is an int (``np.random.default_rng([seed, 1])`` is used, a stream independent of
    :func:`init_state`'s ``default_rng(seed)``) or a Generator (used as is).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng([int(seed), 1])
    if n_passes <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([rng.permutation(n_samples) for _ in range(n_passes)]).astype(np.int64)


def train(
    state: BackpropState,
    X: np.ndarray,
    T: np.ndarray,
    epochs: int = 1,
    order: None | int | np.random.Generator | Sequence[int] | np.ndarray = None,
    lo: float = -1.0,
    hi: float = 1.0,
    step: int = STEP,
    record: bool = False,
) -> list[BackpropState]:
    """Train in place, one :func:`train_sample` per presentation.

    Args:
        state: weights, modified in place.
        X: (n_samples, n_x) binary inputs.  T: (n_samples, n_o) binary targets.
        epochs: number of passes.
        order: presentation order:
            - ``None``: ``0..n_samples-1`` in each epoch;
            - an int seed or a Generator: a fresh permutation per epoch,
              ``shuffled_order(n_samples, epochs, order)``;
            - a sequence/array of sample indices: the full presentation sequence, used once
              (``epochs`` is then ignored).
        lo, hi, step: see :func:`train_sample`.
        record: if True, return a snapshot (:class:`BackpropState` copy) after every presentation.

    Returns:
        The list of snapshots (empty if ``record`` is False).
    """
    X = np.asarray(X)
    T = np.asarray(T)
    n = X.shape[0]
    if T.shape[0] != n:
        raise ValueError("X and T must have the same number of samples")
    if order is None:
        seq = np.tile(np.arange(n), epochs)
    elif isinstance(order, (int, np.integer, np.random.Generator)):
        seq = shuffled_order(n, epochs, order)
    else:
        seq = np.asarray(order, dtype=np.int64)
    snaps: list[BackpropState] = []
    for k in seq:
        train_sample(state, X[k], T[k], lo=lo, hi=hi, step=step)
        if record:
            snaps.append(state.copy())
    return snaps


def evaluate(
    state: BackpropState, X: np.ndarray, T: np.ndarray, lo: float = -1.0, hi: float = 1.0
) -> tuple[float, float]:
    """(spike accuracy, membrane accuracy) over a data set, no learning.

    Vectorised over samples; equals calling :func:`forward` and :func:`readouts` per sample
    (``lo``/``hi`` do not influence either readout; they are accepted for symmetry).
    """
    X = np.asarray(X).astype(np.int64)
    T = np.asarray(T).astype(bool)
    h = (X @ state.W1) > HALF
    a2 = h.astype(np.int64) @ state.W2
    o = a2 > HALF
    spike = np.all(o == T, axis=1)
    membrane = np.argmax(a2, axis=1) == np.argmax(T, axis=1)
    return float(spike.mean()), float(membrane.mean())


def xor_data(copies: int = 2, bias_units: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The four XOR patterns, encoded so that the circuit can represent XOR.

    With |w| <= 254 and the 512 firing threshold a unit needs at least three active inputs to
    fire, so two raw bits cannot drive anything. Each input bit b is therefore encoded one-hot
    as ``copies`` units equal to b followed by ``copies`` units equal to 1 - b; then
    ``bias_units`` always-on units. Unit layout (n_x = 4*copies + bias_units)::

        [b0]*copies + [1-b0]*copies + [b1]*copies + [1-b1]*copies + [1]*bias_units

    Every pattern has exactly 2*copies + bias_units active inputs (7 by default).

    Returns:
        X (4, n_x) int64 in pattern order (b0, b1) = (0,0), (0,1), (1,0), (1,1);
        T (4, 1) int64 with T = b0 XOR b1 (a single output unit).
    """
    X, T = [], []
    for b0 in (0, 1):
        for b1 in (0, 1):
            row = [b0] * copies + [1 - b0] * copies + [b1] * copies + [1 - b1] * copies
            row += [1] * bias_units
            X.append(row)
            T.append([b0 ^ b1])
    return np.asarray(X, dtype=np.int64), np.asarray(T, dtype=np.int64)


encode_xor = xor_data
"""Alias of :func:`xor_data`."""


def xor_solved(state: BackpropState, X: np.ndarray, T: np.ndarray) -> bool:
    """True iff every pattern is correct by the spike readout."""
    return evaluate(state, X, T)[0] == 1.0


def presentations_to_solve(
    state: BackpropState,
    X: np.ndarray,
    T: np.ndarray,
    seed: int,
    max_presentations: int = 3000,
    lo: float = -1.0,
    hi: float = 1.0,
) -> int | None:
    """Train (in place) one pattern per presentation, cycling through reshuffled passes
    (``shuffled_order(len(X), ., seed)``), until all patterns are correct by the spike readout.

    The check is made after every presentation (and once before the first: 0 if already solved).
    Returns the number of presentations needed, or None if not solved within ``max_presentations``.
    """
    n = X.shape[0]
    seq = shuffled_order(n, -(-max_presentations // n), seed)[:max_presentations]
    if xor_solved(state, X, T):
        return 0
    for k, idx in enumerate(seq, start=1):
        train_sample(state, X[idx], T[idx], lo=lo, hi=hi)
        if xor_solved(state, X, T):
            return k
    return None


THERMOMETER_LEVELS = (2, 4, 6, 8, 10, 12, 14)


def digits_thermometer(seed: int = 0, levels: tuple[int, ...] = THERMOMETER_LEVELS
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits with a thermometer code: one binary input per (level, pixel), 1 iff the pixel
    (0..16) exceeds the level — 7 levels give 448 inputs. Same split as :func:`digits_data`.
    A binary circuit then sees a pixel's intensity (bench/backprop_study.py measured this
    encoding as the main lever for accuracy on digits)."""
    parts = [digits_data(seed, threshold=k) for k in levels]
    X = np.concatenate([p[0] for p in parts], axis=1)
    Xt = np.concatenate([p[2] for p in parts], axis=1)
    return X, parts[0][1], Xt, parts[0][3]


def digits_data(
    seed: int = 0, threshold: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits, binarised, one-hot, with a seeded 80/20 split.

    Pixels (0..16) become 1 iff value > ``threshold``; 64 inputs, 10 one-hot outputs. The split:
    ``perm = np.random.default_rng(seed).permutation(1797)``; the first ``1797 - 360 = 1437``
    indices of ``perm`` are the training set, the last ``360 = ceil(0.2 * 1797)`` the test set
    (in permutation order).

    Returns:
        X_train (1437, 64), T_train (1437, 10), X_test (360, 64), T_test (360, 10), all int64.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.data > threshold).astype(np.int64)
    T = np.eye(10, dtype=np.int64)[d.target]
    n = X.shape[0]
    n_test = int(np.ceil(0.2 * n))
    perm = np.random.default_rng(seed).permutation(n)
    tr, te = perm[: n - n_test], perm[n - n_test :]
    return X[tr], T[tr], X[te], T[te]
