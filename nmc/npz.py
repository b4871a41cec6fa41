"""Reading the ``.npz`` files users give nmc: arrays for the DSL's ``npz(...)``, an IR's side
file, and run data (``--input``, ``--test``).

:func:`read_npz` accepts only a real ``.npz`` archive of numeric arrays with finite values, so no
caller has to think about a plain ``.npy`` file, a damaged zip, pickled Python objects, strings,
NaN or infinity. Each problem is reported through the caller's ``fail`` (which makes the error of
the caller's kind, located where the caller knows the file was named).
"""

from __future__ import annotations

import os
import zipfile
import zlib
from typing import Callable

import numpy as np

#: The first bytes of every zip archive (an .npz is one).
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP = b"PK\x05\x06"  # an archive without members starts with its end record
NUMERIC_KINDS = "biuf"


def _kind_name(a: np.ndarray) -> str:
    return "Python objects" if a.dtype.kind == "O" else f"dtype {a.dtype}"


def check_array(a: np.ndarray, what: str, fail: Callable[[str], Exception]) -> np.ndarray:
    """``a`` if it is numeric with finite values; else ``fail`` naming ``what``."""
    if a.dtype.kind not in NUMERIC_KINDS:
        raise fail(f"{what} is not numeric ({_kind_name(a)})")
    if a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
        bad = int(np.count_nonzero(~np.isfinite(a)))
        raise fail(f"{what} holds {bad} NaN or infinite value{'s' if bad > 1 else ''}")
    return a


def read_npz(path: str | os.PathLike[str], fail: Callable[[str], Exception], shown: str | None = None) -> dict[str, np.ndarray]:
    """All arrays of the archive ``path`` by name, checked with :func:`check_array`. ``shown`` is
    the file as the user named it (default: ``path``)."""
    shown = str(path) if shown is None else shown
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except IsADirectoryError:
        raise fail(f"'{shown}' is a directory, not an .npz archive") from None
    except OSError as exc:
        raise fail(f"cannot read npz file '{path}': {exc.strerror or exc}") from None
    if head not in (_ZIP_MAGIC, _EMPTY_ZIP):
        if head == b"\x93NUM":
            raise fail(f"'{shown}' is a single .npy array, not an .npz archive of named arrays (numpy.savez)")
        raise fail(f"'{shown}' is not an .npz archive")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            for key in z.files:
                try:
                    arrays[key] = z[key]
                except ValueError as exc:
                    if "allow_pickle" in str(exc):
                        raise fail(f"array '{key}' in '{shown}' holds Python objects; only numeric arrays "
                                   "can be read") from None
                    raise fail(f"array '{key}' in '{shown}' cannot be read: {exc}") from None
    except (OSError, ValueError, EOFError, RuntimeError, NotImplementedError, zlib.error, zipfile.BadZipFile) as exc:
        # (RuntimeError: an encrypted member; NotImplementedError: an unknown compression method)
        raise fail(f"'{shown}' is a damaged .npz archive ({exc})") from None
    for key, a in arrays.items():
        check_array(a, f"array '{key}' in '{shown}'", fail)
    return arrays
