"""The documentation: the mkdocs site builds without warnings, the tutorial's code runs.

The site build needs the docs tools (``pip install mkdocs mkdocs-material
"mkdocstrings[python]"``) and is skipped without them; the tutorial's code only
needs pybackprop and NumPy.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIAL = DOCS / "tutorial.md"

FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _python_blocks(path: Path) -> list:
    return FENCE.findall(path.read_text(encoding="utf-8"))


def _package_dir() -> Path:
    import pybackprop

    return Path(pybackprop.__file__).resolve().parent


def test_tutorial_code_runs_and_prints_what_the_page_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ```python block of the tutorial, executed in order in one namespace.

    Where a block is followed by a ```text block, that is the output the page
    claims: the block's printed output must match it (trailing spaces aside).
    """
    monkeypatch.chdir(tmp_path)  # the files it writes (step.html) go here
    text = TUTORIAL.read_text(encoding="utf-8")
    blocks = FENCE.findall(text)
    assert len(blocks) >= 8, "the tutorial's python blocks were not found"
    outputs = {}
    for match in re.finditer(r"^```python[^\n]*\n(.*?)^```[ \t]*\n(\s*```text\n(.*?)^```[ \t]*$)?", text,
                             re.MULTILINE | re.DOTALL):
        if match.group(3) is not None:
            outputs[match.group(1)] = match.group(3)
    namespace: dict = {"__name__": "tutorial"}
    for i, block in enumerate(blocks):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(block, f"{TUTORIAL.name}[block {i}]", "exec"), namespace)  # noqa: S102
        if block in outputs:
            got = [line.rstrip() for line in buf.getvalue().rstrip("\n").splitlines()]
            want = [line.rstrip() for line in outputs[block].rstrip("\n").splitlines()]
            assert got == want, f"tutorial block {i}: printed output differs from the page\n" + "\n".join(
                f"got : {g}\nwant: {w}" for g, w in zip(got, want) if g != w)


def _runnable_blocks(page: Path) -> list:
    return [b for b in _python_blocks(page) if not b.lstrip().startswith("# docs: skip")]


@pytest.mark.parametrize("page", sorted(p.relative_to(DOCS).as_posix() for p in (DOCS / "guide").glob("*.md")
                                        if _runnable_blocks(p)))
def test_guide_code_runs(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ```python blocks of each user-guide page, in order (``# docs: skip`` opts a block out)."""
    blocks = _runnable_blocks(DOCS / page)
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict = {"__name__": "guide"}
    for i, block in enumerate(blocks):
        for optional in ("sklearn", "onnx", "onnxruntime", "torch"):  # the extras a page's block uses
            if optional in block:
                pytest.importorskip(optional)
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(block, f"{page}[block {i}]", "exec"), namespace)  # noqa: S102


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    """``mkdocs build --strict``: no warning anywhere (docstrings included)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("mkdocstrings_handlers.python")
    pytest.importorskip("material")
    # mkdocstrings reads the sources from src/; the compiled core must be importable next to them
    # (an installed pybackprop is found on sys.path as well).
    env = dict(os.environ)
    paths = [str(ROOT / "src"), str(_package_dir().parent)]
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["NO_MKDOCS_2_WARNING"] = "1"
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "tutorial" / "index.html").is_file()
    assert (tmp_path / "site" / "api" / "model" / "index.html").is_file()
