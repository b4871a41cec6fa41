"""Adam on the SpiNNaker-like chip (``update = adam``, docs/eprop.md §8): its fixed-point step against
float64 Adam, its state in checkpoints mid-update, its cycles (spread over ticks, or an overrun when
not), its memory, and its bad inputs. The bit-exact transcription is in test_reference_eprop.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from test_dsl_eprop import GOOD
from test_eprop_state import SEGMENTS, _binary, _everything, _inputs, _same, _same_result
from test_eprop_state import SRC as STATE_SRC

from nmc.binary.format import decode_binary, encode_binary
from nmc.errors import BinaryFormatError, RunError
from nmc.formats.eprop import ADAM_BETA1, ADAM_BETA2, adam_correction, rsqrt_parts, rsqrt_table
from nmc.sim.spinnaker import SpiNNakerInterpreter
from nmc.sim.spinnaker_eprop import adam_cells
from nmc.target import load_target

ADAM = "feedback = random(seed = 1), update = adam"


def test_the_fixed_point_step_follows_float64_adam() -> None:
    """Gradients over 14 octaves, half of them 0 at each step: the chip's step a = k_t m/sqrt(v)
    against float64 Adam with the same beta1, beta2 (the chip's, exactly) and eps = 0."""
    rng = np.random.default_rng(1)
    n = 4000
    scale = 2.0 ** rng.uniform(0, 14, n)
    table = rsqrt_table()
    m = np.zeros(n, np.int64)
    v = np.zeros(n, np.int64)
    mf, vf = np.zeros(n), np.zeros(n)
    b1, b2 = ADAM_BETA1 / 2.0 ** 32, ADAM_BETA2 / 2.0 ** 32
    p1 = p2 = 1 << 32
    for t in range(1, 301):
        g = np.clip(np.rint(rng.standard_normal(n) * scale * (rng.random(n) < 0.5)), -32767, 32767).astype(np.int64)
        p1, p2 = (p1 * ADAM_BETA1) >> 32, (p2 * ADAM_BETA2) >> 32
        k = adam_correction(p1, p2)
        assert abs(k / 65536 - np.sqrt(1 - b2 ** t) / (1 - b1 ** t)) < 2e-4
        m, v, a, sat = adam_cells(g, m, v, k, table)
        assert sat == 0
        mf = b1 * mf + (1 - b1) * g
        vf = b2 * vf + (1 - b2) * g.astype(np.float64) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            af = np.where(vf > 0, mf / (1 - b1 ** t) / np.sqrt(vf / (1 - b2 ** t)), 0.0) * 65536
        if t == 1:       # the first step is sign descent: |a| = 1.0 wherever g != 0
            big = np.abs(g) >= 16
            assert np.all(np.abs(np.abs(a[big]) / 65536 - 1.0) < 0.03)
            assert np.all(np.sign(a) == np.sign(g))
        if t in (2, 10, 100, 300):
            sel = (np.abs(af) > 0.05 * 65536) & (scale > 256)
            rel = np.abs(a[sel] - af[sel]) / np.abs(af[sel])
            assert np.median(rel) < 0.005 and np.percentile(rel, 99) < 0.02, (t, np.median(rel))
            assert np.percentile(np.abs(a - af), 99) < 0.3 * 65536        # every magnitude, absolute
    # A reference that forgets the bias correction (k = 1) is far off: the comparison can fail.
    _, _, a1, _ = adam_cells(np.full(4, 100), np.zeros(4, np.int64), np.zeros(4, np.int64), 65536, table)
    assert np.all(a1 > 3 * 65536)


def test_the_table_and_the_correction() -> None:
    table = rsqrt_table()
    assert table.size == 256 and table.max() < 1 << 16 and table[0] == round(65536 / np.sqrt(2))
    assert adam_correction(ADAM_BETA1, ADAM_BETA2) == int(np.sqrt(1 - ADAM_BETA2 / 2 ** 32) * 2 ** 32) * 65536 \
        // ((1 << 32) - ADAM_BETA1)
    v = np.array([0, 1, 1023, 1024, 4095, 4096, 1 << 40])
    r, h = rsqrt_parts(v, table)
    approx = r / 65536 / 2.0 ** h
    assert approx[0] == 0
    np.testing.assert_allclose(approx[2:], 1 / np.sqrt(v[2:]), rtol=5e-3)   # bins of 4 in [256, 1024)


def _adam_state_binary(chunks: int) -> Any:
    b = _binary(STATE_SRC.replace("feedback = random(seed = 1), rate_target", ADAM + ", rate_target"))
    assert b.meta["eprop"]["update"] == "adam" and b.meta["eprop"]["adam_ticks"] == 1
    b.meta["eprop"]["adam_ticks"] = chunks          # spread as a larger core's update would be
    return decode_binary(encode_binary(b))


def test_an_adam_state_saved_in_the_middle_of_an_update_continues_exactly() -> None:
    """The straight run stops one tick into a spread update (chunk 1 of 3 pending) and at the end of
    a batch; a fresh chip loaded with either state holds every attribute as it was and runs on to
    the same spikes, probes, counters, weights and moments."""
    b = _adam_state_binary(3)
    x = _inputs()
    steps = sum(SEGMENTS)
    full = {k: np.concatenate([seg[k] for seg in x]) for k in x[0]}
    cuts = (201, 199, 201)                   # 201 and 601: tick 1 of trials 2 and 6, one chunk into an update
    assert sum(cuts) <= steps
    straight = SpiNNakerInterpreter(b)
    saved, held, results, start = [], [], [], 0
    for n in cuts:
        results.append(straight.run(n, {k: a[start:start + n] for k, a in full.items()}))
        saved.append(straight.state())
        held.append(_everything(straight))
        start += n
    first = saved[0]
    assert int(first["eprop/adam_chunk"]) == 1 and int(first["eprop/adam_k"]) > 0
    assert np.any(first["eprop/learn/m"]) and np.any(first["eprop/out/v"])
    assert int(saved[1]["eprop/adam_chunk"]) == 3                   # 400: a batch's end, its update pending
    assert int(saved[2]["eprop/adam_chunk"]) == 1 and int(saved[2]["eprop/adam_p1"]) < int(first["eprop/adam_p1"])
    for k in range(len(cuts) - 1):
        resumed = SpiNNakerInterpreter(b)
        resumed.load_state(saved[k])
        _same(held[k], _everything(resumed))
        start = sum(cuts[:k + 1])
        for j in range(k + 1, len(cuts)):
            _same_result(resumed.run(cuts[j], {n: a[start:start + cuts[j]] for n, a in full.items()}), results[j])
            _same(held[j], _everything(resumed))
            start += cuts[j]
    # A state without the moments (a sign-descent chip's) is refused.
    sign = SpiNNakerInterpreter(_binary(STATE_SRC))
    with pytest.raises(RunError, match="does not belong to this binary"):
        SpiNNakerInterpreter(b).load_state(sign.state())


WIDE = """dt = 1 ms
input x[200]
input t[2]
population r[30] : alif(tau_m = 20 ms, v_rest = 0 mV, v_th = 10 mV, t_ref = 2 ms, tau_a = 200 ms, beta = 1 mV,
                        i_bias = 0.4 nA)
population y[2] : li(tau_m = 20 ms)
rule ep = eprop(eta = 0.05, feedback = random(seed = 1), update = adam)
connect x -> r : dense(weights = normal(0, 2 nA, seed = 1), rule = ep)
connect r -> y : dense(weights = normal(0, 1 nA, seed = 2), rule = ep)
schedule trial = TRIAL
score y against t from 10 ms
"""


def test_a_large_core_spreads_its_update_and_one_tick_would_overrun() -> None:
    b = _binary(WIDE.replace("TRIAL", "20 ms"))
    k = b.meta["eprop"]["adam_ticks"]
    cyc = b.target_config["cost"]["cycles"]
    n = max(c["neurons"] for c in b.meta["cores"] if "r" in c["populations"])      # the busiest core
    work = n * 200 * cyc["eprop_adam_synapse"] + 2 * 200 * cyc["eprop_row_writeback"]
    # ebar_from is 0 here (the window starts at 10 ms): the chunks share their ticks with the whole
    # trace loop, and with it stay within 0.9 of the 200,000-cycle tick.
    own = cyc["timer_tick"] + n * cyc["neuron_eprop_alif"] + 200 * cyc["eprop_source"] \
        + n * 200 * cyc["eprop_synapse_adaptive"]
    assert b.meta["eprop"]["ebar_from"] == 0
    assert k == int(np.ceil(work / (180_000 - own))) >= 2
    rng = np.random.default_rng(0)
    x = (rng.random((41, 200)) < 0.05).astype(np.uint8)
    t = np.zeros((41, 2))
    t[:, 1] = 1.0                               # the class the readout does not favour: a large error
    chip = SpiNNakerInterpreter(b)
    res = chip.run(20 + k + 1, {"x": x[:20 + k + 1], "t": t[:20 + k + 1]})
    assert res.counters["overruns"] == 0
    assert chip.eprop.adam_chunk == k and np.any(chip.eprop.learn.m)
    b.meta["eprop"]["adam_ticks"] = 1           # the whole update in one tick: more than 200,000 cycles
    chip = SpiNNakerInterpreter(decode_binary(encode_binary(b)))
    res = chip.run(21, {"x": x[:21], "t": t[:21]})
    assert res.counters["overruns"] >= 1


def test_a_trial_shorter_than_the_update_is_one_line(cli, tmp_path: Path) -> None:
    src = tmp_path / "short.nmc"
    src.write_text(WIDE.replace("TRIAL", "2 ms").replace("from 10 ms", "from 1 ms"))
    code, _, err = cli("compile", str(src), "--target", "spinnaker", "-o", str(tmp_path / "short.nmcb"))
    assert code != 0 and "Traceback" not in err
    assert "Adam's weight update on core" in err and "needs 3 ticks" in err and "more than the trial's 2" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "short.nmcb").exists()


def test_inspect_says_how_the_chip_learns(cli, tmp_path: Path) -> None:
    src = tmp_path / "ad.nmc"
    src.write_text(WIDE.replace("TRIAL", "20 ms"))
    assert cli("compile", str(src), "--target", "spinnaker", "-o", str(tmp_path / "ad.nmcb"))[0] == 0
    code, out, err = cli("inspect", str(tmp_path / "ad.nmcb"))
    assert code == 0, err
    assert ("e-prop: trials of 20 ticks, cross_entropy loss on 'y' against 't' from tick 10, update adam every "
            "trial, over the first 3 ticks of the next trial") in out


def test_adam_memory_is_counted_in_dtcm_and_sdram() -> None:
    sign = _binary(GOOD.replace("feedback = random(seed = 1)", "feedback = random(seed = 1), update = sign"))
    adam = _binary(GOOD.replace("feedback = random(seed = 1)", ADAM))
    cfg = load_target("spinnaker")
    for cs, ca in zip(sign.meta["cores"], adam.meta["cores"]):
        n = cs["neurons"]
        if cs["dtcm_bytes"] == ca["dtcm_bytes"]:
            continue
        assert ca["dtcm_bytes"] - cs["dtcm_bytes"] == (int(cfg.get("dtcm.eprop_adam_bytes"))
                                                       + n * int(cfg.get("dtcm.eprop_adam_neuron_bytes")))
        assert ca["sdram_bytes"] > cs["sdram_bytes"]
    diff = [ca["sdram_bytes"] - cs["sdram_bytes"] for cs, ca in zip(sign.meta["cores"], adam.meta["cores"])]
    # GOOD: r (5 neurons, 4 sources x) and y (2 units, 5 sources r): one word per state cell.
    assert sorted(d for d in diff if d) == sorted([4 * 5 * 4, 4 * 2 * 5])


@pytest.mark.parametrize("change, message", [
    (lambda m: m["eprop"].pop("adam_ticks"), "meta 'eprop' has no 'adam_ticks'"),
    (lambda m: m["eprop"].update(adam_ticks=0), "the ticks Adam's update is spread over is 0, outside"),
    (lambda m: m["eprop"].update(adam_ticks=101), "the ticks Adam's update is spread over is 101, outside"),
    (lambda m: m["eprop"].update(update="adamw"), "e-prop update 'adamw' is not one this chip does"),
])
def test_a_binary_with_broken_adam_words_is_refused(change, message) -> None:
    b = _binary(GOOD.replace("feedback = random(seed = 1)", ADAM))
    SpiNNakerInterpreter(decode_binary(encode_binary(b)))
    change(b.meta)
    with pytest.raises(BinaryFormatError, match=message):
        SpiNNakerInterpreter(decode_binary(encode_binary(b)))


def test_a_target_configuration_without_the_adam_cost_is_refused() -> None:
    b = _binary(GOOD.replace("feedback = random(seed = 1)", ADAM))
    del b.target_config["cost"]["cycles"]["eprop_adam_synapse"]
    with pytest.raises(BinaryFormatError, match="eprop_adam_synapse"):
        SpiNNakerInterpreter(decode_binary(encode_binary(b)))


FIT = """dt = 2 ms
input x[250]
input t[2]
population r[64] : alif(tau_m = 20 ms, v_th = 10 mV, tau_a = 200 ms, beta = 1 mV, i_bias = 0.5 nA)
population y[2] : li(tau_m = 20 ms)
rule ep = eprop(eta = 0.1, feedback = random(seed = 1), update = UPD)
connect x -> r : dense(weights = normal(0, 1 nA, seed = 1), rule = ep)
connect r -> y : dense(weights = normal(0, 1 nA, seed = 2), rule = ep)
schedule trial = 100 ms
score y against t from 50 ms
"""


def test_32_neurons_with_250_synapses_each_fit_a_core_with_either_update() -> None:
    """The layout of docs/eprop.md §4: two cores of 32 adaptive neurons with 250 plastic synapses
    each, within the 64 KB of DTCM (62,202 B; Adam's table and column buffer add 640 B), and with
    Adam a run of two trials has no overrun."""
    for update, dtcm in (("sign", 62_202), ("adam", 62_842)):
        b = _binary(FIT.replace("UPD", update))
        cores = [c for c in b.meta["cores"] if c["populations"] == ["r"]]
        assert [c["neurons"] for c in cores] == [32, 32]
        assert [c["dtcm_bytes"] for c in cores] == [dtcm, dtcm] and dtcm <= 65_536
    assert b.meta["eprop"]["adam_ticks"] > 1
    rng = np.random.default_rng(3)
    x = (rng.random((101, 250)) < 0.05).astype(np.uint8)
    t = np.zeros((101, 2))
    t[:, 1] = 1.0
    chip = SpiNNakerInterpreter(b)
    res = chip.run(101, {"x": x, "t": t})
    assert res.counters["overruns"] == 0 and chip.eprop.trials_done == 2 and np.any(chip.eprop.learn.m)
