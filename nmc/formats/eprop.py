"""Fixed-point formats of the SpiNNaker-like chip's e-prop cores (docs/eprop.md, "Number formats").

Every dynamic value the cores compute with is a REAL (s16.15, a raw int64 word as in
:mod:`nmc.formats.spinnaker`) or, for the eligibility trace, a finer fixed-point value; what is
*stored* per synapse is narrower, so that 32 neurons with 250 synapses each fit one core's DTCM:

============  =======  ==============  ======================================================
state         bits     format          holds
============  =======  ==============  ======================================================
``eps``       18       float s.4.13    beta/theta times the adaptation eligibility, in units of
                                       2^-22: sign, 4-bit exponent, 13-bit fraction with an
                                       implicit leading one (+-64, 14 significant bits)
``ebar``      14       float s.4.9     the readout-filtered eligibility trace, normalised, in
                                       units of 2^-22 (+-4, 10 significant bits)
``grad``      16       Q5.10           the gradient accumulated over a trial (batch), normalised
``grad_out``  32       s16.15          the readout synapses' gradient (few synapses: a whole word)
``fb``        16       Q3.12           a fixed random feedback weight B (+-8)
============  =======  ==============  ======================================================

A REAL is stored in a fixed-point format by rounding half up to the format's fraction bits (add
half an LSB, arithmetic shift right) and saturating to its width; it is loaded back by a left
shift. Round-to-nearest, not the floor of the neuron arithmetic, because a trace that decays by a
few LSB per tick would otherwise drift down by half an LSB every tick.

Why the traces are small floats: ``ebar`` decays by (1 - kappa) ~ 5 % per tick and ``eps`` by
(1 - rho) ~ 0.05 %, and both must still carry the eligibility of a cue seen a second earlier, a few
thousandths. In a fixed-point format a value whose decay is below half an LSB never decays (round
to nearest): with a Q1.12 ``ebar`` every |ebar| below 10 LSB (0.0025) stuck at its value for the
rest of the trial and, multiplied by the learning signal of every scored tick, gave synapses a
gradient they do not have, larger than the true gradient of the cue synapses; a Q3.14 ``eps`` stuck
below 0.06 and, computed in s16.15 with the floor of ``decay_mul``, decayed up to a third too fast
above it. With a fixed number of significant bits at every magnitude the decay always moves the
stored value; tests/test_eprop_gradient.py holds the result to the float64 gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .spinnaker import S1615_FRAC


@dataclass(frozen=True)
class QFormat:
    """A signed fixed-point storage format: ``bits`` wide, ``frac`` fraction bits."""

    name: str
    bits: int
    frac: int

    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def store(self, real: np.ndarray) -> tuple[np.ndarray, int]:
        """A REAL (raw s16.15) rounded half up to this format and saturated; (stored, saturations)."""
        shift = S1615_FRAC - self.frac
        q = (np.asarray(real, dtype=np.int64) + (1 << (shift - 1))) >> shift if shift > 0 \
            else np.asarray(real, dtype=np.int64) << -shift
        return self.saturate(q)

    def saturate(self, q: np.ndarray) -> tuple[np.ndarray, int]:
        """Values in this format's units clipped to its width; (clipped, how many were outside)."""
        q = np.asarray(q, dtype=np.int64)
        lo, hi = int(q.min(initial=0)), int(q.max(initial=0))
        if lo >= self.lo and hi <= self.hi:      # the common case: nothing to clip
            return q, 0
        sat = int(np.count_nonzero((q < self.lo) | (q > self.hi)))
        return np.clip(q, self.lo, self.hi), sat

    def load(self, q: np.ndarray) -> np.ndarray:
        """The stored value as a REAL."""
        return np.asarray(q, dtype=np.int64) << (S1615_FRAC - self.frac)


@dataclass(frozen=True)
class MiniFloat:
    """A signed floating-point storage format for integers (values in units of 2^-``frac``): a sign
    bit, an ``exp_bits`` exponent E and a ``man_bits`` fraction F with an implicit leading one;
    the magnitude is F for E = 0 (subnormal) and (2^man_bits + F) << (E - 1) otherwise, so every
    magnitude below 2^(man_bits + 1) is exact and larger ones keep man_bits + 1 significant bits."""

    name: str
    exp_bits: int
    man_bits: int
    frac: int

    @property
    def bits(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def max_value(self) -> int:
        """The largest magnitude (all exponent and fraction bits set)."""
        return ((2 << self.man_bits) - 1) << ((1 << self.exp_bits) - 2)

    def round(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """The nearest representable values (ties away from zero), saturating; (values, saturations).
        The core does this with a count-leading-zeros, a shift and an add; here the rounding is done
        on the bits of the exactly converted float64 (|x| < 2^53): adding half of the lowest kept
        fraction bit to the bit pattern and clearing the bits below rounds the magnitude half up, a
        carry moving into the exponent as it should, and leaves values of man_bits + 1 bits or
        fewer unchanged."""
        f = np.asarray(x, dtype=np.int64).astype(np.float64)
        bits = f.view(np.int64)
        drop = 52 - self.man_bits                     # float64 fraction bits below the kept ones
        bits += np.int64(1) << (drop - 1)
        bits &= ~((np.int64(1) << drop) - 1)
        out = f.astype(np.int64)
        top = self.max_value
        if int(out.max(initial=0)) <= top and int(out.min(initial=0)) >= -top:
            return out, 0
        sat = int(np.count_nonzero(np.abs(out) > top))
        return np.clip(out, -top, top), sat

    def encode(self, values: np.ndarray) -> np.ndarray:
        """The stored codes (sign << (bits - 1) | E << man_bits | F) of representable values."""
        v = np.asarray(values, dtype=np.int64)
        a = np.abs(v)
        nb = np.frexp(a.astype(np.float64))[1]
        e = np.where(nb <= self.man_bits, 0, nb - self.man_bits)
        f = np.where(e == 0, a, (a >> np.maximum(e - 1, 0)) - (1 << self.man_bits))
        if np.any(e >= (1 << self.exp_bits)) or np.any(np.where(e == 0, a, (f + (1 << self.man_bits)) << np.maximum(e - 1, 0)) != a):
            raise ValueError(f"a value is not representable in the {self.name} format")
        return ((v < 0).astype(np.int64) << (self.bits - 1)) | (e << self.man_bits) | f

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """The values of stored codes."""
        c = np.asarray(codes, dtype=np.int64)
        e = (c >> self.man_bits) & ((1 << self.exp_bits) - 1)
        f = c & ((1 << self.man_bits) - 1)
        a = np.where(e == 0, f, (f + (1 << self.man_bits)) << np.maximum(e - 1, 0))
        return np.where((c >> (self.bits - 1)) & 1, -a, a)


#: Fraction bits of the traces' arithmetic: e, eps~ and ebar are integers in units of 2^-22.
TRACE_FRAC = 22
#: eps~ (beta~ times the adaptation eligibility): 18 bits, 14 significant, +-64.
EPS = MiniFloat("eps", 4, 13, TRACE_FRAC)
#: ebar (the readout-filtered eligibility): 14 bits, 10 significant, +-4.
EBAR = MiniFloat("ebar", 4, 9, TRACE_FRAC)
GRAD = QFormat("grad", 16, 10)
FEEDBACK = QFormat("fb", 16, 12)
#: Bits of the learning-rate mantissa: factor = mantissa * 2^-exponent, mantissa < 2^LR_BITS.
LR_BITS = 15


def lr_words(factor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mantissa, exponent) with mantissa * 2^-exponent = factor to 15 significant bits (mantissa in
    [2^14, 2^15), round half to even); factor 0 gives (0, 0). The exponent may be negative for
    factors of 2^15 and more."""
    f = np.asarray(factor, dtype=np.float64)
    mant = np.zeros(f.shape, dtype=np.int64)
    exp = np.zeros(f.shape, dtype=np.int64)
    pos = f > 0
    if np.any(pos):
        e = LR_BITS - 1 - np.floor(np.log2(f[pos])).astype(np.int64)
        m = np.rint(f[pos] * 2.0 ** e).astype(np.int64)
        carry = m >= (1 << LR_BITS)          # rounding reached 2^15: one bit less
        m = np.where(carry, m >> 1, m)
        e = np.where(carry, e - 1, e)
        mant[pos], exp[pos] = m, e
    return mant, exp


def scaled_step(grad: np.ndarray, frac: int, mant: np.ndarray, exp: np.ndarray) -> np.ndarray:
    """round(grad * 2^-frac * mant * 2^-exp), rounding half up: the weight-word change of a
    gradient stored with ``frac`` fraction bits (the sign of descent is applied by the caller)."""
    p = np.asarray(grad, dtype=np.int64) * np.asarray(mant, dtype=np.int64)
    s = np.asarray(exp, dtype=np.int64) + frac
    pos_s = np.maximum(s, 1)
    down = (p + (np.int64(1) << (pos_s - 1))) >> pos_s
    return np.where(s > 0, down, p << np.maximum(-s, 0))


# -- Adam on the chip (docs/eprop.md, "Adam") ----------------------------------------------------------
#: Adam's first moment m, in units of 2^-4 of the update's gradient word g: 16 bits, 12 significant.
ADAM_M = MiniFloat("adam_m", 4, 11, 4)
#: Adam's second moment v, in units of 2^-10 of g^2: 16 bits (its sign bit unused), 11 significant.
ADAM_V = MiniFloat("adam_v", 5, 10, 10)
#: 1 - beta1 as u0.16 (0.1) and 1 - beta2 as u0.20 (0.001): m += ((16 g - m) B1C + 2^15) >> 16 and
#: v += ((1024 g^2 - v) B2C + 2^19) >> 20.
ADAM_B1C, ADAM_B1C_FRAC = 6554, 16
ADAM_B2C, ADAM_B2C_FRAC = 1049, 20
#: beta1 and beta2 as u0.32, exactly 1 - B1C and 1 - B2C: the bias corrections' powers beta^t.
ADAM_BETA1 = (1 << 32) - (ADAM_B1C << (32 - ADAM_B1C_FRAC))
ADAM_BETA2 = (1 << 32) - (ADAM_B2C << (32 - ADAM_B2C_FRAC))
#: The readout block's gradient (a REAL) enters Adam as g = round(G 2^-13), held to 16 bits (+-8192).
ADAM_OUT_SHIFT = 13
ADAM_G_MAX = (1 << 15) - 1
#: 1/sqrt(x) for x = 4 i + 2, the middle of [4 i, 4 i + 4), in units of 2^-16: 256 entries of 16 bits.
RSQRT_BITS = 8


def rsqrt_table() -> np.ndarray:
    """The core's table: entry i = round(2^16 / sqrt(4 i + 2)), i < 256 (all below 2^16)."""
    i = np.arange(1 << RSQRT_BITS, dtype=np.float64)
    return np.rint(65536.0 / np.sqrt(4.0 * i + 2.0)).astype(np.int64)


def rsqrt_parts(v: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1/sqrt(v) of non-negative integers v as (r, h) with 1/sqrt(v) ~ r 2^-16 2^-h: the core shifts v
    right by an even 2h (count leading zeros) until it is below 1024 and reads the table at its top
    8 bits; r = 0 for v = 0."""
    v = np.asarray(v, dtype=np.int64)
    nb = np.frexp(v.astype(np.float64))[1]          # bit length (v < 2^53)
    h = (np.maximum(nb - 10, 0) + 1) >> 1
    n = v >> (2 * h)
    return np.where(v > 0, table[n >> 2], 0), h


def adam_correction(p1: int, p2: int) -> int:
    """k_t = sqrt(1 - beta2^t) / (1 - beta1^t) in units of 2^-16 (floor), from beta1^t and beta2^t as
    u0.32 (once per core and update: a 64-bit integer square root and a division)."""
    return (math.isqrt(((1 << 32) - p2) << 32) << 16) // ((1 << 32) - p1)
