"""Bit-exact acceptance test of the Loihi interpreter against an independent reference.

``reference_run`` below is a plain numpy transcription of the CUBA LIF step in
docs/interpreter.md (the step, refractory, nmc's wrap and clip widths, timing, weights with the
per-weight exponent shift, and the table of choices where the public models disagree). It deliberately shares no code
with ``nmc.sim``, ``nmc.backend``, ``nmc.formats`` or ``nmc.passes``: it works on dense
per-projection integer mantissa matrices, loops over projections, and is meant to be read next to
the document. The network is compiled by the real pipeline (``compile_network``), the binary is
encoded to bytes and decoded again, and the interpreter's u, v and spikes must equal the
reference's at every step for every neuron.

The network is built so that every documented path is exercised: dense, sparse, one_to_one and
one_to_all projections; mixed, excitatory and inhibitory sign modes; exponents -2..7 (negative
exponents with mantissas that are not multiples of the shift, so the per-weight floor matters);
delays 0..6; recurrent projections; memoryless and perfectly integrating neurons (decay_u 4095,
decay_v 0 and 4096); refractory 1..5; per-neuron biases up to 4095 << 7; the s22 input wrap, the
s24 current wrap and both voltage clips; and neurons whose voltage lands exactly on the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

from nmc.binary.format import decode_binary, encode_binary
from nmc.driver import compile_network
from nmc.ir.network import Network, Population, Probe, Projection
from nmc.sim.loihi import LoihiInterpreter, RunResult

STEPS = 300
SEEDS = (0, 1, 2)

# Widths and constants as documented in docs/loihi-facts.md §1.1, §1.4 (nmc choice) and
# targets/loihi.toml.
INPUT_BITS = 22          # a wraps to s22
CURRENT_BITS = 24        # u wraps to s24
V_MAX = (1 << 23) - 1    # v clips to +-(2^23 - 1)
WEIGHT_SHIFT = 6         # a spike adds 64 * w_eff to u
THRESHOLD_SHIFT = 6      # threshold = mantissa * 64
DECAY_ONE = 4096         # decays are k / 4096


# =================================================================================================
# The reference simulator
# =================================================================================================
@dataclass
class RefPopulation:
    """One population as the reference sees it: an input port, or CUBA LIF registers."""

    name: str
    size: int
    is_input: bool = False
    decay_u: int | np.ndarray = 0     # registers: one value, or one per neuron (the chip holds several
    decay_v: int | np.ndarray = 0     # compartment configs then)
    threshold: int | np.ndarray = 0
    refractory: int | np.ndarray = 1
    bias: np.ndarray | None = None  # (size,) raw voltage units, already bm * 2**be


@dataclass
class RefProjection:
    """Synapses pre -> post as a dense (n_pre, n_post) mantissa matrix (0 = no synapse)."""

    pre: str
    post: str
    mantissa: np.ndarray
    exponent: int
    delay: int


@dataclass
class RefResult:
    """Per LIF population: u, v (int64) and spikes (bool), each (steps, size); spikes also for
    inputs. ``counters`` counts the wraps and clips that changed a value."""

    u: dict[str, np.ndarray]
    v: dict[str, np.ndarray]
    spikes: dict[str, np.ndarray]
    counters: dict[str, int] = field(default_factory=dict)


def wrap_signed(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap of int64 ``x`` to ``bits`` bits: the result is in [-2^(b-1), 2^(b-1)-1]."""
    half = 1 << (bits - 1)
    return (x + half) % (1 << bits) - half  # numpy's % is floored, so this is exact for negative x


def decay(x: np.ndarray, k: int) -> np.ndarray:
    """D(x, k) = sgn(x) * ((|x| * (4096 - k)) >> 12): the magnitude is truncated, sign restored."""
    return np.sign(x) * ((np.abs(x) * (DECAY_ONE - k)) >> 12)


def effective_weights(mantissa: np.ndarray, exponent: int) -> np.ndarray:
    """docs/loihi-facts.md §2.2, nmc choice: each weight is shifted on its own, floor(m * 2^e)."""
    m = mantissa.astype(np.int64)
    if exponent >= 0:
        return m * (1 << exponent)
    return m // (1 << -exponent)  # floor division == arithmetic right shift, also for m < 0


def reference_run(populations: list[RefPopulation], projections: list[RefProjection],
                  inputs: dict[str, np.ndarray], steps: int, *, variant: str | None = None) -> RefResult:
    """Simulate ``steps`` steps from the all-zero state.

    ``inputs`` maps each input population to its (steps, size) 0/1 spikes. ``variant`` selects a
    deliberately wrong model, used only to show that the comparison can fail:
    ``"nonstrict_threshold"`` (v >= threshold), ``"sum_then_shift"`` (Lava's negative exponents,
    docs/loihi-facts.md §2.2), ``"no_decay_u_offset"`` (current decay without the chip's +1, §1.2).
    """
    # Spike history of every population; a spike at step t is read at t + 1 + delay (§1.5).
    spikes = {p.name: np.zeros((steps, p.size), dtype=bool) for p in populations}
    for name, arr in inputs.items():
        spikes[name][:] = np.asarray(arr[:steps], dtype=bool)
    lif = [p for p in populations if not p.is_input]
    u = {p.name: np.zeros(p.size, dtype=np.int64) for p in lif}
    v = {p.name: np.zeros(p.size, dtype=np.int64) for p in lif}
    ref = {p.name: np.zeros(p.size, dtype=np.int64) for p in lif}
    rec_u = {p.name: np.zeros((steps, p.size), dtype=np.int64) for p in lif}
    rec_v = {p.name: np.zeros((steps, p.size), dtype=np.int64) for p in lif}
    counters = {"a_wraps": 0, "u_wraps": 0, "v_clips_high": 0, "v_clips_low": 0}
    w_eff = [effective_weights(pr.mantissa, pr.exponent) for pr in projections]

    for t in range(steps):
        # Dendritic input a of this step, from spikes emitted at t - 1 - delay.
        a = {p.name: np.zeros(p.size, dtype=np.int64) for p in lif}
        for pr, w in zip(projections, w_eff):
            src = t - 1 - pr.delay
            if src < 0:
                continue
            s = spikes[pr.pre][src].astype(np.int64)
            if variant == "sum_then_shift" and pr.exponent < 0:
                summed = pr.mantissa.astype(np.int64).T @ s // (1 << -pr.exponent)
            else:
                summed = w.T @ s
            a[pr.post] += (1 << WEIGHT_SHIFT) * summed

        for p in lif:
            name = p.name
            a_w = wrap_signed(a[name], INPUT_BITS)
            counters["a_wraps"] += int((a_w != a[name]).sum())

            du = np.asarray(p.decay_u) if variant == "no_decay_u_offset" else np.asarray(p.decay_u) + 1
            u_raw = decay(u[name], du) + a_w
            u[name] = wrap_signed(u_raw, CURRENT_BITS)
            counters["u_wraps"] += int((u[name] != u_raw).sum())

            v_raw = decay(v[name], np.asarray(p.decay_v)) + u[name] + p.bias
            counters["v_clips_high"] += int((v_raw > V_MAX).sum())
            counters["v_clips_low"] += int((v_raw < -V_MAX).sum())
            vv = np.clip(v_raw, -V_MAX, V_MAX)
            vv[ref[name] > 0] = 0  # refractory: v held at 0, u keeps integrating (§1.3)

            theta = np.asarray(p.threshold, dtype=np.int64) << THRESHOLD_SHIFT
            fired = vv >= theta if variant == "nonstrict_threshold" else vv > theta
            vv[fired] = 0          # hard reset to 0; u is not reset
            ref[name][fired] = np.broadcast_to(np.asarray(p.refractory, dtype=np.int64), (p.size,))[fired]
            ref[name] = np.maximum(ref[name] - 1, 0)

            v[name] = vv
            spikes[name][t] = fired
            rec_u[name][t] = u[name]
            rec_v[name][t] = vv
    return RefResult(rec_u, rec_v, spikes, counters)


# =================================================================================================
# The test network: one description, turned into both the IR and the reference's matrices
# =================================================================================================
@dataclass
class SynSpec:
    """A projection in IR storage form (mantissas), with what the reference needs to densify it."""

    name: str
    pre: str
    post: str
    connectivity: str
    mantissa: np.ndarray
    exponent: int
    sign: str
    delay: int
    pre_index: np.ndarray | None = None
    post_index: np.ndarray | None = None


@dataclass
class Case:
    populations: list[RefPopulation]
    synapses: list[SynSpec]
    inputs: dict[str, np.ndarray]
    steps: int


MantissaDraw = Callable[[np.random.Generator, "tuple[int, ...] | int"], np.ndarray]


def _mixed(rng: np.random.Generator, shape: tuple[int, ...] | int) -> np.ndarray:
    """8-bit mixed-sign mantissas: even values in [-256, 254] (docs/loihi-facts.md §2.1)."""
    return 2 * rng.integers(-128, 128, size=shape)


def _excitatory(rng: np.random.Generator, shape: tuple[int, ...] | int) -> np.ndarray:
    return rng.integers(0, 256, size=shape)


def _inhibitory(rng: np.random.Generator, shape: tuple[int, ...] | int) -> np.ndarray:
    return -rng.integers(0, 256, size=shape)


def _sparse(rng: np.random.Generator, n_pre: int, n_post: int, density: float) -> tuple[np.ndarray, np.ndarray]:
    """Distinct random (pre, post) pairs, in a random order (the compiler must not rely on order)."""
    flat = rng.choice(n_pre * n_post, size=int(density * n_pre * n_post), replace=False)
    return flat // n_post, flat % n_post


def _bias(rng: np.random.Generator, size: int, mant: tuple[int, int], exps: tuple[int, ...]) -> np.ndarray:
    """Per-neuron biases bm << be with bm in [mant[0], mant[1]] and be drawn from ``exps``."""
    m = rng.integers(mant[0], mant[1] + 1, size=size)
    e = rng.choice(np.asarray(exps), size=size)
    return (m * (1 << e)).astype(np.int64)


def build_case(seed: int, steps: int = STEPS) -> Case:
    """The acceptance network. Parameters were chosen (with the reference alone) so that neurons
    fire at moderate rates and every wrap/clip path is taken; comments say which population
    exercises what."""
    rng = np.random.default_rng(seed)
    pops = [
        RefPopulation("inp", 64, is_input=True),
        RefPopulation("edge", 8, is_input=True),
        # Memoryless (decay_u 4095 clears u, decay_v 4096 clears v): v = a + bias each step.
        RefPopulation("A", 120, decay_u=4095, decay_v=4096, threshold=300, refractory=1,
                      bias=_bias(rng, 120, (-64, 64), (0, 1))),
        # Leaky neuron with excitatory feed-forward and inhibitory recurrent input.
        RefPopulation("B", 100, decay_u=410, decay_v=205, threshold=15000, refractory=3,
                      bias=_bias(rng, 100, (-600, 900), (0, 1, 2))),
        # Perfect voltage integrator (decay_v 0) fed by a leaky current.
        RefPopulation("C", 100, decay_u=200, decay_v=0, threshold=3000, refractory=5,
                      bias=_bias(rng, 100, (-300, 200), (0, 1))),
        # Huge excitatory input at exponent 7: the s22 input and s24 current wraps.
        RefPopulation("D", 40, decay_u=0, decay_v=1000, threshold=131071, refractory=2,
                      bias=_bias(rng, 40, (-4096, 4095), (7,))),
        # Strong inhibition into a perfect integrator: v runs into the lower clip; the upper clip
        # is reached by the large positive biases.
        RefPopulation("E", 40, decay_u=100, decay_v=0, threshold=5000, refractory=4,
                      bias=np.concatenate([_bias(rng, 20, (3000, 4095), (7,)),
                                           _bias(rng, 20, (-4096, 0), (5, 6, 7))])),
        # v = a exactly (memoryless, no bias) and the input weight is threshold or threshold + 1:
        # half the neurons land exactly on the threshold and must not fire (strict >).
        RefPopulation("T", 8, decay_u=4095, decay_v=4096, threshold=100, refractory=1,
                      bias=np.zeros(8, dtype=np.int64)),
    ]
    size = {p.name: p.size for p in pops}

    def sparse(name: str, pre: str, post: str, density: float, draw: MantissaDraw, exponent: int,
               sign: str, delay: int) -> SynSpec:
        pi, qi = _sparse(rng, size[pre], size[post], density)
        return SynSpec(name, pre, post, "sparse", draw(rng, pi.size), exponent, sign, delay, pi, qi)

    d_weights = _excitatory(rng, (64, 40)) * (rng.random((64, 40)) < 0.25)  # mostly zero, huge when not
    syns = [
        SynSpec("inp->A", "inp", "A", "dense", _mixed(rng, (64, 120)), 0, "mixed", 0),
        sparse("A->B", "A", "B", 0.10, _excitatory, 1, "excitatory", 3),
        sparse("B->B", "B", "B", 0.10, _inhibitory, -2, "inhibitory", 2),                # recurrent
        SynSpec("edge->B", "edge", "B", "one_to_all", _mixed(rng, 8), -1, "mixed", 6),
        SynSpec("B->C", "B", "C", "one_to_one", _mixed(rng, 100), 3, "mixed", 6),
        SynSpec("A->C", "A", "C", "dense", _mixed(rng, (120, 100)), -2, "mixed", 1),
        sparse("C->C", "C", "C", 0.05, _mixed, 0, "mixed", 0),                             # recurrent
        SynSpec("inp->D", "inp", "D", "dense", d_weights, 7, "excitatory", 4),
        SynSpec("inp->E", "inp", "E", "dense", _inhibitory(rng, (64, 40)), 5, "inhibitory", 5),
        SynSpec("edge->T", "edge", "T", "one_to_one", np.array([100, 101] * 4), 0, "excitatory", 0),
    ]
    inputs = {"inp": (rng.random((steps, 64)) < 0.10).astype(np.uint8),
              "edge": (rng.random((steps, 8)) < 0.20).astype(np.uint8)}
    return Case(pops, syns, inputs, steps)


def dense_mantissa(syn: SynSpec, n_pre: int, n_post: int) -> np.ndarray:
    """The (n_pre, n_post) mantissa matrix of a projection, written out per connectivity."""
    m = np.asarray(syn.mantissa, dtype=np.int64)
    out = np.zeros((n_pre, n_post), dtype=np.int64)
    if syn.connectivity == "dense":
        out[:] = m
    elif syn.connectivity == "one_to_one":
        out[np.arange(n_pre), np.arange(n_pre)] = m
    elif syn.connectivity == "one_to_all":
        out[:] = m[:, None]
    elif syn.connectivity == "sparse":
        out[syn.pre_index, syn.post_index] = m
    else:
        raise ValueError(syn.connectivity)
    return out


def reference_projections(case: Case) -> list[RefProjection]:
    size = {p.name: p.size for p in case.populations}
    return [RefProjection(s.pre, s.post, dense_mantissa(s, size[s.pre], size[s.post]), s.exponent, s.delay)
            for s in case.synapses]


def build_network(case: Case, mode: str = "mantissa") -> Network:
    """The IR of ``case``.

    ``mode="mantissa"``: the network is marked quantized and projections carry the mantissas,
    sign, weight_bits and exponent, so ``quantize`` only validates them; negative exponents can
    then use any mantissa (the per-weight floor loses bits). ``mode="effective"``: weights are given
    in effective units (m * 2^e) with the exponent fixed, and ``quantize`` must recover exactly the
    same mantissas; only usable when every negative-exponent mantissa is a multiple of 2^-e.
    """
    net = Network(f"reference_{mode}")
    for p in case.populations:
        if p.is_input:
            net.add_population(Population(p.name, p.size, "input", role="input"))
        else:
            params = {"decay_u": p.decay_u, "decay_v": p.decay_v, "threshold": p.threshold,
                      "refractory": p.refractory, "bias": np.asarray(p.bias, dtype=np.int64)}
            net.add_population(Population(p.name, p.size, "cuba_lif", params))
    for s in case.synapses:
        m = np.asarray(s.mantissa, dtype=np.int64)
        if mode == "mantissa":
            weights, weight_bits = m, 8
        else:
            assert s.exponent >= 0 or np.all(m % (1 << -s.exponent) == 0), "not representable exactly"
            weights = m * 2.0 ** s.exponent
            weight_bits = None
        net.add_projection(Projection(s.name, s.pre, s.post, s.connectivity, weights,
                                      pre_index=s.pre_index, post_index=s.post_index, delay=s.delay,
                                      sign=s.sign, exponent=s.exponent, weight_bits=weight_bits))
    if mode == "mantissa":
        net.attrs["quantized"] = "loihi"
    for p in case.populations:
        net.add_probe(Probe(f"{p.name}.spikes", p.name, "spikes"))
        if not p.is_input:
            net.add_probe(Probe(f"{p.name}.u", p.name, "u"))
            net.add_probe(Probe(f"{p.name}.v", p.name, "v"))
    return net


def representable_case(case: Case) -> Case:
    """``case`` with negative-exponent mantissas rounded toward zero to multiples of 2^-e, so
    that effective-unit weights are exactly representable (for ``mode="effective"``). Toward
    zero, not down: -253 -> -252 stays inside the inhibitory range [-255, 0]."""
    syns = []
    for s in case.synapses:
        m = np.asarray(s.mantissa, dtype=np.int64)
        if s.exponent < 0:
            q = 1 << -s.exponent
            m = np.sign(m) * (np.abs(m) // q * q)
        syns.append(SynSpec(s.name, s.pre, s.post, s.connectivity, m, s.exponent, s.sign, s.delay,
                            s.pre_index, s.post_index))
    return Case(case.populations, syns, case.inputs, case.steps)


# =================================================================================================
# Running the compiled network
# =================================================================================================
def compile_bytes(case: Case, mode: str) -> bytes:
    """Compile a freshly built network (passes modify the IR in place) to binary bytes. In
    ``effective`` mode compile strictly, so any rounding by ``quantize`` is an error."""
    return encode_binary(compile_network(build_network(case, mode), "loihi", strict=(mode == "effective")))


def run_interpreter(data: bytes, case: Case) -> RunResult:
    """Decode the bytes (the chip only ever sees the file) and run the interpreter."""
    return LoihiInterpreter(decode_binary(data)).run(case.steps, inputs=case.inputs)


def mismatches(result: RunResult, ref: RefResult, case: Case) -> list[str]:
    """Every (probe, first differing step and neuron) where the interpreter and reference differ."""
    out = []
    for p in case.populations:
        pairs = [("spikes", ref.spikes[p.name])]
        if not p.is_input:
            pairs += [("u", ref.u[p.name]), ("v", ref.v[p.name])]
        for var, want in pairs:
            got = np.asarray(result.probes[f"{p.name}.{var}"])
            assert got.shape == want.shape, f"{p.name}.{var}: shape {got.shape} != {want.shape}"
            got = got.astype(bool) if var == "spikes" else got.astype(np.int64)
            diff = np.argwhere(got != want)
            if diff.size:
                t, i = diff[0]
                out.append(f"{p.name}.{var}: {len(diff)} differences, first at step {t} neuron {i}: "
                           f"interpreter {got[t, i]}, reference {want[t, i]}")
    return out


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def compiled(request: pytest.FixtureRequest) -> tuple[Case, bytes, RunResult, RefResult]:
    """Per seed: the case, its binary, the interpreter's run and the reference's run."""
    case = build_case(request.param)
    data = compile_bytes(case, "mantissa")
    ref = reference_run(case.populations, reference_projections(case), case.inputs, case.steps)
    return case, data, run_interpreter(data, case), ref


# =================================================================================================
# Tests
# =================================================================================================
def test_interpreter_matches_reference_bit_exactly(compiled: tuple[Case, bytes, RunResult, RefResult]) -> None:
    case, _, result, ref = compiled
    assert not mismatches(result, ref, case), "\n".join(mismatches(result, ref, case))


def test_case_exercises_every_path(compiled: tuple[Case, bytes, RunResult, RefResult]) -> None:
    """Guard against a silently easy network: wraps, clips and moderate firing must all occur."""
    case, _, result, ref = compiled
    c = ref.counters
    assert c["a_wraps"] > 0 and c["u_wraps"] > 0, c
    assert c["v_clips_high"] > 0 and c["v_clips_low"] > 0, c
    # The interpreter counts, per compartment and step, the wraps/clips that changed a value
    # (docs/loihi-facts.md §1.4: every wrap or clip is counted per compartment); the counts must
    # agree too.
    assert result.overflow == {"input_wrap": c["a_wraps"], "current_wrap": c["u_wraps"],
                               "voltage_clip": c["v_clips_high"] + c["v_clips_low"]}, (result.overflow, c)
    for p in case.populations:
        if p.is_input or p.name in ("D", "T"):  # D is a wrap probe, T a threshold-edge probe
            continue
        rate = ref.spikes[p.name].mean()
        assert 0.005 < rate < 0.5, f"{p.name} fires at {rate:.3f} per step"
    # T: the neurons driven to exactly threshold*64 never fire; those driven one unit above do.
    edge_spikes = ref.spikes["edge"][:-1]
    assert edge_spikes[:, 0::2].any() and not ref.spikes["T"][:, 0::2].any()
    assert np.array_equal(ref.spikes["T"][1:, 1::2], edge_spikes[:, 1::2])


def test_binary_is_deterministic(compiled: tuple[Case, bytes, RunResult, RefResult]) -> None:
    """Compiling the same network twice gives byte-identical binaries."""
    case, data, _, _ = compiled
    assert compile_bytes(case, "mantissa") == data


@pytest.mark.parametrize("variant", ["nonstrict_threshold", "sum_then_shift", "no_decay_u_offset"])
def test_corrupted_reference_is_caught(compiled: tuple[Case, bytes, RunResult, RefResult], variant: str) -> None:
    """The comparison has teeth: each deliberately wrong model disagrees with the interpreter."""
    case, _, result, _ = compiled
    wrong = reference_run(case.populations, reference_projections(case), case.inputs, case.steps,
                          variant=variant)
    assert mismatches(result, wrong, case)


def test_effective_unit_weights_through_quantize() -> None:
    """The same kind of network with weights in effective units, compiled strictly: quantize must
    recover exactly the mantissas the reference uses."""
    case = representable_case(build_case(7))
    result = run_interpreter(compile_bytes(case, "effective"), case)
    ref = reference_run(case.populations, reference_projections(case), case.inputs, case.steps)
    assert not mismatches(result, ref, case), "\n".join(mismatches(result, ref, case))


@pytest.mark.parametrize("connectivity", ["dense", "sparse"])
def test_two_projections_onto_the_same_synapse_wrap_as_their_sum(connectivity: str) -> None:
    """Two projections x -> h with one delay land in one delay matrix, where a source's synapses
    onto one compartment add up. Each weight alone stays below the s22 input range, their sum does
    not: the interpreter must wrap the sum as the reference does (a bound taken from the largest
    single synapse would skip the wrap check)."""
    pops = [RefPopulation("x", 2, is_input=True),
            RefPopulation("h", 2, decay_u=4095, decay_v=4096, threshold=1 << 20, refractory=1,
                          bias=np.zeros(2, dtype=np.int64))]
    m = np.array([[254, 0], [0, 254]], dtype=np.int64)          # 254 * 2^7 * 64 = 2,080,768 < 2^21
    if connectivity == "dense":
        syns = [SynSpec(f"x->h{k}", "x", "h", "dense", m, 7, "excitatory", 0) for k in range(2)]
    else:
        idx = np.array([0, 1])
        syns = [SynSpec(f"x->h{k}", "x", "h", "sparse", np.array([254, 254]), 7, "excitatory", 0, idx, idx)
                for k in range(2)]
    x = np.zeros((6, 2), dtype=np.uint8)
    x[0, 0] = x[2, 1] = 1
    case = Case(pops, syns, {"x": x}, 6)
    ref = reference_run(case.populations, reference_projections(case), case.inputs, case.steps)
    assert ref.counters["a_wraps"] == 2
    result = run_interpreter(compile_bytes(case, "mantissa"), case)
    assert not mismatches(result, ref, case), "\n".join(mismatches(result, ref, case))
    assert result.overflow.get("input_wrap") == 2
