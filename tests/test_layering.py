"""The direction data flows in, checked on the sources: front end -> IR -> passes -> backend ->
binary -> interpreter. The interpreters import nothing from the stages before the binary, nothing
in nmc imports the golden models, and the benchmarks do not reach into tests/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NMC = REPO / "nmc"


def _imports(path: Path) -> list[str]:
    """Absolute module names ``path`` imports (relative imports resolved against its package)."""
    package = path.relative_to(REPO).with_suffix("").parts[:-1]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - node.level + 1])
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.append(module)
            names += [f"{module}.{a.name}" for a in node.names]
    return names


def test_the_interpreters_import_nothing_before_the_binary() -> None:
    earlier = ("nmc.frontend", "nmc.passes", "nmc.lowering", "nmc.backend", "nmc.conversion", "nmc.driver",
               "nmc.partitioning", "nmc.reference")
    found = [(p.relative_to(REPO), m) for p in sorted((NMC / "sim").rglob("*.py")) for m in _imports(p)
             if m.startswith(earlier)]
    assert found == []


def test_nothing_in_nmc_imports_the_golden_models() -> None:
    found = [(p.relative_to(REPO), m) for p in sorted(NMC.rglob("*.py"))
             if "reference" not in p.relative_to(NMC).parts for m in _imports(p) if m.startswith("nmc.reference")]
    assert found == []
    for p in (NMC / "reference").rglob("*.py"):   # and they stand alone: numpy only
        assert not [m for m in _imports(p) if m.startswith("nmc")], p


@pytest.mark.parametrize("path", sorted((REPO / "bench").glob("*.py")), ids=lambda p: p.name)
def test_benchmarks_do_not_reach_into_tests(path: Path) -> None:
    text = path.read_text()
    assert '"tests"' not in text and "'tests'" not in text, "a sys.path entry into tests/"
    test_modules = {p.stem for p in (REPO / "tests").glob("*.py")}
    assert not [m for m in _imports(path) if m.split(".")[0] in test_modules]
