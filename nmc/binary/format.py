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
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_bytes
from ..errors import BinaryFormatError
from .checks import fail as inconsistent, need_dict, need_int, need_list, need_str
from .meta import check_meta

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
    source: str = field(default="", compare=False)  # the file it was read from, for messages


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
    if _HEAD.size + mlen > total:
        raise fail(f"manifest length {mlen} runs past the end of the file")
    try:
        manifest = need_dict(json.loads(data[_HEAD.size:_HEAD.size + mlen].decode(), parse_constant=_no_constant),
                             "the manifest")
        base = _HEAD.size + mlen + ((-(_HEAD.size + mlen)) % 8)
        sections = _sections(need_list(manifest.get("sections", []), "the manifest's 'sections'"), data, base)
        target = need_str(manifest.get("target"), "the manifest's 'target'")
        meta = need_dict(manifest.get("meta", {}), "the manifest's 'meta'")
        target_config = need_dict(manifest.get("target_config", {}), "the manifest's 'target_config'")
        check_meta(meta, sections)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise fail(f"malformed manifest: {exc}") from None
    except BinaryFormatError as exc:
        raise fail(exc.message) from None
    return Binary(target=target, meta=meta, sections=sections, target_config=target_config, format_version=version,
                  source=source)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a binary may hold")


def _sections(entries: list[Any], data: bytes, base: int) -> dict[str, np.ndarray]:
    """The section table checked entry by entry: known dtype, a shape of non-negative integers
    that matches nbytes, an aligned offset inside the file, no two sections sharing a name or a
    byte. Returns read-only views into ``data``."""
    sections: dict[str, np.ndarray] = {}
    spans: list[tuple[int, int, str]] = []
    for i, e in enumerate(entries):
        e = need_dict(e, f"section entry {i}")
        name = need_str(e.get("name"), f"section entry {i}'s name")
        what = f"section '{name}'"
        if name in sections:
            raise inconsistent(f"{what} is listed twice")
        dt = e.get("dtype")
        if dt not in _ALLOWED_DTYPES:
            raise inconsistent(f"{what} has unsupported dtype {dt!r}")
        shape = tuple(need_int(d, f"{what}'s shape", lo=0) for d in need_list(e.get("shape"), f"{what}'s shape"))
        offset = need_int(e.get("offset"), f"{what}'s offset", lo=0)
        nbytes = need_int(e.get("nbytes"), f"{what}'s nbytes", lo=0)
        count = math.prod(shape)
        if count * np.dtype(dt).itemsize != nbytes:
            raise inconsistent(f"{what}: shape {list(shape)} of {dt} needs {count * np.dtype(dt).itemsize} bytes, "
                       f"the table says {nbytes}")
        if offset % 8:
            raise inconsistent(f"{what} is not at an 8-byte aligned offset ({offset})")
        if base + offset + nbytes > len(data):
            raise inconsistent(f"{what} does not fit the file")
        spans.append((offset, offset + nbytes, name))
        sections[name] = np.frombuffer(data, dtype=dt, count=count, offset=base + offset).reshape(shape)
    spans.sort()
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        if start < end:
            raise inconsistent(f"sections '{a}' and '{b}' overlap")
    return sections


def write_binary(b: Binary, path: str | Path) -> bytes:
    """Encode ``b`` and write it to ``path`` atomically (:mod:`nmc.atomic`); returns the bytes."""
    data = encode_binary(b)
    write_bytes(path, data)
    return data


def read_binary(path: str | Path) -> Binary:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BinaryFormatError(f"cannot read binary: {exc.strerror}", location=str(path)) from None
    return decode_binary(data, source=str(path))
