"""Bad e-prop programs: every mistake is one clear line, at the place it is written (DSL), or one
line naming the target and the feature it lacks (compile)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsl_checks import assert_dsl_error
from nmc.frontend.dsl import parse_dsl

REPO = Path(__file__).resolve().parent.parent

BASE = ("dt = 1 ms\ninput x[4]\ninput t[2]\n"
        "population r[5] : alif(tau_m = 20 ms, v_th = 10 mV, tau_a = 200 ms, beta = 1 mV)\n"
        "population y[2] : li(tau_m = 20 ms)\n")                       # the next line is 6
GOOD = BASE + ("rule ep = eprop(eta = 0.1, feedback = random(seed = 1))\n"
               "connect x -> r : dense(weights = 1 nA, rule = ep)\n"
               "connect r -> y : dense(weights = 1 nA, rule = ep)\n"
               "schedule trial = 100 ms\n"
               "score y against t from 50 ms\n")                        # lines 6-10
RULE = BASE + "rule ep = eprop("

ERRORS = [
    # the rule
    (RULE + "feedback = random(seed = 1))", "6:11", "missing argument 'eta' for eprop"),
    (RULE + "eta = -1, feedback = random(seed = 1))", "6:17", "e-prop eta must be > 0, got -1"),
    (RULE + "eta = 1, feedback = 3)", "6:37",
     "feedback must be random(seed = S) (fixed random feedback weights), got 3"),
    (RULE + "eta = 1, feedback = random(seed = -1))", "6:51", "seed must be a non-negative integer, got -1"),
    (RULE + "eta = 1, feedback = random(seed = 1), loss = hinge)", "6:62",
     "loss must be one of cross_entropy, mse, got the name 'hinge'"),
    (RULE + "eta = 1, feedback = random(seed = 1), rate_target = 10 ms)", "6:69",
     "rate_target must be a frequency (Hz, kHz), got 10 ms"),
    (RULE + "eta = 1, feedback = random(seed = 1), rate_reg = -1)", "6:55", "e-prop rate_reg must be >= 0, got -1"),
    (RULE + "eta = 1, feedback = random(seed = 1), gamma = 0)", "6:55", "e-prop gamma must be > 0, got 0"),
    (RULE + "eta = 1, feedback = random(seed = 1), beta = 2)", "6:55",
     "unknown argument 'beta' for eprop (known: eta, feedback, gamma, loss, rate_reg, rate_target, update, w_max)"),
    (RULE + "eta = 1, feedback = random(seed = 1), w_max = 2 mV)", "6:63",
     "w_max must be a current (pA, nA, uA, mA), got 2 mV"),
    (RULE + "eta = 1, feedback = random(seed = 1), w_max = 0 nA)", "6:55", "e-prop w_max must be > 0, got 0"),
    (RULE + "eta = 1, feedback = random(seed = 1), update = adamw)", "6:64",
     "update must be one of gradient, sign, adam, got the name 'adamw'"),
    # the models
    (BASE.replace("beta = 1 mV", "beta = 1 ms"), "4:76", "parameter 'beta' must be a voltage (uV, mV, V), got 1 ms"),
    # trials, batches and the score
    (GOOD.replace("trial = 100 ms", "trial = -5 ms"), "9:18", "trial must be a positive time, got -5 ms"),
    (GOOD.replace("trial = 100 ms", "trial = 100.5 ms"), "9:1",
     "the trial must be a whole number of time steps of 1 ms, got 100.5 ms"),
    (GOOD + "schedule batch = 0\n", "11:18", "batch must be a positive integer, got 0"),
    (GOOD + "schedule trial = 200 ms\n", "11:1", "'schedule trial' is given twice (first at line 9)"),
    (GOOD + "schedule cycle = 12\n", "11:1",
     "a file has either a synfire cycle ('schedule cycle') or e-prop trials ('schedule trial'), not both"),
    (GOOD.replace("score y against t", "score r against t"), "10:7",
     "the scored population 'r' must be a leaky readout (model 'li'), not 'alif'"),
    (GOOD.replace("score y against t", "score y against y"), "10:17",
     "the target 'y' must be an input port (its data are the desired readout)"),
    (GOOD.replace("input t[2]", "input t[3]"), "10:17", "target 't' has 3 units, but the scored population 'y' has 2"),
    (GOOD.replace("from 50 ms", "from 100 ms"), "10:24",
     "the scored window must start inside the trial [0, 100) ms, got 100 ms"),
    (GOOD.replace("from 50 ms", "from 50.5 ms"), "10:1",
     "the scored window's start must be a whole number of time steps of 1 ms, got 50.5 ms"),
    (GOOD + "score y against t from 60 ms\n", "11:1", "'score' is given twice (first at line 10)"),
    (BASE + "score y against t from 50 ms\n", "6:1",
     "'score' needs the length of a trial: add 'schedule trial = DURATION'"),
    (GOOD.replace("schedule trial = 100 ms\nscore y against t from 50 ms\n", ""), "7:1",
     "an e-prop rule needs trials: add 'schedule trial = DURATION' and 'score POP against TARGET from TIME'"),
    (GOOD.replace("score y against t from 50 ms\n", ""), "7:1",
     "an e-prop rule needs a readout to score: add 'score POP against TARGET from TIME'"),
    (BASE + "connect x -> r : dense(weights = 1 nA)\nschedule trial = 100 ms\n", "7:1",
     "trials ('schedule trial', 'score') are for e-prop rules, and no projection uses one"),
    # how rules combine
    (GOOD.replace("connect r -> y : dense(weights = 1 nA, rule = ep)",
                  "rule e2 = eprop(eta = 0.1, feedback = random(seed = 2))\n"
                  "connect r -> y : dense(weights = 1 nA, rule = e2)"), "9:1",
     "e-prop rules may differ only in eta and w_max (one learning signal per network); 'r->y' differs from 'x->r'"),
    (GOOD.replace("connect r -> y : dense(weights = 1 nA, rule = ep)",
                  "rule e2 = eprop(eta = 0.2, feedback = random(seed = 1))\n"
                  "connect r -> r : dense(weights = 1 nA, rule = e2)\n"
                  "connect r -> y : dense(weights = 1 nA, rule = ep)"), "9:1",
     "the e-prop projections into 'r' must share one eta ('x->r' has 0.1, this one 0.2)"),
    (BASE + "population h[3] : lif(tau_m = 20 ms)\n" + GOOD[len(BASE):].replace("connect x -> r", "connect x -> h"),
     "8:1", "an e-prop projection must end on an 'alif' or 'li' population, not 'lif'"),
    (GOOD.replace("rule = ep)\nconnect r", "rule = ep, delay = 2)\nconnect r"), "7:59",
     "an e-prop projection has delay 0 (a spike reaches the next step, as the e-prop equations assume), got 2"),
]


@pytest.mark.parametrize("source, where, message", ERRORS)
def test_error(source: str, where: str, message: str) -> None:
    assert_dsl_error(source, where, message)


def test_the_good_program_parses() -> None:
    """The base of every case above is itself correct, so each case fails for its own mistake."""
    net = parse_dsl(GOOD, filename="prog.nmc")
    assert net.attrs["trial"] == {"duration": 100.0, "batch": 1,
                                  "score": {"population": "y", "target": "t", "from": 50.0}}
    assert [p.learning["kind"] for p in net.projections] == ["eprop", "eprop"]


def _one_line_error(cli, *args) -> str:
    code, _, err = cli(*args)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def test_loihi_refuses_an_eprop_program_in_one_line(cli, tmp_path: Path) -> None:
    src = tmp_path / "ep.nmc"
    src.write_text(GOOD)
    assert cli("compile", src, "--target", "spinnaker", "-o", tmp_path / "ep.nmcb")[0] == 0
    err = _one_line_error(cli, "compile", src, "--target", "loihi")
    assert err == "population 'r': error: neuron model 'alif' is not supported by target 'loihi' " \
                  "(it supports: cuba_lif, graded, if, input, lif, linear, lprnn, relu)"


def test_a_target_without_eprop_refuses_the_rule_in_one_line(cli, tmp_path: Path) -> None:
    """A target with the models but not the rule (a copy of spinnaker.toml without 'eprop')."""
    toml = (REPO / "targets" / "spinnaker.toml").read_text()
    assert 'learning_rules = ["eprop"]' in toml
    (tmp_path / "nolearn.toml").write_text(toml.replace('learning_rules = ["eprop"]', "learning_rules = []")
                                           .replace('name = "spinnaker"', 'name = "nolearn"', 1))
    src = tmp_path / "ep.nmc"
    src.write_text(GOOD)
    err = _one_line_error(cli, "compile", src, "--target", tmp_path / "nolearn.toml")
    assert err.endswith("projection 'x->r': error: target 'nolearn' has no e-prop learning (rule kind 'eprop')"), err


def test_w_max_sets_the_weight_scale_of_its_post_population() -> None:
    """Without w_max the largest initial weight (x4 headroom) fixes the shift; w_max = 30 nA asks
    for room up to 30 nA (g ~ 0.98 mV/nA: 29 mV needs shift 5 where 4 x 1 nA needs shift 2)."""
    from nmc.backend import emit_binary
    from nmc.driver import run_passes
    from nmc.target import load_target

    target = load_target("spinnaker")
    shifts = []
    for rule in ("eprop(eta = 0.1, feedback = random(seed = 1))",
                 "eprop(eta = 0.1, feedback = random(seed = 1), w_max = 30 nA)"):
        b = emit_binary(run_passes(parse_dsl(GOOD.replace(GOOD[GOOD.index("eprop("):GOOD.index("\n", GOOD.index("eprop("))],
                                                          rule)), target), target)
        shifts.append([int(x) for x in b.sections["core_shift_exc"]])
    assert shifts[0] == [2, 2] and shifts[1] == [5, 5]


@pytest.mark.parametrize("change, message", [
    (lambda m: m["eprop"].update(loss="hinge"), "e-prop loss 'hinge' is not one this chip computes"),
    (lambda m: m["eprop"].update(window_from=100), "the e-prop scored window's first tick is 100, outside"),
    (lambda m: m["eprop"].pop("batch"), "meta 'eprop' has no 'batch'"),
    (lambda m: m["plastic"][0]["format"].update(drop=40), "plastic projection 'x->r' drop is 40, outside"),
])
def test_a_binary_with_broken_eprop_metadata_is_refused(change, message) -> None:
    """The host-side checks (nmc/binary/meta.py) know the plastic weight formats; the chip's own
    checks (nmc/sim/spinnaker_eprop.py) know its trial words."""
    from nmc.backend import emit_binary
    from nmc.binary.format import decode_binary, encode_binary
    from nmc.driver import run_passes
    from nmc.errors import BinaryFormatError
    from nmc.sim.spinnaker import SpiNNakerInterpreter
    from nmc.target import load_target

    target = load_target("spinnaker")
    b = emit_binary(run_passes(parse_dsl(GOOD), target), target)
    assert b.meta["plastic"][0]["format"] == {"exponent": 2, "drop": 0, "lo": -32768, "hi": 32767}
    SpiNNakerInterpreter(decode_binary(encode_binary(b)))            # as compiled, it loads
    change(b.meta)
    with pytest.raises(BinaryFormatError, match=message):
        SpiNNakerInterpreter(decode_binary(encode_binary(b)))


def test_eprop_populations_are_placed_by_first_fit_and_the_report_says_so(cli, tmp_path: Path) -> None:
    """The SpiNNaker-like packing view does not model e-prop state, so the default partition places
    e-prop populations by first fit against the exact model, and says so; a solver asked for by
    name that cannot is one line."""
    src = tmp_path / "ep.nmc"
    src.write_text(GOOD)
    code, out, err = cli("compile", src, "--target", "spinnaker", "--report", "-o", tmp_path / "ep.nmcb")
    assert code == 0
    assert "populations 'r', 'y' are outside the packing view" in out + err
    pipeline = "verify,map-neurons,quantize,partition{solver=cpsat},allocate"
    err = _one_line_error(cli, "compile", src, "--target", "spinnaker", "--pass-pipeline", pipeline)
    assert "solver 'cpsat' cannot place 'r', 'y'" in err and "use solver=first-fit" in err


@pytest.mark.parametrize("update", ["gradient", "adam"])
def test_an_eprop_program_trains_through_the_cli(cli, tmp_path: Path, update: str) -> None:
    """nmc compile + nmc run on samples of one trial each: the chip learns from every finished trial
    (the last one's update waits for a next tick), the weights change, and the counters say so."""
    import numpy as np

    src = tmp_path / "ep.nmc"
    src.write_text(GOOD.replace("random(seed = 1))", f"random(seed = 1), update = {update})") + "probe y.v\n")
    assert cli("compile", src, "--target", "spinnaker", "-o", tmp_path / "ep.nmcb")[0] == 0
    rng = np.random.default_rng(0)
    x = (rng.random((6, 100, 4)) < 0.2).astype(np.uint8)
    t = np.zeros((6, 100, 2))
    t[:, :, 0] = 1.0
    np.savez(tmp_path / "data.npz", x=x, t=t)
    code, out, err = cli("run", tmp_path / "ep.nmcb", "--input", tmp_path / "data.npz", "--out", tmp_path / "r.npz")
    assert code == 0, err
    assert "e-prop          5 trials learned from" in out
    r = np.load(tmp_path / "r.npz")
    assert int(r["eprop_trials"]) == 5
    w = r["weights/x->r"]   # compiled all equal (1 nA); learning moved them apart
    assert w.shape == (4, 5) and not np.all(w == w.flat[0])
    code, out, err = cli("run", tmp_path / "ep.nmcb", "--input", tmp_path / "data.npz", "--epochs", "3")
    assert code == 0 and "6 samples x 100 steps, 3 epochs" in out and "e-prop          17 trials learned from" in out, err
    assert "epoch 3/3" in out
