"""The compiled inner loop of the Loihi-like interpreter (numba); ``nmc.sim.loihi_fast`` drives it.

One call of :func:`run_span` runs a span of timesteps of :class:`nmc.sim.loihi.LoihiInterpreter`
for a network without plastic synapses: delivery, compartment update, recording, routing and
(without source classes) the synaptic-op count per core, the phases of the numpy path's ``_Run``
in the same order, in integer arithmetic. Every wrap, clip and bound is the numpy path's,
written per compartment (docs/interpreter.md, "The compiled path"):

* ``D(x, k) = sgn(x) * ((|x| * keep) >> shift)``: the integer form of the numpy path's
  multiply-and-truncate, which is exact;
* the a and u wraps are applied when the numpy path's bound says they can happen; a wrap leaves
  an in-range value unchanged, so wrapping every compartment is what wrapping the array is;
* the v clip is applied (to both ends, to every compartment) exactly when the numpy path's
  bound-and-extremes test says so, which needs the voltages of all compartments first: the
  update runs in two passes;
* the ring of future inputs holds exact integers: every synaptic value is a multiple of
  ``2^val_shift`` (64 w_eff, and often more), the tables store the quotients and the ring sums
  them, and delivery shifts the sum back: the numpy path's float64 sums, exactly;
* the float bounds kept per ring slot, on |u| and on max(-v, 0) are computed with the same
  operations in the same order as the numpy path's (they decide when wraps and clips are checked).

This module imports numba at import time; import it only when a run is large enough to pay
(``loihi_fast``). The first call compiles (seconds); later processes load the machine code from
numba's on-disk cache.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import binding as _llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

# llvm.prefetch's name carries the pointer type: opaque pointers ("p0") since LLVM 15.
_PREFETCH = "llvm.prefetch.p0" if _llvm.llvm_version_info[0] >= 15 else "llvm.prefetch.p0i8"


@intrinsic
def _prefetch(typingctx, arr, idx):  # type: ignore[no-untyped-def]
    """Ask the CPU to bring ``arr[idx]``'s cache line in (a hint; no effect on results). Rows of
    large tables are read in the order spikes pick them, which the hardware cannot predict; one
    row's lines are requested while the previous row is added."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _PREFETCH)
        # read, high temporal locality, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, inline="always")
def _prefetch_range(arr, lo, n):
    """Prefetch the cache lines of arr[lo:lo + n]."""
    step = max(64 // arr.itemsize, 1)
    for q in range(0, n, step):
        _prefetch(arr, lo + q)


@numba.njit(cache=True, inline="always")
def _decay(x: int, keep: int, shift: int) -> int:
    """D(x) = sgn(x) * ((|x| * keep) >> shift), rounding the magnitude toward zero."""
    if x >= 0:
        return (x * keep) >> shift
    return -(((-x) * keep) >> shift)


@numba.njit(cache=True, inline="always")
def _wrap(x: int, half: int, mask: int) -> int:
    """Two's-complement wrap of x to the width whose half range is ``half``."""
    return ((x + half) & mask) - half


@numba.njit(cache=True)
def _update(k, t, a_row, val_shift, state, neuron, p, rec_act, fired_buf, nf):
    """Delivery of the ring slot ``a_row`` (sums of value quotients) and the compartment update
    of step t (run step k). Returns the new number of fired compartments.

    Two passes: the first integrates u and v, the second clips v (when the numpy path would: it
    clips all compartments, both ends, when one passes an end its bound allows, so every v is
    needed first), then holds, thresholds and resets. Helpers take scalars only: numba keeps
    reference counts of the arrays passed to a function, and in a per-compartment loop those
    cost far more than the arithmetic."""
    u, v, ready, ring, ring_bound, bounds, ovf = state
    keep_u, keep_v, bias, vth, refr, cx_core = neuron
    (shift, a_half, a_mask, u_half, u_mask, v_min, v_max, has_ref, u_keep_frac, v_keep_frac,
     bias_pos, bias_neg, vth_max, v_max_f, neg_v_min_f, a_half_f, u_half_f) = p
    slot = t % ring.shape[0]
    a_bound = ring_bound[slot]
    ring_bound[slot] = 0.0
    wrap_a = a_bound >= a_half_f
    # The bounds as the numpy path computes them (float, same operations and order).
    u_bound = bounds[0] * u_keep_frac + min(a_bound, a_half_f)
    wrap_u = u_bound >= u_half_f
    if wrap_u:
        u_bound = u_half_f
    v_neg_bound = bounds[1] * v_keep_frac + u_bound + bias_neg
    maybe_hi = vth_max + u_bound + bias_pos > v_max_f
    maybe_lo = v_neg_bound > neg_v_min_f
    if maybe_lo:
        v_neg_bound = neg_v_min_f
    bounds[0] = u_bound
    bounds[1] = v_neg_bound
    n = u.shape[0]
    n_hi = 0
    n_lo = 0
    n_aw = 0
    n_uw = 0
    for i in range(n):
        a = np.int64(a_row[i]) << val_shift
        a_row[i] = 0
        if wrap_a:
            w = _wrap(a, a_half, a_mask)
            n_aw += w != a
            a = w
        ui = _decay(u[i], keep_u[i], shift) + a
        if wrap_u:
            w = _wrap(ui, u_half, u_mask)
            n_uw += w != ui
            ui = w
        u[i] = ui
        vi = _decay(v[i], keep_v[i], shift) + ui + bias[i]
        v[i] = vi
        n_hi += vi > v_max
        n_lo += vi < v_min
    ovf[0] += n_aw
    ovf[1] += n_uw
    clip = (maybe_hi and n_hi > 0) or (maybe_lo and n_lo > 0)
    if clip:
        ovf[2] += n_hi + n_lo
    act = rec_act[k]
    for i in range(n):
        vi = v[i]
        if clip:
            vi = min(max(vi, v_min), v_max)
        # Active (energy model): u or v non-zero after the update, before the hold and reset.
        if u[i] != 0 or vi != 0:
            act[cx_core[i]] += 1
        if has_ref and ready[i] > t:
            vi = 0
        if vi > vth[i]:
            vi = 0
            if has_ref:
                ready[i] = t + refr[i]
            fired_buf[nf] = i
            nf += 1
        v[i] = vi
    return nf


@numba.njit(cache=True)
def _add_dense_rows(dst, dense_rows, rows, count):
    """dst += the dense rows ``rows[:count]`` (contiguous: vectorised)."""
    n_cx = dst.shape[0]
    for i in range(count):
        src = dense_rows[rows[i]]
        for c in range(n_cx):
            dst[c] += src[c]


_AHEAD = 4   # the rows of the spike this many places on are requested while one row is added


@numba.njit(cache=True, inline="always")
def _prefetch_row(csr_ptr, csr_col, csr_val, g):
    """Prefetch compressed row g (its columns and values)."""
    n = csr_ptr[g + 1] - csr_ptr[g]
    _prefetch_range(csr_col, csr_ptr[g], n)
    _prefetch_range(csr_val, csr_ptr[g], n)


@numba.njit(cache=True)
def _add_csr_rows(dst, csr_ptr, csr_col, csr_val, rows, count):
    """dst[col] += val over the compressed rows ``rows[:count]``, prefetching the rows ahead."""
    for i in range(min(_AHEAD, count)):
        _prefetch_row(csr_ptr, csr_col, csr_val, rows[i])
    for i in range(count):
        if i + _AHEAD < count:
            _prefetch_row(csr_ptr, csr_col, csr_val, rows[i + _AHEAD])
        g = rows[i]
        lo = csr_ptr[g]
        n = csr_ptr[g + 1] - lo
        # Slices indexed from 0: numba then needs no negative-index check (columns are unsigned
        # or non-negative int32).
        cols = csr_col[lo:lo + n]
        vals = csr_val[lo:lo + n]
        for e in range(n):
            dst[cols[e]] += vals[e]


@numba.njit(cache=True)
def _route(t, spikes, ring, ring_bound, routing, rows):
    """Every delay matrix adds the rows of the step's spiking sources (compartments, then port
    units) to the ring slot of step t + 1 + delay, and its bound to that slot's bound."""
    mat_delay, mat_dense, mat_abs_max, row_of_src, dense_rows, csr_ptr, csr_col, csr_val, _shift = routing
    n_ring = ring.shape[0]
    for m in range(mat_delay.shape[0]):
        src_rows = row_of_src[m]
        count = 0
        for s in spikes:
            g = src_rows[s]
            if g >= 0:
                rows[count] = g
                count += 1
        if count == 0:
            continue
        j = (t + 1 + mat_delay[m]) % n_ring
        if mat_dense[m]:
            _add_dense_rows(ring[j], dense_rows, rows, count)
        else:
            _add_csr_rows(ring[j], csr_ptr, csr_col, csr_val, rows, count)
        ring_bound[j] += count * mat_abs_max[m]


@numba.njit(cache=True)
def _count_synops(spikes, row, acct):
    """Synaptic ops of the step's spikes per core (when sources have no accounting classes):
    each spiking source adds its (core, count) entries to ``row``. Stored either as entries or,
    when they fill much of the range of cores a source reaches, as a dense count per core of that
    range (contiguous adds instead of indexed ones), in 8-, 4- or 2-bit counts
    (loihi_fast._acct)."""
    mode, syn_ptr, syn_core, syn_count, span_lo, span_hi, span_ptr, span_cnt = acct[:8]
    if mode == 1:
        for s in spikes:
            for e in range(syn_ptr[s], syn_ptr[s + 1]):
                row[syn_core[e]] += syn_count[e]
        return
    n_spk = spikes.shape[0]
    for i in range(n_spk):
        if i + 1 < n_spk:
            nxt = spikes[i + 1]
            _prefetch_range(span_cnt, span_ptr[nxt], span_ptr[nxt + 1] - span_ptr[nxt])
        s = spikes[i]
        n = span_ptr[s + 1] - span_ptr[s]
        src = span_cnt[span_ptr[s]:span_ptr[s + 1]]
        if mode == 2:
            dst = row[span_lo[s]:span_lo[s] + n]
            for c in range(n):
                dst[c] += src[c]
        elif mode == 4:
            # 2-bit counts: plane p (bits 2p, 2p + 1 of every byte) holds the cores
            # lo + p n .. lo + (p + 1) n of the span; counts above 3 add their rest from entries.
            lo = span_lo[s]
            width = span_hi[s] - lo
            for p in range(4):
                m = min(n, width - p * n)
                if m <= 0:
                    break
                dst = row[lo + p * n:lo + p * n + m]
                sh = 2 * p
                for c in range(m):
                    dst[c] += (src[c] >> sh) & 3
            for e in range(syn_ptr[s], syn_ptr[s + 1]):
                row[syn_core[e]] += syn_count[e]
        else:
            # Nibbles: byte j holds the counts of cores lo + j (low) and lo + n + j (high) of a
            # span of 2n or 2n - 1 cores (half the bytes to read).
            lo = span_lo[s]
            n_hi = span_hi[s] - lo - n
            dst = row[lo:lo + n]
            dst2 = row[lo + n:lo + n + n_hi]
            for c in range(n_hi):
                b = src[c]
                dst[c] += b & 15
                dst2[c] += b >> 4
            if n_hi < n:
                dst[n - 1] += src[n - 1] & 15


@numba.njit(cache=True)
def run_span(k0, k1, t0, state, neuron, p, routing, ports, acct, rec, probes):
    """Run steps k0 .. k1 - 1 of a run that started at chip step t0. Stops early, before a step
    whose spikes might not fit ``fired_buf``; returns the next step to run.

    state:   u, v, ready, ring (slots, n_cx) of value quotients, ring_bound (slots,),
             bounds [|u|, max(-v, 0)], ovf (3,)
    neuron:  keep_u, keep_v, bias, vth, refractory, cx_core (per compartment)
    p:       scalars of the update (loihi_fast.KernelTables.params)
    routing: per delay matrix its delay, dense flag and largest |value|; row_of_src (matrices,
             sources); dense rows; compressed rows (ptr, col, val); val_shift (values =
             quotients << val_shift)
    ports:   port spike source ids sorted by step, per-step bounds into them
    acct:    accounting without source classes (else _count does it after the run): mode (0: not
             here, 1: synaptic ops from per-source entries, 2: from dense spans, 3: from dense
             spans of nibbles), entries (ptr, core, count), spans (first core, end core, ptr,
             counts), messages per compartment, cx_core,
             and the (steps, cores) records of synaptic ops, spikes and messages
    rec:     rec_act (steps, cores), fired_buf, fired_ptr (steps + 1,)
    probes:  v probe compartments, their (steps, n) record; the same for u
    """
    u, v, ready, ring, ring_bound, bounds, ovf = state
    val_shift = routing[8]
    port_src, port_bounds = ports
    rec_act, fired_buf, fired_ptr = rec
    vp_idx, vp_out, up_idx, up_out = probes
    n_cx = u.shape[0]
    n_ring = ring.shape[0]
    spikes = np.empty(n_cx + port_src.shape[0], dtype=np.int64)
    rows = np.empty(n_cx + port_src.shape[0], dtype=np.int64)
    for k in range(k0, k1):
        nf = fired_ptr[k]
        if nf + n_cx > fired_buf.shape[0]:
            if acct[0]:
                _count_span(k0, k, acct, port_src, port_bounds, fired_buf, fired_ptr, spikes)
            return k
        t = t0 + k
        nf = _update(k, t, ring[t % n_ring], val_shift, state, neuron, p, rec_act, fired_buf, nf)
        fired_ptr[k + 1] = nf
        for j in range(vp_idx.shape[0]):
            vp_out[k, j] = v[vp_idx[j]]
        for j in range(up_idx.shape[0]):
            up_out[k, j] = u[up_idx[j]]
        # The step's spikes: compartments, then port units (the numpy path's order).
        n_spk = 0
        for e in range(fired_ptr[k], nf):
            spikes[n_spk] = fired_buf[e]
            n_spk += 1
        for e in range(port_bounds[k], port_bounds[k + 1]):
            spikes[n_spk] = port_src[e]
            n_spk += 1
        if n_spk:
            _route(t, spikes[:n_spk], ring, ring_bound, routing, rows)
    if acct[0]:
        _count_span(k0, k1, acct, port_src, port_bounds, fired_buf, fired_ptr, spikes)
    return k1


@numba.njit(cache=True)
def _count_span(k0, k1, acct, port_src, port_bounds, fired_buf, fired_ptr, spikes):
    """Synaptic ops, spikes and messages per core of steps k0 .. k1 - 1, after their routing:
    counted step by step, the per-source table competed for the caches with the synapse
    rows of the delivery; afterwards a source's table row, read for each of its spikes, stays
    in the cache."""
    cx_msgs, cx_core, rec_syn, rec_spk, rec_msg = acct[8:]
    for k in range(k0, k1):
        n_spk = 0
        for e in range(fired_ptr[k], fired_ptr[k + 1]):
            i = fired_buf[e]
            rec_spk[k, cx_core[i]] += 1
            rec_msg[k, cx_core[i]] += cx_msgs[i]
            spikes[n_spk] = i
            n_spk += 1
        for e in range(port_bounds[k], port_bounds[k + 1]):
            spikes[n_spk] = port_src[e]
            n_spk += 1
        _count_synops(spikes[:n_spk], rec_syn[k], acct)


@numba.njit(cache=True)
def fill_raster(out, fired, fired_ptr, col_ptr, cols):
    """Spike bits of recorded compartments: out[k, col] for every column ``cols[col_ptr[c]:col_ptr[c + 1]]``
    of every compartment c that fired at run step k."""
    for k in range(fired_ptr.shape[0] - 1):
        for e in range(fired_ptr[k], fired_ptr[k + 1]):
            c = fired[e]
            for j in range(col_ptr[c], col_ptr[c + 1]):
                out[k, cols[j]] = True


@numba.njit(cache=True)
def price_table(syn, act, cx, msg, learn, has_learn, t_syn, t_act, t_inact, t_msg, t_learn, step_max, core_max):
    """cost_loihi.price_steps in one pass: per (step, core) the float64 sum of the count products
    in the cost model's order (inactive = cx - active), reduced to its maximum per step and per
    core, without storing the table."""
    steps, nc = syn.shape
    for c in range(nc):
        core_max[c] = -np.inf if steps else 0.0
    for k in range(steps):
        best = -np.inf
        for c in range(nc):
            a = act[k, c]
            ns = np.float64(syn[k, c]) * t_syn
            ns += np.float64(a) * t_act
            ns += np.float64(cx[c] - a) * t_inact
            ns += np.float64(msg[k, c]) * t_msg
            if has_learn:
                ns += np.float64(learn[k, c]) * t_learn
            if ns > best:
                best = ns
            if ns > core_max[c]:
                core_max[c] = ns
        step_max[k] = best


@numba.njit(cache=True)
def column_sums(a, out):
    """out[c] = sum over rows of a[:, c] (int64)."""
    for c in range(out.shape[0]):
        out[c] = 0
    for k in range(a.shape[0]):
        for c in range(a.shape[1]):
            out[c] += a[k, c]
