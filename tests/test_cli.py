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


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "pybackprop", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("command", ["demo", "explain", "vanishing", "bench"])
def test_help(command):
    proc = _run(command, "--help")
    assert proc.returncode == 0 and "usage: pybackprop " + command in proc.stdout


def test_explain_subprocess():
    proc = _run("explain", "--x", "1,2,3", "--y", "0.5", "--lr", "0.1", "--seed", "4")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "One step of backpropagation: 3 -> 4 relu -> 4 sigmoid -> 1 identity; loss mse; SGD lr 0.1" in out
    assert "δ1 = dL/dz1" in out and "W1 new" in out


def test_explain_matches_the_library():
    import pybackprop as bp

    model = cli.textbook_model(seed=7, lr=0.2, momentum=0.0, dtype="float64")
    loss = model.explain([0.5, -1.0, 2.0], [0.25], lr=0.2).loss
    proc = _run("explain", "--x", "0.5,-1,2", "--y", "0.25", "--lr", "0.2", "--seed", "7")
    assert f"[{loss:.6f}]" in proc.stdout
    assert bp.__version__


@pytest.mark.parametrize("args, message", [
    (["explain", "--x", "1,2"], "--x: expected 3 numbers"),
    (["explain", "--x", "a,b,c"], "expected comma-separated numbers"),
    (["explain", "--lr", "-1"], "expected a number > 0"),
    (["vanishing", "--depth", "0"], "expected an integer >= 1"),
    (["bench", "--workloads", "nope"], "invalid choice"),
    (["nonsense"], "invalid choice"),
])
def test_bad_arguments_exit_nonzero(args, message):
    proc = _run(*args)
    assert proc.returncode != 0 and message in proc.stderr


def test_vanishing_subprocess(tmp_path):
    png = tmp_path / "flow.png"
    args = ["vanishing", "--depth", "10", "--epochs", "3"]
    plot = pytest.importorskip("matplotlib", reason="--plot needs matplotlib") and ["--plot", str(png)]
    proc = _run(*args, *plot)
    assert proc.returncode == 0, proc.stderr
    names = {"sigmoid", "tanh", "relu", "leaky_relu"}
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.split()[:1] in ([n] for n in names)}
    assert set(rows) == {"sigmoid", "tanh", "relu", "leaky_relu"}
    assert float(rows["sigmoid"][1]) < 1e-4 < float(rows["relu"][1])
    assert png.stat().st_size > 1000
