"""Neuron models known to the IR: their parameters, units, defaults and meaning.

A model is described once here (what it computes); targets implement it in their own number
formats. Two kinds:

- **Target-neutral models** in physical units -- ``lif``, ``if``, and for e-prop the adaptive
  ``alif`` and the non-spiking leaky readout ``li`` (docs/eprop.md) -- and the ``graded`` threshold
  unit of the synfire-gated circuits. The ``map-neurons`` pass lowers them to a target's
  registers (docs/mapping.md); a target lists the ones it can lower as ``mapped_models``.
- **Register-level models** of one chip -- ``cuba_lif``, the Loihi compartment; ``if_curr_exp``,
  sPyNNaker's host encoding on the SpiNNaker-like chip, and ``eprop_alif`` / ``eprop_li``, its
  e-prop cores' host words -- which a target
  implements directly (``neuron_models``): the escape hatch for writing registers by hand.

Units of the physical models follow PyNN: ms, mV, nA, nF (MOhm = mV/nA). Weights of a projection
are in the units of its *post* population's model: nA of current jump per spike for ``lif`` and
``if``, fractions of the threshold for ``graded``, effective weight units for ``cuba_lif``.
Equations: docs/ir.md and docs/mapping.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Dimensions of physical parameters and the unit each is stored in.
UNITS: dict[str, str] = {"time": "ms", "voltage": "mV", "current": "nA", "capacitance": "nF", "frequency": "Hz"}


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: float | int
    doc: str
    per_neuron: bool = False    # may be given as one value per neuron (an array)
    dimension: str | None = None  # "time", "voltage", ... (None: a plain number)

    @property
    def unit(self) -> str:
        return UNITS[self.dimension] if self.dimension else ""


@dataclass(frozen=True)
class NeuronModel:
    name: str
    doc: str
    params: dict[str, ParamSpec] = field(default_factory=dict)
    spiking_source_only: bool = False  # fed from data, no state (input ports)
    physical: bool = False             # target-neutral: lowered by map-neurons
    ann: bool = False                  # a non-spiking unit of an imported network: convert-ann lowers it
    weight_unit: str = ""              # unit of the weights of projections into this model
    weight_dimension: str | None = None  # their dimension ("current"), None for plain numbers

    def defaults(self) -> dict[str, float | int]:
        return {p.name: p.default for p in self.params.values()}


def _specs(*specs: ParamSpec) -> dict[str, ParamSpec]:
    return {s.name: s for s in specs}


CUBA_LIF = NeuronModel(
    name="cuba_lif",
    doc=(
        "Current-based leaky integrate-and-fire, Loihi compartment registers. Per step: "
        "u = (1 - (decay_u+1)/4096) u + 64 sum(w s); v = (1 - decay_v/4096) v + u + bias; "
        "spike when v > 64*threshold, then v = 0 and refractory for refractory-1 steps."
    ),
    params=_specs(
        ParamSpec("decay_u", 0, "current decay register (0..4095); effective decay (decay_u+1)/4096", per_neuron=True),
        ParamSpec("decay_v", 0, "voltage decay (0..4096); effective decay decay_v/4096", per_neuron=True),
        ParamSpec("threshold", 100, "threshold mantissa; a neuron fires when v > threshold * 64", per_neuron=True),
        ParamSpec("bias", 0, "constant added to v every step (raw voltage units)", per_neuron=True),
        ParamSpec("refractory", 1, "refractory delay R (1..63); v is held at 0 for R-1 steps after a spike",
                  per_neuron=True),
    ),
    weight_unit="effective weight units (mantissa * 2^exponent)",
)

IF_CURR_EXP = NeuronModel(
    name="if_curr_exp",
    doc=(
        "sPyNNaker 1!7.4.1 IF_curr_exp as the host writes it: raw s16.15 words (value * 2^15) of the "
        "PyNN parameters; the core derives R = tau_m/cm, exp(-dt/tau_m), the refractory ticks and the "
        "synaptic decays from them at load time (docs/spinnaker.md). Weights are 16-bit words, the sign "
        "choosing the synapse type (excitatory >= 0, inhibitory < 0); a word w delivers "
        "w * 2^(shift - 15) nA with the population's shift_exc / shift_inh."
    ),
    params=_specs(
        ParamSpec("v_init", -2129920, "initial membrane voltage, raw s16.15 mV", per_neuron=True),
        ParamSpec("v_rest", -2129920, "resting voltage, raw s16.15 mV", per_neuron=True),
        ParamSpec("cm", 32768, "membrane capacitance, raw s16.15 nF", per_neuron=True),
        ParamSpec("tau_m", 655360, "membrane time constant, raw s16.15 ms", per_neuron=True),
        ParamSpec("i_offset", 0, "bias current, raw s16.15 nA", per_neuron=True),
        ParamSpec("v_reset", -2129920, "voltage after a spike, raw s16.15 mV", per_neuron=True),
        ParamSpec("tau_refrac", 3277, "refractory time, raw s16.15 ms", per_neuron=True),
        ParamSpec("v_thresh", -1638400, "threshold (V >= v_thresh fires), raw s16.15 mV", per_neuron=True),
        ParamSpec("tau_syn_e", 163840, "excitatory synaptic time constant, raw s16.15 ms", per_neuron=True),
        ParamSpec("tau_syn_i", 163840, "inhibitory synaptic time constant, raw s16.15 ms", per_neuron=True),
        ParamSpec("time_step", 32768, "machine time step, raw s16.15 ms"),
        ParamSpec("shift_exc", 0, "ring-buffer left shift of excitatory weights (0..15)"),
        ParamSpec("shift_inh", 0, "ring-buffer left shift of inhibitory weights (0..15)"),
    ),
    weight_unit="16-bit weight words (sign: synapse type)",
)

SDN = NeuronModel(
    name="sdn",
    doc=(
        "Sigma-delta unit with graded spikes, registers of a Loihi-2-like core (Lava's "
        "PySigmaDeltaModelFixedCorrected plus a low-pass). Per step: sigma = wrap(sigma + a) with a = "
        "sum(w_eff p) over the graded payloads p received (a binary spike is p = 64); y = (sigma >> shift) "
        "+ bias; y = max(y, 0) if relu; y = min(y, clip) if clip > 0; low = D(low, decay) + (((y << f) "
        "decay) >> 12), act = low >> f with f = graded_spikes.lowpass_fraction_bits (decay 4096: act = y); "
        "when |act - sent| >= threshold the unit sends p = act - sent and sent += p."
    ),
    params=_specs(
        ParamSpec("threshold", 1, "delta threshold (register units): the smallest change sent", per_neuron=True),
        ParamSpec("shift", 0, "right shift from sigma to the activation's units", per_neuron=True),
        ParamSpec("relu", 1, "1: rectify the activation", per_neuron=True),
        ParamSpec("clip", 0, "upper bound of the activation (register units; 0: none)", per_neuron=True),
        ParamSpec("decay", 4096, "low-pass of the activation, 1..4096 in 1/4096 per step (4096: none)", per_neuron=True),
        ParamSpec("bias", 0, "constant added to sigma >> shift (register units, bm * 2^be)", per_neuron=True),
    ),
    weight_unit="effective weight units (mantissa * 2^exponent) per payload unit / 64",
)

LIF = NeuronModel(
    name="lif",
    doc=(
        "Leaky integrate-and-fire with a current-based exponential synapse (PyNN's IF_curr_exp). "
        "tau_syn dI/dt = -I, I += w at each input spike; tau_m dV/dt = (v_rest - V) + (tau_m/cm)(I + i_bias); "
        "spike when V crosses v_th, then V = v_reset for t_ref. tau_syn = 0: each spike is a current "
        "pulse of w lasting one time step."
    ),
    params=_specs(
        ParamSpec("tau_m", 20.0, "membrane time constant", True, "time"),
        ParamSpec("tau_syn", 5.0, "synaptic current time constant (0: a one-step current pulse)", True, "time"),
        ParamSpec("cm", 1.0, "membrane capacitance", True, "capacitance"),
        ParamSpec("v_rest", -65.0, "resting potential", True, "voltage"),
        ParamSpec("v_reset", -65.0, "potential after a spike", True, "voltage"),
        ParamSpec("v_th", -50.0, "firing threshold", True, "voltage"),
        ParamSpec("t_ref", 0.0, "refractory time (the voltage is held at v_reset)", True, "time"),
        ParamSpec("i_bias", 0.0, "constant bias current", True, "current"),
    ),
    physical=True,
    weight_unit="nA (current jump per spike)",
    weight_dimension="current",
)

IF = NeuronModel(
    name="if",
    doc=(
        "Integrate-and-fire (no leak) with a current-based exponential synapse: "
        "tau_syn dI/dt = -I, I += w at each input spike; cm dV/dt = I + i_bias; "
        "spike when V crosses v_th, then V = v_reset for t_ref. It starts at v_reset + init_charge "
        "(v_th - v_reset). With soft_reset = 1 a spike subtracts v_th - v_reset instead (reset by "
        "subtraction: the charge above threshold is kept)."
    ),
    params=_specs(
        ParamSpec("tau_syn", 0.0, "synaptic current time constant (0: a one-step current pulse)", True, "time"),
        ParamSpec("cm", 1.0, "membrane capacitance", True, "capacitance"),
        ParamSpec("v_reset", 0.0, "potential after a spike, and at the start", True, "voltage"),
        ParamSpec("v_th", 1.0, "firing threshold", True, "voltage"),
        ParamSpec("t_ref", 0.0, "refractory time (the voltage is held at v_reset)", True, "time"),
        ParamSpec("i_bias", 0.0, "constant bias current", True, "current"),
        ParamSpec("soft_reset", 0, "1: reset by subtraction, V -= v_th - v_reset (no refractory time); "
                  "0: V = v_reset"),
        ParamSpec("init_charge", 0.0, "V starts at v_reset + init_charge (v_th - v_reset), in [0, 1) "
                  "(the Loihi-like chip: with soft reset only)"),
    ),
    physical=True,
    weight_unit="nA (current jump per spike)",
    weight_dimension="current",
)

GRADED = NeuronModel(
    name="graded",
    doc=(
        "The memoryless threshold unit of synfire-gated circuits (Renner et al.): each step "
        "v = sum(w s) + bias with the spikes of the previous step, a spike when v > 1, nothing kept "
        "to the next step. Weights and bias are in units of the threshold; the bias of -8 keeps the "
        "unit silent unless a gate cancels it."
    ),
    params=_specs(
        ParamSpec("bias", -8.0, "constant input, in units of the threshold"),
    ),
    physical=True,
    weight_unit="fractions of the threshold",
)

ALIF = NeuronModel(
    name="alif",
    doc=(
        "Adaptive leaky integrate-and-fire as e-prop uses it (Bellec et al. 2020, EligALIF): each input "
        "spike is a current pulse of w lasting one time step, so V jumps by g w with g = R (1 - e^(-dt/tau_m)), "
        "R = tau_m / cm; with v = V - v_rest, theta = v_th - v_rest and the spike z of the previous step: "
        "a = rho a + z (rho = e^(-dt/tau_a)); v = alpha v + g (sum w s + i_bias) - z theta (reset by "
        "subtraction); spike when v > theta + beta a and not refractory (t_ref: no spike for ceil(t_ref/dt) - 1 "
        "steps after one). beta = 0 is a LIF neuron with subtractive reset."
    ),
    params=_specs(
        ParamSpec("tau_m", 20.0, "membrane time constant", True, "time"),
        ParamSpec("cm", 1.0, "membrane capacitance", True, "capacitance"),
        ParamSpec("v_rest", -65.0, "resting potential", True, "voltage"),
        ParamSpec("v_th", -50.0, "baseline firing threshold", True, "voltage"),
        ParamSpec("t_ref", 0.0, "refractory time (the neuron cannot fire; its voltage still integrates)", True,
                  "time"),
        ParamSpec("i_bias", 0.0, "constant bias current", True, "current"),
        ParamSpec("tau_a", 2000.0, "threshold adaptation time constant", True, "time"),
        ParamSpec("beta", 0.0, "threshold rise per unit of adaptation (a grows by 1 per spike)", True, "voltage"),
    ),
    physical=True,
    weight_unit="nA (a one-step current pulse per spike)",
    weight_dimension="current",
)

LI = NeuronModel(
    name="li",
    doc=(
        "Leaky integrator without spikes, the readout of e-prop: each input spike is a current pulse of w "
        "lasting one time step; with y = V - v_rest, y = kappa y + g (sum w s + i_bias), kappa = e^(-dt/tau_m), "
        "g = R (1 - kappa). Its membrane y (mV) is what is read out and scored."
    ),
    params=_specs(
        ParamSpec("tau_m", 20.0, "membrane time constant (the readout filter)", True, "time"),
        ParamSpec("cm", 1.0, "membrane capacitance", True, "capacitance"),
        ParamSpec("v_rest", 0.0, "resting potential (the readout is V - v_rest)", True, "voltage"),
        ParamSpec("i_bias", 0.0, "constant bias current", True, "current"),
    ),
    physical=True,
    weight_unit="nA (a one-step current pulse per spike)",
    weight_dimension="current",
)

#: The words both e-prop core models end with: the learning-rate factor, the time step, the shift.
_EPROP_WORDS = (
    ParamSpec("lr_mant", 0, "learning-rate factor mantissa (0 .. 2^15 - 1)", per_neuron=True),
    ParamSpec("lr_exp", 0, "learning-rate factor exponent: factor = lr_mant * 2^-lr_exp", per_neuron=True),
    ParamSpec("time_step", 32768, "machine time step, raw s16.15 ms"),
    ParamSpec("shift", 0, "weight left shift (0..15), the same for both signs"),
)

EPROP_ALIF = NeuronModel(
    name="eprop_alif",
    doc=(
        "The SpiNNaker-like chip's e-prop ALIF core words (docs/eprop.md): raw s16.15 values of v relative to "
        "rest (mV), tau_m, tau_a, the threshold distance theta, beta, the bias as a voltage step, the refractory "
        "time and the time step; the core derives alpha, rho and 1/theta at load time. Weights are signed 16-bit "
        "voltage-step words: w * 2^(shift - 15) mV."
    ),
    params=_specs(
        ParamSpec("tau_m", 655360, "membrane time constant, raw s16.15 ms", per_neuron=True),
        ParamSpec("tau_a", 65536000, "adaptation time constant, raw s16.15 ms", per_neuron=True),
        ParamSpec("theta", 491520, "threshold distance v_th - v_rest, raw s16.15 mV", per_neuron=True),
        ParamSpec("beta", 0, "threshold rise per unit of adaptation, raw s16.15 mV", per_neuron=True),
        ParamSpec("bias", 0, "bias voltage step g * i_bias per tick, raw s16.15 mV", per_neuron=True),
        ParamSpec("tau_refrac", 0, "refractory time, raw s16.15 ms", per_neuron=True),
        *_EPROP_WORDS,
    ),
    weight_unit="signed 16-bit voltage-step words",
)

EPROP_LI = NeuronModel(
    name="eprop_li",
    doc=(
        "The SpiNNaker-like chip's e-prop readout core words (docs/eprop.md): raw s16.15 tau_m (ms) and bias "
        "voltage step (mV); the core derives kappa at load time. Weights as for eprop_alif."
    ),
    params=_specs(
        ParamSpec("tau_m", 655360, "membrane time constant, raw s16.15 ms", per_neuron=True),
        ParamSpec("bias", 0, "bias voltage step g * i_bias per tick, raw s16.15 mV", per_neuron=True),
        *_EPROP_WORDS,
    ),
    weight_unit="signed 16-bit voltage-step words",
)

SIGMA_DELTA = NeuronModel(
    name="sigma_delta",
    doc=(
        "Sigma-delta unit with graded spikes (Loihi 2; Lava's SigmaDelta). Each step: sigma += "
        "sum(w p) over the graded spikes p received; y = relu(sigma + bias) (relu = 1; clipped at "
        "clip) or sigma + bias (relu = 0); act = a act + (1 - a) y with a = exp(-dt/tau) (tau = 0: "
        "act = y); when |act - sent| >= threshold it sends p = act - sent and sent = act. A receiver's "
        "sigma is thus sum(w act_sender) to within threshold. Everything is in activation units; "
        "range bounds |sigma + bias| (it sets the fixed point)."
    ),
    params=_specs(
        ParamSpec("bias", 0.0, "constant added to sigma, in activation units", True),
        ParamSpec("threshold", 1.0 / 256, "delta threshold: the smallest change of act that is sent", True),
        ParamSpec("relu", 1, "1: y = max(0, sigma + bias); 0: y = sigma + bias"),
        ParamSpec("clip", float("inf"), "upper bound of y (inf: none)", True),
        ParamSpec("tau", 0.0, "time constant of the low-pass of y (0: none)", True, "time"),
        ParamSpec("range", 4.0, "bound on |sigma + bias| and |act| the fixed point must hold"),
    ),
    physical=True,
    weight_unit="activation units (dimensionless)",
)

RELU = NeuronModel(
    name="relu",
    doc=(
        "A rectified linear unit of an imported (artificial) network: y = min(max(0, sum(w x) + bias), "
        "clip). It does not spike: the convert-ann pass turns it into spiking neurons."
    ),
    params=_specs(
        ParamSpec("bias", 0.0, "constant input", True),
        ParamSpec("clip", float("inf"), "upper bound of the activation (inf: none)", True),
    ),
    ann=True,
    weight_unit="activation units (dimensionless)",
)

LINEAR = NeuronModel(
    name="linear",
    doc="A linear unit of an imported network (an output layer): y = sum(w x) + bias; converted by convert-ann.",
    params=_specs(ParamSpec("bias", 0.0, "constant input", True)),
    ann=True,
    weight_unit="activation units (dimensionless)",
)

LPRNN = NeuronModel(
    name="lprnn",
    doc=(
        "A low-pass RNN unit (Nair & Indiveri 2019): h_t = alpha h_{t-1} + (1 - alpha) relu(sum(w x_t) + "
        "sum(u h_{t-1}) + bias), one step per item of the input sequence; projections marked "
        "recurrent carry h_{t-1}. Converted by convert-ann (docs/conversion.md)."
    ),
    params=_specs(
        ParamSpec("alpha", 0.5, "retention per step, in [0, 1)", True),
        ParamSpec("bias", 0.0, "constant input", True),
    ),
    ann=True,
    weight_unit="activation units (dimensionless)",
)

INPUT = NeuronModel(
    name="input",
    doc="A port fed with spikes from data at run time; spikes at step t reach their targets at t+1.",
    spiking_source_only=True,
)

NEURON_MODELS: dict[str, NeuronModel] = {m.name: m for m in (CUBA_LIF, IF_CURR_EXP, SDN, LIF, IF, GRADED, ALIF, LI,
                                                              EPROP_ALIF, EPROP_LI, SIGMA_DELTA, RELU, LINEAR, LPRNN,
                                                              INPUT)}

#: Variables a probe can record, per model.
PROBE_VARIABLES: dict[str, tuple[str, ...]] = {
    "cuba_lif": ("spikes", "u", "v"),
    "if_curr_exp": ("spikes", "u", "v"),
    "sdn": ("spikes", "u", "v"),
    "lif": ("spikes", "u", "v"),
    "if": ("spikes", "u", "v"),
    "graded": ("spikes", "u", "v"),
    "alif": ("spikes", "v"),
    "li": ("v",),
    "eprop_alif": ("spikes", "v"),
    "eprop_li": ("v",),
    "sigma_delta": ("spikes", "u", "v"),
    "relu": ("v",),
    "linear": ("v",),
    "lprnn": ("v",),
    "input": ("spikes",),
}
