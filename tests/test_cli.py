"""The command line: `pybackprop demo` trains the textbook network and the loss falls."""
import re
import subprocess
import sys

import pytest

from pybackprop import cli


def test_demo_loss_falls(capsys):
    assert cli.main(["demo", "--epochs", "10", "--samples", "500"]) == 0
    out = capsys.readouterr().out
    before = float(re.search(r"before training: train MSE ([0-9.]+)", out).group(1))
    after = float(re.search(r"after 10 epochs .*: train MSE ([0-9.]+)", out).group(1))
    assert after < 0.5 * before, out
    assert "3 inputs -> 4 ReLU -> 4 sigmoid -> 1 identity" in out


def test_python_dash_m_runs_demo():
    proc = subprocess.run([sys.executable, "-m", "pybackprop", "demo", "--epochs", "2", "--samples", "100"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "epoch    2/2" in proc.stdout


def test_demo_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--epochs", "0"])
    assert "expected an integer >= 1, got 0" in capsys.readouterr().err


def test_demo_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "loss.png"
    assert cli.main(["demo", "--epochs", "3", "--samples", "200", "--plot", str(png)]) == 0
    assert png.stat().st_size > 1000
