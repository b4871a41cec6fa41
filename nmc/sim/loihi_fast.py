"""The compiled path of :meth:`nmc.sim.loihi.LoihiInterpreter.run`: when it applies, the tables
it runs on, and the driver that calls the numba kernel (``nmc.sim.loihi_kernel``) span by span.

The numpy path (``loihi._Run``) is the reference; this one must give the same result bit for bit
(``tests/test_interpreter_compiled.py`` compares them on random networks). It covers every run
without plastic synapses: any delays, dense and sparse delay matrices, per-compartment or uniform
decays, bias, thresholds, refractory delays, the wraps and the clip with their counts. Accounting
by source class (``_count``) stays in numpy after the kernel; without classes the kernel counts the
synaptic ops per (step, core) itself, as that expansion is most of the work.

Importing this module does not import numba: :func:`numba_available` and :func:`run_compiled`
import it when a run takes this path.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..arrayops import offsets_of

if TYPE_CHECKING:
    from .loihi import LoihiInterpreter

#: Environment variable choosing the path: ``numpy`` (always the reference path), ``compiled``
#: (the compiled one whenever it supports the run) or ``auto`` (the default: compiled when
#: numba is installed, the run is supported and it is large enough to pay for loading numba).
ENGINE_ENV = "NMC_INTERPRETER"
ENGINES = ("auto", "numpy", "compiled")
# auto: the estimated numpy time (this chip's runs so far plus this one) above which the compiled
# path pays for importing numba and loading its cached machine code (~0.5 s in a fresh process);
# once the kernel is loaded, any run above _AUTO_LOADED_S takes it.
_AUTO_FIRST_S = 1.0
_AUTO_LOADED_S = 0.002
# Kernel delay matrices: rows stored dense (contiguous, vectorised adds) from this fill on,
# compressed (column, value) pairs below it; a dense row costs n_cx adds, a compressed one its
# synapses, each an indexed add several times slower.
_KERNEL_DENSE_FILL = 0.25
_KERNEL_DENSE_MAX_BYTES = 1 << 28
_SPAN_CX_STEPS = 1 << 22   # with a progress callback: steps per call x compartments
_FIRED_START = 1 << 20     # first size of the buffer of fired ids (grown by doubling)
# Synaptic-op table stored as dense spans of cores when the spans hold at most this many times
# the table's entries (contiguous adds of a few bytes beat indexed adds of entries).
_SPAN_DENSE_RATIO = 4
_NIBBLE_SPANS = True      # spans in 4-bit counts when all counts are below 16 (tests switch it off)
# Synaptic-op spans in 2-bit counts when the nibble table would be at least this large (below,
# it stays in the caches and the extra unpacking is not paid back) and at most one entry in
# _TWO_BIT_OVERFLOW_RATIO has a count above 3.
_TWO_BIT_SPANS = True
_TWO_BIT_MIN_BYTES = 1 << 20
_TWO_BIT_OVERFLOW_RATIO = 8
_I32_MAX = (1 << 31) - 1


def engine_from_env() -> str:
    """The engine named by ``NMC_INTERPRETER`` (``auto`` when unset); an unknown name is a RunError."""
    from ..errors import RunError
    name = os.environ.get(ENGINE_ENV, "auto").strip().lower() or "auto"
    if name not in ENGINES:
        raise RunError(f"{ENGINE_ENV}={name!r}: expected one of {', '.join(ENGINES)}")
    return name


_NUMBA: bool | None = None


def numba_available() -> bool:
    """Whether numba can be imported (checked once, without importing it)."""
    global _NUMBA
    if _NUMBA is None:
        _NUMBA = importlib.util.find_spec("numba") is not None
    return _NUMBA


def kernel_loaded() -> bool:
    """Whether this process has already imported the kernel (so the compiled path costs nothing extra)."""
    return "nmc.sim.loihi_kernel" in sys.modules


def unsupported(chip: "LoihiInterpreter") -> str | None:
    """Why the compiled path cannot run ``chip`` (None if it can)."""
    from .loihi import LoihiInterpreter
    if type(chip)._new_run is not LoihiInterpreter._new_run:
        return "the chip variant extends the timestep's phases"
    if chip.plastic_units:
        return "the binary has plastic synapses"
    if chip.n_cores and np.any(np.diff(chip.core_cx_offset) == 0):
        return "a core without compartments"  # the numpy path's per-core reduction is the reference there
    if not numba_available():
        return "numba is not installed (pip install 'nmc[fast]')"
    return None


def estimated_numpy_s(chip: "LoihiInterpreter", steps: int) -> float:
    """A rough time of ``steps`` steps on the numpy path (per-step overhead plus per compartment)."""
    return steps * (30e-6 + 20e-9 * chip.n_cx)


# -------------------------------------------------------------------------------------------------
# Tables
# -------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class KernelTables:
    """What the kernel reads and never writes, built once per chip from its loaded tables."""

    neuron: tuple            # keep_u, keep_v, bias, vth, refractory, cx_core (per compartment)
    params: tuple            # scalars of the update (loihi_kernel module comment)
    routing: tuple           # delays, dense flags, bounds, row_of_src, dense rows, compressed rows
    acct: tuple              # accounting tables without source classes (loihi_kernel.run_span)
    rec_dtype: type          # of the per-(step, core) records: int32 while no count can leave it
    ring_limit: float        # bound on |any ring entry| from one delivery: the largest column sum of |values|
    col_maps: dict = field(default_factory=dict)  # recorded compartments -> columns (_raster), filled lazily
    scratch: dict = field(default_factory=dict)   # the run records of the last run, reused (zeros)

    def zeros(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """A zeroed record for this run, in the memory of the last run's when it has the same
        shape: a fresh (steps, cores) table costs a page fault per 4 KB as the kernel first
        writes it, which is as much as the run of a large sparse network. Nothing outlives
        a run's result: its figures are sums and copies."""
        a = self.scratch.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self.scratch[name] = np.zeros(shape, dtype=dtype)
        else:
            a.fill(0)
        return a

    @classmethod
    def of(cls, chip: "LoihiInterpreter") -> "KernelTables":
        c = chip._update_constants
        # Per-compartment constants in int32 when they all fit (as read every step, their bytes
        # count), else int64; the state (u, v, ready) stays int64 like the numpy path's.
        consts = (chip.keep_u, chip.keep_v, chip.bias, chip.vth, chip.refractory, chip.cx_core)
        narrow = all(int(np.abs(x).max(initial=0)) <= _I32_MAX for x in consts)
        neuron = tuple(np.ascontiguousarray(x, dtype=np.int32 if narrow else np.int64) for x in consts)
        params = (int(chip.decay_shift), int(c.a_half), int(c.a_mask), int(c.u_half), int(c.u_mask),
                  int(c.v_min), int(c.v_max), bool(c.has_ref), float(c.u_keep_frac), float(c.v_keep_frac),
                  float(c.bias_pos), float(c.bias_neg), float(c.vth_max), float(c.v_max), float(-c.v_min),
                  float(c.a_half), float(c.u_half))
        routing, ring_limit = _routing(chip)
        # A (step, core) count is at most the binary's synapses, messages or compartments.
        most = max(int(chip.synops_count.sum()), int(chip.src_msgs.sum()), chip.n_cx)
        rec_dtype = np.int32 if most <= _I32_MAX else np.int64
        return cls(neuron, params, routing, _acct(chip), rec_dtype, ring_limit, {})


def _acct(chip: "LoihiInterpreter") -> tuple:
    """The kernel's accounting tables (without the per-run records): mode 0 when sources have
    accounting classes (``_count`` does it after the run), else how the kernel adds a spiking
    source's synaptic ops per core: 1 from its (core, count) entries, 2 from a dense count per
    core of the range of cores it reaches (contiguous adds instead of indexed ones, when the
    ranges hold at most _SPAN_DENSE_RATIO times the entries), 3 the same in 4-bit counts (all
    counts below 16: half the bytes), 4 the same in 2-bit counts (a quarter of the bytes) for
    large tables whose counts are mostly below 3: each count capped at 3 in the span, the rest
    (count - 3) as (core, count) entries in the entry arrays; then messages and core per
    compartment."""
    none = (np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32))
    no_spans = (np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64),
                np.zeros(0, dtype=np.uint8))
    per_cx = (np.ascontiguousarray(chip.src_msgs[:chip.n_cx], dtype=np.int64),
              np.ascontiguousarray(chip.cx_core, dtype=np.int64))
    if chip.src_class is not None:
        return (0, *none, *no_spans, *per_cx)
    ptr, core, count = chip.synops_ptr, chip.synops_core, chip.synops_count
    lens = np.diff(ptr)
    has = lens > 0
    lo = np.zeros(chip.n_src, dtype=np.int64)
    hi = np.zeros(chip.n_src, dtype=np.int64)
    lo[has] = core[ptr[:-1][has]]
    hi[has] = core[ptr[1:][has] - 1] + 1                 # cores ascending within a source
    span = hi - lo
    if span.sum() > _SPAN_DENSE_RATIO * max(core.size, 1) or count.max(initial=0) > 255:
        return (1, np.ascontiguousarray(ptr, dtype=np.int64), core.astype(np.int32), count.astype(np.int32),
                *no_spans, *per_cx)
    owner = np.repeat(np.arange(chip.n_src), lens)
    pos = core - lo[owner]                              # position of each entry in its source's span
    nibbles = _NIBBLE_SPANS and count.max(initial=0) < 16
    over = count > 3
    quarter = (span + 3) // 4                            # bytes per source in 2-bit counts
    if (_TWO_BIT_SPANS and int(quarter.sum()) >= _TWO_BIT_MIN_BYTES
            and int(over.sum()) * _TWO_BIT_OVERFLOW_RATIO <= core.size):
        # Plane p of a source's bytes (bits 2p, 2p + 1) holds the cores lo + p q .. lo + (p + 1) q.
        span_ptr = offsets_of(quarter)
        plane = pos // quarter[owner]
        at = span_ptr[owner] + pos - plane * quarter[owner]
        # Distinct bit fields of one byte: their sum is their OR.
        bits = np.minimum(count, 3).astype(np.int64) << (2 * plane)
        cnt = np.bincount(at, weights=bits, minlength=int(span_ptr[-1])).astype(np.uint8)
        extra = (offsets_of(np.bincount(owner[over], minlength=chip.n_src)),
                 core[over].astype(np.int32), (count[over] - 3).astype(np.int32))
        return (4, *extra, lo, hi, span_ptr, cnt, *per_cx)
    if nibbles:
        half = (span + 1) // 2                           # bytes per source
        span_ptr = offsets_of(half)
        cnt = np.zeros(int(span_ptr[-1]), dtype=np.uint8)
        low = pos < half[owner]
        at = span_ptr[owner] + np.where(low, pos, pos - half[owner])
        # Each byte takes at most one low and one high count: two scatters with distinct indices.
        cnt[at[low]] = count[low]
        cnt[at[~low]] |= (count[~low] << 4).astype(np.uint8)
    else:
        span_ptr = offsets_of(span)
        cnt = np.zeros(int(span_ptr[-1]), dtype=np.uint8)
        cnt[span_ptr[owner] + pos] = count
    return (3 if nibbles else 2, *none, lo, hi, span_ptr, cnt, *per_cx)


def _routing(chip: "LoihiInterpreter") -> tuple[tuple, float]:
    """The delay matrices as the kernel reads them, and a bound on a ring entry (quotient units).

    Per matrix its delay, whether its rows are dense, its largest |value| (the numpy path's
    bound); ``row_of_src`` (matrices, sources) -> global row, dense rows and compressed rows
    numbered apart, -1 where a source has none. Every value is a multiple of 2^val_shift (the
    largest power of two dividing all of them: 64 w_eff, often more), so the tables hold the
    quotients, exactly, in the narrowest of int8/int16/int32/int64 (mixed-sign 8-bit weights are
    even: their quotients are int8); columns are uint16 when the compartments allow."""
    n_cx, n_src = chip.n_cx, chip.n_src
    mats = chip.matrices
    # Per matrix: ('dense', (rows, n_cx) float) or ('csr', indptr, indices (int), data (float)).
    parts: list[tuple] = []
    col_abs = np.zeros(n_cx, dtype=np.float64)   # per compartment: sum of |values| over all rows
    bits = 0                                      # OR of all values: its trailing zeros divide them all
    v_lo, v_hi = 0.0, 0.0
    for m in mats:
        n_rows = int((m.row_of_src >= 0).sum())
        if m.dense:
            mat = m.mat
            nnz, vmin, vmax, vbits = _dense_stats(mat, col_abs)
            if nnz >= _KERNEL_DENSE_FILL * mat.size and mat.size * 4 <= _KERNEL_DENSE_MAX_BYTES:
                parts.append(("dense", mat))
            else:
                rows, cols = np.nonzero(mat)
                parts.append(("csr", np.searchsorted(rows, np.arange(n_rows + 1)), cols, mat[rows, cols]))
        else:
            vals = m.data.astype(np.int64)
            vmin, vmax = float(vals.min(initial=0)), float(vals.max(initial=0))
            vbits = int(np.bitwise_or.reduce(vals)) if vals.size else 0
            col_abs += np.bincount(m.indices, weights=np.abs(m.data), minlength=n_cx)
            if m.data.size >= _KERNEL_DENSE_FILL * n_rows * n_cx and n_rows * n_cx * 4 <= _KERNEL_DENSE_MAX_BYTES:
                dense = np.zeros((n_rows, n_cx), dtype=np.float64)
                owner = np.repeat(np.arange(n_rows), np.diff(m.indptr))
                np.add.at(dense, (owner, m.indices), m.data)
                parts.append(("dense", dense))
            else:
                parts.append(("csr", m.indptr, m.indices, m.data))
        v_lo, v_hi, bits = min(v_lo, vmin), max(v_hi, vmax), bits | vbits
    shift = (bits & -bits).bit_length() - 1 if bits else 0
    q_lo, q_hi = int(v_lo) >> shift, int(v_hi) >> shift
    val_t = next(t for t in (np.int8, np.int16, np.int32, np.int64)
                 if np.iinfo(t).min <= q_lo and q_hi <= np.iinfo(t).max)
    col_t = np.uint16 if n_cx <= np.iinfo(np.uint16).max + 1 else np.int32
    row_of_src = np.full((len(mats), n_src), -1, dtype=np.int32)
    dense_blocks, csr_ptrs, csr_cols, csr_vals = [], [np.zeros(1, dtype=np.int64)], [], []
    n_dense, n_csr, n_syn = 0, 0, 0
    for i, (m, part) in enumerate(zip(mats, parts)):
        local = m.row_of_src
        has = local >= 0
        if part[0] == "dense":
            row_of_src[i, has] = n_dense + local[has]
            dense_blocks.append(_quotients(part[1], shift, val_t))
            n_dense += part[1].shape[0]
        else:
            _, indptr, indices, data = part
            row_of_src[i, has] = n_csr + local[has]
            csr_ptrs.append(n_syn + np.asarray(indptr[1:], dtype=np.int64))
            csr_cols.append(np.asarray(indices).astype(col_t))
            csr_vals.append(_quotients(np.asarray(data), shift, val_t))
            n_csr += indptr.size - 1
            n_syn += int(indptr[-1])
    dense_rows = np.concatenate(dense_blocks) if dense_blocks else np.zeros((0, n_cx), dtype=val_t)
    routing = (np.array([m.delay for m in mats], dtype=np.int64),
               np.array([p[0] == "dense" for p in parts], dtype=np.bool_),
               np.array([m.row_abs_max for m in mats], dtype=np.float64),
               row_of_src, np.ascontiguousarray(dense_rows),
               np.concatenate(csr_ptrs),
               np.concatenate(csr_cols) if csr_cols else np.zeros(0, dtype=col_t),
               np.concatenate(csr_vals) if csr_vals else np.zeros(0, dtype=val_t),
               shift)
    # Each ring slot takes at most one row per (matrix, source) before it is delivered, so no
    # partial sum of an entry exceeds its column's sum of |values|.
    return routing, float(col_abs.max(initial=0)) / (1 << shift)


def _dense_stats(mat: np.ndarray, col_abs: np.ndarray) -> tuple[int, float, float, int]:
    """Non-zeros, smallest and largest value and the OR of the values of a dense float matrix (exact
    integers); adds its column sums of |values| to ``col_abs``. In blocks of rows: the matrix
    can be 10^8 elements, and whole-matrix temporaries would double the memory."""
    nnz, vmin, vmax, bits = 0, 0.0, 0.0, 0
    block = max(1, (1 << 22) // max(mat.shape[1], 1))
    for lo in range(0, mat.shape[0], block):
        b = mat[lo:lo + block]
        nnz += int(np.count_nonzero(b))
        vmin, vmax = min(vmin, float(b.min(initial=0))), max(vmax, float(b.max(initial=0)))
        col_abs += np.abs(b).sum(axis=0, dtype=np.float64)
        bits |= int(np.bitwise_or.reduce(b.astype(np.int64), axis=None)) if b.size else 0
    return nnz, vmin, vmax, bits


def _quotients(values: np.ndarray, shift: int, dtype: type) -> np.ndarray:
    """Exact integer values (float) divided by 2^shift (they are multiples), as ``dtype``."""
    q = values.astype(np.int64)
    q >>= shift
    return q.astype(dtype)


# -------------------------------------------------------------------------------------------------
# A run
# -------------------------------------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class CompiledRun:
    """A finished compiled run, with what ``LoihiInterpreter._result`` reads (as from ``_Run``)."""

    steps: int
    rec_act: np.ndarray
    rec_learn: np.ndarray
    kernel_counts: tuple | None    # synaptic ops, spikes, messages per (step, core) when the kernel counted them
    fired: np.ndarray              # compartments that fired, by step
    fired_ptr: np.ndarray          # (steps + 1,): step k's are fired[fired_ptr[k]:fired_ptr[k + 1]]
    port_src: np.ndarray
    port_bounds: np.ndarray
    out_rec: dict[str, np.ndarray]
    probe_rec: dict[str, np.ndarray]
    ovf: dict[str, int]

    def step_spikes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(source ids, their steps, fired compartments, their steps) of the whole run."""
        steps = self.steps
        f_step = np.repeat(np.arange(steps), np.diff(self.fired_ptr))
        p_step = np.repeat(np.arange(steps), np.diff(self.port_bounds))
        return (np.concatenate([self.fired, self.port_src]), np.concatenate([f_step, p_step]),
                self.fired, f_step)


def run_compiled(chip: "LoihiInterpreter", steps: int, port_src: np.ndarray, port_bounds: np.ndarray,
                 probes: bool, progress: Callable[[int], None] | None) -> CompiledRun | None:
    """Run ``steps`` steps of ``chip`` from its state with the kernel and hand the state back;
    None (nothing changed) if the chip's state holds input the kernel's tables cannot represent."""
    from .loihi_kernel import run_span

    tables: KernelTables | None = getattr(chip, "_kernel_tables", None)
    if tables is None:
        tables = chip._kernel_tables = KernelTables.of(chip)
    n_cx, nc = chip.n_cx, chip.n_cores
    u = np.array(chip.u, dtype=np.int64)
    v = np.array(chip.v, dtype=np.int64)
    ready = np.array(chip.ready, dtype=np.int64)
    ring64 = np.array(chip.ring, dtype=np.float64).reshape(chip.ring_len, n_cx)
    val_shift = tables.routing[8]
    if val_shift and np.any(np.fmod(ring64, float(1 << val_shift))):
        return None   # in-flight input these tables cannot hold (a state loaded from elsewhere)
    ring_q = ring64.astype(np.int64)
    ring_q >>= val_shift     # exact: multiples of 2^val_shift
    # int32 accumulators when no sum can leave them (half the memory traffic of the row adds).
    fits = tables.ring_limit + float(np.abs(ring_q).max(initial=0)) <= _I32_MAX
    ring = ring_q.astype(np.int32) if fits else ring_q
    ring_bound = np.array(chip.ring_bound, dtype=np.float64)
    bounds = np.array([chip.u_bound, chip.v_neg_bound], dtype=np.float64)
    ovf = np.zeros(3, dtype=np.int64)
    state = (u, v, ready, ring, ring_bound, bounds, ovf)

    rec_t = tables.rec_dtype
    rec_act = tables.zeros("act", (steps, nc), rec_t)
    counted = bool(tables.acct[0])
    shape = (steps, nc) if counted else (0, 0)
    rec_syn, rec_spk, rec_msg = (tables.zeros(name, shape, rec_t) for name in ("syn", "spk", "msg"))
    acct = (*tables.acct, rec_syn, rec_spk, rec_msg)
    want = max(n_cx, min(steps * n_cx, _FIRED_START))
    fired_buf = tables.scratch.get("fired")
    if fired_buf is None or fired_buf.size < want:
        fired_buf = np.empty(want, dtype=np.int64)
    fired_ptr = np.zeros(steps + 1, dtype=np.int64)
    vp = [(name, idx) for name, var, _s, _p, idx in chip.probe_defs if probes and var == "v"]
    up = [(name, idx) for name, var, _s, _p, idx in chip.probe_defs if probes and var == "u"]
    vp_idx, vp_out = _probe_block(vp, steps)
    up_idx, up_out = _probe_block(up, steps)
    probe_arrays = (vp_idx, vp_out, up_idx, up_out)
    ports = (np.ascontiguousarray(port_src, dtype=np.int64), np.ascontiguousarray(port_bounds, dtype=np.int64))

    span = steps if progress is None else max(1, _SPAN_CX_STEPS // max(n_cx, 1))
    k, t0 = 0, chip.t
    while k < steps:
        end = min(steps, k + span)
        got = run_span(k, end, t0, state, tables.neuron, tables.params, tables.routing, ports, acct,
                       (rec_act, fired_buf, fired_ptr), probe_arrays)
        if got < end:   # the fired buffer might not hold the next step: grow it
            bigger = np.empty(2 * fired_buf.size, dtype=np.int64)
            bigger[:fired_ptr[got]] = fired_buf[:fired_ptr[got]]
            fired_buf = bigger
        if progress is not None and got > k:
            progress(got - k)
        k = got

    chip.t = t0 + steps
    chip.u, chip.v, chip.ready = u, v, ready
    chip.ring = [(row.astype(np.int64) << val_shift).astype(np.float64) for row in ring]
    chip.ring_bound = [float(x) for x in ring_bound]
    chip.u_bound, chip.v_neg_bound = float(bounds[0]), float(bounds[1])

    tables.scratch["fired"] = fired_buf
    fired = fired_buf[:fired_ptr[-1]].copy()
    out_rec, probe_rec = _recordings(chip, tables, steps, probes, fired, fired_ptr, port_src, port_bounds,
                                     vp, vp_out, up, up_out)
    # No learning engine: a read-only view of one zero row stands for the (steps, cores) zeros.
    no_learning = np.broadcast_to(np.zeros((1, nc), dtype=np.int64), (steps, nc))
    return CompiledRun(steps=steps, rec_act=rec_act, rec_learn=no_learning,
                       kernel_counts=(rec_syn, rec_spk, rec_msg) if counted else None,
                       fired=fired, fired_ptr=fired_ptr, port_src=port_src, port_bounds=port_bounds,
                       out_rec=out_rec, probe_rec=probe_rec,
                       ovf={"input_wrap": int(ovf[0]), "current_wrap": int(ovf[1]), "voltage_clip": int(ovf[2])})


def _probe_block(probes: list[tuple[str, np.ndarray]], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """All compartments of a kind of probe (v or u) as one index array and one (steps, n) record."""
    idx = (np.concatenate([i for _, i in probes]) if probes else np.zeros(0)).astype(np.int64)
    return idx, np.zeros((steps, idx.size), dtype=np.int32)


def _raster(tables: KernelTables, idx: np.ndarray, steps: int, fired: np.ndarray, fired_ptr: np.ndarray,
            cache: dict) -> np.ndarray:
    """(steps, idx.size) spike bits of the compartments ``idx`` (repeats allowed) from the fired
    lists; the same ``idx`` is filled once per run (``cache``: outputs are often probed too)."""
    from .loihi_kernel import fill_raster
    key = idx.tobytes()
    if key in cache:
        return cache[key].copy()
    col_map = tables.col_maps.get(key)
    if col_map is None:
        # Per compartment, the columns that record it (CSR), built once per chip.
        order = np.argsort(idx, kind="stable")
        n_cx = tables.neuron[0].size
        col_ptr = np.zeros(n_cx + 1, dtype=np.int64)
        np.cumsum(np.bincount(idx, minlength=n_cx), out=col_ptr[1:])
        col_map = tables.col_maps[key] = (col_ptr, order.astype(np.int64))
    out = np.zeros((steps, idx.size), dtype=bool)
    fill_raster(out, fired, fired_ptr, *col_map)
    cache[key] = out
    return out


def _recordings(chip: "LoihiInterpreter", tables: KernelTables, steps: int, probes: bool, fired: np.ndarray,
                fired_ptr: np.ndarray, port_src: np.ndarray, port_bounds: np.ndarray, vp: list, vp_out: np.ndarray,
                up: list, up_out: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Output spike trains and probes, shaped as the numpy path records them."""
    cache: dict = {}
    out_rec = {name: _raster(tables, idx, steps, fired, fired_ptr, cache) for name, idx in chip.outputs.items()}
    if not probes:
        return out_rec, {}
    # As the numpy path: every probe starts as zeros (bool for spikes, else int32); v and u
    # probes take the kernel's records; input probes then mark the port spikes.
    probe_rec: dict[str, Any] = {name: np.zeros((steps, idx.size), dtype=bool if var == "spikes" else np.int32)
                                 for name, var, _s, _p, idx in chip.probe_defs}
    for block, rec in ((vp, vp_out), (up, up_out)):
        col = 0
        for name, idx in block:
            probe_rec[name] = np.ascontiguousarray(rec[:, col:col + idx.size])
            col += idx.size
    for name, var, src, pop, idx in chip.probe_defs:
        if src == "input":
            base = chip.port_base[pop]
            rows = np.repeat(np.arange(steps), np.diff(port_bounds))
            sel = (port_src >= base) & (port_src < base + idx.size)
            probe_rec[name][rows[sel], port_src[sel] - base] = True
        elif var == "spikes":
            probe_rec[name] = _raster(tables, idx, steps, fired, fired_ptr, cache)
    return out_rec, probe_rec
