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


def read_ir(path: str | Path) -> Network:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise IrError(f"cannot read IR file: {exc.strerror}", location=str(path)) from None
    arrays = None
    side = referenced_arrays_file(text)
    if side is not None:
        side_path = path.parent / side
        try:
            with np.load(side_path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except OSError as exc:
            raise IrError(f"cannot read array file '{side_path}': {exc}", location=str(path)) from None
    return parse_ir(text, arrays, filename=str(path))
