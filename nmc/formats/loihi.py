"""Number formats of the Loihi-like target (docs/loihi-facts.md §1.1, §2; docs/passes.md).

Pure functions: numbers in, numbers out. Every width and range comes from the target description
(``synapse.*``, ``neuron.*``, ``core.*``), so a variant target file changes the formats with it.

Units. Weights are in *mantissa-effective* units: a synapse with mantissa ``m`` and exponent ``e``
has the effective weight ``w_eff = m * 2**e`` (``e >= 0``) or ``floor(m / 2**-e)`` (``e < 0``, the
chip shifts every weight on its own), and a spike adds ``64 * w_eff`` to the current ``u``.
Biases are raw voltage units, stored as ``bm * 2**be``.

Rounding. Everything rounds to the nearest representable value, ties away from zero
(:func:`round_half_away`), then saturates at the end of the range. Ties away from zero are
symmetric in sign, so an inhibitory projection quantises exactly like the mirrored excitatory one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..errors import QuantizationError
from ..target import Target

SIGNS = ("excitatory", "inhibitory", "mixed")
#: Connectivities whose synapses onto one core hit consecutive compartments, so the format needs
#: no per-synapse compartment index.
UNINDEXED_CONNECTIVITIES = ("dense", "one_to_all")


# ---------------------------------------------------------------------------------------------
# Rounding
# ---------------------------------------------------------------------------------------------
def round_half_away(x: Any) -> np.ndarray:
    """Round to the nearest integer, ties away from zero (2.5 -> 3, -2.5 -> -3); float result."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


@dataclass(frozen=True)
class Rounding:
    """What quantising an array did: values moved by rounding and values clipped at a range end.

    ``n_rounded`` counts values that changed but were not clipped; ``max_error`` is the largest
    absolute change among them (in the value's own units). ``n_saturated`` counts clipped values;
    ``saturated_to`` lists the range ends they were clipped to (sorted).
    """

    n_values: int
    n_rounded: int
    max_error: float
    n_saturated: int
    saturated_to: tuple[int, ...]

    @property
    def exact(self) -> bool:
        return self.n_rounded == 0 and self.n_saturated == 0


def _rounding_report(requested: np.ndarray, got: np.ndarray, clipped: np.ndarray) -> Rounding:
    """Compare requested with obtained values (both flattened to 1-D float/int arrays)."""
    requested = np.asarray(requested, dtype=np.float64).reshape(-1)
    got = np.asarray(got).reshape(-1)
    clipped = np.asarray(clipped, dtype=bool).reshape(-1)
    moved = (got.astype(np.float64) != requested) & ~clipped
    err = np.abs(got[moved].astype(np.float64) - requested[moved])
    return Rounding(
        n_values=int(requested.size),
        n_rounded=int(moved.sum()),
        max_error=float(err.max()) if err.size else 0.0,
        n_saturated=int(clipped.sum()),
        saturated_to=tuple(int(v) for v in np.unique(got[clipped])),
    )


# ---------------------------------------------------------------------------------------------
# Weights: mantissa, sign mode, exponent (docs/loihi-facts.md §2.1, §2.2)
# ---------------------------------------------------------------------------------------------
def mantissa_field_bits(target: Target) -> int:
    """Width of the stored weight mantissa field: the widest allowed ``num_weight_bits`` (8)."""
    return int(max(target.get("synapse.weight_bits_allowed")))


def check_weight_bits(weight_bits: int, target: Target) -> None:
    """Raise QuantizationError unless ``weight_bits`` is in ``synapse.weight_bits_allowed``."""
    allowed = [int(b) for b in target.get("synapse.weight_bits_allowed")]
    if not isinstance(weight_bits, (int, np.integer)) or int(weight_bits) not in allowed:
        raise QuantizationError(f"weight_bits {weight_bits!r} is not supported "
                                f"(synapse.weight_bits_allowed = {allowed})")


def check_weight_exponent(exponent: int, target: Target) -> None:
    """Raise QuantizationError unless ``exponent`` is in [synapse.weight_exp_min, weight_exp_max]."""
    lo, hi = int(target.get("synapse.weight_exp_min")), int(target.get("synapse.weight_exp_max"))
    if not isinstance(exponent, (int, np.integer)) or not lo <= int(exponent) <= hi:
        raise QuantizationError(f"exponent {exponent!r} is outside [synapse.weight_exp_min, "
                                f"synapse.weight_exp_max] = [{lo}, {hi}]")


def dropped_bits(weight_bits: int, sign: str, target: Target) -> int:
    """k = field − n + is_mixed: the format keeps mantissas that are multiples of 2**k."""
    return mantissa_field_bits(target) - int(weight_bits) + (1 if sign == "mixed" else 0)


def mantissa_range(weight_bits: int, sign: str, target: Target) -> tuple[int, int, int]:
    """(lowest, highest, step) of the storable mantissas; every mantissa is a multiple of step.

    With an 8-bit field: excitatory [0, 255], inhibitory [−255, 0], mixed [−256, 254] for 8 bits;
    fewer bits keep the range and coarsen the step (e.g. 4-bit excitatory: 0, 16, ..., 240).
    """
    if sign not in SIGNS:
        raise QuantizationError(f"sign must be one of {', '.join(SIGNS)}, got {sign!r}")
    field = mantissa_field_bits(target)
    step = 1 << dropped_bits(weight_bits, sign, target)
    top = ((1 << field) - 1) // step * step  # largest multiple of step in the unsigned field
    if sign == "excitatory":
        return 0, top, step
    if sign == "inhibitory":
        return -top, 0, step
    return -(1 << field), (1 << field) - step, step


def infer_sign(weights: Any) -> str:
    """Sign mode implied by the weights: excitatory if all >= 0, inhibitory if all <= 0, else mixed.

    All-zero (or empty) weights are excitatory.
    """
    w = np.asarray(weights)
    if w.size == 0 or w.min() >= 0:
        return "excitatory"
    if w.max() <= 0:
        return "inhibitory"
    return "mixed"


def sign_violations(weights: Any, sign: str) -> int:
    """How many weights have the wrong sign for ``sign`` (0 for mixed)."""
    w = np.asarray(weights)
    if sign == "excitatory":
        return int((w < 0).sum())
    if sign == "inhibitory":
        return int((w > 0).sum())
    return 0


def effective_weight(mant: Any, exp: int) -> np.ndarray:
    """The weight the chip applies: ``mant << exp`` for exp >= 0, ``mant >> -exp`` (arithmetic
    shift, i.e. floor(mant / 2**-exp)) for exp < 0. Integer mantissas in, int64 out."""
    m = np.asarray(mant, dtype=np.int64)
    e = int(exp)
    return np.left_shift(m, e) if e >= 0 else np.right_shift(m, -e)


def _quantum(step: int, exponent: int) -> int:
    """Mantissa rounding quantum. For e < 0 the chip floors ``m / 2**-e``, so only multiples of
    ``2**-e`` survive the shift exactly; rounding to them makes the floor lose nothing it can avoid
    (the effective weight is the nearest integer instead of a floored one)."""
    return max(step, 1 << max(0, -int(exponent)))


def _scaled_bounds(lo: int, hi: int, quantum: int) -> tuple[int, int]:
    """The range [lo, hi] shrunk to multiples of ``quantum``."""
    return -((-lo) // quantum) * quantum, hi // quantum * quantum


def choose_weight_exponent(weights: Any, weight_bits: int, sign: str, target: Target) -> int:
    """Smallest exponent e >= 0 (and >= synapse.weight_exp_min) at which no weight saturates.

    Falls back to ``synapse.weight_exp_max`` when none fits (the weights then saturate).
    """
    w = np.asarray(weights, dtype=np.float64)
    e_min, e_max = int(target.get("synapse.weight_exp_min")), int(target.get("synapse.weight_exp_max"))
    start = min(max(0, e_min), e_max)
    if w.size == 0:
        return start
    lo, hi, step = mantissa_range(weight_bits, sign, target)
    w_max, w_min = float(w.max()), float(w.min())
    for e in range(start, e_max + 1):
        q = _quantum(step, e)
        qlo, qhi = _scaled_bounds(lo, hi, q)
        top = float(round_half_away(w_max / 2.0 ** e / q)) * q
        bottom = float(round_half_away(w_min / 2.0 ** e / q)) * q
        if qlo <= bottom and top <= qhi:
            return e
    return e_max


@dataclass(frozen=True)
class WeightQuantization:
    """Result of :func:`quantize_weights`: int64 mantissas (same shape as the weights) and a
    report in effective units (``saturated_to`` holds effective weights)."""

    mantissas: np.ndarray
    exponent: int
    report: Rounding


def quantize_weights(weights: Any, weight_bits: int, sign: str, exponent: int,
                     target: Target) -> WeightQuantization:
    """Mantissas for ``weights`` (effective units) in the format (weight_bits, sign, exponent).

    m = w / 2**e rounded to the nearest multiple of the step (2**k; for e < 0 also of 2**-e, see
    :func:`_quantum`), ties away from zero, then clipped to the format's range.
    """
    check_weight_bits(weight_bits, target)
    check_weight_exponent(exponent, target)
    w = np.asarray(weights, dtype=np.float64)
    lo, hi, step = mantissa_range(weight_bits, sign, target)
    q = _quantum(step, exponent)
    qlo, qhi = _scaled_bounds(lo, hi, q)
    raw = round_half_away(w / 2.0 ** exponent / q) * q
    clipped = (raw < qlo) | (raw > qhi)
    mant = np.clip(raw, qlo, qhi).astype(np.int64)
    report = _rounding_report(w, effective_weight(mant, exponent), clipped)
    return WeightQuantization(mant, int(exponent), report)


def invalid_mantissas(mant: Any, weight_bits: int, sign: str, target: Target) -> int:
    """How many mantissas are not storable in (weight_bits, sign): out of range or off the step."""
    m = np.asarray(mant, dtype=np.float64)
    lo, hi, step = mantissa_range(weight_bits, sign, target)
    return int(((m != np.floor(m)) | (m < lo) | (m > hi) | (np.fmod(m, step) != 0)).sum())


# ---------------------------------------------------------------------------------------------
# Neuron registers and bias (docs/loihi-facts.md §1.1)
# ---------------------------------------------------------------------------------------------
#: cuba_lif parameter -> (lowest, highest) as dotted target keys or literal ints.
_REGISTER_RANGES: dict[str, tuple[str | int, str]] = {
    "decay_u": (0, "neuron.decay_u_max"),
    "decay_v": (0, "neuron.decay_v_max"),
    "threshold": (0, "neuron.threshold_mant_max"),
    "refractory": ("neuron.refractory_min", "neuron.refractory_max"),
}
REGISTER_PARAMS = tuple(_REGISTER_RANGES)


def register_range(param: str, target: Target) -> tuple[int, int, str]:
    """(lowest, highest, description of the limits) of a cuba_lif register parameter."""
    lo_key, hi_key = _REGISTER_RANGES[param]
    lo = int(target.get(lo_key)) if isinstance(lo_key, str) else lo_key
    hi = int(target.get(hi_key))
    return lo, hi, f"[{lo_key}, {hi_key}]"


def quantize_register(values: Any, param: str, target: Target) -> tuple[np.ndarray, Rounding]:
    """Round ``values`` of register ``param`` to integers (ties away from zero) and clip them to
    the register's range. Returns int64 values of the same shape and a report."""
    lo, hi, _ = register_range(param, target)
    return round_to_range(values, lo, hi)


def round_to_range(values: Any, lo: int, hi: int) -> tuple[np.ndarray, Rounding]:
    """Integers nearest to ``values`` (ties away from zero), clipped to [lo, hi]; with a report."""
    v = np.asarray(values, dtype=np.float64)
    raw = round_half_away(v)
    clipped = (raw < lo) | (raw > hi)
    out = np.clip(raw, lo, hi).astype(np.int64)
    return out, _rounding_report(v, out, clipped)


def bias_limits(target: Target) -> tuple[int, int, int]:
    """(bias_mant_min, bias_mant_max, bias_exp_max)."""
    return (int(target.get("neuron.bias_mant_min")), int(target.get("neuron.bias_mant_max")),
            int(target.get("neuron.bias_exp_max")))


def bias_range(target: Target) -> tuple[int, int]:
    """Lowest and highest representable bias (raw voltage units)."""
    mmin, mmax, emax = bias_limits(target)
    return mmin << emax, mmax << emax


@dataclass(frozen=True)
class BiasQuantization:
    """Result of :func:`quantize_bias`: representable values ``mant << exp`` (int64, the input's
    shape), the mantissas and exponents, and a report in raw voltage units."""

    values: np.ndarray
    mant: np.ndarray
    exp: np.ndarray
    report: Rounding


def quantize_bias(bias: Any, target: Target) -> BiasQuantization:
    """Nearest bias ``bm * 2**be`` to each value: per value the smallest be in [0, bias_exp_max]
    at which the rounded mantissa (ties away from zero) fits [bias_mant_min, bias_mant_max];
    values that fit no exponent saturate at the largest representable magnitude."""
    mmin, mmax, emax = bias_limits(target)
    b = np.asarray(bias, dtype=np.float64)
    mant = np.zeros(b.shape, dtype=np.int64)
    exp = np.full(b.shape, -1, dtype=np.int64)
    for e in range(emax + 1):
        m = round_half_away(b / 2.0 ** e)
        take = (exp < 0) & (m >= mmin) & (m <= mmax)
        mant[take] = m[take].astype(np.int64)
        exp[take] = e
    clipped = exp < 0
    if clipped.any():
        mant[clipped] = np.clip(round_half_away(b[clipped] / 2.0 ** emax), mmin, mmax).astype(np.int64)
        exp[clipped] = emax
    values = np.left_shift(mant, exp)
    return BiasQuantization(values, mant, exp, _rounding_report(b, values, clipped))


def bias_to_mant_exp(bias: Any, target: Target) -> tuple[np.ndarray, np.ndarray]:
    """Exact (mantissa, exponent) of integer biases (as :func:`quantize_bias` produces them):
    ``mant << exp == bias`` with the smallest such exponent. Raises QuantizationError when a value
    has no exact representation."""
    mmin, mmax, emax = bias_limits(target)
    b = np.asarray(bias)
    if b.dtype.kind == "f" and not np.all(b == np.floor(b)):
        raise QuantizationError("bias values must be integers (run quantize first)")
    b = b.astype(np.int64)
    mant = np.zeros(b.shape, dtype=np.int64)
    exp = np.full(b.shape, -1, dtype=np.int64)
    for e in range(emax + 1):
        m = np.right_shift(b, e)
        take = (exp < 0) & (np.left_shift(m, e) == b) & (m >= mmin) & (m <= mmax)
        mant[take] = m[take]
        exp[take] = e
    bad = exp < 0
    if bad.any():
        first = int(b[bad].reshape(-1)[0])
        raise QuantizationError(f"bias {first} is not representable as m * 2**e with m in "
                                f"[neuron.bias_mant_min, neuron.bias_mant_max] = [{mmin}, {mmax}] and e in "
                                f"[0, neuron.bias_exp_max = {emax}] ({int(bad.sum())} such values)")
    return mant, exp


# ---------------------------------------------------------------------------------------------
# Synapse memory (docs/loihi-facts.md §2.4, §6.1)
# ---------------------------------------------------------------------------------------------
def delay_bits(delay: int) -> int:
    """Bits of the delay field: ceil(log2(delay + 1)), 0 for delay 0."""
    return int(delay).bit_length()


def index_bits(connectivity: str, target: Target) -> int:
    """Bits of the per-synapse compartment index: 0 when the synapses of one axon hit consecutive
    compartments (dense, one_to_all), ``core.sparse_index_bits`` otherwise."""
    return 0 if connectivity in UNINDEXED_CONNECTIVITIES else int(target.get("core.sparse_index_bits"))


def synapse_bits_per_synapse(weight_bits: int, delay: int, connectivity: str, target: Target) -> int:
    """weight_bits + delay_bits + index_bits of one stored synapse."""
    return int(weight_bits) + delay_bits(delay) + index_bits(connectivity, target)


def synapse_group_bits(n_synapses: Any, bits_per_synapse: Any, target: Target) -> np.ndarray:
    """Synapse memory (bits, whole words) of ``n`` synapses of one axon from one projection.

    The synapses form groups of <= core.synapse_group_size; a group of n synapses costs
    ceil((core.synapse_group_header_bits + n * bits_per_synapse) / core.synapse_word_bits) words.
    Vectorised over ``n_synapses`` and ``bits_per_synapse`` (broadcast); returns int64 bits.
    """
    return group_bits(n_synapses, bits_per_synapse, *synapse_group_geometry(target))


def synapse_group_geometry(target: Target) -> tuple[int, int, int]:
    """(core.synapse_group_size, core.synapse_group_header_bits, core.synapse_word_bits)."""
    return (int(target.get("core.synapse_group_size")), int(target.get("core.synapse_group_header_bits")),
            int(target.get("core.synapse_word_bits")))


def group_bits(n_synapses: Any, bits_per_synapse: Any, size: int, header: int, word: int) -> np.ndarray:
    """:func:`synapse_group_bits` with the group geometry given (for hot loops)."""
    n = np.asarray(n_synapses, dtype=np.int64)
    b = np.asarray(bits_per_synapse, dtype=np.int64)
    full, rest = np.divmod(n, size)
    full_words = -(-(header + size * b) // word)
    rest_words = np.where(rest > 0, -(-(header + rest * b) // word), 0)
    return (full * full_words + rest_words) * word


class SynapseFormat(NamedTuple):
    """What distinguishes two synapse formats on a core."""

    weight_bits: int
    sign: str
    exponent: int | None  # None before quantize (unknown yet)
    delay_bits: int
    indexed: bool


def projection_weight_bits(proj: Any, target: Target) -> int:
    """The projection's weight_bits, or the target default ``synapse.weight_bits``."""
    return int(proj.weight_bits) if proj.weight_bits is not None else int(target.get("synapse.weight_bits"))


def synapse_format(proj: Any, target: Target) -> SynapseFormat:
    """The synapse format of a projection; before quantize, sign is inferred from the weights
    and the default weight_bits is assumed."""
    sign = proj.sign if proj.sign is not None else infer_sign(proj.weights)
    exponent = None if proj.exponent is None else int(proj.exponent)
    return SynapseFormat(projection_weight_bits(proj, target), str(sign), exponent,
                         delay_bits(proj.delay), proj.connectivity not in UNINDEXED_CONNECTIVITIES)


def projection_bits_per_synapse(proj: Any, target: Target) -> int:
    """Bits per stored synapse of a projection (see :func:`synapse_bits_per_synapse`)."""
    return synapse_bits_per_synapse(projection_weight_bits(proj, target), proj.delay, proj.connectivity, target)


# ---------------------------------------------------------------------------------------------
# The Formats interface (nmc.formats.Formats) of the Loihi-like target
# ---------------------------------------------------------------------------------------------
class LoihiFormats:
    """The Loihi-like target's answers to what generic passes ask about number formats.

    Every weight is in the units of the post population's model; the target's ``mapping`` part
    gives each memoryless model's registers and its scale (effective weight units per model
    unit: 1 for ``cuba_lif``, the threshold mantissa for ``graded``). In effective units a
    compartment's summed input is an integer and v = 2^weight_shift * sum(w_eff) + bias, so a
    neuron fires from rest iff sum(w_eff) > threshold * 2^(threshold_shift - weight_shift) - bias
    / 2^weight_shift (docs/schedules.md).
    """

    #: Tables of the target file that hold whole numbers, with their least value (None: any).
    integer_tables = {"neuron": None, "synapse": None, "learning": None, "mapping": None}

    def __init__(self, target: Target) -> None:
        self.target = target
        self._ts = int(target.get("neuron.threshold_shift"))
        self._ws = int(target.get("synapse.weight_shift"))
        self._bits = int(target.get("synapse.weight_bits"))

    def quantize(self, net: Any, ctx: Any) -> Any:
        from ..lowering.loihi_quantize import quantize_network
        return quantize_network(net, ctx)

    def _registers(self, pop: Any) -> tuple[dict[str, Any], float]:
        view = self.target.part("mapping")(self.target).registers(pop)
        return view.params, float(np.max(view.weight_scale))

    def _level(self, params: dict[str, Any]) -> float:
        """Firing level in effective weight units (highest bias: the unit fires first)."""
        thr = float(np.max(np.asarray(params["threshold"])))
        bias = float(np.max(np.asarray(params.get("bias", 0))))
        return thr * 2.0 ** (self._ts - self._ws) - bias / 2.0 ** self._ws

    def plastic_grid(self, pop: Any) -> Any:
        from . import WeightGrid
        _, scale = self._registers(pop)
        lo, hi, step = mantissa_range(self._bits, "mixed", self.target)
        return WeightGrid(step / scale, lo / scale, hi / scale, step, lo, hi)

    def firing_level(self, pop: Any) -> float:
        params, scale = self._registers(pop)
        return self._level(params) / scale

    def input_range(self, pop: Any) -> float:
        _, scale = self._registers(pop)
        return float(1 << (int(self.target.get("neuron.input_bits")) - 1 - self._ws)) / scale

    def gate_weights(self, pop: Any, theta: float) -> list[float]:
        """Summed input is an integer in effective units, so 'other input > theta * T' equals
        'other input > floor(theta * T)' (T = the threshold in effective units): the gate uses the
        integer edge, which changes nothing. Its weight is one synapse when one can hold it, else a
        coarse part (the largest multiple of the quantum at the exponent the weight needs, below
        it) plus the remainder at exponent 0."""
        params, scale = self._registers(pop)
        thr = float(np.max(np.asarray(params["threshold"]))) * 2.0 ** (self._ts - self._ws)
        w = self._level(params) - float(np.floor(theta * thr))
        if w <= 0:
            return [w / scale]
        e = choose_weight_exponent(np.array([w]), self._bits, "excitatory", self.target)
        if quantize_weights(np.array([w]), self._bits, "excitatory", e, self.target).report.n_rounded == 0:
            return [w / scale]
        quantum = float(mantissa_range(self._bits, "excitatory", self.target)[2] << e)
        coarse = float(np.floor(w / quantum) * quantum)
        return [coarse / scale, (w - coarse) / scale]

    def veto_weight(self, pop: Any) -> float:
        """A vetoed unit receives its stale input S plus -V. It stays silent while S - V <= F (F:
        the firing level) and its input does not wrap while S - V >= -R (R: the input range), both
        for |S| <= (R + F)/2 when V = (R - F)/2, rounded to one synapse's grid at the exponent V
        needs (a graded unit: F = 9216, R = 32768, V = 11776 = 184 * 64, |S| <= 20992)."""
        params, scale = self._registers(pop)
        r = float(1 << (int(self.target.get("neuron.input_bits")) - 1 - self._ws))
        f = self._level(params)
        half = max((r - f) / 2.0, 1.0)
        e = choose_weight_exponent(np.array([-half]), self._bits, "inhibitory", self.target)
        lowest, _, step = mantissa_range(self._bits, "inhibitory", self.target)
        quantum = float(step << e) if e >= 0 else float(step)
        top = float(-lowest) * quantum
        return -float(np.clip(np.round(half / quantum) * quantum, quantum, top)) / scale
