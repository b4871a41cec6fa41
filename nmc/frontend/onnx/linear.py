"""Linear maps between flattened tensors, for the ONNX importer.

An imported network is a chain of affine maps and nonlinearities. Between two nonlinearities the
importer composes every linear operation (Gemm, MatMul, Conv, pooling, batch normalisation,
scaling, flattening) into one matrix per source population, so that a layer of neurons receives
one projection per source with the folded weights. :class:`Lin` is such a matrix, kept as the
identity, a dense array, or a list of non-zero entries (a convolution's matrix is mostly zeros).
Shapes are (n_in, n_out): ``y = x @ M`` for a row vector x, as nmc's dense projections store them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A sparse result is stored dense when at least this fraction of its entries is non-zero and the
#: dense array stays below _DENSE_MAX elements.
_DENSE_FILL = 0.2
_DENSE_MAX = 4_000_000


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The concatenated index ranges [starts[i], starts[i] + lens[i])."""
    return np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(starts, lens)


@dataclass
class Lin:
    """A linear map from ``n_in`` to ``n_out`` values: the identity (``kind = "id"``), a dense
    (n_in, n_out) array, or sparse entries (rows ``i``, columns ``j``, values ``w``)."""

    n_in: int
    n_out: int
    kind: str                              # "id" | "dense" | "sparse"
    dense: np.ndarray | None = None
    i: np.ndarray | None = None
    j: np.ndarray | None = None
    w: np.ndarray | None = None

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def identity(cls, n: int) -> "Lin":
        return cls(n, n, "id")

    @classmethod
    def from_dense(cls, m: np.ndarray) -> "Lin":
        m = np.asarray(m, dtype=np.float64)
        return cls(m.shape[0], m.shape[1], "dense", dense=m)

    @classmethod
    def from_entries(cls, i: np.ndarray, j: np.ndarray, w: np.ndarray, n_in: int, n_out: int) -> "Lin":
        """Entries (duplicates summed, zeros dropped); stored dense when that is small and full."""
        i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
        w = np.asarray(w, dtype=np.float64)
        key = i * n_out + j
        uniq, inv = np.unique(key, return_inverse=True)
        vals = np.bincount(inv.reshape(-1), weights=w, minlength=uniq.size)
        keep = vals != 0
        uniq, vals = uniq[keep], vals[keep]
        if n_in * n_out <= _DENSE_MAX and uniq.size >= _DENSE_FILL * n_in * n_out:
            m = np.zeros(n_in * n_out)
            m[uniq] = vals
            return cls.from_dense(m.reshape(n_in, n_out))
        return cls(n_in, n_out, "sparse", i=uniq // n_out, j=uniq % n_out, w=vals)

    # -- algebra -------------------------------------------------------------------------------
    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All non-zero entries as (rows, columns, values)."""
        if self.kind == "id":
            idx = np.arange(self.n_in)
            return idx, idx.copy(), np.ones(self.n_in)
        if self.kind == "dense":
            i, j = np.nonzero(self.dense)
            return i, j, self.dense[i, j]
        return self.i, self.j, self.w

    def to_dense(self) -> np.ndarray:
        if self.kind == "dense":
            return self.dense
        m = np.zeros((self.n_in, self.n_out))
        i, j, w = self.entries()
        np.add.at(m, (i, j), w)
        return m

    def then(self, other: "Lin") -> "Lin":
        """The map ``x -> other(self(x))``."""
        if self.n_out != other.n_in:
            raise ValueError(f"cannot compose maps {self.n_in}->{self.n_out} and {other.n_in}->{other.n_out}")
        if self.kind == "id":
            return other
        if other.kind == "id":
            return self
        if self.kind == "dense" and other.kind == "dense":
            return Lin.from_dense(self.dense @ other.dense)
        if self.kind == "dense":  # dense then sparse: each output column sums a few input columns
            oi, oj, ow = other.entries()
            out = np.zeros((self.n_in, other.n_out))
            np.add.at(out.T, oj, (self.dense[:, oi] * ow).T)
            return Lin.from_dense(out)
        if other.kind == "dense":  # sparse then dense
            si, sj, sw = self.entries()
            out = np.zeros((self.n_in, other.n_out))
            np.add.at(out, si, sw[:, None] * other.dense[sj])
            return Lin.from_dense(out)
        # sparse then sparse: join on the middle index
        si, sj, sw = self.entries()
        oi, oj, ow = other.entries()
        order = np.argsort(oi, kind="stable")
        oi, oj, ow = oi[order], oj[order], ow[order]
        ptr = np.searchsorted(oi, np.arange(other.n_in + 1))
        lens = ptr[sj + 1] - ptr[sj]
        pos = _ranges(ptr[sj], lens)
        return Lin.from_entries(np.repeat(si, lens), oj[pos], np.repeat(sw, lens) * ow[pos], self.n_in, other.n_out)

    def scale_columns(self, s: np.ndarray) -> "Lin":
        """The map followed by an elementwise scale of its outputs."""
        s = np.asarray(s, dtype=np.float64).reshape(-1)
        if self.kind == "dense":
            return Lin.from_dense(self.dense * s[None, :])
        i, j, w = self.entries()
        return Lin.from_entries(i, j, w * s[j], self.n_in, self.n_out)

    def plus(self, other: "Lin") -> "Lin":
        """The sum of two maps with the same shape."""
        if self.kind == "dense" or other.kind == "dense":
            return Lin.from_dense(self.to_dense() + other.to_dense())
        i1, j1, w1 = self.entries()
        i2, j2, w2 = other.entries()
        return Lin.from_entries(np.concatenate([i1, i2]), np.concatenate([j1, j2]), np.concatenate([w1, w2]),
                                self.n_in, self.n_out)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``x @ M`` for a batch of row vectors x (n, n_in)."""
        if self.kind == "id":
            return x
        if self.kind == "dense":
            return x @ self.dense
        out = np.zeros((x.shape[0], self.n_out))
        np.add.at(out.T, self.j, (x[:, self.i] * self.w).T)
        return out

    def max_abs(self) -> float:
        if self.kind == "id":
            return 1.0
        _, _, w = self.entries()
        return float(np.abs(w).max(initial=0.0))
