"""Locate the data directories (``grammar/``, ``targets/``) shipped with nmc.

In a wheel they sit inside the package at ``nmc/_data/<name>``; in a source checkout (and an
editable install) they are the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the directory holding the shipped data folder ``name`` ("grammar" or "targets")."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"nmc data folder '{name}' not found next to {_PACKAGE}")
