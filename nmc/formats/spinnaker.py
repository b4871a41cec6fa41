"""Number formats of the SpiNNaker-like target: the chip's fixed-point arithmetic and the host's
encodings (docs/spinnaker.md, "Number formats", has each equation with its source).

Two kinds of code live here:

- **the arithmetic of the core** (ARM968, sPyNNaker 1!7.4.1 compiled with GCC's ``stdfix``):
  s16.15 ``accum`` (``REAL``) and u0.32 ``unsigned long fract`` (``decay_t``) as int64 numpy
  arrays holding the raw 32-bit words, with exactly the core's truncations and wraps, and
  spinn_common's ``expk`` / ``expulr`` transcribed from its table-plus-series algorithm
  (``src/stdfix-exp.c``, tag 7.4.1) -- not ``math.exp``, whose results differ on hundreds of
  thousands of inputs. The interpreter uses these functions for the on-core load-time derivation
  and every tick;
- **the host's encodings**: PyNN parameters to raw s16.15 words (round half to even of the
  decimal value), the per-population, per-synapse-type weight left shift of sPyNNaker 7.4.1
  (``get_ring_buffer_shifts``) and 16-bit weight words; and :class:`SpiNNakerFormats`, the
  :class:`nmc.formats.Formats` part of the target.

Raw words are kept in int64 arrays: a REAL is the signed 32-bit value, a u0.32 the unsigned one.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import NmcError, QuantizationError

if TYPE_CHECKING:
    from ..ir.network import Network, Population
    from ..passes.registry import PassContext
    from ..target import Target

#: Fraction bits of s16.15 (REAL) and u0.32 (decay_t).
S1615_FRAC = 15
U032_FRAC = 32
ONE = 1 << S1615_FRAC                 # 1.0 as a REAL: 32768
REAL_MIN, REAL_MAX = -(1 << 31), (1 << 31) - 1
M32 = (1 << 32) - 1
#: 16-bit weight words; a ring-buffer slot saturates at this value.
WEIGHT_MAX = 0xFFFF


# ---------------------------------------------------------------------------------------------
# The core's integer operations (sPyNNaker maths-util.h, decay.h; GCC stdfix on the ARM968)
# ---------------------------------------------------------------------------------------------
def wrap32(x: Any) -> np.ndarray:
    """Two's-complement wrap of int64 values to the signed 32-bit range (REAL additions wrap)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & M32) - (1 << 31)


def accum_mul(a: Any, b: Any) -> np.ndarray:
    """REAL x REAL: the low 32 bits of the 64-bit product shifted right 15 with an arithmetic
    shift -- floor, no rounding, no saturation (``smull``, then ``(hi << 17) | (lo >> 15)``)."""
    p = np.asarray(a, dtype=np.int64) * np.asarray(b, dtype=np.int64)  # |a|, |b| <= 2^31: |p| <= 2^62
    return wrap32(p >> S1615_FRAC)


def decay_mul(x: Any, d: Any) -> np.ndarray:
    """REAL x u0.32 -> REAL (``decay_s1615``): (x * d) >> 32 on the signed 64-bit product, i.e.
    rounded toward minus infinity. |x| < 2^31 and d < 2^32 keep the product inside int64."""
    return np.asarray(x, dtype=np.int64) * np.asarray(d, dtype=np.int64) >> U032_FRAC


def s1615_to_u032_mul(x: Any, d: Any) -> np.ndarray:
    """REAL x u0.32 -> u0.32 (``decay_s1615_to_u032``): the low 32 bits of (x * d) >> 15."""
    x = np.asarray(x, dtype=np.int64).astype(np.uint64)   # x >= 0 where the core uses it
    return ((x * np.asarray(d, dtype=np.uint64)) >> np.uint64(S1615_FRAC) & np.uint64(M32)).astype(np.int64)


def kdivk(a: Any, b: Any) -> np.ndarray:
    """REAL / REAL (``kdivk``): ``(uint32)(((uint64)(int64)a << 15) / (uint64)(int64)b)``,
    truncating, read back as a REAL. Both operands are positive wherever the core uses it."""
    a64 = (np.asarray(a, dtype=np.int64) & 0xFFFFFFFFFFFFFFFF).astype(np.uint64) if np.any(np.asarray(a) < 0) \
        else np.asarray(a, dtype=np.uint64)
    b64 = (np.asarray(b, dtype=np.int64) & 0xFFFFFFFFFFFFFFFF).astype(np.uint64) if np.any(np.asarray(b) < 0) \
        else np.asarray(b, dtype=np.uint64)
    if np.any(b64 == 0):
        raise ZeroDivisionError("kdivk by zero")
    q = (a64 << np.uint64(S1615_FRAC)) // b64
    return wrap32((q & np.uint64(M32)).astype(np.int64))


def ceil_accum(x: Any) -> np.ndarray:
    """``lif_ceil_accum``: the integer part, plus one if any fraction bit is set."""
    x = np.asarray(x, dtype=np.int64)
    return (x >> S1615_FRAC) + ((x & (ONE - 1)) > 0)


def ring_to_input(words: Any, shift: Any) -> np.ndarray:
    """A ring-buffer entry as a REAL input (``synapses_convert_weight_to_input``):
    ``(int32) word << left_shift``."""
    return wrap32(np.asarray(words, dtype=np.int64) << np.asarray(shift, dtype=np.int64))


# ---------------------------------------------------------------------------------------------
# expk / expulr: spinn_common src/stdfix-exp.c (tag 7.4.1), transcribed
# ---------------------------------------------------------------------------------------------
# e^k * 2^32 for k = -13 .. 12, as the library tabulates it (entry 13 is 2^32).
_EXP_HI = np.array([
    9708, 26389, 71733, 194991, 530041, 1440801, 3916503, 10646160, 28939262, 78665070, 213833830,
    581260615, 1580030169, 4294967296, 11674931555, 31735754293, 86266724208, 234497268814,
    637429664642, 1732713474316, 4710003551159, 12803117065094, 34802480465680, 94602950235157,
    257157480542844, 699026506411923], dtype=np.uint64)
# (1 - e^(-j/16)) * 2^32 for j = 0 .. 15: the top four fraction bits.
_EXPM1_MID = np.array([
    0, 260218914, 504671961, 734314346, 950043403, 1152702096, 1343082321, 1521927990,
    1689937949, 1847768698, 1996036966, 2135322113, 2266168400, 2389087112, 2504558555, 2613033936],
    dtype=np.uint64)
# Coefficients of the series for 1 - exp(-x / 2^15), x < 2^11 (the low eleven fraction bits).
_SERIES = (np.uint64(5294), np.uint64(4293434720), np.uint64(2081624032))
#: Raw s16.15 arguments outside [EXP_ARG_MIN, EXP_ARG_MAX] saturate.
EXP_ARG_MIN, EXP_ARG_MAX = -340695, 363408
_U32 = np.uint64(M32)
_HALF_MINUS = np.uint64(0x7FFFFFFF)   # round64 rounds up from INT32_MAX, not from 2^31


def _scale64(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``scale64``: x * y / 2^32 for a 64-bit x and a u0.32 y; the low half's fraction is
    rounded up when it is at least INT32_MAX (``round64``)."""
    lo = (x & _U32) * y
    r = (lo >> np.uint64(32)) + ((lo & _U32) >= _HALF_MINUS).astype(np.uint64)
    return r + (x >> np.uint64(32)) * y


def _exp_series(x: np.ndarray) -> np.ndarray:
    """``exp_series``: the quadratic in u0.32 fixed point, every step truncated to 32 bits."""
    s0, s1, s2 = _SERIES
    tmp = (s1 - ((s2 * x) >> np.uint64(32))) & _U32
    tmp = (tmp * x) >> np.uint64(32)
    return (tmp + s0) & _U32


def _expi64(n: np.ndarray) -> np.ndarray:
    """``__expi64``: e^(n / 2^15) * 2^32 as a uint64, for raw arguments inside the valid range."""
    z = n >> S1615_FRAC                      # integer part, rounded toward minus infinity
    f = n - (z << S1615_FRAC)                # fraction, 0 .. 32767
    frac = f > 0
    # e^n = e^(z+1) * e^(-(1 - f)): start from the next integer and take away a fraction.
    z = np.where(frac, z + 1, z)
    f = np.where(frac, (1 << S1615_FRAC) - f, 0)
    tmp = _EXP_HI[13 + z]
    mid = _scale64(tmp, _EXPM1_MID[f >> 11])
    tmp = np.where(frac, tmp - mid, tmp)
    y = ((f & 0x7FF) << 17).astype(np.uint64)
    low = _scale64(tmp, _exp_series(y))
    return np.where(frac, tmp - low, tmp)


def expk(x: Any) -> np.ndarray:
    """``expk``: e^x for a raw s16.15 x, as a raw s16.15 (``tmp >> 17``); 0 below
    EXP_ARG_MIN and INT32_MAX above EXP_ARG_MAX."""
    n = np.asarray(x, dtype=np.int64)
    inside = (n >= EXP_ARG_MIN) & (n <= EXP_ARG_MAX)
    r = (_expi64(np.where(inside, n, 0)) >> np.uint64(17)).astype(np.int64)
    return np.where(n > EXP_ARG_MAX, REAL_MAX, np.where(n < EXP_ARG_MIN, 0, r))


def expulr(x: Any) -> np.ndarray:
    """``expulr``: e^x for a raw s16.15 x <= 0, as a raw u0.32 (the low 32 bits of the library's
    64-bit result, so ``expulr(0)`` wraps to 0); 0 below EXP_ARG_MIN, INT32_MAX above EXP_ARG_MAX."""
    n = np.asarray(x, dtype=np.int64)
    inside = (n >= EXP_ARG_MIN) & (n <= EXP_ARG_MAX)
    r = (_expi64(np.where(inside, n, 0)) & _U32).astype(np.int64)
    return np.where(n > EXP_ARG_MAX, REAL_MAX, np.where(n < EXP_ARG_MIN, 0, r))


# ---------------------------------------------------------------------------------------------
# The on-core derivation of IF_curr_exp state from the host's words (neuron_model_lif_impl.h,
# exp_synapse_utils.h), shared by the interpreter and the mapping's report
# ---------------------------------------------------------------------------------------------
def lif_derived(tau_m: Any, cm: Any, tau_refrac: Any, ts: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R, exp_TC, T_refract) from raw s16.15 words, as ``neuron_model_initialise`` computes
    them: R = kdivk(tau_m, c_m); exp_TC = expk(-kdivk(ts, tau_m)); T_refract =
    ceil(kdivk(tau_refrac, ts)) in ticks."""
    r = kdivk(tau_m, cm)
    exp_tc = expk(-kdivk(ts, tau_m))
    t_ref = ceil_accum(kdivk(tau_refrac, ts))
    return r, exp_tc, t_ref


def synapse_derived(tau: Any, ts: Any) -> tuple[np.ndarray, np.ndarray]:
    """(decay, init) of an exponential synapse as raw u0.32 (``decay_and_init``): decay =
    expulr(-kdivk(ts, tau)); init = (kdivk(tau, ts) * (0xFFFFFFFF - decay)) >> 15 -- the C's
    ``1.0ulr`` is not representable and becomes 0xFFFFFFFF."""
    decay = expulr(-kdivk(ts, tau))
    init = s1615_to_u032_mul(kdivk(tau, ts), M32 - decay)
    return decay, init


# ---------------------------------------------------------------------------------------------
# Host side: PyNN values -> words
# ---------------------------------------------------------------------------------------------
def s1615(values: Any, what: str = "value") -> np.ndarray:
    """Raw s16.15 words of ``values`` as the host writes them: the decimal value times 2^15,
    rounded half to even (0.1 -> 3277). A value outside [-65536, 65536) raises
    QuantizationError naming ``what``."""
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise QuantizationError(f"{what} must be finite")
    uniq, inverse = np.unique(v, return_inverse=True)
    scale = Decimal(ONE)
    raw = np.array([int((Decimal(repr(float(u))) * scale).to_integral_value(rounding=ROUND_HALF_EVEN))
                    for u in uniq.tolist()], dtype=np.int64)
    if raw.size and (raw.min() < REAL_MIN or raw.max() > REAL_MAX):
        bad = float(uniq[np.flatnonzero((raw < REAL_MIN) | (raw > REAL_MAX))[0]])
        raise QuantizationError(f"{what} {bad:g} is outside the s16.15 range [-65536, 65536)")
    return raw[inverse.reshape(v.shape)] if v.ndim else raw[inverse.reshape(())]


def real(raw: Any) -> np.ndarray:
    """The value of raw s16.15 words, as float64."""
    return np.asarray(raw, dtype=np.float64) / ONE


def n_bits(n_values: int) -> int:
    """Bits for ``n_values`` values 0 .. n-1 as PACMAN counts them (``get_n_bits``): 0 for none,
    1 for one value, else ceil(log2 n)."""
    if n_values <= 0:
        return 0
    if n_values == 1:
        return 1
    return int(math.ceil(math.log2(n_values)))


def ring_buffer_shift(max_weight: float) -> int:
    """The left shift for a synapse type whose largest expected slot sum is ``max_weight``
    (sPyNNaker 7.4.1 ``get_ring_buffer_shifts``): ceil(log2 M), at least 0, plus one if
    2^shift <= M (the 16-bit range is [0, 2^(shift+1)), and one bit is kept for the sum)."""
    if max_weight <= 0:
        return 0
    shift = int(math.ceil(max(0.0, math.log2(max_weight))))
    return shift + 1 if 2 ** shift <= max_weight else shift


def weight_words(weights: Any, shift: int) -> np.ndarray:
    """16-bit weight words of magnitudes |w| for a type with left shift ``shift``: rint(|w| *
    2^(15 - shift)) (round half to even), kept in 16 bits -- an overflow wraps, as the host's
    ``& 0xFFFF`` does."""
    scaled = np.rint(np.abs(np.asarray(weights, dtype=np.float64)) * 2.0 ** (S1615_FRAC - shift))
    return scaled.astype(np.int64) & WEIGHT_MAX


def weight_value(words: Any, shift: int) -> np.ndarray:
    """The current (nA) a weight word delivers: word * 2^(shift - 15)."""
    return np.asarray(words, dtype=np.float64) * 2.0 ** (shift - S1615_FRAC)


def stable_order(keys: np.ndarray) -> np.ndarray:
    """The permutation that sorts non-negative int64 ``keys`` stably. Packs each index into the
    low bits of its key and sorts the values (numpy's value sort is several times faster than an
    argsort on 10^6 keys); falls back to a stable argsort when the packed keys would overflow."""
    keys = np.asarray(keys, dtype=np.int64)
    n = keys.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    bits = max(1, int(n - 1).bit_length())
    if int(keys.min()) >= 0 and int(keys.max()) < (1 << (62 - bits)):
        return np.sort((keys << bits) | np.arange(n, dtype=np.int64)) & ((1 << bits) - 1)
    return np.argsort(keys, kind="stable")


def unique_inverse(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique values, index of each key into them), without numpy's hash-based unique."""
    order = stable_order(keys)
    s = np.asarray(keys, dtype=np.int64)[order]
    first = np.ones(s.size, dtype=bool)
    first[1:] = s[1:] != s[:-1]
    inverse = np.empty(s.size, dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return s[first], inverse


# ---------------------------------------------------------------------------------------------
# The formats part
# ---------------------------------------------------------------------------------------------
class SpiNNakerFormats:
    """The SpiNNaker-like target's answers to what generic passes ask about number formats.

    Its ``quantize`` checks and rounds register-level ``if_curr_exp`` populations (words of the
    host encoding) and weight words; the questions only a Loihi-style learning circuit asks (weight
    grids of plastic synapses, firing levels and gates of memoryless graded units) have no answer on
    this chip and are refused in one line naming the target and the feature.
    """

    def __init__(self, target: "Target") -> None:
        self.target = target

    def quantize(self, net: "Network", ctx: "PassContext") -> "Network":
        from ..lowering.spinnaker_mapping import quantize_network
        return quantize_network(net, ctx)

    def _lacks(self, feature: str) -> NmcError:
        return NmcError(f"target '{self.target.name}' has no {feature}")

    def plastic_grid(self, pop: "Population") -> Any:
        raise self._lacks("plastic weight format for sum-of-products learning rules (the backprop construct)")

    def firing_level(self, pop: "Population") -> float:
        raise self._lacks("memoryless graded units (synfire-gated schedules need them)")

    def input_range(self, pop: "Population") -> float:
        raise self._lacks("memoryless graded units (synfire-gated schedules need them)")

    def gate_weights(self, pop: "Population", theta: float) -> list[float]:
        raise self._lacks("gate weights for graded units (synfire-gated schedules need them)")

    def veto_weight(self, pop: "Population") -> float:
        raise self._lacks("veto weights for graded units (synfire-gated schedules need them)")
