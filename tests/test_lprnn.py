"""The low-pass RNN: nmc.LpRNN in ONNX -> lprnn units -> sigma_delta units with tau from alpha ->
sdn registers on loihi2. The spiking state must track the ANN's state (correlation >= 0.95; the
accuracy gap is measured by bench/lprnn_tasks.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest

from nmc.conversion.ann import forward
from nmc.driver import compile_network, load_network
from nmc.errors import NmcError
from nmc.frontend.onnx.build import lprnn_model
from nmc.ir.network import Probe
from nmc.sim import interpreter_for
from nmc.sim.runner import run_session

ITEMS, FEATURES, HIDDEN = 8, 8, 24


def _ann_states(w, r, b, alpha, x):  # noqa: ANN001, ANN202
    """h_t = alpha h_(t-1) + (1 - alpha) relu(W x_t + R h_(t-1) + b), written out independently."""
    h = np.zeros((x.shape[0], w.shape[0]))
    out = []
    for t in range(x.shape[1]):
        h = alpha * h + (1 - alpha) * np.maximum(x[:, t] @ w.T + h @ r.T + b, 0)
        out.append(h)
    return np.stack(out, axis=1)


def _random_lprnn(seed: int, alpha: float | np.ndarray):  # noqa: ANN202
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 1.0, (HIDDEN, FEATURES))
    r = rng.normal(0, 1.0 / math.sqrt(HIDDEN), (HIDDEN, HIDDEN))
    b = rng.normal(0, 0.3, HIDDEN)
    v = rng.normal(0, 1.0, (HIDDEN, 3))
    return w, r, b, alpha, v, np.zeros(3)


def _digit_rows(n: int) -> np.ndarray:
    from sklearn.datasets import load_digits
    return (load_digits().data[:n] / 16.0).reshape(n, ITEMS, FEATURES)


def _spiking_states(tmp_path: Path, params, x: np.ndarray, item_steps: int):  # noqa: ANN001, ANN202
    path = tmp_path / "lprnn.onnx"
    onnx.save(lprnn_model(*params, items=ITEMS), path)
    net = load_network(path)
    net.add_probe(Probe("h", "LpRNN_0", "v"))
    pipeline = f"verify,convert-ann{{item_steps={item_steps}}},verify,map-neurons,quantize,partition,allocate"
    binary = compile_network(net, "loihi2", pipeline, calibration={"input": x})
    session = run_session(interpreter_for(binary), {"input": x}, None)
    scale = net.population("LpRNN_0").attrs["mapped"]["units"]["v"][0]
    norm = net.attrs["conversion"]["scales"]["LpRNN_0"]
    # The state after item t: item t arrives at step t * item_steps + 1 and acts for item_steps steps.
    ends = [(t + 1) * item_steps for t in range(ITEMS)]
    return session.probes["h"][:, ends, :] / scale * norm, net, session


def test_import_matches_the_cell(tmp_path: Path) -> None:
    params = _random_lprnn(1, np.linspace(0.5, 0.9, HIDDEN))
    path = tmp_path / "lprnn.onnx"
    onnx.save(lprnn_model(*params, items=ITEMS), path)
    net = load_network(path)
    x = _digit_rows(10)
    got = forward(net, {"input": x}).y["LpRNN_0"]
    np.testing.assert_allclose(got, _ann_states(*params[:4], x), rtol=1e-5, atol=1e-5)
    rec = [p for p in net.projections if p.attrs.get("recurrent")]
    assert [(p.pre, p.post) for p in rec] == [("LpRNN_0", "LpRNN_0")]


@pytest.mark.parametrize("alpha", [0.8, np.linspace(0.6, 0.95, HIDDEN)])
def test_spiking_state_tracks_the_ann_state(tmp_path: Path, alpha: float | np.ndarray) -> None:
    params = _random_lprnn(2, alpha)
    x = _digit_rows(16)
    snn, net, _ = _spiking_states(tmp_path, params, x, item_steps=16)
    ann = _ann_states(*params[:4], x)
    corr = float(np.corrcoef(ann.ravel(), snn.ravel())[0, 1])
    assert corr >= 0.95, corr
    # tau from alpha and the step sizes: an item is 16 steps of 1 ms, so tau = -16 ms / ln(alpha).
    tau = np.asarray(net.population("LpRNN_0").attrs["mapped"]["params"]["tau"])
    alpha32 = np.asarray(alpha, dtype=np.float32).astype(np.float64)  # ONNX stores the attribute as float32
    np.testing.assert_allclose(tau, -16.0 / np.log(alpha32), rtol=1e-12)
    rec = next(p for p in net.projections if p.pre == p.post == "LpRNN_0")
    assert rec.delay == 16 // 2 - 1  # half an item, counting the chip's own step


def test_tracking_fails_without_the_half_item_delay(tmp_path: Path) -> None:
    """The delay on the recurrent synapses is what makes the continuous low-pass follow the
    discrete cell: without it the recurrent input is half an item early and the states part."""
    params = _random_lprnn(3, 0.8)
    params = (params[0], 3.0 * params[1], *params[2:])  # strong recurrence makes the timing matter
    x = _digit_rows(16)
    snn, _, _ = _spiking_states(tmp_path, params, x, item_steps=16)
    ann = _ann_states(*params[:4], x)
    with_delay = float(np.corrcoef(ann.ravel(), snn.ravel())[0, 1])
    path = tmp_path / "lprnn.onnx"
    net = load_network(path)
    net.add_probe(Probe("h", "LpRNN_0", "v"))
    pipeline = "verify,convert-ann{item_steps=16},verify,map-neurons,quantize,partition,allocate"
    from nmc.passes import PassContext, parse_pipeline, run_pipeline
    from nmc.target import load_target
    from nmc.backend import emit_binary
    target = load_target("loihi2")
    steps = parse_pipeline(pipeline)
    net = run_pipeline(net, steps[:2], PassContext(target, calibration={"input": x}))
    next(p for p in net.projections if p.pre == p.post).delay = 0
    net = run_pipeline(net, steps[2:], PassContext(target))
    session = run_session(interpreter_for(emit_binary(net, target)), {"input": x}, None)
    units = net.population("LpRNN_0").attrs["mapped"]["units"]["v"][0]
    no_delay = session.probes["h"][:, [(t + 1) * 16 for t in range(ITEMS)], :] / units * \
        net.attrs["conversion"]["scales"]["LpRNN_0"]
    without = float(np.corrcoef(ann.ravel(), no_delay.ravel())[0, 1])
    assert with_delay >= 0.95 and without < with_delay - 0.02, (with_delay, without)


def test_lprnn_needs_the_sigma_delta_conversion(cli, tmp_path: Path) -> None:
    path = tmp_path / "lprnn.onnx"
    onnx.save(lprnn_model(*_random_lprnn(4, 0.8), items=ITEMS), path)
    code, _, err = cli("compile", path, "--target", "loihi", "-o", tmp_path / "x.nmcb")
    assert code == 1
    assert err == ("population 'LpRNN_0': error: lprnn units need the sigma-delta conversion (mode=sigma-delta, on "
                   "a target that maps sigma_delta such as loihi2)\n")


def test_bad_alpha_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "lprnn.onnx"
    onnx.save(lprnn_model(*_random_lprnn(5, 1.5), items=ITEMS), path)
    with pytest.raises(NmcError, match=r"node 'LpRNN_0': error: alpha must lie in \[0, 1\)"):
        load_network(path)
