"""One physical-unit LIF network compiled for both targets: spike trains agree within a tolerance
derived from the two number formats (docs/spinnaker.md, "Agreement between the targets").

Both chips realise the same linear recursion per neuron (docs/mapping.md) -- in mV, with
x = g I the synaptic drive per step::

    x[k] = a_s x[k-1] + sum_j G_j s_j[k - d_j]          G = g c w,  c = tau_s (1 - a_s) / dt
    v[k] = a_m v[k-1] + x[k] + b                        g = R (1 - a_m),  b = g i_bias,  v = V - v_rest

-- and differ only in the constants they realise (a', G', b', theta') and in the rounding of the
state each step (at most r_x in x and r_v in v: Loihi 1 voltage unit each, 1/lambda mV; SpiNNaker
4 LSB of current times g' and 2 LSB of voltage, 2^-15 each). Along an exact trajectory (X, V) with
the same spike history, a target's error is bounded by::

    B_x[k] = a_s' B_x[k-1] + |a_s' - a_s| |X[k-1]| + sum_spikes |G' - G| + r_x
    B_v[k] = a_m' B_v[k-1] + |a_m' - a_m| |V[k-1]| + B_x[k] + |b' - b| + r_v      (0 after a reset)

(exact decompositions of x' - X and v' - V, bounded term by term). A target's spike decision at
step k can differ from the exact model's only if the exact V comes within B_v[k] + |theta' - theta|
of the threshold; the two targets' trains are therefore identical up to the first step where the
exact V comes within tol = B_v(loihi) + B_v(spinnaker) + |theta_L - theta| + |theta_S - theta| of
it. The test checks the bound on every probed voltage of both chips, and that every neuron's two
trains agree up to such a near-threshold step.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from nmc.backend import emit_binary
from nmc.driver import run_passes
from nmc.formats import spinnaker as fx
from nmc.ir.network import Network, Population, Probe, Projection
from nmc.sim import interpreter_for
from nmc.target import load_target

STEPS = 600
DT = 1.0


def build(seed: int = 3) -> tuple[Network, dict[str, np.ndarray]]:
    """x (Poisson) -> h (heterogeneous LIF, mixed-sign sparse weights) -> o (LIF): feed-forward,
    so a difference in h cannot feed back; v_reset = v_rest as the Loihi-like chip needs."""
    rng = np.random.default_rng(seed)
    net = Network("agree", attrs={"dt": DT, "seed": seed})
    net.add_population(Population("x", 60, "input", role="input"))
    h = dict(tau_m=rng.uniform(10, 30, 120).round(2), tau_syn=rng.choice([3.0, 5.0, 8.0], 120), cm=1.0,
             v_rest=-65.0, v_reset=-65.0, v_th=-50.0, t_ref=2.0, i_bias=rng.uniform(0.3, 0.7, 120).round(3))
    net.add_population(Population("h", 120, "lif", h, role="output"))
    net.add_population(Population("o", 30, "lif", dict(tau_m=15.0, tau_syn=4.0, cm=0.5, v_rest=-60.0,
                                                       v_reset=-60.0, v_th=-54.0, t_ref=3.0, i_bias=0.05)))
    m = rng.random((60, 120)) < 0.3
    pi, qi = np.nonzero(m)
    net.add_projection(Projection("x->h", "x", "h", "sparse", rng.normal(0.5, 0.6, pi.size).round(3),
                                  pre_index=pi, post_index=qi, delay=1))
    m = rng.random((120, 30)) < 0.2
    pi, qi = np.nonzero(m)
    net.add_projection(Projection("h->o", "h", "o", "sparse", rng.uniform(0.1, 0.9, pi.size).round(3),
                                  pre_index=pi, post_index=qi, delay=2))
    for pop in ("h", "o"):
        net.add_probe(Probe(f"{pop}.v", pop, "v"))
        net.add_probe(Probe(f"{pop}.spikes", pop, "spikes"))
    inputs = {"x": (rng.random((STEPS, 60)) < 0.05).astype(np.uint8)}
    return net, inputs


class Realised:
    """One target's realised constants per neuron (mV per step), rounding per step, and how to
    read its voltage probe in mV."""

    def __init__(self, net: Network, target_name: str) -> None:
        self.pops: dict[str, dict[str, np.ndarray]] = {}
        self.weights: dict[str, np.ndarray] = {}   # projection -> realised G per synapse (mV)
        for pop in net.populations:
            if pop.is_input:
                continue
            self.pops[pop.name] = (self._loihi(pop) if pop.model == "cuba_lif" else self._spinnaker(pop))
        for proj in net.projections:
            post = net.population(proj.post)
            _, qi, w = proj.coo(net.population(proj.pre).size, post.size)
            p = self.pops[proj.post]
            if post.model == "cuba_lif":
                e = int(proj.exponent)
                m = np.asarray(w, dtype=np.int64)
                w_eff = m << e if e >= 0 else m >> -e
                self.weights[proj.name] = 64.0 * w_eff / p["lam"][qi]
            else:
                words = np.asarray(w, dtype=np.int64)
                shift = np.where(words < 0, int(post.params["shift_inh"]), int(post.params["shift_exc"]))
                current = np.sign(words) * np.abs(words) * 2.0 ** (shift - 15)
                self.weights[proj.name] = p["g"][qi] * p["c"][qi] * current
        self.name = target_name

    @staticmethod
    def _loihi(pop: Population) -> dict[str, np.ndarray]:
        n = pop.size
        arr = {k: np.broadcast_to(pop.param_array(k), (n,)).astype(np.float64) for k in
               ("decay_u", "decay_v", "threshold", "bias", "refractory")}
        lam, v0 = pop.attrs["mapped"]["units"]["v"]
        lam_a = np.full(n, lam)
        return {"a_s": (4095 - arr["decay_u"]) / 4096, "a_m": (4096 - arr["decay_v"]) / 4096, "lam": lam_a,
                "b": arr["bias"] / lam, "theta": 64 * arr["threshold"] / lam, "r_x": 1 / lam_a, "r_v": 1 / lam_a,
                "hold": arr["refractory"] - 1, "v0": np.full(n, v0), "scale": lam_a, "strict": True}

    @staticmethod
    def _spinnaker(pop: Population) -> dict[str, np.ndarray]:
        n = pop.size
        w = {k: np.broadcast_to(np.asarray(pop.params[k], dtype=np.int64), (n,)) for k in
             ("tau_m", "cm", "tau_refrac", "tau_syn_e", "v_thresh", "v_rest", "i_offset")}
        ts = int(pop.params["time_step"])
        r, exp_tc, t_ref = fx.lif_derived(w["tau_m"], w["cm"], w["tau_refrac"], ts)
        decay, init = fx.synapse_derived(w["tau_syn_e"], ts)
        a_m = exp_tc / 2.0 ** 15
        g = r / 2.0 ** 15 * (1 - a_m)
        lsb = 2.0 ** -15
        return {"a_s": decay / 2.0 ** 32, "c": init / 2.0 ** 32, "a_m": a_m, "g": g,
                "b": g * w["i_offset"] * lsb, "theta": (w["v_thresh"] - w["v_rest"]) * lsb,
                "r_x": g * 4 * lsb, "r_v": np.full(n, 2 * lsb), "hold": t_ref.astype(np.float64),
                "v0": w["v_rest"] * lsb, "scale": np.full(n, 2.0 ** 15), "strict": False}


def exact(pop: Population) -> dict[str, np.ndarray]:
    """The continuous model's discrete constants (float64)."""
    p = {k: np.broadcast_to(pop.attrs["mapped"]["params"].get(k, 0.0), (pop.size,)).astype(np.float64)
         for k in ("tau_m", "tau_syn", "cm", "v_rest", "v_th", "t_ref", "i_bias")}
    a_s, a_m = np.exp(-DT / p["tau_syn"]), np.exp(-DT / p["tau_m"])
    g = p["tau_m"] / p["cm"] * (1 - a_m)
    return {"a_s": a_s, "c": p["tau_syn"] / DT * (1 - a_s), "a_m": a_m, "g": g, "b": g * p["i_bias"],
            "theta": p["v_th"] - p["v_rest"], "hold": np.round(p["t_ref"] / DT)}


def follow(ex: dict, real: Realised, pop: str, drive_pre: dict[str, np.ndarray], spikes: np.ndarray,
           projs: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, int]]) -> tuple[np.ndarray, ...]:
    """The exact model of ``pop`` driven by the spike history ``drive_pre`` (pre population ->
    (steps, n)) and reset where ``spikes`` (this target's) are; with the target's bound B_v.
    Returns (V before reset, V after reset, B_v), each (steps, n), V relative to v_rest."""
    n = spikes.shape[1]
    rp = real.pops[pop]
    x = np.zeros(n)
    v = np.zeros(n)
    bx = np.zeros(n)
    bv = np.zeros(n)
    hold = np.zeros(n)
    pre_v, post_v, bound = (np.zeros((STEPS, n)) for _ in range(3))
    for k in range(STEPS):
        drive = np.zeros(n)
        dg = np.zeros(n)
        for pre, pi, qi, g_exact, delay in projs:
            if k - delay - 1 < 0:
                continue
            s = drive_pre[pre][k - delay - 1][pi]
            np.add.at(drive, qi[s], g_exact[0][s])
            np.add.at(dg, qi[s], np.abs(g_exact[1][s] - g_exact[0][s]))
        bx = rp["a_s"] * bx + np.abs(rp["a_s"] - ex["a_s"]) * np.abs(x) + dg + rp["r_x"]
        x = ex["a_s"] * x + drive
        free = hold <= 0
        bv_new = rp["a_m"] * bv + np.abs(rp["a_m"] - ex["a_m"]) * np.abs(v) + bx + np.abs(rp["b"] - ex["b"]) + rp["r_v"]
        v = np.where(free, ex["a_m"] * v + x + ex["b"], v)
        bv = np.where(free, bv_new, bv)
        hold = np.where(free, hold, hold - 1)
        pre_v[k], bound[k] = v, bv
        fired = spikes[k]
        v = np.where(fired, 0.0, v)
        bv = np.where(fired, 0.0, bv)
        hold = np.where(fired, ex["hold"], hold)
        post_v[k] = v
    return pre_v, post_v, bound


@pytest.fixture(scope="module")
def runs() -> dict:
    net, inputs = build()
    out: dict = {"net": net, "inputs": inputs}
    for name in ("loihi", "spinnaker"):
        target = load_target(name)
        lowered = run_passes(copy.deepcopy(net), target)
        res = interpreter_for(emit_binary(lowered, target)).run(STEPS, inputs)
        out[name] = {"net": lowered, "real": Realised(lowered, name),
                     "v": {p: res.probes[f"{p}.v"] for p in ("h", "o")},
                     "spikes": {p: res.probes[f"{p}.spikes"] for p in ("h", "o")}}
    return out


def test_trains_agree_within_the_derived_tolerance(runs: dict) -> None:
    net, inputs = runs["net"], runs["inputs"]
    n_a = {p.name: np.asarray(p.weights, dtype=np.float64) for p in net.projections}  # nA, as written
    compared_spikes = 0
    tolerance = {}
    h_differs = STEPS
    for pop in ("h", "o"):
        orig = net.population(pop)
        ex = exact(runs["loihi"]["net"].population(pop))
        v_rest = float(np.asarray(orig.params["v_rest"]).reshape(-1)[0])
        near_tol = {}
        for name in ("loihi", "spinnaker"):
            r = runs[name]
            lowered, real = r["net"], r["real"]
            rp = real.pops[pop]
            projs = []
            for proj in lowered.projections:
                if proj.post != pop:
                    continue
                pi, qi, _ = proj.coo(lowered.population(proj.pre).size, orig.size)
                g_exact = ex["g"][qi] * ex["c"][qi] * n_a[proj.name]
                projs.append((proj.pre, np.asarray(pi), np.asarray(qi), (g_exact, real.weights[proj.name]), proj.delay))
            drive = {"x": inputs["x"].astype(bool), "h": r["spikes"]["h"]}
            pre_v, post_v, bv = follow(ex, real, pop, drive, r["spikes"][pop], projs)
            # (i) The probed voltage lies within the bound of the exact model with the same history.
            got = r["v"][pop] / rp["scale"] - (0.0 if rp["strict"] else v_rest)
            err = np.abs(got - post_v)
            assert np.all(err <= bv + 1e-9), f"{name} {pop}: |V - V_exact| {err.max():.3g} mV exceeds its bound"
            # (ii) Spike decisions follow the exact model except within the bound of the threshold.
            tol = bv + np.abs(rp["theta"] - ex["theta"])
            near = np.abs(pre_v - ex["theta"]) <= tol + 1e-9
            fired = r["spikes"][pop]
            assert np.all((fired == (pre_v >= ex["theta"])) | near), f"{name} {pop}: a spike decision off the threshold"
            near_tol[name] = (pre_v, tol)
        # (iii) The two trains agree up to the first step where the exact model comes within the
        # summed tolerance of the threshold (o: while the h trains feeding it agree).
        a, b = runs["loihi"]["spikes"][pop], runs["spinnaker"]["spikes"][pop]
        pre_v, tol = near_tol["loihi"][0], near_tol["loihi"][1] + near_tol["spinnaker"][1]
        tolerance[pop] = float(np.mean(tol) / np.mean(ex["theta"]))
        near = np.abs(pre_v - ex["theta"]) <= tol
        limit = STEPS if pop == "h" else min(STEPS, h_differs + 3)  # h -> o has delay 2: 3 steps to arrive
        for j in range(a.shape[1]):
            diff = np.flatnonzero(a[:limit, j] != b[:limit, j])
            if diff.size:
                first_near = np.flatnonzero(near[:, j])
                assert first_near.size and first_near[0] <= diff[0], \
                    f"{pop}[{j}]: the trains differ at step {diff[0]} before any near-threshold step"
            upto = int(diff[0]) if diff.size else limit
            compared_spikes += int(a[:upto, j].sum())
        if pop == "h":
            diff_any = np.flatnonzero(np.any(a != b, axis=1))
            h_differs = int(diff_any[0]) if diff_any.size else STEPS
    # Not vacuous: thousands of spikes compared before the trains part, and the tolerance a small
    # fraction of the threshold distance (on average; Loihi's 8-bit weights dominate it).
    assert compared_spikes > 2000, compared_spikes
    print(f"compared {compared_spikes} spikes; tolerance / threshold distance {tolerance}")
    assert max(tolerance.values()) < 0.02, tolerance


def test_trains_stay_close_after_they_part(runs: dict) -> None:
    """What the tolerance does not promise but the run shows (docs/spinnaker.md quotes it): after
    a near-threshold step shifts a spike, the trains stay close -- counts per neuron within 2, and
    nine in ten spikes within 2 steps of one on the other chip."""
    for pop in ("h", "o"):
        a, b = runs["loihi"]["spikes"][pop], runs["spinnaker"]["spikes"][pop]
        assert np.abs(a.sum(axis=0).astype(np.int64) - b.sum(axis=0)).max() <= 2
        matched = 0
        for j in range(a.shape[1]):
            ta, tb = np.flatnonzero(a[:, j]), np.flatnonzero(b[:, j])
            if ta.size and tb.size:
                matched += int(np.sum(np.abs(ta[:, None] - tb[None, :]).min(axis=1) <= 2))
        assert matched / a.sum() > 0.9, (pop, matched / a.sum())
