"""Host-side encoding of real-valued inputs and decoding of outputs, as a converted network's
binary asks (metadata ``encoding`` and ``readout``, written by ``convert-ann`` and the backend).

Encodings (docs/conversion.md):

- ``rate``: x / scale clipped to [0, 1] spikes per step as a regular train: unit i spikes at
  step t iff floor((t + 1) r + 1/2) > floor(t r + 1/2) (the first spike half a period in);
- ``graded``: the input's value in payload units, q = round(x / scale * payload_scale), sent as
  its changes: q at step 0 (q_t - q_(t-1) at the first step of item t for a sequence), nothing
  in between.

A sequence (``items`` in the encoding) holds each item for ``item_steps`` steps.

Readouts: ``value`` -- the output population's v at the last step; ``charge`` -- its spike count
plus v at the last step in units of ``quantum`` (one activation unit), i.e. everything it
integrated: the integral of its input for neurons with reset by subtraction, or for an output
layer whose threshold its input does not reach (targets without reset by subtraction).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import RunError


def encoded_steps(enc: dict[str, Any], steps: int | None) -> int:
    """Steps per sample: the user's, else the encoding's default."""
    return int(steps) if steps is not None else int(enc.get("steps", 64))


def check_real_input(enc: dict[str, Any], x: np.ndarray, size: int) -> np.ndarray:
    """The real-valued input array reshaped to (samples, [items,] size)."""
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise RunError(f"input '{enc['input']}' must be numeric, got dtype {a.dtype}")
    items = enc.get("items")
    want = (a.shape[0], int(items), size) if items else (a.shape[0], size)
    if a.ndim < 1 or a.size != int(np.prod(want)):
        shape = f"(samples, {items}, {size})" if items else f"(samples, {size})"
        raise RunError(f"input '{enc['input']}' must hold real values shaped {shape} (one row per sample), "
                       f"got {a.shape}")
    a = a.astype(np.float64).reshape(want)
    if not np.all(np.isfinite(a)):
        raise RunError(f"input '{enc['input']}' holds NaN or infinite values")
    return a


def encode_sample(enc: dict[str, Any], x: np.ndarray, steps: int, payload_scale: float | None) -> np.ndarray:
    """One sample's port input (steps, n): spikes (0/1) for ``rate``, integer payloads for ``graded``."""
    items = enc.get("items")
    seq = x.reshape(int(items), -1) if items else x.reshape(1, -1)
    per = int(enc.get("item_steps", steps)) if items else steps
    scale = float(enc.get("scale", 1.0)) or 1.0
    n = seq.shape[1]
    if enc["kind"] == "rate":
        out = np.zeros((steps, n), dtype=np.uint8)
        r = np.clip(seq / scale, 0.0, 1.0)
        t = np.arange(per + 1)[:, None]
        for k in range(seq.shape[0]):
            counts = np.floor(t * r[k][None, :] + 0.5)
            start = k * per
            if start >= steps:
                break
            block = np.diff(counts, axis=0) > 0
            out[start:start + per] = block[:steps - start]
        return out
    if enc["kind"] == "graded":
        if payload_scale is None:
            raise RunError(f"the binary has no payload scale for graded input '{enc['input']}'")
        q = np.round(seq / scale * float(payload_scale)).astype(np.int64)
        out = np.zeros((steps, n), dtype=np.int64)
        prev = np.zeros(n, dtype=np.int64)
        for k in range(seq.shape[0]):
            if k * per >= steps:
                break
            out[k * per] = q[k] - prev
            prev = q[k]
        return out
    raise RunError(f"unknown input encoding '{enc['kind']}' in the binary")


def readout_values(readout: dict[str, Any], spikes: np.ndarray | None, v: np.ndarray) -> np.ndarray:
    """Per-sample output values (samples, n) in the imported network's output units, from the
    output's spikes (samples, steps, n) and its v probe (samples, steps, n).

    ``value``: v / scale is the normalised activation. ``charge``: spikes x spike + (v - zero) /
    quantum is the input integrated since the start in activation units (``spike``: what one
    output spike took away, 1 where the threshold span is the activation unit; ``zero``: the
    register value the neuron started from, 0 where the mapping's units put it there); the
    input arrives from step 1, so divided by steps - 1 it is the mean normalised activation.
    Either times ``unit`` (the layer's scale) is in the model's units."""
    last = v[:, -1, :].astype(np.float64)
    unit = float(readout.get("unit", 1.0))
    if readout["kind"] == "value":
        return last / float(readout.get("scale", 1.0)) * unit
    if readout["kind"] == "charge":
        counts = spikes.sum(axis=1).astype(np.float64) if spikes is not None else 0.0
        steps = max(1, v.shape[1] - 1)
        charge = counts * float(readout.get("spike", 1.0)) + (last - float(readout.get("zero", 0.0))) / float(readout["quantum"])
        return charge / steps * unit
    raise RunError(f"unknown readout '{readout['kind']}' in the binary")
