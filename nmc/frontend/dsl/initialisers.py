"""Arrays from values: numbers, initialiser calls (``constant``, ``uniform``, ``randint``,
``normal``) and npz files, for weights, per-neuron parameters and sparse connections.

A random array without an explicit seed draws from a stream derived from the network seed, so the
same source always gives the same arrays. Arrays are size-checked before they are made: a typo in
a population size should be an error, not a MemoryError traceback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...npz import read_npz
from .values import Call, Evaluator, Num, Pos, Signature, Text, Value, describe, did_you_mean

#: Largest array (in elements) the front end will generate; anything bigger is almost certainly a
#: typo in a population size, and would otherwise end in a MemoryError traceback.
MAX_ARRAY_ELEMENTS = 1 << 28

#: First word of the seed sequence of each kind of random stream (see ``Initialisers._derived_rng``).
STREAM_PROJECTION = 1
STREAM_POPULATION = 2
STREAM_BACKPROP = 3

INITIALISERS: dict[str, Signature] = {
    "constant": Signature("constant", ("value",), frozenset({"value"}), 1),
    "uniform": Signature("uniform", ("lo", "hi", "seed"), frozenset({"lo", "hi"}), 3),
    "randint": Signature("randint", ("lo", "hi", "seed"), frozenset({"lo", "hi"}), 3),
    "normal": Signature("normal", ("mean", "std", "seed"), frozenset({"mean", "std"}), 3),
    "npz": Signature("npz", ("file", "key"), frozenset({"file"}), 2),
}


@dataclass(kw_only=True)
class Initialisers(Evaluator):
    """Materialises arrays; part of the builder."""

    base_dir: Path  # npz paths are relative to it
    seed: int = 0  # the network seed (``seed N``), root of every derived random stream
    npz_cache: dict[Path, dict[str, np.ndarray]] = field(default_factory=dict)

    def _derived_rng(self, stream: int, index: int) -> np.random.Generator:
        """The random stream for an object without an explicit seed: a pure function of the
        network seed, the kind of object and its index, so the same source gives the same arrays."""
        return np.random.default_rng([self.seed, stream, index])

    def _weights(self, value: Value, shape: tuple[int, ...], rng: np.random.Generator, what: str,
                 dimension: str | None = None) -> np.ndarray:
        """Weights of ``shape`` from a number or an initialiser; ``dimension`` is that of the post
        model's weights ("current" for lif / if: nA per spike; None: plain numbers)."""
        if isinstance(value, Num):
            self._check_array_size(shape, value.pos)
            return np.full(shape, float(self._as_quantity(value, "weights", dimension)), dtype=np.float64)
        if isinstance(value, Call):
            return self._initialise(value, shape, rng, what, default_key="weights", dimension=dimension)
        raise self.error(f"weights must be a number or an initialiser ({', '.join(sorted(INITIALISERS))}), "
                         f"got {describe(value)}", value.pos)

    def _initialiser_signature(self, call: Call) -> Signature:
        sig = INITIALISERS.get(call.name)
        if sig is None:
            raise self.error(f"unknown initialiser '{call.name}' (known: {', '.join(sorted(INITIALISERS))})"
                             f"{did_you_mean(call.name, INITIALISERS)}", call.pos)
        return sig

    def _initialise(self, call: Call, shape: tuple[int, ...], rng: np.random.Generator, what: str,
                    default_key: str, dimension: str | None = None) -> np.ndarray:
        """Materialise an initialiser call as a float64 array of ``shape``; its numbers are
        quantities of ``dimension`` (or plain numbers in the IR's unit of it)."""
        args = self._bind(call, self._initialiser_signature(call))
        if call.name == "npz":
            file = self._as_text(args["file"], "npz file name")
            key = self._as_text(args["key"], "npz key") if "key" in args else Text(default_key, call.pos)
            arr = self._npz_array(file, key.value, key.pos)
            if arr.shape != shape:
                hint = ""
                if len(shape) == 2 and arr.shape == shape[::-1]:
                    # Lava and nengo-loihi keep weights as [post, pre]; the DSL takes [pre, post].
                    hint = "; weights are [pre, post] here (Lava and nengo-loihi store [post, pre]): transpose it"
                raise self.error(f"array '{key.value}' in '{file.value}' has shape {arr.shape}, expected {shape} "
                                 f"({what}){hint}", call.pos)
            return arr.astype(np.float64)
        self._check_array_size(shape, call.pos)
        if "seed" in args:
            rng = np.random.default_rng(self._as_int(args["seed"], "seed", minimum=0))
        if call.name == "constant":
            return np.full(shape, float(self._as_quantity(args["value"], "constant value", dimension)),
                           dtype=np.float64)
        if call.name == "uniform":
            lo, hi = self._as_quantity(args["lo"], "lo", dimension), self._as_quantity(args["hi"], "hi", dimension)
            if lo > hi:
                raise self.error(f"uniform needs lo <= hi, got lo = {lo!r}, hi = {hi!r}", call.pos)
            return rng.uniform(lo, hi, size=shape)
        if call.name == "randint":
            lo, hi = self._as_int(args["lo"], "lo"), self._as_int(args["hi"], "hi")
            if lo > hi:
                raise self.error(f"randint needs lo <= hi, got lo = {lo!r}, hi = {hi!r}", call.pos)
            return rng.integers(lo, hi, size=shape, endpoint=True).astype(np.float64)
        mean, std = self._as_quantity(args["mean"], "mean", dimension), self._as_quantity(args["std"], "std", dimension)
        if std < 0:
            raise self.error(f"normal needs std >= 0, got {std!r}", args["std"].pos)
        return rng.normal(mean, std, size=shape)

    def _check_array_size(self, shape: tuple[int, ...], pos: Pos) -> None:
        n = math.prod(shape)
        if n > MAX_ARRAY_ELEMENTS:
            raise self.error(f"an array of shape {shape} ({n} elements) is too large "
                             f"(limit {MAX_ARRAY_ELEMENTS})", pos)

    # -- npz files --------------------------------------------------------------------------------
    def _npz_array(self, file: Text, key: str, key_pos: Pos) -> np.ndarray:
        """Array ``key`` of the npz file named by ``file`` (relative to the source directory);
        numeric and finite (:func:`nmc.npz.read_npz`)."""
        path = self.base_dir / file.value
        arrays = self.npz_cache.get(path)
        if arrays is None:
            arrays = self.npz_cache[path] = read_npz(path, lambda m: self.error(m, file.pos), shown=file.value)
        if key not in arrays:
            raise self.error(f"'{file.value}' has no array '{key}' (it has: {', '.join(arrays) or 'none'})", key_pos)
        return arrays[key]

    def _npz_holds_one(self, call: Call, key: str) -> bool:
        """Whether ``npz(...)`` for parameter ``key`` names a one-element array (a value shared by all
        neurons, such as a threshold a training script computed)."""
        args = self._bind(call, INITIALISERS["npz"])
        file = self._as_text(args["file"], "npz file name")
        name = self._as_text(args["key"], "npz key") if "key" in args else Text(key, call.pos)
        return self._npz_array(file, name.value, name.pos).size == 1

    def _scalar_from_npz(self, call: Call, key: str) -> int | float:
        """A one-element array from an npz file, for a parameter shared by all neurons (e.g. a
        threshold a training script computed)."""
        args = self._bind(call, INITIALISERS["npz"])
        file = self._as_text(args["file"], "npz file name")
        name = self._as_text(args["key"], "npz key") if "key" in args else Text(key, call.pos)
        arr = self._npz_array(file, name.value, name.pos)
        if arr.size != 1 or arr.dtype.kind not in "biuf":
            raise self.error(f"parameter '{key}' takes one number for all neurons, but array '{name.value}' in "
                             f"'{file.value}' has shape {arr.shape}", call.pos)
        value = arr.reshape(-1)[0].item()
        return int(value) if float(value).is_integer() else float(value)

    def _sparse_file(self, value: Value) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The synapses of ``sparse(file = npz("FILE.npz"))``: arrays pre, post and weights, sorted
        by (pre, post)."""
        if not (isinstance(value, Call) and value.name == "npz"):
            raise self.error(f"file must be npz(\"FILE.npz\"), got {describe(value)}", value.pos)
        args = self._bind(value, INITIALISERS["npz"])
        if "key" in args:
            raise self.error("a sparse file takes no key: it must hold arrays 'pre', 'post' and 'weights'",
                             args["key"].pos)
        file = self._as_text(args["file"], "npz file name")
        pre, post, weights = (self._npz_array(file, key, value.pos) for key in ("pre", "post", "weights"))
        for key, arr in (("pre", pre), ("post", post), ("weights", weights)):
            if arr.ndim != 1 or arr.shape != pre.shape:
                raise self.error(f"arrays 'pre', 'post' and 'weights' in '{file.value}' must be 1-D of equal length, "
                                 f"got shapes {pre.shape}, {post.shape}, {weights.shape}", value.pos)
            if key != "weights" and arr.dtype.kind not in "iu":
                raise self.error(f"array '{key}' in '{file.value}' must hold integers, got dtype {arr.dtype}",
                                 value.pos)
        order = np.lexsort((post, pre))
        return (pre[order].astype(np.int64), post[order].astype(np.int64),
                weights[order].astype(np.float64))
