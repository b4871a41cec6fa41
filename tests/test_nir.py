"""NIR: graphs written by the ``nir`` package import, compile and run with the spikes NIR's
equations give (an independent float reference of the documented discretisation), and nmc's
export reads back in ``nir`` with the same parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nmc.driver import compile_network, load_network
from nmc.errors import NmcError
from nmc.sim import interpreter_for

nir = pytest.importorskip("nir")

#: 1/1024 s: with r = 1 and weights on a 1/32 grid every register of an IF network is exact.
DT_S = 1.0 / 1024


def _if_graph(seed: int) -> "nir.NIRGraph":
    rng = np.random.default_rng(seed)
    w1 = rng.integers(-12, 20, (6, 4)) / 32.0
    w2 = rng.integers(-10, 24, (3, 6)) / 32.0
    b1 = rng.integers(0, 16, 6) / 256.0
    nodes = {
        "in": nir.Input(input_type=np.array([4])),
        "fc1": nir.Affine(weight=w1, bias=b1),
        "h": nir.IF(r=np.ones(6), v_threshold=np.ones(6), v_reset=np.zeros(6)),
        "fc2": nir.Linear(weight=w2),
        "o": nir.IF(r=np.ones(3), v_threshold=np.ones(3), v_reset=np.zeros(3)),
        "out": nir.Output(output_type=np.array([3])),
    }
    edges = [("in", "fc1"), ("fc1", "h"), ("h", "fc2"), ("fc2", "o"), ("o", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT_S})


def _reference(graph: "nir.NIRGraph", spikes: np.ndarray) -> dict[str, np.ndarray]:
    """NIR's equations stepped with dt, a spike being a Dirac pulse of area 1 delivered in the step
    after it was emitted (the one-step latency of a synapse), leaky decays exact:
        IF:  v += r (W s + b dt)                      LIF: v = v_leak + a (v - v_leak) + r (1 - a) (W s / dt + b)
    spike when v > v_threshold, then v = v_reset. Layers in edge order (a feed-forward chain)."""
    dt = float(graph.metadata["dt"])
    order = [n for n, _ in graph.edges] + [graph.edges[-1][1]]
    steps = spikes.shape[0]
    s_prev = {"in": np.zeros(spikes.shape[1])}
    v: dict[str, np.ndarray] = {}
    out: dict[str, list[np.ndarray]] = {}
    for t in range(steps):
        s_now = {"in": spikes[t]}
        for name in order:
            node = graph.nodes[name]
            if not isinstance(node, (nir.IF, nir.LIF)):
                continue
            src = [a for a, b in graph.edges if b == name][0]
            pre = [a for a, b in graph.edges if b == src][0]
            w = graph.nodes[src]
            drive = w.weight @ s_prev.get(pre, np.zeros(w.weight.shape[1]))
            b = getattr(w, "bias", None)
            b = np.zeros(drive.shape) if b is None else np.asarray(b)
            vv = v.get(name, np.zeros(drive.shape))
            if isinstance(node, nir.IF):
                vv = vv + node.r * (drive + b * dt)
            else:
                a = np.exp(-dt / node.tau)
                vv = node.v_leak + a * (vv - node.v_leak) + node.r * (1 - a) * (drive / dt + b)
            fired = vv > node.v_threshold
            vv = np.where(fired, node.v_reset, vv)
            v[name] = vv
            s_now[name] = fired.astype(float)
            out.setdefault(name, []).append(fired)
        s_prev = s_now
    return {k: np.array(x) for k, x in out.items()}


def test_if_network_runs_with_the_reference_spikes(tmp_path: Path) -> None:
    graph = _if_graph(1)
    path = tmp_path / "net.nir"
    nir.write(str(path), graph)
    net = load_network(path)
    assert net.attrs["dt"] == pytest.approx(1000 * DT_S)
    from nmc.ir.network import Probe
    net.add_probe(Probe("h.spikes", "h", "spikes"))
    chip = interpreter_for(compile_network(net, "loihi"))
    spikes = (np.random.default_rng(2).random((300, 4)) < 0.3).astype(np.uint8)
    res = chip.run(300, {"in": spikes})
    ref = _reference(graph, spikes)
    assert ref["h"].sum() > 100 and ref["o"].sum() > 20  # the network is active
    np.testing.assert_array_equal(res.probes["h.spikes"], ref["h"])
    np.testing.assert_array_equal(res.spikes["o"], ref["o"])


def test_the_reference_comparison_can_fail(tmp_path: Path) -> None:
    """A network whose weights differ by one grid step spikes differently from the reference."""
    graph = _if_graph(1)
    path = tmp_path / "net.nir"
    nir.write(str(path), graph)
    net = load_network(path)
    proj = next(p for p in net.projections if p.post == "h")
    proj.weights = np.asarray(proj.weights) + 1.0 / 32 * 1024  # one 1/32 step of W in nA (W / dt)
    chip = interpreter_for(compile_network(net, "loihi"))
    spikes = (np.random.default_rng(2).random((300, 4)) < 0.3).astype(np.uint8)
    assert not np.array_equal(chip.run(300, {"in": spikes}).spikes["o"], _reference(graph, spikes)["o"])


def test_lif_network_tracks_the_reference(tmp_path: Path) -> None:
    """Leaky decays round to 12 bits, so spikes agree nearly everywhere, not bit for bit."""
    rng = np.random.default_rng(3)
    nodes = {
        "in": nir.Input(input_type=np.array([5])),
        "fc": nir.Affine(weight=rng.uniform(0, 0.004, (8, 5)), bias=np.full(8, 0.2)),
        "h": nir.LIF(tau=np.full(8, 0.02), r=np.full(8, 2.0), v_leak=np.zeros(8), v_threshold=np.ones(8),
                     v_reset=np.zeros(8)),
        "out": nir.Output(output_type=np.array([8])),
    }
    graph = nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "h"), ("h", "out")], metadata={"dt": 0.001})
    path = tmp_path / "lif.nir"
    nir.write(str(path), graph)
    chip = interpreter_for(compile_network(load_network(path), "loihi"))
    spikes = (rng.random((400, 5)) < 0.2).astype(np.uint8)
    got = chip.run(400, {"in": spikes}).spikes["h"]
    ref = _reference(graph, spikes)["h"]
    assert ref.sum() > 50
    assert abs(int(got.sum()) - int(ref.sum())) <= 0.05 * ref.sum()
    assert np.mean(got == ref) > 0.98


def _rich_graph() -> "nir.NIRGraph":
    rng = np.random.default_rng(4)
    nodes = {
        "in": nir.Input(input_type=np.array([3])),
        "fc1": nir.Affine(weight=rng.normal(0, 0.01, (5, 3)), bias=rng.normal(0, 0.1, 5)),
        "syn": nir.CubaLIF(tau_syn=np.full(5, 0.005), tau_mem=np.linspace(0.01, 0.03, 5), r=np.full(5, 1.5),
                           v_leak=np.zeros(5), v_threshold=np.full(5, 0.8), v_reset=np.zeros(5),
                           w_in=np.full(5, 2.0)),
        "fc2": nir.Linear(weight=rng.normal(0, 0.01, (4, 5))),
        "delay": nir.Delay(delay=np.full(4, 0.003)),
        "lif": nir.LIF(tau=np.full(4, 0.02), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4),
                       v_reset=np.zeros(4)),
        "rec": nir.Linear(weight=rng.normal(0, 0.01, (4, 4))),
        "fc3": nir.Linear(weight=rng.normal(0, 0.01, (2, 4))),
        "li": nir.LI(tau=np.full(2, 0.05), r=np.ones(2), v_leak=np.zeros(2)),
        "out": nir.Output(output_type=np.array([2])),
    }
    edges = [("in", "fc1"), ("fc1", "syn"), ("syn", "fc2"), ("fc2", "delay"), ("delay", "lif"), ("lif", "rec"),
             ("rec", "lif"), ("lif", "fc3"), ("fc3", "li"), ("li", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 0.001})


def test_export_reads_back_with_equal_parameters(tmp_path: Path, cli) -> None:
    graph = _rich_graph()
    src = tmp_path / "rich.nir"
    nir.write(str(src), graph)
    out = tmp_path / "back.nir"
    code, _, err = cli("compile", src, "--emit", "nir", "-o", out)
    assert code == 0, err
    back = nir.read(str(out))
    assert float(back.metadata["dt"]) == pytest.approx(0.001)
    for name in ("syn", "lif", "li"):
        a, b = graph.nodes[name], back.nodes[name]
        assert type(a) is type(b), name
        for field in ("tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset"):
            if hasattr(a, field):
                np.testing.assert_allclose(getattr(b, field), getattr(a, field), rtol=1e-12, err_msg=f"{name}.{field}")
    # Weights: the CubaLIF's w_in is folded into the weights (exported with w_in = 1).
    def weight_into(g: "nir.NIRGraph", post: str) -> dict[str, np.ndarray]:
        found = {}
        for s, d in g.edges:
            node = g.nodes[s]
            if d == post and isinstance(node, nir.Delay):
                s = next(a for a, b in g.edges if b == s)
                node = g.nodes[s]
            if d == post or isinstance(g.nodes[d], nir.Delay) and any(b == post for a, b in g.edges if a == d):
                if isinstance(node, (nir.Affine, nir.Linear)):
                    pre = next(a for a, b in g.edges if b == s)
                    found[pre] = np.asarray(node.weight)
        return found
    np.testing.assert_allclose(weight_into(back, "syn")["in"], graph.nodes["fc1"].weight * 2.0, rtol=1e-12)
    np.testing.assert_allclose(back.nodes["in->syn"].bias, graph.nodes["fc1"].bias * 2.0, rtol=1e-12)
    np.testing.assert_allclose(weight_into(back, "lif")["lif"], graph.nodes["rec"].weight, rtol=1e-12)
    np.testing.assert_allclose(weight_into(back, "li")["lif"], graph.nodes["fc3"].weight, rtol=1e-12)
    assert float(np.asarray(back.nodes["syn->lif.delay"].delay)[0]) == pytest.approx(0.003)


def test_rich_graph_compiles_and_runs(tmp_path: Path, cli) -> None:
    src = tmp_path / "rich.nir"
    nir.write(str(src), _rich_graph())
    code, _, err = cli("compile", src, "-o", tmp_path / "rich.nmcb")
    assert code == 0, err
    assert "remark: discretised with dt = 1 ms (exact decays per step); spikes as Dirac pulses of area 1" in err
    data = tmp_path / "in.npz"
    np.savez(data, **{"in": (np.random.default_rng(5).random((200, 3)) < 0.3).astype(np.uint8)})
    code, out, err = cli("run", tmp_path / "rich.nmcb", "--input", data)
    assert code == 0, err


def test_missing_time_step_is_stated_not_guessed(tmp_path: Path, cli) -> None:
    graph = _if_graph(1)
    graph.metadata = {}
    path = tmp_path / "nodt.nir"
    nir.write(str(path), graph)
    code, _, err = cli("compile", path)
    assert code == 1
    assert err == (f"{path}: error: the graph gives no time step (no metadata 'dt') and none was given: pass --dt "
                   "MS, the step its parameters were made for\n")
    assert cli("compile", path, "--dt", "0.9765625", "-o", tmp_path / "x.nmcb")[0] == 0


def test_snntorch_style_graph_names_the_implied_step(tmp_path: Path) -> None:
    lif = nir.LIF(tau=np.full(2, 0.002), r=np.full(2, 20.0), v_leak=np.zeros(2), v_threshold=np.ones(2),
                  v_reset=np.zeros(2))
    graph = nir.NIRGraph.from_list(nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2)), lif)
    path = tmp_path / "snn.nir"
    nir.write(str(path), graph)
    with pytest.raises(NmcError, match=r"its LIF nodes all have tau / r = 0.1 ms, the dt snnTorch's export implies"):
        load_network(path)


def test_damaged_file_and_dangling_node_are_one_line(tmp_path: Path, cli) -> None:
    path = tmp_path / "bad.nir"
    path.write_bytes(b"not an hdf5 file")
    code, _, err = cli("compile", path, "--dt", "1")
    assert code == 1 and len(err.splitlines()) == 1 and err.startswith(f"{path}: error: cannot read the NIR graph")
    graph = _if_graph(1)
    graph.edges = [e for e in graph.edges if e != ("h", "fc2")]  # nir.read accepts this
    path = tmp_path / "dangling.nir"
    nir.write(str(path), graph)
    with pytest.raises(NmcError) as info:
        load_network(path)
    assert f"{path}:node 'h': error: this node reaches no Output (a missing edge?)" in str(info.value)
