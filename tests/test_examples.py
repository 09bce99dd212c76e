"""Every example runs (with small settings) and prints what it promises."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name, *args):
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_textbook_walkthrough():
    out = run("textbook_walkthrough.py")
    assert "train_step took the same step" in out and "δ3 = dL/dz3" in out


def test_batch_vs_stochastic():
    out = run("batch_vs_stochastic.py", "--epochs", "2", "--samples", "1000")
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["1", "100", "1000"] and [r[1] for r in rows] == ["1000", "10", "1"]


def test_vanishing_gradients(tmp_path):
    pytest.importorskip("matplotlib")
    out = run("vanishing_gradients.py", "--epochs", "2", "--plot", str(tmp_path / "v.png"))
    assert "sigmoid" in out and (tmp_path / "v.png").exists()


def test_dropout_overfitting():
    out = run("dropout_overfitting.py", "--epochs", "3")
    for name in ("no dropout", "keep_prob 0.8", "keep_prob 1.0 -> 0.5", "early stop"):
        assert name in out


def test_readme_quickstart_runs_and_the_loss_falls():
    import re

    readme = (EXAMPLES.parent / "README.md").read_text()
    block = re.search(r"## Quickstart.*?```python\n(.*?)```", readme, re.S).group(1)
    proc = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    first, last = (float(v) for v in proc.stdout.split("\n")[0].split(" -> "))
    assert last < 0.1 * first
