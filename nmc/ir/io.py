"""Reading and writing IR files: ``NAME.nmcir`` text plus ``NAME.nmcir.npz`` for large arrays."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from ..atomic import atomic_files, write_text
from ..errors import IrError
from ..npz import read_npz
from .network import Network
from .parser import parse_ir, referenced_arrays_file
from .printer import IR_HEADER, print_ir


def _save_npz_deterministic(file: IO[bytes], arrays: dict[str, np.ndarray]) -> None:
    """np.savez stamps the current time into the zip; write a zip with fixed timestamps instead
    so that the same IR gives the same bytes."""
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def side_file(path: str | Path) -> Path:
    """Where :func:`write_ir` puts the arrays of the IR file ``path``: ``path + '.npz'``."""
    path = Path(path)
    return path.with_name(path.name + ".npz")


def write_ir(net: Network, path: str | Path) -> None:
    """Write ``net`` to ``path``; arrays too large to inline go to :func:`side_file`. Both files
    are written atomically, as one (:mod:`nmc.atomic`)."""
    text, arrays = print_ir(net)
    if not arrays:
        write_text(path, text)
        return
    side = side_file(path)
    text = text.replace(IR_HEADER + "\n", f"{IR_HEADER}\narrays {json.dumps(side.name)}\n", 1)
    with atomic_files([side, path]) as (side_out, text_out):
        _save_npz_deterministic(side_out, arrays)
        text_out.write(text.encode("utf-8"))


def _side_path(path: Path, text: str) -> Path | None:
    """The side file an IR text names (``arrays "NAME.npz"``), beside the IR file."""
    name = referenced_arrays_file(text)
    if name is None:
        return None
    if not name or Path(name).name != name:
        raise IrError(f"the array file must be named without a directory, got '{name}'", location=str(path))
    return path.parent / name


def arrays_file_of(path: str | Path) -> Path | None:
    """The side file the IR file ``path`` reads, if it is an IR file that names one (so that a
    command can refuse to write over it); problems are left for :func:`read_ir` to report."""
    path = Path(path)
    if path.suffix != ".nmcir":
        return None
    try:
        return _side_path(path, path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, IrError):
        return None


def read_ir(path: str | Path) -> Network:
    """Read the IR file ``path`` and the side file of arrays it names."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise IrError(f"cannot read IR file: {exc.strerror}", location=str(path)) from None
    except UnicodeDecodeError:
        raise IrError("IR file is not UTF-8 text", location=str(path)) from None
    side = _side_path(path, text)
    arrays = None
    if side is not None:
        arrays = read_npz(side, lambda m: IrError(m, location=str(path)), shown=str(side))
    return parse_ir(text, arrays, filename=str(path))
