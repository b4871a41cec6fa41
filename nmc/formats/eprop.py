"""Fixed-point formats of the SpiNNaker-like chip's e-prop cores (docs/eprop.md, "Number formats").

Every dynamic value the cores compute with is a REAL (s16.15, a raw int64 word as in
:mod:`nmc.formats.spinnaker`); what is *stored* per synapse is narrower, so that 32 neurons with 250
synapses each fit one core's DTCM:

============  =======  ========  ==========================================================
state         bits     format    holds
============  =======  ========  ==========================================================
``eps``       18       Q3.14     beta/theta times the adaptation eligibility (dimensionless, +-8)
``ebar``      14       Q1.12     the readout-filtered eligibility trace, normalised (+-2)
``grad``      16       Q5.10     the gradient accumulated over a trial (batch), normalised (+-32)
``grad_out``  32       s16.15    the readout synapses' gradient (few synapses: a whole word)
``fb``        16       Q3.12     a fixed random feedback weight B (+-8)
============  =======  ========  ==========================================================

A REAL is stored by rounding half up to the format's fraction bits (add half an LSB, arithmetic
shift right) and saturating to its width; it is loaded back by a left shift. Round-to-nearest,
not the floor of the neuron arithmetic, because a trace that decays by a few LSB per tick would
otherwise drift down by half an LSB every tick.
"""

from __future__ import annotations

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
        sat = int(np.count_nonzero((q < self.lo) | (q > self.hi)))
        return np.clip(q, self.lo, self.hi), sat

    def load(self, q: np.ndarray) -> np.ndarray:
        """The stored value as a REAL."""
        return np.asarray(q, dtype=np.int64) << (S1615_FRAC - self.frac)


EPS = QFormat("eps", 18, 14)
EBAR = QFormat("ebar", 14, 12)
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
