"""Import a bench script (bench/ holds scripts, not package modules) from its path, for the bench
smoke tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"


def load_bench(script: str) -> ModuleType:
    """The module of ``bench/<script>.py``, registered as ``nmc_bench_<script>`` (dataclasses
    look their module up in ``sys.modules`` while a class is built)."""
    spec = importlib.util.spec_from_file_location(f"nmc_bench_{script}", BENCH_DIR / f"{script}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod
