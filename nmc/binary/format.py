"""The nmc binary container (``.nmcb``): a versioned, checksummed, self-contained file.

Layout (all integers little-endian)::

    0   4  magic  b"NMCB"
    4   2  format version (u16)
    6   2  reserved, 0
    8   8  total file length in bytes (u64)
    16 32  SHA-256 of bytes [48, end)
    48  4  manifest length M (u32)
    52  M  manifest: UTF-8 JSON, keys sorted (target, target_config, sections, meta, ...)
    ..     sections: raw little-endian arrays, each starting at an 8-byte aligned offset

Each manifest ``sections`` entry gives name, dtype (numpy ``str``), shape, offset and nbytes.
Nothing time- or machine-dependent is written, so the same input gives the same bytes.
The reader refuses anything damaged or foreign with a one-line reason. See docs/binary.md.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BinaryFormatError

MAGIC = b"NMCB"
FORMAT_VERSION = 1
_HEAD = struct.Struct("<4sHHQ32sI")  # magic, version, reserved, length, sha256, manifest length
_HASHED_FROM = 48  # the digest covers the manifest length, the manifest and the sections
_ALLOWED_DTYPES = {"|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f4", "<f8"}


@dataclass
class Binary:
    """An in-memory binary: the target it is for, metadata, and named arrays."""

    target: str
    meta: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, np.ndarray] = field(default_factory=dict)
    target_config: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


def _le(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and np.little_endian is False):
        a = a.astype(a.dtype.newbyteorder("<"))
    return a


def encode_binary(b: Binary) -> bytes:
    """Serialise ``b``; deterministic for equal inputs."""
    entries = []
    blobs = []
    offset = 0
    for name in sorted(b.sections):
        a = _le(np.asarray(b.sections[name]))
        if a.dtype.str not in _ALLOWED_DTYPES:
            raise TypeError(f"section '{name}': unsupported dtype {a.dtype}")
        pad = (-offset) % 8
        blobs.append(b"\0" * pad)
        offset += pad
        raw = a.tobytes()
        entries.append({"name": name, "dtype": a.dtype.str, "shape": list(a.shape), "offset": offset,
                        "nbytes": len(raw)})
        blobs.append(raw)
        offset += len(raw)
    manifest = {"target": b.target, "target_config": b.target_config, "meta": b.meta, "sections": entries}
    mbytes = json.dumps(manifest, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    pad = (-(_HEAD.size + len(mbytes))) % 8
    payload = mbytes + b"\0" * pad + b"".join(blobs)
    total = _HEAD.size + len(payload)
    digest = hashlib.sha256(struct.pack("<I", len(mbytes)) + payload).digest()
    head = _HEAD.pack(MAGIC, b.format_version, 0, total, digest, len(mbytes))
    return head + payload


def decode_binary(data: bytes, source: str = "<binary>") -> Binary:
    """Parse and validate a binary; raises :class:`BinaryFormatError` with the reason."""
    def fail(msg: str) -> BinaryFormatError:
        return BinaryFormatError(msg, location=source)

    if len(data) < _HEAD.size:
        if not data.startswith(MAGIC[: len(data)]) or len(data) < 4:
            raise fail("not an nmc binary (file too short for the header)")
        raise fail(f"truncated binary: {len(data)} bytes, shorter than the {_HEAD.size}-byte header")
    magic, version, _reserved, total, digest, mlen = _HEAD.unpack_from(data, 0)
    if magic != MAGIC:
        raise fail(f"not an nmc binary (bad magic {magic!r}, expected {MAGIC!r})")
    if version != FORMAT_VERSION:
        raise fail(f"unsupported binary format version {version} (this nmc reads version {FORMAT_VERSION})")
    if len(data) < total:
        raise fail(f"truncated binary: {len(data)} bytes, header says {total}")
    if len(data) > total:
        raise fail(f"binary has {len(data) - total} unexpected trailing bytes (header says {total})")
    if hashlib.sha256(data[_HASHED_FROM:]).digest() != digest:
        raise fail("checksum mismatch: the binary is damaged or was altered")
    try:
        manifest = json.loads(data[_HEAD.size:_HEAD.size + mlen].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise fail(f"malformed manifest: {exc}") from None
    base = _HEAD.size + mlen + ((-(_HEAD.size + mlen)) % 8)
    sections: dict[str, np.ndarray] = {}
    for e in manifest.get("sections", []):
        dt = e.get("dtype")
        if dt not in _ALLOWED_DTYPES:
            raise fail(f"section '{e.get('name')}' has unsupported dtype {dt!r}")
        start, nbytes = base + int(e["offset"]), int(e["nbytes"])
        shape = tuple(int(d) for d in e["shape"])
        if start + nbytes > len(data) or int(np.prod(shape)) * np.dtype(dt).itemsize != nbytes:
            raise fail(f"section '{e['name']}' does not fit the file")
        sections[e["name"]] = np.frombuffer(data, dtype=dt, count=int(np.prod(shape)), offset=start).reshape(shape)
    if "target" not in manifest:
        raise fail("manifest names no target")
    return Binary(target=manifest["target"], meta=manifest.get("meta", {}), sections=sections,
                  target_config=manifest.get("target_config", {}), format_version=version)


def write_binary(b: Binary, path: str | Path) -> bytes:
    data = encode_binary(b)
    Path(path).write_bytes(data)
    return data


def read_binary(path: str | Path) -> Binary:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BinaryFormatError(f"cannot read binary: {exc.strerror}", location=str(path)) from None
    return decode_binary(data, source=str(path))
