"""The layout's dependency direction, checked from the source text.

Each section reads one language's imports and fails, naming the file, the line
and both rooms, when a lower room reaches a higher one.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- C++
# src/cpp, lowest first; a folder may include its own rank or lower ones only.
# common/ includes the standard library and common/ alone; kernels/ (with
# microkernels/) includes nothing of the math; the math's four folders sit side
# by side (losses/ and layers/ use activations/).
CPP = ROOT / "src" / "cpp"
CPP_RANK: Dict[str, int] = {
    "common": 0,
    "kernels": 1,
    "activations": 2,
    "losses": 2,
    "layers": 2,
    "optimizers": 2,
    "network": 3,
    "training": 4,
    "bindings": 5,
}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def cpp_files() -> List[Path]:
    return sorted(p for p in CPP.rglob("*") if p.suffix in {".hpp", ".cpp", ".h", ".cc"})


def room(path: str) -> str:
    return path.split("/", 1)[0]


def cpp_includes() -> List[Tuple[str, int, str]]:
    """(file relative to src/cpp, line number, included path) for every quoted include."""
    found = []
    for f in cpp_files():
        rel = f.relative_to(CPP).as_posix()
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            m = INCLUDE.match(line)
            if m:
                found.append((rel, n, m.group(1)))
    return found


def test_cpp_every_folder_has_a_rank() -> None:
    folders = sorted({room(f.relative_to(CPP).as_posix()) for f in cpp_files()})
    assert folders, "no C++ sources found under src/cpp"
    unranked = [d for d in folders if d not in CPP_RANK]
    assert not unranked, f"src/cpp folders without a place in the layout (add them to CPP_RANK): {unranked}"


def test_cpp_includes_point_down() -> None:
    bad = []
    for rel, n, inc in cpp_includes():
        src, dst = room(rel), room(inc)
        if dst not in CPP_RANK:
            bad.append(f"{rel}:{n}: includes {inc!r}, which is not under a ranked src/cpp folder")
        elif src in CPP_RANK and CPP_RANK[dst] > CPP_RANK[src]:
            bad.append(f"{rel}:{n}: {src}/ (rank {CPP_RANK[src]}) includes {inc} ({dst}/, rank {CPP_RANK[dst]})")
    assert not bad, "lower C++ rooms include higher ones:\n" + "\n".join(bad)


def test_cpp_common_includes_only_common() -> None:
    bad = [f"{rel}:{n}: {inc}" for rel, n, inc in cpp_includes() if room(rel) == "common" and room(inc) != "common"]
    assert not bad, "common/ includes more than the standard library and common/:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "rel, inc, expected",
    [("kernels/x.cpp", "activations/activations.hpp", False), ("layers/x.hpp", "kernels/gemm.hpp", True)],
)
def test_cpp_rank_rule(rel: str, inc: str, expected: bool) -> None:
    """The rule itself: math may include kernels, kernels may not include math."""
    assert (CPP_RANK[room(inc)] <= CPP_RANK[room(rel)]) is expected


# --------------------------------------------------------------------------- ARCHITECTURE.md
# The page stays true: every source file of 80 lines or more is named on it (a package's
# __init__.py with its folder, e.g. `sklearn/__init__.py`).
SOURCE_ROOTS = ("src", "benchmarks", "tools", "examples", "tests")
SOURCE_SUFFIXES = {".py", ".cpp", ".hpp", ".h", ".cc", ".sh"}


def test_architecture_names_every_source_file_of_80_lines() -> None:
    page = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = []
    for top in SOURCE_ROOTS:
        for f in sorted((ROOT / top).rglob("*")):
            if f.suffix not in SOURCE_SUFFIXES or "build" in f.relative_to(ROOT).parts:
                continue
            if len(f.read_text(encoding="utf-8", errors="replace").splitlines()) < 80:
                continue
            name = f"{f.parent.name}/__init__.py" if f.name == "__init__.py" else f.name
            if name not in page:
                missing.append(f.relative_to(ROOT).as_posix())
    assert not missing, "source files of 80+ lines that ARCHITECTURE.md does not name:\n" + "\n".join(missing)
