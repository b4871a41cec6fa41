"""Bit-exact interpreter of the Loihi-like chip. Reads only a compiled :class:`Binary`.

One algorithmic timestep t, for every compartment i (docs/interpreter.md has the derivation):

    a_i   = wrap_s22( sum of 64 * w_eff over synapses whose spike arrives at t )
    u_i   = wrap_s24( D(u_i, decay_u + 1) + a_i )
    v_i   = clip( D(v_i, decay_v) + u_i + bias_i, voltage_min, voltage_max )
    v_i   = 0                    if ref_i > 0
    s_i   = v_i > threshold_mant << 6
    v_i   = 0, ref_i = R         if s_i
    ref_i = max(ref_i - 1, 0)

with D(x, k) = sgn(x) * ((|x| * (4096 - k)) >> 12). A spike emitted at t (by a compartment, or
by the host on an input port) reaches u at t + 1 + delay. Work is event driven: only axons that
carry a spike are touched. Per core and step the interpreter counts synaptic ops, neuron updates
(active/inactive), spikes and spike messages, and turns them into time and energy with the cost
table stored in the binary (the step lasts as long as the slowest core, plus the barrier).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..binary.format import Binary
from ..errors import BinaryFormatError, RunError

TARGET = "loihi"
_DENSE_FILL = 0.05        # store a delay's matrix dense when at least this fraction is non-zero
_DENSE_MAX_ELEMS = 64_000_000


@dataclass
class RunResult:
    """What a run produced: spike trains of output populations, probes and counters."""

    steps: int
    spikes: dict[str, np.ndarray] = field(default_factory=dict)     # output name -> (steps, n) bool
    probes: dict[str, np.ndarray] = field(default_factory=dict)     # probe name -> (steps, n)
    counters: dict[str, float] = field(default_factory=dict)        # timesteps, synaptic_ops, spikes, ...
    per_core: dict[str, np.ndarray] = field(default_factory=dict)   # counter -> (n_cores,)
    overflow: dict[str, int] = field(default_factory=dict)          # wraps/clips that changed results


class _DelayMatrix:
    """Synapses of one delay value: rows = sources, columns = compartments; values 64 * w_eff."""

    def __init__(self, delay: int, src: np.ndarray, cx: np.ndarray, val: np.ndarray, n_src: int, n_cx: int):
        self.delay = delay
        rows_used = np.unique(src)
        self.row_of_src = np.full(n_src, -1, dtype=np.int64)
        self.row_of_src[rows_used] = np.arange(rows_used.size)
        rows = self.row_of_src[src]
        n_rows = rows_used.size
        self.dense = val.size >= _DENSE_FILL * n_rows * n_cx and n_rows * n_cx <= _DENSE_MAX_ELEMS
        if self.dense:
            self.mat = np.zeros((n_rows, n_cx), dtype=np.int64)
            np.add.at(self.mat, (rows, cx), val)
            if np.abs(self.mat).max(initial=0) < 2**31:
                self.mat = self.mat.astype(np.int32)
        else:
            order = np.lexsort((cx, rows))
            self.indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))]).astype(np.int64)
            self.indices = cx[order].astype(np.int64)
            self.data = val[order].astype(np.float64)  # exact: |sum| << 2**53
        self.n_cx = n_cx

    def gather(self, sources: np.ndarray) -> np.ndarray | None:
        rows = self.row_of_src[sources]
        rows = rows[rows >= 0]
        if rows.size == 0:
            return None
        if self.dense:
            if rows.size == 1:
                return self.mat[rows[0]].astype(np.int64)
            return self.mat[rows].sum(axis=0, dtype=np.int64)
        starts = self.indptr[rows]
        lens = self.indptr[rows + 1] - starts
        total = int(lens.sum())
        if total == 0:
            return None
        pos = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(starts, lens)
        return np.bincount(self.indices[pos], weights=self.data[pos], minlength=self.n_cx).astype(np.int64)


def _sec(b: Binary, name: str) -> np.ndarray:
    if name not in b.sections:
        raise BinaryFormatError(f"section '{name}' is missing")
    return b.sections[name]


def _check_index(name: str, idx: np.ndarray, limit: np.ndarray | int) -> None:
    if idx.size and (np.any(idx < 0) or np.any(idx >= limit)):
        raise BinaryFormatError(f"section '{name}' holds an index out of range")


class LoihiInterpreter:
    """Cycle-level, bit-exact interpreter of a Loihi-like binary.

    >>> chip = LoihiInterpreter(read_binary("net.nmcb"))
    >>> result = chip.run(100, inputs={"x": spikes})      # spikes: (100, n_x) of 0/1
    """

    def __init__(self, binary: Binary) -> None:
        if binary.target != TARGET:
            raise BinaryFormatError(f"binary is for target '{binary.target}'; this interpreter runs '{TARGET}'")
        self.binary = binary
        self.meta = binary.meta
        cfg = binary.target_config
        try:
            self._nrn = cfg["neuron"]
            self._syn = cfg["synapse"]
            self._cost = cfg["cost"]
            self._chip = cfg["chip"]
        except KeyError as exc:
            raise BinaryFormatError(f"target configuration lacks section {exc}") from None
        self._load_compartments()
        self._load_synapses()
        self._load_io()
        self.reset()

    # -- loading ------------------------------------------------------------------------------------
    def _load_compartments(self) -> None:
        b = self.binary
        cx_off = _sec(b, "core_cx_offset").astype(np.int64)
        self.n_cores = cx_off.size - 1
        self.core_cx_offset = cx_off
        self.n_cx = int(cx_off[-1])
        self.cx_core = np.repeat(np.arange(self.n_cores), np.diff(cx_off))
        cfg_off = _sec(b, "core_cfg_offset").astype(np.int64)
        gcfg = cfg_off[self.cx_core] + _sec(b, "cx_cfg").astype(np.int64)
        _check_index("cx_cfg", gcfg, cfg_off[self.cx_core + 1])
        du = _sec(b, "cfg_decay_u").astype(np.int64)[gcfg]
        dv = _sec(b, "cfg_decay_v").astype(np.int64)[gcfg]
        if np.any(du > self._nrn["decay_u_max"]) or np.any(dv > self._nrn["decay_v_max"]):
            raise BinaryFormatError("a compartment config holds a decay outside the target's range")
        shift = int(self._nrn["decay_shift"])
        self.keep_u = (1 << shift) - (du + 1)          # the chip adds 1 to the current decay
        self.keep_v = (1 << shift) - dv
        self.decay_shift = shift
        self.vth = _sec(b, "cfg_threshold_mant").astype(np.int64)[gcfg] << int(self._nrn["threshold_shift"])
        self.refractory = _sec(b, "cfg_refractory").astype(np.int64)[gcfg]
        self.bias = _sec(b, "cx_bias_mant").astype(np.int64) << _sec(b, "cx_bias_exp").astype(np.int64)
        self.has_bias = bool(np.any(self.bias))
        self.a_bits = int(self._nrn["input_bits"])
        self.u_bits = int(self._nrn["current_bits"])
        self.v_min = int(self._nrn["voltage_min"])
        self.v_max = int(self._nrn["voltage_max"])

    def _effective_weights(self, syn_core: np.ndarray) -> np.ndarray:
        b = self.binary
        fmt_off = _sec(b, "core_fmt_offset").astype(np.int64)
        f = fmt_off[syn_core] + _sec(b, "syn_fmt").astype(np.int64)
        _check_index("syn_fmt", f, fmt_off[syn_core + 1])
        nbits = _sec(b, "fmt_weight_bits").astype(np.int64)[f]
        sign = _sec(b, "fmt_sign").astype(np.int64)[f]
        exp = _sec(b, "fmt_exponent").astype(np.int64)[f]
        full = int(self._syn["weight_bits"])
        # The format stores (full - nbits + is_mixed) fewer low bits; the sign mode bounds the value.
        drop = full - nbits + (sign == 0)
        m = (_sec(b, "syn_weight").astype(np.int64) >> drop) << drop
        top = (1 << full) - 1
        m = np.where(sign == 1, np.clip(m, 0, top), np.where(sign == 2, np.clip(m, -top, 0),
                                                               np.clip(m, -(1 << full), top - 1)))
        w_eff = np.where(exp >= 0, m << np.maximum(exp, 0), m >> np.maximum(-exp, 0))
        return w_eff << int(self._syn["weight_shift"])

    def _load_synapses(self) -> None:
        b = self.binary
        ax_off = _sec(b, "core_axon_offset").astype(np.int64)
        if ax_off.size != self.n_cores + 1:
            raise BinaryFormatError("core_axon_offset does not match the number of cores")
        n_axons = int(ax_off[-1])
        axon_core = np.repeat(np.arange(self.n_cores), np.diff(ax_off))
        ptr = _sec(b, "axon_syn_ptr").astype(np.int64)
        if ptr.size != n_axons + 1 or ptr[-1] != _sec(b, "syn_cx").size:
            raise BinaryFormatError("axon_syn_ptr does not match the synapse table")
        syn_axon = np.repeat(np.arange(n_axons), np.diff(ptr))
        syn_core = axon_core[syn_axon]
        syn_local = _sec(b, "syn_cx").astype(np.int64)
        _check_index("syn_cx", syn_local, np.diff(self.core_cx_offset)[syn_core])
        syn_gcx = self.core_cx_offset[syn_core] + syn_local
        syn_val = self._effective_weights(syn_core)
        syn_delay = _sec(b, "syn_delay").astype(np.int64)

        # Sources: compartments [0, n_cx), then the units of every input port.
        out_ptr = _sec(b, "cx_out_ptr").astype(np.int64)
        if out_ptr.size != self.n_cx + 1:
            raise BinaryFormatError("cx_out_ptr does not match the compartment table")
        out_core = _sec(b, "out_core").astype(np.int64)
        _check_index("out_core", out_core, self.n_cores)
        out_axon = _sec(b, "out_axon").astype(np.int64)
        _check_index("out_axon", out_axon, np.diff(ax_off)[out_core])
        pair_src = [np.repeat(np.arange(self.n_cx), np.diff(out_ptr))]
        pair_axon = [ax_off[out_core] + out_axon]
        self.port_base: dict[str, int] = {}
        self.port_size: dict[str, int] = {}
        base = self.n_cx
        for port in self.meta.get("inputs", []):
            key, size = port["section"], int(port["size"])
            pptr = _sec(b, f"{key}_ptr").astype(np.int64)
            pcore = _sec(b, f"{key}_core").astype(np.int64)
            _check_index(f"{key}_core", pcore, self.n_cores)
            paxon = _sec(b, f"{key}_axon").astype(np.int64)
            _check_index(f"{key}_axon", paxon, np.diff(ax_off)[pcore])
            pair_src.append(base + np.repeat(np.arange(size), np.diff(pptr)))
            pair_axon.append(ax_off[pcore] + paxon)
            self.port_base[port["name"]] = base
            self.port_size[port["name"]] = size
            base += size
        self.n_src = base
        psrc = np.concatenate(pair_src)
        paxn = np.concatenate(pair_axon)

        # Expand (source, axon) pairs to (source, synapse).
        counts = ptr[paxn + 1] - ptr[paxn]
        total = int(counts.sum())
        syn_idx = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(ptr[paxn], counts)
        e_src = np.repeat(psrc, counts)
        e_cx = syn_gcx[syn_idx]
        e_val = syn_val[syn_idx]
        e_delay = syn_delay[syn_idx]
        max_delay = int(self._syn["max_delay"])
        if e_delay.size and e_delay.max() > max_delay:
            raise BinaryFormatError(f"a synapse delay exceeds the target's maximum ({max_delay})")
        self.matrices = [_DelayMatrix(int(d), e_src[e_delay == d], e_cx[e_delay == d], e_val[e_delay == d],
                                      self.n_src, self.n_cx) for d in np.unique(e_delay)]
        self.ring_len = (int(e_delay.max()) if e_delay.size else 0) + 2

        # Accounting tables: synaptic ops per (source, core); spike messages and routing per source.
        self.src_synops = np.zeros((self.n_src, self.n_cores), dtype=np.int32)
        np.add.at(self.src_synops, (e_src, self.cx_core[e_cx]), 1)
        self.src_has_syn = np.zeros(self.n_src, dtype=bool)
        self.src_has_syn[e_src] = True
        dest_core = axon_core[paxn]
        self.src_msgs = np.bincount(psrc, minlength=self.n_src)
        per_tile = int(self._chip["cores_per_tile"])
        tiles_x = int(self._chip["mesh_tiles"][0])
        src_core = np.where(psrc < self.n_cx, self.cx_core[np.minimum(psrc, max(self.n_cx - 1, 0))], -1)
        from_cx = psrc < self.n_cx
        t_src, t_dst = src_core // per_tile, dest_core // per_tile
        hx = np.abs(t_src % tiles_x - t_dst % tiles_x) * from_cx
        hy = np.abs(t_src // tiles_x - t_dst // tiles_x) * from_cx
        self.src_hops_ew = np.bincount(psrc, weights=hx, minlength=self.n_src).astype(np.int64)
        self.src_hops_ns = np.bincount(psrc, weights=hy, minlength=self.n_src).astype(np.int64)
        self.tiles_used = int(np.unique(np.arange(self.n_cores) // per_tile).size) if self.n_cores else 0

    def _load_io(self) -> None:
        b = self.binary
        self.outputs = {o["name"]: _sec(b, f"{o['section']}_cx").astype(np.int64) for o in self.meta.get("outputs", [])}
        self.probe_defs = []
        for p in self.meta.get("probes", []):
            idx = _sec(b, f"{p['section']}_cx").astype(np.int64)
            self.probe_defs.append((p["name"], p["variable"], p.get("source", "compartment"), p["population"], idx))
        for idx in self.outputs.values():
            _check_index("output compartments", idx, self.n_cx)

    # -- state ----------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Zero all state (u, v, refractory counters, in-flight spikes); the host does this between samples."""
        self.u = np.zeros(self.n_cx, dtype=np.int64)
        self.v = np.zeros(self.n_cx, dtype=np.int64)
        self.ref = np.zeros(self.n_cx, dtype=np.int64)
        self.ring = np.zeros((self.ring_len, self.n_cx), dtype=np.int64)
        self.t = 0

    # -- running --------------------------------------------------------------------------------------
    def _port_spikes(self, inputs: dict[str, np.ndarray] | None, steps: int) -> list[np.ndarray]:
        """Per step, the source ids of port units that spike."""
        per_step: list[list[np.ndarray]] = [[] for _ in range(steps)]
        for name, arr in (inputs or {}).items():
            if name not in self.port_base:
                ports = ", ".join(self.port_base) or "none"
                raise RunError(f"input data has array '{name}' but the binary has no input port '{name}' (ports: {ports})")
            a = np.asarray(arr)
            if a.ndim != 2 or a.shape[1] != self.port_size[name]:
                raise RunError(f"input '{name}': expected shape (steps, {self.port_size[name]}), got {a.shape}")
            if a.size and not np.all((a == 0) | (a == 1)):
                raise RunError(f"input '{name}': values must be spikes (0 or 1)")
            n = min(steps, a.shape[0])
            tt, uu = np.nonzero(a[:n])
            bounds = np.searchsorted(tt, np.arange(n + 1))
            base = self.port_base[name]
            for t in range(n):
                if bounds[t + 1] > bounds[t]:
                    per_step[t].append(base + uu[bounds[t]:bounds[t + 1]])
        return [np.concatenate(s) if s else np.zeros(0, dtype=np.int64) for s in per_step]

    def run(self, steps: int, inputs: dict[str, np.ndarray] | None = None, *,
            probes: bool = True, progress: Callable[[int], None] | None = None) -> RunResult:
        """Advance ``steps`` timesteps from the current state; ``inputs`` maps port -> (steps, n) spikes."""
        if steps < 0:
            raise RunError("steps must be non-negative")
        port_spk = self._port_spikes(inputs, steps)
        nc = self.n_cores
        rec_syn = np.zeros((steps, nc), dtype=np.int64)
        rec_act = np.zeros((steps, nc), dtype=np.int64)
        rec_spk = np.zeros((steps, nc), dtype=np.int64)
        rec_msg = np.zeros((steps, nc), dtype=np.int64)
        rec_hop = np.zeros((steps, 2), dtype=np.int64)
        out_rec = {k: np.zeros((steps, v.size), dtype=bool) for k, v in self.outputs.items()}
        probe_rec = {}
        if probes:
            for name, var, _src, _pop, idx in self.probe_defs:
                probe_rec[name] = np.zeros((steps, idx.size), dtype=bool if var == "spikes" else np.int32)
        ovf = {"input_wrap": 0, "current_wrap": 0, "voltage_clip": 0}
        a_half, u_half = 1 << (self.a_bits - 1), 1 << (self.u_bits - 1)
        a_mask, u_mask = (1 << self.a_bits) - 1, (1 << self.u_bits) - 1
        u, v, ref, ring = self.u, self.v, self.ref, self.ring
        keep_u, keep_v, sh = self.keep_u, self.keep_v, self.decay_shift
        cx_starts = self.core_cx_offset[:-1]
        n_cx = self.n_cx
        cx_src = np.arange(n_cx)
        for k in range(steps):
            t = self.t
            slot = t % self.ring_len
            a = ring[slot].copy()
            ring[slot] = 0
            if n_cx:
                active = (a != 0) | (u != 0) | (v != 0) | (ref != 0)
                if self.has_bias:
                    active |= self.bias != 0
                rec_act[k] = np.add.reduceat(active, cx_starts) if nc > 1 else np.count_nonzero(active)
                if a.max() >= a_half or a.min() < -a_half:
                    wrapped = ((a + a_half) & a_mask) - a_half
                    ovf["input_wrap"] += int(np.count_nonzero(wrapped != a))
                    a = wrapped
                du = np.abs(u) * keep_u >> sh
                np.negative(du, out=du, where=u < 0)
                du += a
                if du.max() >= u_half or du.min() < -u_half:
                    wrapped = ((du + u_half) & u_mask) - u_half
                    ovf["current_wrap"] += int(np.count_nonzero(wrapped != du))
                    du = wrapped
                u = du
                dv = np.abs(v) * keep_v >> sh
                np.negative(dv, out=dv, where=v < 0)
                dv += u
                if self.has_bias:
                    dv += self.bias
                if dv.max() > self.v_max or dv.min() < self.v_min:
                    ovf["voltage_clip"] += int(np.count_nonzero((dv > self.v_max) | (dv < self.v_min)))
                    np.clip(dv, self.v_min, self.v_max, out=dv)
                v = dv
                refr = ref > 0
                v[refr] = 0
                s = v > self.vth
                fired = np.flatnonzero(s)
                if fired.size:
                    v[fired] = 0
                    ref[fired] = self.refractory[fired]
                    rec_spk[k] = np.add.reduceat(s, cx_starts) if nc > 1 else fired.size
                np.subtract(ref, 1, out=ref, where=ref > 0)
            else:
                fired = np.zeros(0, dtype=np.int64)
            spk_src = np.concatenate([fired, port_spk[k]]) if port_spk[k].size else fired
            if spk_src.size:
                spk_src = spk_src[self.src_has_syn[spk_src]]
            if spk_src.size:
                rec_syn[k] = self.src_synops[spk_src].sum(axis=0)
                if fired.size:
                    msgs = self.src_msgs[fired]
                    rec_msg[k] = np.bincount(self.cx_core[fired], weights=msgs, minlength=nc)
                    rec_hop[k, 0] = self.src_hops_ew[fired].sum()
                    rec_hop[k, 1] = self.src_hops_ns[fired].sum()
                for m in self.matrices:
                    contrib = m.gather(spk_src)
                    if contrib is not None:
                        ring[(t + 1 + m.delay) % self.ring_len] += contrib
            for name, idx in self.outputs.items():
                out_rec[name][k] = s[idx] if n_cx else False
            if probes:
                for name, var, src, _pop, idx in self.probe_defs:
                    if src == "input":
                        row = np.zeros(idx.size, dtype=bool)
                        ps = port_spk[k]
                        base = self.port_base[_pop]
                        sel = ps[(ps >= base) & (ps < base + idx.size)] - base
                        row[sel] = True
                        probe_rec[name][k] = row
                    elif var == "spikes":
                        probe_rec[name][k] = s[idx]
                    elif var == "v":
                        probe_rec[name][k] = v[idx]
                    else:
                        probe_rec[name][k] = u[idx]
            self.t += 1
            if progress is not None:
                progress(1)
        self.u, self.v = u, v
        return self._result(steps, out_rec, probe_rec, ovf, rec_syn, rec_act, rec_spk, rec_msg, rec_hop)

    # -- cost model -----------------------------------------------------------------------------------
    def _result(self, steps: int, out_rec: dict, probe_rec: dict, ovf: dict, rec_syn: np.ndarray,
                rec_act: np.ndarray, rec_spk: np.ndarray, rec_msg: np.ndarray, rec_hop: np.ndarray) -> RunResult:
        e, tm = self._cost["energy_pj"], self._cost["time_ns"]
        cx_per_core = np.diff(self.core_cx_offset)
        rec_inact = cx_per_core[None, :] - rec_act
        core_ns = (rec_syn * tm["synaptic_op"] + rec_act * tm["neuron_update_active"]
                   + rec_inact * tm["neuron_update_inactive"] + rec_msg * tm["spike_within_tile"])
        tiles = max(self.tiles_used, 1)
        barrier = tm["barrier_min"] + (tm["barrier_max"] - tm["barrier_min"]) * (min(tiles, 32) - 1) / 31
        step_ns = (core_ns.max(axis=1) if self.n_cores else np.zeros(steps)) + barrier
        tick = float(self.binary.target_config.get("timing", {}).get("tick_ns", 1.0))
        energy_pj = (rec_syn.sum() * e["synaptic_op"] + rec_act.sum() * e["neuron_update_active"]
                     + rec_inact.sum() * e["neuron_update_inactive"] + rec_msg.sum() * e["spike_within_tile"]
                     + rec_hop[:, 0].sum() * e["hop_east_west"] + rec_hop[:, 1].sum() * e["hop_north_south"])
        counters = {
            "timesteps": int(steps),
            "synaptic_ops": int(rec_syn.sum()),
            "spikes": int(rec_spk.sum()),
            "spike_messages": int(rec_msg.sum()),
            "neuron_updates_active": int(rec_act.sum()),
            "neuron_updates_inactive": int(rec_inact.sum()),
            "cycles": int(np.ceil(step_ns / tick).sum()),
            "time_s": float(step_ns.sum() * 1e-9),
            "energy_j": float(energy_pj * 1e-12),
        }
        per_core = {"synaptic_ops": rec_syn.sum(axis=0), "spikes": rec_spk.sum(axis=0),
                    "neuron_updates_active": rec_act.sum(axis=0), "time_ns_max_step": core_ns.max(axis=0)
                    if steps else np.zeros(self.n_cores)}
        return RunResult(steps=steps, spikes=out_rec, probes=probe_rec, counters=counters, per_core=per_core,
                         overflow=dict(ovf))


def interpreter_for(binary: Binary) -> Any:
    return LoihiInterpreter(binary)
