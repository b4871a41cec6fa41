"""The compiled path of the Loihi-like interpreter (nmc/sim/loihi_fast.py, loihi_kernel.py) gives
what the numpy path gives, bit for bit: spikes, probes, counters, per-core figures, overflow
counts and the chip's state after every run, on random networks (hypothesis) and on the
reference-test network, which takes every wrap and clip path. Also: which path a run takes.

Every comparison asserts that the compiled side really ran compiled (``last_engine``), so a
dispatch that silently fell back to numpy cannot pass for agreement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

pytest.importorskip("numba")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import nmc.sim.loihi as loihi  # noqa: E402
import nmc.sim.loihi_fast as fast  # noqa: E402
from nmc.binary.format import Binary, decode_binary, encode_binary  # noqa: E402
from nmc.driver import compile_network  # noqa: E402
from nmc.errors import RunError  # noqa: E402
from nmc.ir.network import Network, Population, Probe, Projection  # noqa: E402
from nmc.sim.loihi import LoihiInterpreter, RunResult  # noqa: E402
from nmc.target import Target, load_target  # noqa: E402


# -------------------------------------------------------------------------------------------------
# Comparing two interpreters
# -------------------------------------------------------------------------------------------------
def assert_same_result(want: RunResult, got: RunResult) -> None:
    """Every field of two run results is identical (arrays: shape, dtype and values)."""
    assert got.steps == want.steps
    assert got.counters == want.counters
    assert got.overflow == want.overflow
    for field in ("spikes", "probes", "per_core"):
        a, b = getattr(want, field), getattr(got, field)
        assert list(a) == list(b), field
        for name in a:
            x, y = np.asarray(a[name]), np.asarray(b[name])
            assert x.dtype == y.dtype and x.shape == y.shape, (field, name, x.dtype, y.dtype, x.shape, y.shape)
            np.testing.assert_array_equal(y, x, err_msg=f"{field}[{name}]")


def assert_same_state(want: LoihiInterpreter, got: LoihiInterpreter) -> None:
    """The chips' states (state(): membranes, refractory clocks, in-flight input and its bounds,
    step counter) are identical."""
    a, b = want.state(), got.state()
    assert a.keys() == b.keys()
    for key in a:
        x, y = np.asarray(a[key]), np.asarray(b[key])
        assert x.dtype == y.dtype and x.shape == y.shape, key
        np.testing.assert_array_equal(y, x, err_msg=key)


def run_both(binary: Binary, plan: list[tuple[str, int]], inputs: dict[str, np.ndarray],
             **run_kw: object) -> tuple[LoihiInterpreter, LoihiInterpreter]:
    """Run ``binary`` on both paths through ``plan`` ([("run", steps) | ("reset", 0)], consuming
    ``inputs`` step by step), comparing results after every run and states after every action."""
    ref = LoihiInterpreter(binary, engine="numpy")
    cmp = LoihiInterpreter(binary, engine="compiled")
    t = 0
    for action, steps in plan:
        if action == "reset":
            ref.reset()
            cmp.reset()
        else:
            chunk = {k: v[t:t + steps] for k, v in inputs.items()}
            t += steps
            want = ref.run(steps, chunk, **run_kw)
            got = cmp.run(steps, chunk, **run_kw)
            assert ref.last_engine == "numpy" and cmp.last_engine == "compiled"
            assert_same_result(want, got)
        assert_same_state(ref, cmp)
    return ref, cmp


# -------------------------------------------------------------------------------------------------
# Random networks
# -------------------------------------------------------------------------------------------------
@dataclass
class NetSpec:
    """What hypothesis draws; the weights, biases and inputs come from ``seed``."""

    seed: int
    sizes: list[int]                       # LIF populations
    n_inputs: int
    projections: list[tuple[int, int, str, str, int, int]]  # pre, post (-1: input), kind, sign, exponent, delay
    per_neuron_decays: bool
    max_compartments: int
    rate: float


@st.composite
def net_specs(draw: st.DrawFn) -> NetSpec:
    n_pops = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 12)) for _ in range(n_pops)]
    projections = []
    for _ in range(draw(st.integers(1, 5))):
        pre = draw(st.integers(-1, n_pops - 1))   # -1: the input port
        post = draw(st.integers(0, n_pops - 1))
        kind = draw(st.sampled_from(["dense", "sparse", "one_to_all", "one_to_one"]))
        projections.append((pre, post, kind, draw(st.sampled_from(["mixed", "excitatory", "inhibitory"])),
                            draw(st.integers(-2, 7)), draw(st.integers(0, 6))))
    return NetSpec(seed=draw(st.integers(0, 2**32 - 1)), sizes=sizes, n_inputs=draw(st.integers(1, 10)),
                   projections=projections, per_neuron_decays=draw(st.booleans()),
                   max_compartments=draw(st.sampled_from([3, 8, 1024])), rate=draw(st.sampled_from([0.05, 0.3, 0.8])))


def _mantissas(rng: np.random.Generator, sign: str, shape: int | tuple[int, ...]) -> np.ndarray:
    """Mantissas of an 8-bit format of the sign mode (mixed ones are even: the format drops a bit)."""
    if sign == "mixed":
        return 2 * rng.integers(-128, 128, size=shape)
    m = rng.integers(0, 256, size=shape)
    return m if sign == "excitatory" else -m


def build_random(spec: NetSpec) -> tuple[Network, dict[str, np.ndarray]]:
    """The network of ``spec`` (mantissa weights, as the compiler's ``quantized`` input) and
    inputs for 400 steps. Decays, thresholds and biases range widely, so memoryless neurons,
    perfect integrators, wraps of a and u and both voltage clips all occur across examples."""
    rng = np.random.default_rng(spec.seed)
    net = Network("random")
    net.add_population(Population("x", spec.n_inputs, "input", role="input"))
    names = [f"p{i}" for i in range(len(spec.sizes))]
    for name, n in zip(names, spec.sizes):
        choices_u = rng.choice([0, 200, 1024, 4095], size=3)
        choices_v = rng.choice([0, 256, 1000, 4096], size=3)
        per = spec.per_neuron_decays
        params = {
            "decay_u": rng.choice(choices_u, size=n) if per else int(choices_u[0]),
            "decay_v": rng.choice(choices_v, size=n) if per else int(choices_v[0]),
            "threshold": int(rng.choice([1, 50, 3000, 131071])),
            "refractory": int(rng.integers(1, 6)),
            "bias": (rng.integers(-4096, 4096, size=n) << rng.integers(0, 8, size=n)) * (rng.random(n) < 0.5),
        }
        net.add_population(Population(name, n, "cuba_lif", params, role="output" if name == "p0" else "hidden"))
    size = dict(zip(names, spec.sizes), x=spec.n_inputs)
    for i, (pre, post, kind, sign, exponent, delay) in enumerate(spec.projections):
        a, b = ("x" if pre < 0 else names[pre]), names[post]
        if kind == "one_to_one" and size[a] != size[b]:
            kind = "dense"
        extra: dict = {}
        if kind == "dense":
            w = _mantissas(rng, sign, (size[a], size[b]))
        elif kind == "one_to_one":
            w = _mantissas(rng, sign, size[a])
        elif kind == "one_to_all":
            w = _mantissas(rng, sign, size[a])
        else:
            flat = rng.choice(size[a] * size[b], size=max(1, size[a] * size[b] // 3), replace=False)
            extra = {"pre_index": flat // size[b], "post_index": flat % size[b]}
            w = _mantissas(rng, sign, flat.size)
        net.add_projection(Projection(f"j{i}", a, b, kind, np.asarray(w, dtype=np.int64), delay=delay,
                                      sign=sign, exponent=exponent, weight_bits=8, **extra))
    net.attrs["quantized"] = "loihi"
    for name in names:
        for var in ("spikes", "u", "v"):
            net.add_probe(Probe(f"{name}.{var}", name, var))
    net.add_probe(Probe("x.spikes", "x", "spikes"))
    inputs = {"x": (rng.random((400, spec.n_inputs)) < spec.rate).astype(np.uint8)}
    return net, inputs


def _target(max_compartments: int) -> Target:
    """The loihi target with at most ``max_compartments`` per core (small: several cores)."""
    base = load_target("loihi")
    data = {**base.data, "core": {**base.data["core"], "max_compartments": max_compartments}}
    return Target(name="loihi", data=data, source=f"max_compartments = {max_compartments}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=net_specs(), plan=st.lists(st.one_of(st.tuples(st.just("run"), st.integers(1, 90)),
                                                 st.tuples(st.just("reset"), st.just(0))), min_size=1, max_size=4),
       classes=st.booleans(), dense_fill=st.sampled_from([0.0, 0.25, 2.0]),
       spans=st.sampled_from([(0, True, False), (10**9, True, False), (10**9, False, False), (10**9, True, True)]),
       small_buffers=st.booleans(), wide_ring=st.booleans())
def test_compiled_path_equals_numpy_on_random_networks(spec: NetSpec, plan: list[tuple[str, int]], classes: bool,
                                                        dense_fill: float, spans: tuple[int, bool, bool], small_buffers: bool,
                                                        wide_ring: bool) -> None:
    """Random networks (delays 0-6, recurrence, all sign modes, exponents -2..7, per-neuron decays,
    biases, refractory delays, several cores), runs and resets in a random order. The table
    layouts are varied too: delay matrices dense or compressed, synaptic ops counted by source
    class (after the run) or by the kernel (per-source entries or dense spans of 8-, 4- or 2-bit
    counts), int32 or int64 accumulators, a fired-id buffer that must grow, and progress
    reported over several spans."""
    net, inputs = build_random(spec)
    binary = compile_network(net, _target(spec.max_compartments))
    with pytest.MonkeyPatch.context() as mp:
        if not classes:
            mp.setattr(loihi, "_MAX_SOURCE_CLASSES", 0)
        mp.setattr(fast, "_KERNEL_DENSE_FILL", dense_fill)
        mp.setattr(fast, "_SPAN_DENSE_RATIO", spans[0])     # 0: per-source entries, else dense spans
        mp.setattr(fast, "_NIBBLE_SPANS", spans[1])         # of 4-bit or 8-bit counts
        # or of 2-bit counts with the rest as entries, whatever the size and the overflow
        mp.setattr(fast, "_TWO_BIT_MIN_BYTES", 0 if spans[2] else 1 << 62)
        mp.setattr(fast, "_TWO_BIT_OVERFLOW_RATIO", 0)
        if wide_ring:
            mp.setattr(fast, "_I32_MAX", -1)    # int64 accumulators
        if small_buffers:
            mp.setattr(fast, "_FIRED_START", 1)
            mp.setattr(fast, "_SPAN_CX_STEPS", 7)
        if not any(action == "run" for action, _ in plan):
            plan = plan + [("run", 5)]
        seen: list[int] = []
        run_both(binary, plan, inputs, progress=seen.append)
        assert sum(seen) == 2 * sum(steps for _, steps in plan)   # both chips report every step


# -------------------------------------------------------------------------------------------------
# The reference network: every wrap and clip
# -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=[0, 1])
def reference_binary(request: pytest.FixtureRequest) -> tuple[Binary, dict[str, np.ndarray]]:
    from test_reference_loihi import build_case, compile_bytes
    case = build_case(request.param)
    return decode_binary(compile_bytes(case, "mantissa")), case.inputs


def test_compiled_path_equals_numpy_on_the_reference_network(reference_binary: tuple[Binary, dict]) -> None:
    binary, inputs = reference_binary
    ref, cmp = run_both(binary, [("run", 120), ("run", 80), ("reset", 0), ("run", 100)], inputs)
    # The comparison covered what it should: every overflow kind changed values.
    got = cmp.run(300, inputs, probes=False)
    assert cmp.last_engine == "compiled"
    assert all(got.overflow[k] > 0 for k in ("input_wrap", "current_wrap", "voltage_clip")), got.overflow
    assert got.counters["spikes"] > 0


def test_state_moves_between_paths(reference_binary: tuple[Binary, dict]) -> None:
    """A state saved from either path continues identically on the other."""
    binary, inputs = reference_binary
    first = {k: v[:150] for k, v in inputs.items()}
    rest = {k: v[150:] for k, v in inputs.items()}
    a = LoihiInterpreter(binary, engine="numpy")
    a.run(150, first)
    b = LoihiInterpreter(binary, engine="compiled")
    b.load_state(a.state())
    assert_same_result(a.run(150, rest), b.run(150, rest))
    assert b.last_engine == "compiled"
    assert_same_state(a, b)
    c = LoihiInterpreter(binary, engine="numpy")
    c.load_state(b.state())
    assert_same_result(b.run(50, first), c.run(50, first))
    assert_same_state(b, c)


def test_in_flight_input_the_tables_cannot_hold_falls_back_to_numpy(reference_binary: tuple[Binary, dict]) -> None:
    """A loaded state with in-flight input that is not a multiple of the kernel's value quantum
    (no binary produces one) runs on the numpy path, with the numpy path's result."""
    binary, inputs = reference_binary
    a = LoihiInterpreter(binary, engine="numpy")
    b = LoihiInterpreter(binary, engine="compiled")
    state = a.state()
    state["ring"][0, 0] = 1.0
    a.load_state(state)
    b.load_state(state)
    assert_same_result(a.run(40, inputs), b.run(40, inputs))
    assert b.last_engine == "numpy"


# -------------------------------------------------------------------------------------------------
# Which path runs
# -------------------------------------------------------------------------------------------------
def _small_binary() -> Binary:
    from conftest import SMALL
    from nmc.frontend.dsl import parse_dsl
    return compile_network(parse_dsl(SMALL), "loihi")


def test_engine_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    binary = _small_binary()
    inputs = {"x": np.ones((10, 20), dtype=np.uint8)}
    for engine in ("numpy", "compiled"):
        chip = LoihiInterpreter(binary, engine=engine)
        chip.run(10, inputs)
        assert chip.last_engine == engine
    monkeypatch.setenv(fast.ENGINE_ENV, "compiled")
    chip = LoihiInterpreter(binary)
    chip.run(10, inputs)
    assert chip.engine == "compiled" and chip.last_engine == "compiled"
    monkeypatch.setenv(fast.ENGINE_ENV, "turbo")
    with pytest.raises(RunError, match="NMC_INTERPRETER"):
        LoihiInterpreter(binary)
    monkeypatch.delenv(fast.ENGINE_ENV)
    chip = LoihiInterpreter(binary)
    chip.engine = "turbo"
    with pytest.raises(RunError, match="unknown interpreter engine"):
        chip.run(1, inputs)


def test_auto_takes_the_compiled_path_once_runs_add_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto: a short run stays on numpy until this chip's runs (estimated numpy time) pass the
    threshold; once the kernel is loaded, a run above the small threshold takes it directly."""
    binary = _small_binary()
    inputs = {"x": np.ones((50, 20), dtype=np.uint8)}
    monkeypatch.setattr(fast, "kernel_loaded", lambda: False)
    monkeypatch.setattr(fast, "_AUTO_FIRST_S", 2.5 * fast.estimated_numpy_s(LoihiInterpreter(binary), 50))
    chip = LoihiInterpreter(binary, engine="auto")
    engines = []
    for _ in range(3):
        chip.run(50, inputs)
        engines.append(chip.last_engine)
    assert engines == ["numpy", "numpy", "compiled"]
    monkeypatch.setattr(fast, "kernel_loaded", lambda: True)
    chip = LoihiInterpreter(binary, engine="auto")
    assert fast.estimated_numpy_s(chip, 200) > fast._AUTO_LOADED_S > fast.estimated_numpy_s(chip, 1)
    chip.run(200, {"x": np.ones((200, 20), dtype=np.uint8)})
    assert chip.last_engine == "compiled"
    chip = LoihiInterpreter(binary, engine="auto")
    chip.run(1, inputs)          # too small to matter either way: numpy
    assert chip.last_engine == "numpy"


def test_unsupported_binaries_run_on_numpy() -> None:
    """Plastic synapses (the learning engine) and chip variants with their own phases stay on numpy."""
    from nmc.frontend.dsl import parse_dsl
    from pathlib import Path
    src = (Path(__file__).resolve().parents[1] / "examples" / "xor_backprop.nmc").read_text()
    chip = LoihiInterpreter(compile_network(parse_dsl(src), "loihi"), engine="compiled")
    assert chip.plastic_units and fast.unsupported(chip) == "the binary has plastic synapses"
    port = next(iter(chip.port_size))
    chip.run(5, {port: np.zeros((5, chip.port_size[port]), dtype=np.uint8)})
    assert chip.last_engine == "numpy"


def test_chip_variants_run_on_numpy() -> None:
    from nmc.driver import load_network
    from nmc.sim import interpreter_for
    from pathlib import Path
    net = load_network(Path(__file__).resolve().parents[1] / "examples" / "recurrent" / "ei_network.nmc")
    chip = interpreter_for(compile_network(net, "loihi2"))
    chip.engine = "compiled"
    assert fast.unsupported(chip) == "the chip variant extends the timestep's phases"
    chip.run(20, {})
    assert chip.last_engine == "numpy"


def test_binary_roundtrip_keeps_the_choice_of_path() -> None:
    """The decoded bytes of a binary run compiled too (the kernel reads only loaded tables)."""
    binary = decode_binary(encode_binary(_small_binary()))
    chip = LoihiInterpreter(binary, engine="compiled")
    chip.run(10, {"x": np.ones((10, 20), dtype=np.uint8)})
    assert chip.last_engine == "compiled"
