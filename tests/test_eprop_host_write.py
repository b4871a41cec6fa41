"""``EpropEngine.host_write``: the host writes an e-prop block's plastic words between runs (a
host-side optimiser, bench/eprop_evidence.py --host-adam). The words must reach every place the
chip's own update writes: a chip whose words were written by the host must then run exactly as
the chip whose update produced those words (spikes, membranes, readout), and G must be zeroed.
(That the chip's own update reaches the deliveries and SDRAM correctly is test_reference_eprop.py's
bit-exact comparison across updates; both go through the same write.)"""

from __future__ import annotations

import numpy as np
import pytest

from nmc.backend import emit_binary
from nmc.driver import run_passes
from nmc.frontend.dsl import parse_dsl
from nmc.sim.spinnaker import SpiNNakerInterpreter
from nmc.target import load_target

from test_reference_eprop import SRC as REFERENCE_SRC
from test_reference_eprop import T

# The bit-exact test's network (inputs, recurrent ALIF, readout; batches of two 40-ms trials) with
# sign descent.
SRC = REFERENCE_SRC.replace("LOSS", "cross_entropy").replace("UPD", "sign").replace("ETA", "0.5").replace("ETO", "0.05")


def _chip() -> SpiNNakerInterpreter:
    target = load_target("spinnaker")
    return SpiNNakerInterpreter(emit_binary(run_passes(parse_dsl(SRC), target), target))


def test_host_written_words_run_as_the_chips_own_update() -> None:
    rng = np.random.default_rng(5)
    x = (rng.random((2 * T + 1, 6)) < 0.15).astype(np.uint8)
    tgt = np.zeros((2 * T + 1, 2))
    tgt[:, 0] = 1.0
    learned = _chip()
    learned.run(2 * T + 1, {"x": x, "t": tgt})      # a batch of two trials; the update at the next tick
    state = learned.eprop.state()
    assert learned.eprop.trials_done == 2
    written = _chip()
    before = written.plastic_weights()
    assert any(not np.array_equal(before[k], v) for k, v in learned.plastic_weights().items())
    written.eprop.learn.grad[:] = 7
    for block in ("learn", "out"):
        written.eprop.host_write(block, state[f"{block}/weight"])
    assert not written.eprop.learn.grad.any()
    for k, v in learned.plastic_weights().items():
        assert np.array_equal(written.plastic_weights()[k], v)
    # One more trial with learning off on both: the deliveries use the written weights.
    x2 = (rng.random((T, 6)) < 0.2).astype(np.uint8)
    runs = []
    for chip in (learned, written):
        chip.learning_enabled = False
        chip.reset()
        runs.append(chip.run(T, {"x": x2}))
    for probe in ("r.v", "r.spikes", "y.v"):
        assert np.array_equal(runs[0].probes[probe], runs[1].probes[probe])
    assert runs[0].probes["r.spikes"].sum() > 5


def test_host_write_refuses_another_shape_or_block_and_counts_saturation() -> None:
    chip = _chip()
    with pytest.raises(ValueError, match="expected words shaped"):
        chip.eprop.host_write("learn", np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="no e-prop block 'readout'"):
        chip.eprop.host_write("readout", np.zeros((2, 2), dtype=np.int64))
    words = chip.eprop.state()["out/weight"]
    big = words.copy()
    big[chip.eprop.out.mask] = 1 << 40
    chip.eprop.host_write("out", big)
    assert chip.eprop.saturation["weight"] == int(chip.eprop.out.mask.sum())
    assert np.all(chip.plastic_weights()["r->y"] == 32767)
