"""The package is typed: mypy passes on it and on a small typed user script."""
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pybackprop

pytest.importorskip("mypy")

USER_SCRIPT = textwrap.dedent('''
    import numpy as np
    import pybackprop as bp

    model: bp.Sequential = bp.Sequential([bp.Dense(4, activation="relu"), bp.Dropout(keep_prob=0.8),
                                          bp.Dense(1)], input_dim=3, seed=0)
    model.compile(loss="mse", optimizer=bp.Adam(lr=0.01, clip_norm=1.0))
    hist: bp.History = model.fit(np.ones((8, 3)), np.ones(8), epochs=2, verbose=0)
    losses: list = hist.history["loss"]
    y: np.ndarray = model.predict(np.ones((2, 3)))
    loss: float = model.evaluate(np.ones((2, 3)), np.ones(2))
    report = bp.gradient_check(model, np.ones((2, 3)), np.ones(2))
    worst: float = report["max_rel_error"]
    n: int = bp.get_num_threads()
''')


def run_mypy(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--ignore-missing-imports", *args],
                          capture_output=True, text=True, timeout=600, cwd=cwd)


def test_mypy_on_the_package(tmp_path):
    # A copy outside site-packages (mypy will not check a path inside it); the compiled
    # module is left out, its stub _core.pyi describes it.
    package = Path(pybackprop.__file__).parent
    copy = tmp_path / "pybackprop"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    proc = run_mypy(str(copy), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_on_a_user_script(tmp_path):
    script = tmp_path / "user.py"
    script.write_text(USER_SCRIPT)
    proc = run_mypy(str(script))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_py_typed_and_stubs_ship():
    package = Path(pybackprop.__file__).parent
    assert (package / "py.typed").exists() and (package / "_core.pyi").exists()


def test_core_stub_matches_the_compiled_module():
    """mypy's stubtest finds nothing off in _core.pyi but pybind11's metaclass (the stubs
    cannot name pybind11_type); read-only attributes are properties, EpochResult has no
    constructor."""
    proc = subprocess.run([sys.executable, "-m", "mypy.stubtest", "--concise", "pybackprop._core"],
                          capture_output=True, text=True, timeout=600)
    errors = [line for line in proc.stdout.splitlines() if line.strip() and "metaclass differs" not in line]
    assert "_core" in proc.stdout or proc.returncode == 0, proc.stdout + proc.stderr
    assert not errors, proc.stdout + proc.stderr
