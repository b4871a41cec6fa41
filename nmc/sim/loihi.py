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

from ..arrayops import offsets_of, run_starts, unique_inverse, unique_sorted
from ..binary.format import Binary
from ..errors import BinaryFormatError, RunError, TargetError
from ..parts import load_part
from .cost_loihi import CoreCounts
from .loihi_learning import F32_EXACT, LearningWidths, PlasticProjection, sum_rows
from .loihi_fast import ENGINES, engine_from_env
from .loihi_validate import validate_loihi
from .checkpoint import check_saved_state, rng_state, set_rng_state
from .ports import port_spikes
from .protocol import RunResult

__all__ = ["LoihiInterpreter", "RunResult"]
_DENSE_FILL = 0.05        # store a delay's matrix dense when at least this fraction is non-zero
_DENSE_MAX_ELEMS = 1 << 27  # 512 MB as float32
_MAX_SOURCE_CLASSES = 256  # accounting by source class up to this many classes (see _source_classes)
_CHUNK_STEPS = 256  # per-step spike/activity bits are kept this many steps, then reduced


def per_core_counts(bits: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(rows, n_cores) sums of ``bits`` (rows, n_cx) over each core's compartments
    ``offsets[c]:offsets[c + 1]``. np.add.reduceat alone gives a core without compartments the
    next core's first column (or fails past the end), so such cores are set to 0 here."""
    starts = offsets[:-1]
    out = np.zeros((bits.shape[0], starts.size), dtype=np.int64)
    inside = starts < bits.shape[1]          # cores past the last compartment hold none
    if inside.any():
        out[:, inside] = np.add.reduceat(bits, starts[inside], axis=1)
    out[:, offsets[1:] == starts] = 0
    return out


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The concatenated index ranges [starts[i], starts[i] + lens[i]) (ragged rows of a CSR table)."""
    return np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(int(lens.sum()))


class _DelayMatrix:
    """Synapses of one delay value: rows = sources, columns = compartments; values 64 * w_eff."""

    def __init__(self, delay: int, src: np.ndarray, cx: np.ndarray, val: np.ndarray, n_src: int, n_cx: int,
                 n_cx_sources: int | None = None):
        n_cx_sources = n_cx if n_cx_sources is None else n_cx_sources
        self.delay = delay
        rows_used = unique_sorted(src)
        # Which spikes can reach this matrix: compartments (ids < n_cx_sources), ports, or both.
        self.from_cx = bool(rows_used.size and rows_used[0] < n_cx_sources)
        self.from_ports = bool(rows_used.size and rows_used[-1] >= n_cx_sources)
        self.row_of_src = np.full(n_src, -1, dtype=np.int64)
        self.row_of_src[rows_used] = np.arange(rows_used.size)
        rows = self.row_of_src[src]
        n_rows = rows_used.size
        self.dense = val.size >= _DENSE_FILL * n_rows * n_cx and n_rows * n_cx <= _DENSE_MAX_ELEMS
        if self.dense:
            mat = np.zeros((n_rows, n_cx), dtype=np.float64)
            np.add.at(mat, (rows, cx), val.astype(np.float64))
            # The largest |value| one source adds to one compartment: an entry of the summed
            # matrix (two projections with one delay put two synapses on one entry).
            self.row_abs_max = float(np.abs(mat).max(initial=0))
            # Values are integers below 2^24 in magnitude, so float32 holds them exactly.
            self.mat = mat.astype(np.float32) if self.row_abs_max < F32_EXACT else mat
        else:
            # By row, then compartment: one argsort of a combined key (a lexsort of two keys took
            # several times longer on 10^7 synapses); equal keys are summed, so their order is moot.
            key = rows * max(n_cx, 1) + cx
            order = np.argsort(key)
            # The largest |value| one source adds to one compartment: over synapses that share
            # (source, compartment), the sum of their magnitudes (a bound on what they add).
            sorted_key, mag = key[order], np.abs(val[order]).astype(np.float64)
            starts = np.flatnonzero(run_starts(sorted_key))
            self.row_abs_max = float(np.add.reduceat(mag, starts).max()) if starts.size else 0.0
            self.indptr = offsets_of(np.bincount(rows, minlength=n_rows))
            self.indices = cx[order].astype(np.int64)
            self.data = val[order].astype(np.float64)  # exact: |sum| << 2**53
            widths = np.diff(self.indptr)
            # Rows of one common width (relays: 1; one-to-all: n) need no ragged indexing.
            self.width = int(widths[0]) if widths.size and np.all(widths == widths[0]) else None
        self.n_cx = n_cx

    def gather(self, sources: np.ndarray) -> tuple[np.ndarray | None, float]:
        """Summed contributions of ``sources`` (None if none has synapses here), and a bound on
        the largest |value| they add to any compartment."""
        rows = self.row_of_src[sources]
        rows = rows[rows >= 0]
        if rows.size == 0:
            return None, 0.0
        bound = rows.size * self.row_abs_max
        if self.dense:
            return sum_rows(self.mat, rows, bound), bound
        starts = self.indptr[rows]
        if self.width == 1:
            pos = starts
        elif self.width is not None:
            pos = (starts[:, None] + np.arange(self.width)).ravel()
        else:
            lens = self.indptr[rows + 1] - starts
            if not lens.any():
                return None, 0.0
            pos = _ranges(starts, lens)
        # Sparse contribution: (compartments, values); the caller adds it with np.add.at.
        return (self.indices[pos], self.data[pos]), bound


_BLAS: Any = None


def _one_blas_thread() -> Any:
    """A context that keeps BLAS on one thread: the products here are small, and OpenBLAS
    spinning up threads for each made runs slower and their timing erratic. The controller is
    built once (inspecting the loaded libraries is slow); entering the limit costs ~10 us."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController
        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def _uniform_or_array(x: np.ndarray) -> np.ndarray | int:
    """A per-compartment factor as a Python int when all compartments share it (faster to
    broadcast; 0 lets the caller skip the multiply)."""
    if x.size and np.all(x == x[0]):
        return 0 if int(x[0]) == 0 else int(x[0])
    return x


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

    validate = staticmethod(validate_loihi)  # what ``nmc inspect`` checks (nmc.sim.validate_binary)

    def __init__(self, binary: Binary, *, engine: str | None = None) -> None:
        # Which interpreter runs a binary is its target configuration's [parts] choice (nmc.sim.
        # interpreter_for); any target that names this one gets the Loihi datapath, whatever its name.
        validate_loihi(binary)  # refuse an inconsistent binary with a reason, before using any table
        self.binary = binary
        self.meta = binary.meta
        cfg = binary.target_config
        for section in ("neuron", "synapse", "cost", "chip"):
            if section not in cfg:
                raise BinaryFormatError(f"target configuration lacks section '{section}'")
        self._nrn = cfg["neuron"]
        self._syn = cfg["synapse"]
        self._chip = cfg["chip"]
        # Prices a run's counts: the cost model the binary's target names (nmc/sim/cost_loihi.py).
        try:
            self.cost_model = load_part("cost_model", str(cfg.get("parts", {}).get("cost_model", "")))(cfg)
        except TargetError as exc:
            raise BinaryFormatError(f"binary for target '{binary.target}': {exc.message}") from None
        self._widths = LearningWidths.from_config(cfg.get("learning")) if self.meta.get("plastic") else None
        self._load_compartments()
        self._load_synapses()
        self._load_io()
        # Stochastic rounding in the learning engine draws from a generator seeded by the binary.
        self.rng = np.random.default_rng(int(self.meta.get("seed", 0)))
        self.learning_enabled = True  # the host may switch the learning engine off (e.g. for testing)
        # Which path runs the steps: "numpy" (the reference), "compiled" (nmc.sim.loihi_fast,
        # whenever it supports the binary) or "auto" (compiled once runs are large enough to pay
        # for loading numba); default from $NMC_INTERPRETER. Both give the same results bit for bit.
        self.engine = engine_from_env() if engine is None else engine
        self.last_engine = ""        # the path the last run took: "numpy" or "compiled"
        self._numpy_work_s = 0.0     # estimated numpy time of this chip's runs so far (for "auto")
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
        self._update_constants = _UpdateConstants.of(self)

    def _effective_weights(self, syn_core: np.ndarray) -> np.ndarray:
        """64 x the effective weight of every synapse, from its mantissa and its core's format
        table; also keeps the mantissas as stored (``_syn_mant``). The format's numbers are
        looked up per format and applied per synapse in narrow types (memory is per synapse)."""
        b = self.binary
        fmt_off = _sec(b, "core_fmt_offset").astype(np.int64)
        f = fmt_off[syn_core] + _sec(b, "syn_fmt").astype(np.int64)
        _check_index("syn_fmt", f, fmt_off[syn_core + 1])
        nbits = _sec(b, "fmt_weight_bits").astype(np.int64)
        sign = _sec(b, "fmt_sign").astype(np.int64)
        exp = _sec(b, "fmt_exponent").astype(np.int64)
        full = int(self._syn["weight_bits"])
        # The format stores (full - nbits + is_mixed) fewer low bits; the sign mode bounds the value.
        drop = full - nbits + (sign == 0)
        top = (1 << full) - 1
        lo = np.where(sign == 1, 0, np.where(sign == 2, -top, -(1 << full)))
        hi = np.where(sign == 1, top, np.where(sign == 2, 0, top - 1))
        small = np.int8 if max(int(np.abs(drop).max(initial=0)), int(np.abs(exp).max(initial=0))) < 64 else np.int64
        d = drop.astype(small)[f]
        m = _sec(b, "syn_weight").astype(np.int64)
        m >>= d
        m <<= d
        del d
        np.clip(m, lo[f], hi[f], out=m)
        e = exp.astype(small)[f]
        del f
        w_eff = np.where(e >= 0, m << np.maximum(e, 0), m >> np.maximum(-e, 0))
        del e
        self._syn_mant = m  # the mantissas as the format stores them (learning starts from these)
        w_eff <<= int(self._syn["weight_shift"])
        return w_eff

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
        # Per synapse arrays are the loader's memory: free what is used up, keep narrow types.
        syn_core = np.repeat(np.arange(self.n_cores), np.diff(ptr[ax_off]))
        syn_local = _sec(b, "syn_cx").astype(np.int64)
        _check_index("syn_cx", syn_local, np.diff(self.core_cx_offset)[syn_core])
        syn_gcx = self.core_cx_offset[syn_core] + syn_local
        del syn_local
        syn_val = self._effective_weights(syn_core)
        del syn_core
        syn_delay = _sec(b, "syn_delay")

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
        syn_idx = _ranges(ptr[paxn], counts)
        ids = np.int32 if max(self.n_src, self.n_cx) < 2 ** 31 else np.int64
        e_src = np.repeat(psrc.astype(ids), counts)
        e_cx = syn_gcx[syn_idx].astype(ids)
        del syn_gcx
        e_val = syn_val[syn_idx]
        del syn_val
        e_delay = syn_delay[syn_idx]
        if self.meta.get("plastic"):
            e_plast = (_sec(b, "syn_plastic")[syn_idx].astype(np.int64) if "syn_plastic" in b.sections
                       else np.full(e_src.size, -1, dtype=np.int64))
            self.plastic = self._load_plastic(e_src.astype(np.int64), e_cx.astype(np.int64), self._syn_mant[syn_idx],
                                              e_delay.astype(np.int64), e_plast)
            static = e_plast < 0
            e_src, e_cx, e_val, e_delay = e_src[static], e_cx[static], e_val[static], e_delay[static]
            del static, e_plast
        else:
            self.plastic = []
        del syn_idx
        self.plastic_units = self._plastic_units(self.plastic, self.n_cx)
        max_delay = int(self._syn["max_delay"])
        if e_delay.size and e_delay.max() > max_delay:
            raise BinaryFormatError(f"a synapse delay exceeds the target's maximum ({max_delay})")
        delays = unique_sorted(e_delay)
        if delays.size == 1:  # the common case: no masked copies
            self.matrices = [_DelayMatrix(int(delays[0]), e_src, e_cx, e_val, self.n_src, self.n_cx)]
        else:
            self.matrices = [_DelayMatrix(int(d), e_src[e_delay == d], e_cx[e_delay == d], e_val[e_delay == d],
                                          self.n_src, self.n_cx) for d in delays]
        del e_src, e_cx, e_val
        self._reach_bits()
        max_d = max([int(e_delay.max()) if e_delay.size else 0] + [p.delay for p in self.plastic])
        self.ring_len = max_d + 2

        # Accounting tables: synaptic ops per (source, core); spike messages and routing per source.
        dest_core = axon_core[paxn]
        self._synops_table(psrc, dest_core, counts)
        self.src_msgs = np.bincount(psrc, minlength=self.n_src)
        per_tile = int(self._chip["cores_per_tile"])
        tiles_x = int(self._chip["mesh_tiles"][0])
        src_core = np.where(psrc < self.n_cx, self.cx_core[np.minimum(psrc, max(self.n_cx - 1, 0))], -1)
        from_cx = psrc < self.n_cx
        t_src, t_dst = src_core // per_tile, dest_core // per_tile
        # Messages that stay on their source core vs those that cross to another core.
        self.src_msgs_local = np.bincount(psrc, weights=(src_core == dest_core) & from_cx,
                                          minlength=self.n_src).astype(np.int64)
        hx = np.abs(t_src % tiles_x - t_dst % tiles_x) * from_cx
        hy = np.abs(t_src // tiles_x - t_dst // tiles_x) * from_cx
        self.src_hops_ew = np.bincount(psrc, weights=hx, minlength=self.n_src).astype(np.int64)
        self.src_hops_ns = np.bincount(psrc, weights=hy, minlength=self.n_src).astype(np.int64)
        self.tiles_used = int(unique_sorted(np.arange(self.n_cores) // per_tile).size) if self.n_cores else 0
        self._source_classes()

    def _synops_table(self, psrc: np.ndarray, dest_core: np.ndarray, counts: np.ndarray) -> None:
        """Synaptic ops a spike of each source causes on each core, as a sparse table (per
        source, its (core, count) entries, cores ascending): the synapses of the source's axons
        into that core, plastic ones included. Linear in the (source, axon) pairs; a dense
        sources x cores table would not be (20,000 x 6,108 for 10^7 synapses)."""
        nc = max(self.n_cores, 1)
        key = psrc.astype(np.int64) * nc + dest_core
        cnt = counts.astype(np.int64)
        if key.size and np.any(key[1:] < key[:-1]):  # the backend emits them in order; others may not
            order = np.argsort(key, kind="stable")
            key, cnt = key[order], cnt[order]
        first = run_starts(key)
        starts = np.flatnonzero(first)
        total = np.add.reduceat(cnt, starts) if starts.size else np.zeros(0, dtype=np.int64)
        keep = total > 0
        key, total = key[starts][keep], total[keep]
        src = key // nc
        self.synops_ptr = offsets_of(np.bincount(src, minlength=self.n_src))
        self.synops_core = (key % nc).astype(np.int64)
        self.synops_count = total.astype(np.int64)

    def _source_classes(self) -> None:
        """Sources with equal accounting rows (synaptic ops per core; core, messages, local
        messages and hops of their spikes) form a class; a run then counts spikes per class and
        step. Circuits of whole populations have few classes; past _MAX_SOURCE_CLASSES the
        accounting expands per source instead (``src_class`` None).

        Linear in the sources and table entries: a source's row is summarised by a hash of its
        sparse entries plus its scalar columns; when the hashes give few classes, every source's
        entries are then compared with its class's, so a hash collision cannot merge two
        different rows (it only falls back to per-source accounting)."""
        nc, n_src = self.n_cores, self.n_src
        ptr, ecore, ecount = self.synops_ptr, self.synops_core, self.synops_count
        owner = np.repeat(np.arange(n_src), np.diff(ptr))
        # A 64-bit mix of each (core, count) entry, summed per source in wrapping arithmetic
        # (differences of a running sum are exact modulo 2^64).
        with np.errstate(over="ignore"):
            mix = (ecore.astype(np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
            mix ^= ecount.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
            mix *= np.uint64(0x94D049BB133111EB)
            run = np.zeros(mix.size + 1, dtype=np.uint64)
            np.cumsum(mix, out=run[1:])
            h = run[ptr[1:]] - run[ptr[:-1]]
        core = np.full(n_src, -1, dtype=np.int64)
        core[:self.n_cx] = self.cx_core
        msgs = np.where(core >= 0, self.src_msgs, 0)
        cols = np.column_stack([h.view(np.int64), np.diff(ptr), core, msgs, self.src_msgs_local,
                                self.src_hops_ew, self.src_hops_ns])
        self.class_attr, self.src_class = None, None
        # Fold the columns into one id per source (ranks keep this exact, hash aside).
        sid = np.zeros(n_src, dtype=np.int64)
        for k in range(cols.shape[1]):
            vals, rank = unique_inverse(cols[:, k])
            _, sid = unique_inverse(sid * vals.size + rank)
            if int(sid.max(initial=0)) + 1 > _MAX_SOURCE_CLASSES:
                return
        n_cls = int(sid.max(initial=-1)) + 1
        rep = np.empty(n_cls, dtype=np.int64)
        rep[sid] = np.arange(n_src)
        attr = np.zeros((n_cls, 3 * nc + 3), dtype=np.int64)
        r_owner = np.repeat(np.arange(n_cls), np.diff(ptr)[rep])
        r_pos = _ranges(ptr[rep], np.diff(ptr)[rep])
        attr[r_owner, ecore[r_pos]] = ecount[r_pos]
        has_core = core[rep] >= 0
        attr[np.flatnonzero(has_core), nc + core[rep][has_core]] = 1
        attr[np.flatnonzero(has_core), 2 * nc + core[rep][has_core]] = self.src_msgs[rep][has_core]
        attr[:, 3 * nc] = self.src_msgs_local[rep]
        attr[:, 3 * nc + 1] = self.src_hops_ew[rep]
        attr[:, 3 * nc + 2] = self.src_hops_ns[rep]
        # Exactness: every source's entries must be its class row's (same count checked above).
        if owner.size and np.any(attr[sid[owner], ecore] != ecount):
            return
        self.class_attr, self.src_class = attr, sid

    def _neurons(self, ref: dict[str, Any], what: str) -> np.ndarray:
        """Source ids of a population named in the learning table (port units or compartments)."""
        if ref["kind"] == "port":
            if ref["name"] not in self.port_base:
                raise BinaryFormatError(f"{what}: unknown input port '{ref['name']}'")
            return self.port_base[ref["name"]] + np.arange(self.port_size[ref["name"]])
        ids = _sec(self.binary, ref["section"]).astype(np.int64)
        _check_index(ref["section"], ids, self.n_cx)
        return ids

    def _load_plastic(self, e_src: np.ndarray, e_cx: np.ndarray, e_mant: np.ndarray, e_delay: np.ndarray,
                      e_plast: np.ndarray) -> list[PlasticProjection]:
        out = []
        shift = int(self._syn["weight_shift"])
        for k, spec in enumerate(self.meta.get("plastic", [])):
            sel = e_plast == k
            delays = unique_sorted(e_delay[sel])
            if delays.size > 1:
                raise BinaryFormatError(f"plastic projection '{spec['name']}' mixes delays")
            pre = self._neurons(spec["pre"], f"plastic projection '{spec['name']}'")
            post = self._neurons(spec["post"], f"plastic projection '{spec['name']}'")
            if spec["post"]["kind"] != "compartments":
                raise BinaryFormatError(f"plastic projection '{spec['name']}' targets an input port")
            pl = PlasticProjection(spec, pre, post, self.n_src, self.n_cx, e_src[sel], e_cx[sel], e_mant[sel],
                                   spec["format"], int(delays[0]) if delays.size else int(spec["delay"]), shift,
                                   self._widths)
            if "reward" in spec:
                rsrc = self._neurons(spec["reward"], f"reward of '{spec['name']}'")
                pl.reward_src = rsrc
            out.append(pl)
        return out

    def _reach_bits(self) -> None:
        """Bit i of ``_src_bits[s]``: source s has synapses in matrix i (or, after the matrices, in
        plastic unit i - len(matrices)); bit j of ``_cx_bits[c]``: compartment c is a post neuron
        of the plastic unit with bit j. Past bit 62 units share the top bit (it then only means
        "maybe", which the lookups behind it settle)."""
        n_m = len(self.matrices)
        bits = [1 << min(i, 62) for i in range(n_m + len(self.plastic_units))]
        self._matrix_bits, self._plastic_bits = bits[:n_m], bits[n_m:]
        self._src_bits = np.zeros(self.n_src, dtype=np.int64)
        self._cx_bits = np.zeros(self.n_cx, dtype=np.int64)
        for m, bit in zip(self.matrices, self._matrix_bits):
            self._src_bits[m.row_of_src >= 0] |= bit
        for pl, bit in zip(self.plastic_units, self._plastic_bits):
            self._src_bits[pl.pre_src] |= bit
            self._cx_bits[pl.post_cx] |= bit

    @staticmethod
    def _plastic_units(plastic: list[PlasticProjection], n_cx: int) -> list[PlasticProjection]:
        """What the run loop steps: copies that can run as one (equal ``merge_key``, disjoint post
        compartments; e.g. the three W1 copies of the backprop circuit) merged, the rest as they are."""
        groups: list[tuple[tuple | None, list[PlasticProjection]]] = []
        for pl in plastic:
            key = pl.merge_key()
            for g_key, g in groups:
                if (key is not None and g_key == key
                        and not np.isin(pl.post_cx, np.concatenate([m.post_cx for m in g])).any()):
                    g.append(pl)
                    break
            else:
                groups.append((key, [pl]))
        return [g[0] if len(g) == 1 else PlasticProjection.merged(g, n_cx) for _, g in groups]

    def plastic_weights(self) -> dict[str, np.ndarray]:
        """Current weight mantissas of every plastic projection, (n_pre, n_post) in neuron order."""
        return {p.name: p.weights() for p in self.plastic}

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
        """Zero the dynamic state (u, v, refractory counters, in-flight spikes, learning traces);
        the host does this between samples. Learned weights are kept."""
        for pl in self.plastic_units:
            pl.reset_state()
        self.u = np.zeros(self.n_cx, dtype=np.int64)
        self.v = np.zeros(self.n_cx, dtype=np.int64)
        # Refractoriness as the step from which a compartment may integrate again: a spike at t
        # sets ready = t + R, and v is held at 0 while t' < ready (the R-1 steps after the spike).
        self.ready = np.zeros(self.n_cx, dtype=np.int64)
        # Delivered input per future step. float64 holds these integer sums exactly (< 2^53).
        self.ring = [np.zeros(self.n_cx, dtype=np.float64) for _ in range(self.ring_len)]
        self.ring_bound = [0.0] * self.ring_len  # per slot: bound on |a| from what was delivered
        self.u_bound = 0.0                        # bound on |u|
        self.v_neg_bound = 0.0                    # bound on max(-v, 0)
        self.t = 0

    # -- running --------------------------------------------------------------------------------------
    def _port_spikes(self, inputs: dict[str, np.ndarray] | None, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """All port spikes as source ids sorted by step, with per-step bounds (steps + 1,)."""
        return port_spikes(inputs, self.port_base, self.port_size, steps)

    def run(self, steps: int, inputs: dict[str, np.ndarray] | None = None, *,
            probes: bool = True, progress: Callable[[int], None] | None = None) -> RunResult:
        """Advance ``steps`` timesteps from the current state; ``inputs`` maps port -> (steps, n) spikes."""
        if steps < 0:
            raise RunError("steps must be non-negative")
        if self._compiled_pays(steps):
            from .loihi_fast import run_compiled
            port_src, port_bounds = self._port_spikes(inputs, steps)
            done = run_compiled(self, steps, port_src, port_bounds, probes, progress)
            if done is not None:
                self.last_engine = "compiled"
                return self._result(done)
        self.last_engine = "numpy"
        with _one_blas_thread():
            return self._run(steps, inputs, probes, progress)

    def _compiled_pays(self, steps: int) -> bool:
        """Whether this run takes the compiled path (``engine``; see nmc.sim.loihi_fast)."""
        from . import loihi_fast as fast
        if self.engine not in ENGINES:
            raise RunError(f"unknown interpreter engine {self.engine!r} (expected one of {', '.join(ENGINES)})")
        if self.engine == "numpy" or steps == 0 or fast.unsupported(self) is not None:
            return False
        if self.engine == "compiled":
            return True
        est = fast.estimated_numpy_s(self, steps)
        self._numpy_work_s += est
        limit = fast._AUTO_LOADED_S if fast.kernel_loaded() else fast._AUTO_FIRST_S
        return est >= limit or self._numpy_work_s >= fast._AUTO_FIRST_S

    def _new_run(self, steps: int, inputs: dict[str, np.ndarray] | None, probes: bool) -> "_Run":
        """The state of one run. A chip variant whose compartments do more per step (nmc.sim.loihi2:
        graded sigma-delta units) returns a subclass of _Run with its phases extended."""
        return _Run(self, steps, probes, *self._port_spikes(inputs, steps))

    def _run(self, steps: int, inputs: dict[str, np.ndarray] | None, probes: bool,
             progress: Callable[[int], None] | None) -> RunResult:
        """The step loop: every timestep runs the chip's phases in their order (docs/interpreter.md)."""
        run = self._new_run(steps, inputs, probes)
        # Bound methods and lists in locals: the loop body runs once per step, and on small
        # networks attribute lookups are a measurable part of a step.
        deliver, update, record, learn, route = run.deliver, run.update, run.record, run.learn, run.route
        fired_log, src_log = run.fired_log, run.src_log
        port_src, port_bounds = run.port_src, run.port_bounds
        src_bits, cx_bits, or_reduce = self._src_bits, self._cx_bits, np.bitwise_or.reduce
        has_cx = self.n_cx > 0
        # Units with traces or longer epochs observe every step; fast-path units act only on a
        # step whose spikes reach both their pre and their post neurons.
        has_plastic = bool(run.plastic_bits)
        learn_every_step = any(not pl.fast for pl in self.plastic_units)
        no_spikes = np.zeros(0, dtype=np.int64)
        t0 = run.t0
        for k in range(steps):
            t = t0 + k
            a, a_bound = deliver(t)
            if has_cx:
                fired = update(k, t, a, a_bound)
                record(k)
            else:
                fired = no_spikes
            # All spikes of the step (compartments, then ports), and which matrices and plastic
            # units they reach (bits; see _reach_bits): the others are skipped without a lookup.
            ps = port_src[port_bounds[k]:port_bounds[k + 1]]
            spk = np.concatenate([fired, ps]) if ps.size else fired
            sbits = int(or_reduce(src_bits[spk])) if spk.size else 0
            fbits = int(or_reduce(cx_bits[fired])) if fired.size else 0
            # Learning comes before routing: it writes the synaptic memory before the destination
            # cores read it for this step's spikes (they arrive at t + 1).
            if has_plastic and (learn_every_step or sbits & fbits):
                rows_cache = learn(k, t, spk, fired, sbits, fbits)
            else:
                rows_cache = {}
            if sbits:
                route(t, spk, fired, ps, sbits, rows_cache)
            # Accounting: the step's spikes are only logged here; _count turns them into work per
            # core after the run, and the cost model prices that.
            fired_log.append(fired)
            src_log.append(fired)
            src_log.append(ps)
            if progress is not None:
                progress(1)
        run.finish()
        return self._result(run)

    @staticmethod
    def _ids_by_step(log: list[np.ndarray], steps: int, pairs: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The ids logged per step (with ``pairs``, two arrays per step), and the step of each."""
        lens = np.fromiter((x.size for x in log), dtype=np.int64, count=len(log))
        if pairs:
            lens = lens.reshape(-1, 2).sum(axis=1)
        ids = np.concatenate(log) if log else np.zeros(0, dtype=np.int64)
        return ids, np.repeat(np.arange(steps), lens)

    def _per_step_core(self, step: np.ndarray, core: np.ndarray, steps: int,
                       weights: np.ndarray | None = None) -> np.ndarray:
        """(steps, n_cores) table of ``weights`` (default 1) summed by (step, core); exact
        (bincount adds in float64, and the sums are far below 2^53)."""
        nc = self.n_cores
        flat = np.bincount(step * nc + core, weights=weights, minlength=steps * nc)
        return flat.astype(np.int64).reshape(steps, nc)

    def _count(self, run: Any) -> tuple[CoreCounts, np.ndarray, int]:
        """The work of a finished run per (step, core), from the spikes it logged and the
        accounting tables built at load (with its sums per core); also the spikes per core and
        the number of messages that stayed on their core (reported, not priced)."""
        steps = run.steps
        nc = self.n_cores
        kernel_counts = getattr(run, "kernel_counts", None)
        if kernel_counts is not None:
            # The compiled path counted synaptic ops, spikes and messages per (step, core) as it ran.
            rec_syn, rec_spk, rec_msg = kernel_counts
            fired = run.fired
            local = int(self.src_msgs_local[fired].sum())
            hops_ew, hops_ns = int(self.src_hops_ew[fired].sum()), int(self.src_hops_ns[fired].sum())
        elif self.src_class is not None:
            src_ids, src_step, fired, f_step = run.step_spikes()
            # Count spikes per (step, source class), then one small product per table.
            n_cls = self.class_attr.shape[0]
            per_src = np.bincount(src_step * n_cls + self.src_class[src_ids], minlength=steps * n_cls)
            per_fired = np.bincount(f_step * n_cls + self.src_class[fired], minlength=steps * n_cls)
            rec_syn = per_src.reshape(steps, n_cls) @ self.class_attr[:, :nc]
            fired_tab = per_fired.reshape(steps, n_cls) @ self.class_attr[:, nc:]
            rec_spk, rec_msg = fired_tab[:, :nc], fired_tab[:, nc:2 * nc]
            local, hops_ew, hops_ns = (int(x) for x in fired_tab[:, 2 * nc:].sum(axis=0))
        else:
            # Many distinct sources: expand each spiking source's (core, count) entries.
            src_ids, src_step, fired, f_step = run.step_spikes()
            ptr = self.synops_ptr
            lens = ptr[src_ids + 1] - ptr[src_ids]
            pos = _ranges(ptr[src_ids], lens)
            rec_syn = self._per_step_core(np.repeat(src_step, lens), self.synops_core[pos], steps,
                                          self.synops_count[pos].astype(np.float64))
            f_core = self.cx_core[fired]
            rec_spk = self._per_step_core(f_step, f_core, steps)
            rec_msg = self._per_step_core(f_step, f_core, steps, self.src_msgs[fired].astype(np.float64))
            local = int(self.src_msgs_local[fired].sum())
            hops_ew, hops_ns = int(self.src_hops_ew[fired].sum()), int(self.src_hops_ns[fired].sum())
        cx_per_core = np.diff(self.core_cx_offset)
        if kernel_counts is not None:
            # The kernel is loaded: one compiled pass per table instead of numpy's reductions.
            from .loihi_kernel import column_sums
            sums = [np.empty(nc, dtype=np.int64) for _ in range(4)]   # column_sums zeroes them
            for table, out in zip((rec_syn, run.rec_act, rec_msg, rec_spk), sums):
                column_sums(table, out)
            syn_pc, act_per_core, msg_pc, spk_pc = sums
            learn_pc = np.zeros(nc, dtype=np.int64)   # the compiled path runs no learning
        else:
            syn_pc, act_per_core, msg_pc = rec_syn.sum(axis=0), run.rec_act.sum(axis=0), rec_msg.sum(axis=0)
            spk_pc, learn_pc = rec_spk.sum(axis=0), run.rec_learn.sum(axis=0)
        # Per-core sums over the run: reported per core, and the cost model's totals.
        per_core = {"synaptic_ops": syn_pc, "neuron_updates_active": act_per_core,
                    "neuron_updates_inactive": steps * cx_per_core - act_per_core,
                    "spike_messages": msg_pc, "synaptic_updates": learn_pc}
        # Inactive updates are compartments - active: the cost model derives them as it prices.
        counts = CoreCounts(synaptic_ops=rec_syn, neuron_updates_active=run.rec_act,
                            neuron_updates_inactive=None, spike_messages=rec_msg, synaptic_updates=run.rec_learn,
                            hops_east_west=hops_ew, hops_north_south=hops_ns, tiles_used=self.tiles_used,
                            per_core=per_core, compartments=cx_per_core)
        return counts, spk_pc, local

    def _result(self, run: Any) -> RunResult:
        """What a finished run returns: its recordings, and its counters priced by the cost model."""
        steps = run.steps
        c, spikes_per_core, local = self._count(run)
        cost = self.cost_model.cost(c)
        sums = c.per_core
        assert sums is not None
        n_msg = c.total("spike_messages")
        counters = {
            "timesteps": int(steps),
            "synaptic_ops": c.total("synaptic_ops"),
            "spikes": int(spikes_per_core.sum()),
            "spike_messages": n_msg,
            "spike_messages_within_core": local,
            "spike_messages_between_cores": n_msg - local,
            "neuron_updates_active": c.total("neuron_updates_active"),
            "neuron_updates_inactive": c.total("neuron_updates_inactive"),
            "synaptic_updates": c.total("synaptic_updates"),
            "cycles": cost.cycles,
            "time_s": cost.time_s,
            "energy_j": cost.energy_j,
        }
        per_core = {"synaptic_ops": sums["synaptic_ops"], "spikes": spikes_per_core,
                    "neuron_updates_active": sums["neuron_updates_active"],
                    "time_ns_max_step": cost.core_max_ns}
        return RunResult(steps=steps, spikes=run.out_rec, probes=run.probe_rec, counters=counters,
                         per_core=per_core, overflow=dict(run.ovf))


    # -- checkpoints ----------------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Everything running changes, as named arrays (copies): membranes, refractory clocks,
        spikes in flight and the bounds kept on them, the step counter, the learning switch, the
        generator of the learning engine and, per plastic unit (``plastic/<name>/...``), weights,
        traces, the epoch's spike bits and counters. :meth:`load_state` of it into an interpreter
        of the same binary continues exactly as this one would."""
        out = {"u": self.u.copy(), "v": self.v.copy(), "ready": self.ready.copy(),
               "ring": np.stack(self.ring) if self.ring else np.zeros((0, self.n_cx)),
               "ring_bound": np.array(self.ring_bound, dtype=np.float64),
               "bounds": np.array([self.u_bound, self.v_neg_bound], dtype=np.float64),
               "t": np.array(self.t, dtype=np.int64),
               "learning_enabled": np.array(self.learning_enabled),
               "rng": rng_state(self.rng)}
        for pl in self.plastic_units:
            for k, v in pl.state().items():
                out[f"plastic/{pl.name}/{k}"] = v
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a :meth:`state` of an interpreter of the same binary. Every array must be there
        with its shape and dtype (else a RunError naming the first that differs, and nothing is changed)."""
        check_saved_state(self.state(), state, any_shape=("rng",))
        set_rng_state(self.rng, state["rng"])
        self.u, self.v, self.ready = (np.array(state[k], dtype=np.int64) for k in ("u", "v", "ready"))
        self.ring = [np.array(row, dtype=np.float64) for row in state["ring"]]
        self.ring_bound = [float(x) for x in state["ring_bound"]]
        self.u_bound, self.v_neg_bound = (float(x) for x in state["bounds"])
        self.t = int(state["t"])
        self.learning_enabled = bool(state["learning_enabled"])
        for pl in self.plastic_units:
            prefix = f"plastic/{pl.name}/"
            pl.load_state({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})


@dataclass(frozen=True, slots=True)
class _UpdateConstants:
    """What the compartment update derives from the binary alone (widths, decays, bias,
    threshold, refractory delay), and the extremes that let it skip overflow checks that cannot
    fire. Built once at load: computing it is a dozen array reductions, which short runs (one
    sample of a schedule) would otherwise pay every time."""

    a_half: int
    a_mask: int
    u_half: int
    u_mask: int
    u_memoryless: bool               # decay_u clears u every step: u = a
    v_memoryless: bool
    ku: np.ndarray | float           # per-compartment fraction of u (v) a step keeps
    kv: np.ndarray | float
    u_keep_frac: float               # the largest of those
    v_keep_frac: float
    bias: np.ndarray
    has_bias: bool
    bias_pos: float                  # largest positive bias (0 if none)
    bias_neg: float                  # largest negative bias, as a magnitude
    vth: np.ndarray
    vth_max: float
    v_min: int
    v_max: int
    refractory: np.ndarray
    has_ref: bool                    # some refractory delay holds v for at least one step

    @classmethod
    def of(cls, chip: LoihiInterpreter) -> _UpdateConstants:
        """The constants of ``chip``'s compartments (after _load_compartments)."""
        sh = chip.decay_shift
        keep_u = _uniform_or_array(chip.keep_u)
        keep_v = _uniform_or_array(chip.keep_v)
        # Decays as float multiplies: |x| * keep < 2^36, so the product, its trunc() and the
        # conversion back are exact; this is the same D(x, k) as the integer form, faster.
        return cls(a_half=1 << (chip.a_bits - 1), a_mask=(1 << chip.a_bits) - 1,
                   u_half=1 << (chip.u_bits - 1), u_mask=(1 << chip.u_bits) - 1,
                   u_memoryless=isinstance(keep_u, int) and keep_u == 0,
                   v_memoryless=isinstance(keep_v, int) and keep_v == 0,
                   ku=keep_u / float(1 << sh), kv=keep_v / float(1 << sh),
                   u_keep_frac=float(chip.keep_u.max(initial=0)) / (1 << sh),
                   v_keep_frac=float(chip.keep_v.max(initial=0)) / (1 << sh),
                   bias=chip.bias, has_bias=chip.has_bias,
                   bias_pos=float(max(int(chip.bias.max(initial=0)), 0)),
                   bias_neg=float(max(-int(chip.bias.min(initial=0)), 0)),
                   vth=chip.vth, vth_max=float(chip.vth.max(initial=0)), v_min=chip.v_min, v_max=chip.v_max,
                   refractory=chip.refractory, has_ref=bool(chip.n_cx) and int(chip.refractory.max()) > 1)


@dataclass(slots=True, eq=False)
class _Run:
    """One :meth:`LoihiInterpreter.run` in progress: what the step loop carries from step to step
    (the chip's state, the delivery ring, recording buffers, overflow counts) and what it derives
    once per run. The methods are the phases of one timestep; ``LoihiInterpreter._run`` calls them
    in the chip's order, and :meth:`finish` hands the state back to the chip.

    Slots, not an instance dict: past 30 attributes CPython stops sharing dict keys, and the
    phases' attribute loads (several dozen a step) then cost measurably more on small networks."""

    chip: LoihiInterpreter
    steps: int
    probes: bool
    port_src: np.ndarray      # port spikes as source ids, sorted by step
    port_bounds: np.ndarray   # (steps + 1,): step k's are port_src[port_bounds[k]:port_bounds[k + 1]]
    # The chip's dynamic state (LoihiInterpreter.reset), taken at the start, handed back by finish().
    t0: int = field(init=False)
    u: np.ndarray = field(init=False)
    v: np.ndarray = field(init=False)
    ready: np.ndarray = field(init=False)         # step from which each compartment integrates again
    ring: list[np.ndarray] = field(init=False)    # input of step t in slot t % ring_len (float64, exact)
    ring_bound: list[float] = field(init=False)   # per slot: bound on |a| from what was delivered
    ring_len: int = field(init=False)
    u_bound: float = field(init=False)            # bound on |u|
    v_neg_bound: float = field(init=False)        # bound on max(-v, 0)
    cst: _UpdateConstants = field(init=False)     # constants of the compartment update
    # Recordings (_recorders).
    nc: int = field(init=False)
    rec_act: np.ndarray = field(init=False)       # (steps, n_cores) active compartments
    rec_learn: np.ndarray = field(init=False)     # (steps, n_cores) synaptic updates
    chunk: int = field(init=False)
    s_buf: np.ndarray = field(init=False)         # (chunk, n_cx) spike bits of the last `chunk` steps
    act_buf: np.ndarray = field(init=False)       # (chunk, n_cx) activity of the last `chunk` steps
    cx_offsets: np.ndarray = field(init=False)      # (n_cores + 1,) compartment ranges of the cores
    spike_cols: list[tuple[tuple[str, str], np.ndarray]] = field(init=False)
    spike_rec: dict[tuple[str, str], np.ndarray] = field(init=False)
    v_probes: list[tuple[str, np.ndarray]] = field(init=False)
    u_probes: list[tuple[str, np.ndarray]] = field(init=False)
    out_rec: dict[str, np.ndarray] = field(init=False)
    probe_rec: dict[str, np.ndarray] = field(init=False)
    fired_log: list[np.ndarray] = field(init=False)  # per step: compartments that fired
    src_log: list[np.ndarray] = field(init=False)    # per step: those, then the port units that did
    ovf: dict[str, int] = field(init=False)          # wraps and clips that changed results
    sat_before: int = field(init=False)
    # Routing.
    matrix_bits: list[tuple[_DelayMatrix, int]] = field(init=False)
    plastic_bits: list[tuple[PlasticProjection, int]] = field(init=False)
    cx_core: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        chip = self.chip
        self.t0 = chip.t
        self.u, self.v, self.ready = chip.u, chip.v, chip.ready
        self.ring, self.ring_bound, self.ring_len = chip.ring, chip.ring_bound, chip.ring_len
        self.u_bound, self.v_neg_bound = chip.u_bound, chip.v_neg_bound
        self.cst = chip._update_constants
        self._recorders(chip, self.steps, self.probes)
        self.matrix_bits = list(zip(chip.matrices, chip._matrix_bits))
        self.plastic_bits = list(zip(chip.plastic_units, chip._plastic_bits))
        self.cx_core = chip.cx_core

    def _recorders(self, chip: LoihiInterpreter, steps: int, probes: bool) -> None:
        """Buffers for what the run returns and what accounting needs; overflow counts."""
        nc, n_cx = chip.n_cores, chip.n_cx
        self.nc = nc
        self.rec_act = np.zeros((steps, nc), dtype=np.int64)
        self.rec_learn = np.zeros((steps, nc), dtype=np.int64)
        # Per-step spike and activity bits are kept for a chunk of steps, then reduced at once.
        self.chunk = chunk = max(1, min(steps, _CHUNK_STEPS))
        self.s_buf = np.zeros((chunk, n_cx), dtype=bool)
        self.act_buf = np.zeros((chunk, n_cx), dtype=bool)
        self.cx_offsets = chip.core_cx_offset
        spike_cols = [(("out", name), idx) for name, idx in chip.outputs.items()]
        spike_cols += [(("probe", name), idx) for name, var, src, _p, idx in chip.probe_defs
                       if probes and var == "spikes" and src == "compartment"]
        self.spike_cols = spike_cols
        self.spike_rec = {name: np.zeros((steps, idx.size), dtype=bool) for name, idx in spike_cols}
        self.v_probes = [(name, idx) for name, var, src, _p, idx in chip.probe_defs if probes and var == "v"]
        self.u_probes = [(name, idx) for name, var, src, _p, idx in chip.probe_defs if probes and var == "u"]
        self.out_rec = {}
        self.probe_rec = {}
        if probes:
            for name, var, _src, _pop, idx in chip.probe_defs:
                self.probe_rec[name] = np.zeros((steps, idx.size), dtype=bool if var == "spikes" else np.int32)
        self.fired_log = []
        self.src_log = []
        self.ovf = {"input_wrap": 0, "current_wrap": 0, "voltage_clip": 0}
        self.sat_before = sum(pl.saturated for pl in chip.plastic_units)

    # -- the phases of one timestep, in the chip's order ------------------------------------------
    def deliver(self, t: int) -> tuple[np.ndarray, float]:
        """Synaptic input of step t: the ring slot of t as integers (the slot is cleared for step
        t + ring_len), wrapped to the input width; with a bound on its magnitude."""
        ring, ring_bound = self.ring, self.ring_bound
        slot = t % self.ring_len
        a = ring[slot].astype(np.int64)
        a_bound = ring_bound[slot]
        ring[slot].fill(0.0)
        ring_bound[slot] = 0.0
        c = self.cst
        a_half = c.a_half
        # The check runs only when the delivered spikes could overflow (a bound kept from the
        # rows gathered) -- exact either way.
        if a_bound >= a_half and (a.max() >= a_half or a.min() < -a_half):
            wrapped = ((a + a_half) & c.a_mask) - a_half
            self.ovf["input_wrap"] += int(np.count_nonzero(wrapped != a))
            a = wrapped
            a_bound = float(a_half)
        return a, a_bound

    def update(self, k: int, t: int, a: np.ndarray, a_bound: float) -> np.ndarray:
        """Compartment update of step t (run step k) with input ``a``: current, voltage, refractory
        hold, threshold, reset. Writes the step's activity and spike bits to the chunk buffers and
        returns the compartments that fired."""
        c, ovf = self.cst, self.ovf
        if c.u_memoryless:
            u = a
        else:
            # D(x, k) as a float multiply truncated toward zero (exact: see _UpdateConstants).
            du = self.u * c.ku
            np.trunc(du, out=du)
            u = du.astype(np.int64)
            u += a
        u_half = c.u_half
        u_bound = self.u_bound * c.u_keep_frac + min(a_bound, float(c.a_half))
        if u_bound >= u_half and (u.max() >= u_half or u.min() < -u_half):
            wrapped = ((u + u_half) & c.u_mask) - u_half
            ovf["current_wrap"] += int(np.count_nonzero(wrapped != u))
            u = wrapped
        if u_bound >= u_half:
            u_bound = float(u_half)
        if c.v_memoryless:
            v = u.copy()
        else:
            dv = self.v * c.kv
            np.trunc(dv, out=dv)
            v = dv.astype(np.int64)
            v += u
        if c.has_bias:
            v += c.bias
        # v entering the step is <= the threshold (else it was reset), so the upper clip needs
        # checking only if threshold + |u| + bias can pass v_max; the lower bound is tracked the
        # same way.
        v_min, v_max = c.v_min, c.v_max
        v_neg_bound = self.v_neg_bound * c.v_keep_frac + u_bound + c.bias_neg
        hi = c.vth_max + u_bound + c.bias_pos > v_max and v.max() > v_max
        lo = v_neg_bound > -v_min and v.min() < v_min
        if hi or lo:
            ovf["voltage_clip"] += int(np.count_nonzero((v > v_max) | (v < v_min)))
            np.clip(v, v_min, v_max, out=v)
        if v_neg_bound > -v_min:
            v_neg_bound = float(-v_min)
        # A compartment counts as active (energy model) when its current or voltage is non-zero
        # after the update; idle ones cost the smaller "inactive" update.
        row = k % self.chunk
        nz = u | v
        np.not_equal(nz, 0, out=self.act_buf[row])
        has_ref = c.has_ref
        if has_ref:
            v *= self.ready <= t
        s = self.s_buf[row]
        np.greater(v, c.vth, out=s)
        fired = s.nonzero()[0]
        if fired.size:
            v[fired] = 0
            if has_ref:
                self.ready[fired] = t + c.refractory[fired]
        self.u, self.v, self.u_bound, self.v_neg_bound = u, v, u_bound, v_neg_bound
        return fired

    def record(self, k: int) -> None:
        """Recording of step k: at the end of each chunk of steps (and of the run), the spike bits
        of outputs and spike probes and the active compartments per core; every step, the u and
        v probes (v after the reset)."""
        row = k % self.chunk
        if row == self.chunk - 1 or k == self.steps - 1:
            first = k - row
            if self.nc:
                self.rec_act[first:k + 1] = per_core_counts(self.act_buf[:row + 1], self.cx_offsets)
            s_buf, spike_rec = self.s_buf, self.spike_rec
            for name, idx in self.spike_cols:
                spike_rec[name][first:k + 1] = s_buf[:row + 1, idx]
        probe_rec = self.probe_rec
        for name, idx in self.v_probes:
            probe_rec[name][k] = self.v[idx]
        for name, idx in self.u_probes:
            probe_rec[name][k] = self.u[idx]

    def learn(self, k: int, t: int, spk: np.ndarray, fired: np.ndarray, sbits: int, fbits: int) -> dict:
        """Learning phase of step t: each plastic unit takes the step's spikes and, at the end of
        its epoch, updates its weights (synaptic updates counted per core). Returns the units'
        presynaptic rows looked up for ``spk`` (by pre population), which routing reuses."""
        rows_cache: dict = {}
        chip = self.chip
        if not chip.learning_enabled:
            return rows_cache
        cols_cache: dict = {}
        reward_cache: dict = {}
        flat_cache: dict = {}
        rng, cx_core, nc, rec_learn = chip.rng, self.cx_core, self.nc, self.rec_learn
        for pl, bit in self.plastic_bits:
            if pl.fast and not (sbits & fbits & bit):
                continue  # no spiking pre or no spiking post: nothing to learn this step
            rs = pl.reward_src
            rewarded = False
            if rs is not None and spk.size:
                key = int(rs[0]) if rs.size == 1 else rs.tobytes()
                if key not in reward_cache:
                    reward_cache[key] = bool((spk == rs[0]).any() if rs.size == 1 else np.isin(rs, spk).any())
                rewarded = reward_cache[key]
            if pl.fast:
                cols = cols_cache.get(pl.post_key)
                if cols is None:
                    cols = cols_cache[pl.post_key] = pl.cols_of(fired)
                if cols.size == 0:
                    continue
                rows = rows_cache.get(pl.pre_key)
                if rows is None:
                    rows = rows_cache[pl.pre_key] = pl.rows_of(spk)
                if rows.size == 0:
                    continue
                fkey = (pl.pre_key, pl.n_post, cols.tobytes())
                flat_cache[fkey] = pl.step_fast(rows, cols, rewarded, rng, flat_cache.get(fkey))
                rec_learn[k] += np.bincount(cx_core[pl.post_cx[cols]], minlength=nc) * rows.size
                continue
            if pl.observe(t, spk, fired, rewarded, rng):
                before = pl.updates
                cols = pl.learn(rng)
                if pl.updates > before and cols is not None:
                    rec_learn[k] += np.bincount(cx_core[pl.post_cx[cols]], minlength=nc) * pl.last_rows
        return rows_cache

    def route(self, t: int, spk: np.ndarray, fired: np.ndarray, ps: np.ndarray, sbits: int,
              rows_cache: dict) -> None:
        """Routing of step t's spikes: every plastic unit and delay matrix they reach adds its rows
        for the spiking sources to the ring slot of step t + 1 + delay, with a bound on what it added."""
        ring, ring_bound, ring_len = self.ring, self.ring_bound, self.ring_len
        for pl, bit in self.plastic_bits:
            if not sbits & bit:
                continue
            rows = rows_cache.get(pl.pre_key)
            if rows is None:
                rows = rows_cache[pl.pre_key] = pl.rows_of(spk)
            contrib, bound = pl.gather(spk, rows)
            if contrib is not None:
                j = (t + 1 + pl.delay) % ring_len
                ring[j][pl.post_cx] += contrib
                ring_bound[j] += bound
        for m, bit in self.matrix_bits:
            if not sbits & bit:
                continue
            if m.from_cx and m.from_ports:
                src_ids = spk
            else:
                src_ids = fired if m.from_cx else ps
            contrib, bound = m.gather(src_ids)
            if contrib is not None:
                j = (t + 1 + m.delay) % ring_len
                if type(contrib) is tuple:
                    np.add.at(ring[j], contrib[0], contrib[1])
                else:
                    ring[j] += contrib
                ring_bound[j] += bound

    # -- after the last step ----------------------------------------------------------------------
    def step_spikes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(source ids, their steps, fired compartments, their steps) of the whole run, for accounting."""
        src_ids, src_step = LoihiInterpreter._ids_by_step(self.src_log, self.steps, pairs=True)
        fired, f_step = LoihiInterpreter._ids_by_step(self.fired_log, self.steps)
        return src_ids, src_step, fired, f_step

    def finish(self) -> None:
        """Hand the state back to the chip; gather output spike trains and probes."""
        chip, steps = self.chip, self.steps
        chip.t = self.t0 + steps
        if chip.plastic_units:
            self.ovf["weight_saturation"] = sum(pl.saturated for pl in chip.plastic_units) - self.sat_before
        chip.u, chip.v, chip.u_bound, chip.v_neg_bound = self.u, self.v, self.u_bound, self.v_neg_bound
        for name in chip.outputs:
            self.out_rec[name] = self.spike_rec["out", name]
        if not self.probes:
            return
        port_src, port_bounds = self.port_src, self.port_bounds
        for name, var, src, pop, idx in chip.probe_defs:
            if src == "input":
                base = chip.port_base[pop]
                rows = np.repeat(np.arange(steps), np.diff(port_bounds))
                sel = (port_src >= base) & (port_src < base + idx.size)
                self.probe_rec[name][rows[sel], port_src[sel] - base] = True
            elif var == "spikes":
                self.probe_rec[name] = self.spike_rec["probe", name]
