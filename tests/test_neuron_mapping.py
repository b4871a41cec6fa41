"""Physical-unit neurons and the W/tau mapping (map-neurons) on the Loihi-like target.

- per-neuron registers: a population whose thresholds, decays and refractory delays differ per
  neuron compiles (into more compartment configs than one core holds, so it is split) and runs
  bit-exactly against the numpy transcription of tests/test_reference_loihi.py;
- the mapping's registers equal the equations of docs/mapping.md, computed here independently;
- a lif driven by a current step follows the exact continuous solution within the error bound
  ``nmc compile --report`` prints, over 1,000 steps, through the CLI;
- errors: no dt, a reset the chip cannot do, weights that all round to zero.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from nmc.binary.format import decode_binary, encode_binary
from nmc.driver import compile_network, run_passes
from nmc.errors import IrError, QuantizationError
from nmc.frontend.dsl import parse_dsl
from nmc.ir.network import Network, Population, Probe, Projection
from nmc.sim.loihi import LoihiInterpreter
from nmc.target import load_target
from test_reference_loihi import RefPopulation, RefProjection, mismatches, reference_run

LOIHI = load_target("loihi")


# -- per-neuron registers -------------------------------------------------------------------------
def _per_neuron_case(seed: int = 4, n: int = 40, steps: int = 300):
    rng = np.random.default_rng(seed)
    pops = [
        RefPopulation("inp", 30, is_input=True),
        # 40 neurons, every one with its own (decay_u, decay_v, threshold, refractory): more configs
        # than a core's table holds (core.max_compartment_configs = 32).
        RefPopulation("P", n, decay_u=rng.integers(0, 4096, n), decay_v=rng.integers(0, 4097, n),
                      threshold=rng.integers(200, 3000, n), refractory=rng.integers(1, 6, n),
                      bias=rng.integers(-200, 400, n).astype(np.int64)),
    ]
    mant = 2 * rng.integers(-100, 128, size=(30, n))
    projs = [RefProjection("inp", "P", mant, 1, 1), RefProjection("P", "P", (rng.random((n, n)) < 0.1) * -50, 0, 0)]
    inputs = {"inp": (rng.random((steps, 30)) < 0.2).astype(np.uint8)}
    return pops, projs, inputs, steps


def test_per_neuron_thresholds_and_decays_run_bit_exactly() -> None:
    pops, projs, inputs, steps = _per_neuron_case()
    net = Network("per_neuron")
    net.add_population(Population("inp", 30, "input", role="input"))
    p = pops[1]
    net.add_population(Population("P", p.size, "cuba_lif", {"decay_u": p.decay_u, "decay_v": p.decay_v,
                                                             "threshold": p.threshold, "refractory": p.refractory,
                                                             "bias": p.bias}))
    for i, pr in enumerate(projs):
        sign = "mixed" if i == 0 else "inhibitory"
        net.add_projection(Projection(f"{pr.pre}->{pr.post}", pr.pre, pr.post, "dense",
                                      pr.mantissa * 2.0 ** pr.exponent, delay=pr.delay, sign=sign,
                                      exponent=pr.exponent))
    for var in ("spikes", "u", "v"):
        net.add_probe(Probe(f"P.{var}", "P", var))
    net.add_probe(Probe("inp.spikes", "inp", "spikes"))
    binary = compile_network(net, LOIHI, strict=True)
    placement = binary.meta["populations"][1]["placement"]
    assert len({core for core, _, _ in placement}) == 2, placement  # 40 configs do not fit one core
    assert all(c["compartment_configs"] <= 32 for c in binary.meta["cores"])
    result = LoihiInterpreter(decode_binary(encode_binary(binary))).run(steps, inputs=inputs)
    ref = reference_run(pops, projs, inputs, steps)

    class Case:  # what mismatches() reads
        populations = pops
    assert not mismatches(result, ref, Case), "\n".join(mismatches(result, ref, Case))
    assert 0.01 < ref.spikes["P"].mean() < 0.5


# -- the mapping's equations ------------------------------------------------------------------------
LIF_SRC = """\
network lif_step
dt = {dt}
input x[2]
population n[4] : lif(tau_m = {tau_m}, tau_syn = 5 ms, cm = 0.5 nF, v_rest = -65 mV, v_reset = -65 mV,
                      v_th = -50 mV, t_ref = 2 ms, i_bias = {i_bias})
connect x -> n : dense(weights = 0.4 nA)
probe n.v
output n
"""


def _lowered(src: str) -> Network:
    return run_passes(parse_dsl(src), LOIHI, "verify,map-neurons")


def test_registers_follow_the_mapping_equations() -> None:
    """docs/mapping.md, equation by equation, for per-neuron membrane time constants."""
    net = _lowered(LIF_SRC.format(dt="0.5 ms", tau_m="uniform(5 ms, 40 ms, seed = 1)", i_bias="0.3 nA"))
    pop = net.population("n")
    tau_m = pop.attrs["mapped"]["params"]["tau_m"]
    dt, tau_s, cm = 0.5, 5.0, 0.5
    du = round(4096 * (1 - math.exp(-dt / tau_s))) - 1
    dv = np.round(4096 * (1 - np.exp(-dt / tau_m)))
    a_s, a_m = (4096 - du - 1) / 4096, (4096 - dv) / 4096
    gain = tau_m / cm * (1 - a_m)
    lam = 64 * 4096 / 15.0                       # mapping.lif_threshold_mant = 4096, v_th - v_rest = 15 mV
    assert pop.model == "cuba_lif"
    assert pop.params["decay_u"] == du and np.array_equal(pop.params["decay_v"], dv)
    assert pop.params["threshold"] == 4096 and pop.params["refractory"] == round(2 / dt) + 1
    assert np.allclose(pop.params["bias"], lam * gain * 0.3, rtol=2 ** -11)  # 12-bit bias mantissa
    charge = tau_s * (1 - a_s) / dt               # per-step current of a spike: the continuous charge
    want = lam * gain * charge * 0.4 / 64
    got = net.projection("x->n").weights
    assert np.allclose(got, np.broadcast_to(want, got.shape), rtol=2 ** -7)
    assert pop.attrs["mapped"]["units"]["v"] == [lam, -65.0]


# -- the trace against the continuous solution, through the CLI ------------------------------------
def test_lif_membrane_follows_the_continuous_solution(cli, tmp_path: Path) -> None:
    """A current step (the bias, from t = 0) below threshold: V(t) = v_rest + R I (1 - exp(-t/tau_m))
    exactly. The probe of step k holds v after the update of step k, i.e. V at t = (k + 1) dt."""
    src = tmp_path / "lif.nmc"
    src.write_text(LIF_SRC.format(dt="1 ms", tau_m="20 ms", i_bias="0.3 nA"))
    code, out, _ = cli("compile", src, "-o", tmp_path / "lif.nmcb", "--report")
    assert code == 0 and "// map-neurons report" in out
    m = re.search(r"step response: \|V - V_exact\| <= ([\d.e+-]+) % of the step's size \+ ([\d.e+-]+) mV", out)
    assert m, out
    rel, absolute = float(m.group(1)) / 100, float(m.group(2))
    code, _, _ = cli("run", tmp_path / "lif.nmcb", "--steps", "1000", "--out", tmp_path / "r.npz")
    assert code == 0
    with np.load(tmp_path / "r.npz") as r:
        v_raw = r["probe/n.v"].astype(np.float64)
        assert not r["spikes/n"].any()
    lam = 64 * 4096 / 15.0
    v_mv = v_raw / lam - 65.0
    t = np.arange(1, 1001) * 1.0
    step = 20.0 / 0.5 * 0.3                           # R I = (tau_m / cm) i_bias = 12 mV, below v_th - v_rest
    exact = -65.0 + step * (1 - np.exp(-t / 20.0))
    err = np.abs(v_mv - exact[:, None]).max()
    assert err <= rel * step + absolute, (err, rel * step + absolute)
    assert err > 0  # the discretisation is not exact: the bound is doing work


def test_lif_fires_at_the_continuous_rate(cli, tmp_path: Path) -> None:
    """Above rheobase the continuous lif fires every T = t_ref + tau_m ln(R I / (R I - theta)); the
    discrete one fires at the first step at or after each crossing, so each interval is T rounded
    up to whole steps: over 1,000 steps the count lies in [1000 / (T + 1) - 1, 1000 / T + 1]."""
    src = tmp_path / "lif.nmc"
    src.write_text(LIF_SRC.format(dt="1 ms", tau_m="20 ms", i_bias="1.2 nA"))
    assert cli("compile", src, "-o", tmp_path / "lif.nmcb")[0] == 0
    assert cli("run", tmp_path / "lif.nmcb", "--steps", "1000", "--out", tmp_path / "r.npz")[0] == 0
    with np.load(tmp_path / "r.npz") as r:
        count = int(r["spikes/n"][:, 0].sum())
    ri, theta = 20.0 / 0.5 * 1.2, 15.0
    period = 2.0 + 20.0 * math.log(ri / (ri - theta))
    assert 1000 / (period + 1) - 1 <= count <= 1000 / period + 1, (count, period)


# -- errors -----------------------------------------------------------------------------------------
def test_physical_model_without_dt_is_an_error() -> None:
    net = parse_dsl(LIF_SRC.format(dt="1 ms", tau_m="20 ms", i_bias="0 nA").replace("dt = 1 ms\n", ""))
    with pytest.raises(IrError, match="needs the network's time step"):
        run_passes(net, LOIHI, "verify,map-neurons")


def test_a_reset_the_chip_cannot_do_names_the_target() -> None:
    src = LIF_SRC.format(dt="1 ms", tau_m="20 ms", i_bias="0 nA").replace("v_reset = -65 mV", "v_reset = -70 mV")
    with pytest.raises(IrError) as exc:
        _lowered(src)
    assert "target 'loihi'" in str(exc.value) and "v_reset = v_rest" in str(exc.value)


def test_weights_that_all_round_to_zero_are_refused() -> None:
    src = LIF_SRC.format(dt="1 ms", tau_m="20 ms", i_bias="0 nA").replace("0.4 nA", "1e-9 nA")
    with pytest.raises(QuantizationError, match="all 8 non-zero weights round to zero"):
        _lowered(src)


def test_units_are_checked_in_the_dsl() -> None:
    from nmc.errors import DslError
    with pytest.raises(DslError, match="parameter 'tau_m' must be a time \\(us, ms, s\\), got -65 mV"):
        parse_dsl("dt = 1 ms\npopulation n[1] : lif(tau_m = -65 mV)")
    net = parse_dsl("dt = 100 us\npopulation n[1] : lif(tau_m = 0.02 s, v_th = -0.05 V, i_bias = 500 pA)")
    assert net.attrs["dt"] == 0.1
    assert net.population("n").params["tau_m"] == 20.0 and net.population("n").params["v_th"] == -50.0
    assert net.population("n").params["i_bias"] == 0.5
