"""Coverage-guided fuzzing of the model-file loader (tools/fuzz_load.py, atheris).

Runs the fuzzer for a bounded time (PYBACKPROP_FUZZ_SECONDS, default 30) in a
subprocess seeded with valid model files: no crash, no hang, no out-of-memory,
and only ValueError from the loader (plus the known bugs below, counted by the
tool). Skipped when atheris is not installed.

The strict xfail tests document loader bugs found by the fuzzer (issue 7); each
turns into a failure (XPASS) once fixed, so the exception list in the tool can
shrink.
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pybackprop as bp
from pybackprop import io as bpio

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "fuzz_load.py"


def test_fuzz_loader_bounded(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    seconds = int(os.environ.get("PYBACKPROP_FUZZ_SECONDS", "30"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(bp.__file__).parent.parent), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        # A fixed seed keeps CI reproducible (the time bound still varies the depth); longer,
        # exploratory runs: python tools/fuzz_load.py -max_total_time=600 (any seed).
        [sys.executable, str(TOOL), f"-max_total_time={seconds}", "-seed=1", "-print_final_stats=1", "-timeout=10",
         "-rss_limit_mb=4096", f"-artifact_prefix={tmp_path}/", f"-seed_dir={tmp_path / 'corpus'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=seconds + 120)
    out = proc.stdout + proc.stderr
    executions = re.findall(r"stat::number_of_executed_units:\s*(\d+)", out)
    summary = [line for line in out.splitlines() if line.startswith("fuzz_load:")]
    print(f"\nloader fuzzing for {seconds} s: {executions[-1] if executions else '?'} executions")
    print("\n".join(summary[-6:]))
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "oom-", "timeout-")))
    assert proc.returncode == 0 and not crashes, f"fuzzer found {crashes} (exit {proc.returncode}):\n{out[-4000:]}"
    assert executions and int(executions[-1]) > 100


# ---------------------------------------------------------------------- loader bugs found by the fuzzer
def _header_and_arrays() -> tuple:
    model = bp.Sequential([bp.Dense(4, activation="relu"), bp.Dense(1)], input_dim=3, seed=1)
    model.compile(loss="mse", optimizer=bp.SGD(lr=0.1))
    blob = bpio.model_to_bytes(model)
    import io
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    return json.loads(arrays.pop("header").tobytes().decode()), arrays


def _load_with(header_text: str, arrays: dict) -> None:
    import hashlib
    import io
    try:
        header = json.loads(header_text)
        if isinstance(header, dict) and isinstance(header.get("sha256"), dict):
            header["sha256"] = {k: hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
                                for k, a in arrays.items()}
            header_text = json.dumps(header)
    except (ValueError, RecursionError):
        pass
    buf = io.BytesIO()
    np.savez(buf, header=np.frombuffer(header_text.encode(), dtype=np.uint8), **arrays)
    bpio.model_from_bytes(buf.getvalue())


def _mutated(path: tuple, value: object) -> str:
    header, _ = _header_and_arrays()
    h = copy.deepcopy(header)
    target = h
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(h)


@pytest.mark.parametrize("case", ["inf_counter", "deep_json", "layers_dict", "layer_list", "sha256_float",
                                  "huge_units"])
def test_malformed_headers_raise_value_error(case: str) -> None:
    """Found by the fuzzer: each of these once escaped as another exception."""
    _, arrays = _header_and_arrays()
    text = {
        "inf_counter": lambda: _mutated(("counters", "epoch_counter"), float("inf")),
        "deep_json": lambda: '{"a": ' + "[" * 100000 + "]" * 100000 + "}",
        "layers_dict": lambda: _mutated(("config", "layers"), {"a": 1}),
        "layer_list": lambda: _mutated(("config", "layers", 0), [1]),
        "sha256_float": lambda: _mutated(("sha256",), 0.5),
        "huge_units": lambda: _mutated(("config", "layers", 0, "units"), 10 ** 12),
    }[case]()
    with pytest.raises(ValueError):
        _load_with(text, arrays if case != "sha256_float" else arrays)


def test_loader_checks_sizes_before_allocating() -> None:
    """Found by the fuzzer: a tiny file claiming a big layer once made the loader allocate it."""
    code = (
        "import json, resource, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import test_fuzz_load as t\n"
        "_, arrays = t._header_and_arrays()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    t._load_with(t._mutated(('config', 'layers', 0, 'units'), 10 ** 7), arrays)\n"
        "except ValueError:\n"
        "    pass\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(bp.__file__).parent.parent), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    grown_mb = int(out.stdout.strip().splitlines()[-1])
    # 10^7 units x 3 inputs: 120 MB per float32 arena, 4 arenas; a check first would need ~0
    assert grown_mb < 50, f"loading a 4 KB file grew the process by {grown_mb} MB"


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).parent / "data" / "loader_crashes").iterdir()))
def test_inputs_the_fuzzer_once_crashed_on(name: str) -> None:
    """Regression corpus: files on which the loader once raised something other than ValueError."""
    blob = (Path(__file__).parent / "data" / "loader_crashes" / name).read_bytes()
    with pytest.raises(ValueError, match="not a valid pybackprop model file"):
        bpio.model_from_bytes(blob)
