"""`pybackprop bench`: the workload table, and a `bench --quick`-style smoke run
on tiny sample counts (the hidden --samples-scale), checking the sanity figures
rather than any speed."""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil

import numpy as np
import pytest

from pybackprop import bench

TINY = ["--samples-scale", "0.02", "--warmup", "0", "--repeats", "2", "--no-gemm", "--no-imports", "--inference", "no"]


def parse(argv):
    parser = argparse.ArgumentParser(prog="pybackprop")
    sub = parser.add_subparsers(dest="command", required=True)
    bench.add_parser(sub)
    return parser.parse_args(["bench"] + argv)


def records(path):
    return json.loads(path.read_text())["records"]


def test_workload_table_matches_workloads_md():
    W = bench.WORKLOADS
    assert list(W) == ["seed-sgd", "seed-minibatch", "small", "mnist-like", "wide", "wide-f64"]
    assert (W["seed-sgd"].steps, W["seed-minibatch"].steps) == (10_000, 100)
    assert (W["small"].epoch_samples, W["small"].steps) == (49_984, 1_562)
    assert (W["mnist-like"].epoch_samples, W["mnist-like"].steps) == (19_968, 312)
    assert (W["wide"].steps, W["wide-f64"].dtype) == (16, "float64")
    assert round(W["mnist-like"].flops_per_epoch / 1e9, 1) == 32.2
    assert round(W["wide"].flops_per_epoch / 1e9, 1) == 206.2


def test_data_and_init_are_deterministic():
    wl = bench.WORKLOADS["mnist-like"].scaled(0.01)
    X1, y1 = bench.make_data(wl)
    X2, y2 = bench.make_data(wl)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert X1.dtype == np.float32 and y1.dtype == np.int64 and y1.max() < 10
    init = bench.init_weights(wl)
    assert [W.shape for W, _ in init] == [(784, 256), (256, 256), (256, 10)]
    bound = 1 / np.sqrt(784)
    assert np.abs(init[0][0]).max() <= bound and np.abs(init[0][1]).max() <= bound
    assert all(b is None for _, b in bench.init_weights(bench.WORKLOADS["seed-sgd"]))


def test_quick_smoke_sanity_figures(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = parse(["--quick", "--peers", "pybackprop", "reference", "--json", str(out)] + TINY)
    assert bench.run(args) == 0
    text = capsys.readouterr().out
    for name in bench.QUICK_WORKLOADS:
        assert f"== {name}:" in text
    recs = records(out)
    assert {(r["workload"], r["peer"]) for r in recs} == {(w, p) for w in bench.QUICK_WORKLOADS
                                                          for p in ("pybackprop", "reference")}
    for r in recs:
        assert r["status"] == "ok", r
        assert r["loss_after"] < r["loss_before"], r
        assert len(r["samples_per_s"]) == 2 and r["min"] <= r["median"] <= r["max"]
        assert r["peak_rss_mib"] is None or r["peak_rss_mib"] > 0
    for name in bench.QUICK_WORKLOADS:
        ours, ref = (next(r for r in recs if r["workload"] == name and r["peer"] == p)
                     for p in ("pybackprop", "reference"))
        # Same config, same weights, same data: the same full-data loss to ~6 digits.
        assert ours["loss_before"] == pytest.approx(ref["loss_before"], rel=2e-6)
        assert ours["loss_after"] == pytest.approx(ref["loss_after"], rel=1e-4)


def test_missing_peer_is_skipped_with_a_note(tmp_path, capsys):
    peers = {"pybackprop": bench.PEERS["pybackprop"],
             "ghost": bench.Peer("ghost", "ghost_lib:setup", requires=("ghost_lib_not_installed_xyz",),
                                 install="pip install ghost")}
    out = tmp_path / "bench.json"
    args = parse(["--workloads", "seed-minibatch", "--threads", "1", "--json", str(out)] + TINY)
    assert bench.run(args, peers=peers) == 0
    ghost = next(r for r in records(out) if r["peer"] == "ghost")
    assert ghost["status"] == "skipped"
    assert "ghost_lib_not_installed_xyz is not installed" in ghost["note"]
    assert "ghost_lib_not_installed_xyz is not installed" in capsys.readouterr().out
    # The reference only runs the small workloads: skipped with a note elsewhere.
    assert "not run on wide" in bench.PEERS["reference"].skip_reason(bench.WORKLOADS["wide"])


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torch_agrees_on_the_sanity_figures(tmp_path):
    out = tmp_path / "bench.json"
    args = parse(["--workloads", "small", "--threads", "1", "--peers", "pybackprop", "torch",
                  "--json", str(out)] + TINY)
    assert bench.run(args) == 0
    ours, torch_rec = (next(r for r in records(out) if r["peer"] == p) for p in ("pybackprop", "torch"))
    assert torch_rec["status"] == "ok", torch_rec
    assert ours["loss_before"] == pytest.approx(torch_rec["loss_before"], rel=2e-6)
    assert ours["loss_after"] == pytest.approx(torch_rec["loss_after"], rel=1e-4)


def test_fann_peer_trains_or_is_skipped_with_a_note(tmp_path):
    """benchmarks/python's FANN runner (seed-sgd only): with libfann-dev and a C compiler it
    builds, starts from the workload's weights (its loss before training within the bounded
    linear unit's difference of ours) and trains; without them it is skipped, naming the package."""
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "python")
    spec = importlib.util.spec_from_file_location("bench_run_script", os.path.join(here, "run.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "bench.json"
    args = parse(["--workloads", "seed-sgd", "--threads", "1", "--json", str(out)] + TINY)
    peers = {"pybackprop": script.PEERS["pybackprop"], "fann": script.PEERS["fann"]}
    assert bench.run(args, peers=peers, sys_path=[here]) == 0
    ours, fann = (next(r for r in records(out) if r["peer"] == p) for p in ("pybackprop", "fann"))
    if shutil.which("cc") and os.path.exists("/usr/include/floatfann.h"):  # Debian's libfann-dev is here
        assert fann["status"] == "ok", fann
    if fann["status"] == "ok":
        assert fann["loss_before"] == pytest.approx(ours["loss_before"], rel=2e-3)
        assert fann["loss_after"] < fann["loss_before"]
        assert "approximate: FANN has no ReLU" in fann["note"]
    else:
        assert fann["status"] == "skipped" and "libfann-dev" in fann["note"], fann
    assert "not run on small" in script.PEERS["fann"].skip_reason(bench.WORKLOADS["small"])


def test_rounds_pool_each_peers_epochs_in_turn(tmp_path, capsys):
    """--rounds 2: the peers of a workload run in turn twice, and each record pools the
    timed epochs of both rounds (4 = 2 rounds × 2 repeats), its median among them."""
    out = tmp_path / "bench.json"
    args = parse(["--workloads", "seed-minibatch", "--threads", "1", "--peers", "pybackprop", "reference",
                  "--rounds", "2", "--json", str(out)] + TINY)
    assert bench.run(args) == 0
    captured = capsys.readouterr()
    assert "in each of 2 rounds" in captured.out
    started = [line.split(" / ")[1] + line.split(",")[-1].rstrip(" .") for line in captured.err.splitlines()
               if line.startswith("[bench] seed-minibatch / ")]
    assert started == ["pybackprop round 1 of 2", "reference round 1 of 2",  # in turn, round by round
                       "pybackprop round 2 of 2", "reference round 2 of 2"], started
    data = json.loads(out.read_text())
    assert data["settings"]["rounds"] == 2
    for r in data["records"]:
        assert r["status"] == "ok" and r["rounds"] == 2, r
        assert len(r["epoch_s"]) == len(r["samples_per_s"]) == 4
        assert r["median"] == pytest.approx(float(np.median(r["samples_per_s"])))
        assert r["min"] == min(r["samples_per_s"]) and r["max"] == max(r["samples_per_s"])
        assert r["loss_after"] < r["loss_before"]


def test_merge_rounds_keeps_a_failed_round():
    ok = {"status": "ok", "epoch_s": [0.5, 0.25], "samples_per_s": [2.0, 4.0], "median": 3.0, "gflops": 1.0,
          "wall_s": 1.0, "peak_rss_mib": 10.0, "footprint_mib": 1.0, "loss_before": 1.0, "loss_after": 0.5}
    merged = bench.merge_rounds([ok, {**ok, "epoch_s": [1.0], "samples_per_s": [1.0], "peak_rss_mib": 12.0}])
    assert merged["samples_per_s"] == [2.0, 4.0, 1.0] and merged["median"] == 2.0
    assert merged["peak_rss_mib"] == 12.0 and merged["wall_s"] == 2.0
    assert merged["gflops"] == pytest.approx(1.0 * (0.5 + 0.25) / 2 / 0.5)  # GFLOP/epoch at the pooled median time
    failed = bench.merge_rounds([ok, {"status": "error", "note": "boom", "wall_s": 0.1}])
    assert failed["status"] == "error" and failed["note"] == "boom" and failed["rounds"] == 2
    with pytest.raises(ValueError, match="rounds"):
        bench.run_benchmarks(["seed-sgd"], [bench.PEERS["pybackprop"]], [1], 0, 1, rounds=0)


# ---------------------------------------------------------------------- the package's parts


def test_every_name_of_the_single_module_is_importable_from_the_package():
    """pybackprop.bench was one module; the package re-exports every public name it had."""
    names = ["WORKLOADS", "QUICK_WORKLOADS", "GEMM_BOUND", "Workload", "make_data", "init_weights",
             "memory_estimate", "PeerUnavailable", "Context", "Runner", "Peer", "PEERS", "pybackprop_model",
             "limit_blas_threads", "setup_pybackprop", "setup_reference", "setup_torch", "rss_mib",
             "peak_rss_mib", "reset_peak_rss", "thread_env", "IMPORT_PROBE", "measure_imports", "machine_info",
             "merge_rounds", "run_benchmarks", "format_report", "add_arguments", "add_parser", "run", "main"]
    missing = [n for n in names if not hasattr(bench, n)]
    assert not missing, missing
    assert bench.__all__ == ["WORKLOADS", "QUICK_WORKLOADS", "Workload", "Peer", "PEERS", "PeerUnavailable",
                             "Context", "make_data", "init_weights", "add_parser", "add_arguments", "run",
                             "run_benchmarks", "format_report"]
    assert bench.Context is bench.peers.Context and bench.Workload is bench.workloads.Workload


@pytest.mark.parametrize("name", list(bench.PEERS))
def test_each_peer_names_a_setup_that_exists(name):
    from pybackprop.bench.worker import load_runner

    assert callable(load_runner(bench.PEERS[name].runner))


@pytest.mark.parametrize("name", list(bench.WORKLOADS))
def test_a_workload_survives_the_json_trip_to_the_worker(name):
    from dataclasses import asdict

    wl = bench.WORKLOADS[name]
    assert bench.Workload.from_dict(json.loads(json.dumps(asdict(wl)))) == wl


def test_thread_env_sets_every_pool_and_xla_at_one_thread(monkeypatch):
    from pybackprop.bench.process import thread_env

    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true --xla_dump_to=/tmp/x")
    one, two = thread_env(1), thread_env(2)
    assert [one[v] for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")] == ["1"] * 3
    assert one["XLA_FLAGS"] == "--xla_dump_to=/tmp/x --xla_cpu_multi_thread_eigen=false"
    assert two["OMP_NUM_THREADS"] == "2" and two["XLA_FLAGS"] == "--xla_dump_to=/tmp/x"
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    assert "XLA_FLAGS" not in thread_env(2)


def test_child_env_searches_the_runners_then_the_callers_path_then_this_package(monkeypatch):
    from pybackprop.bench.process import PACKAGE_PARENT, child_env

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["/caller/a", "", "/caller/b"]))
    path = child_env(2, ["/runners"])["PYTHONPATH"].split(os.pathsep)
    assert path == ["/runners", "/caller/a", "/caller/b", PACKAGE_PARENT]
    assert os.path.isfile(os.path.join(PACKAGE_PARENT, "pybackprop", "bench", "__init__.py"))


PROBE_PEER = '''
import sys
from pybackprop.bench.peers import PeerUnavailable, Runner

def setup(ctx):
    loaded = sorted(m for m in sys.modules if m == "pybackprop" or m.startswith("pybackprop."))
    ctx.notes.append("loaded: " + " ".join(loaded))
    return Runner(epoch=lambda: None, loss=lambda: 1.0, version="probe 1")

def unavailable(ctx):
    raise PeerUnavailable("probe: not here")

def broken(ctx):
    raise RuntimeError("probe: boom")
'''


def test_a_peers_worker_holds_the_bench_package_but_not_pybackprop(tmp_path):
    """The worker loads pybackprop.bench from its files alone: a peer other than pybackprop
    does not get pybackprop's core (its OpenMP runtime, its pages) in its process."""
    from pybackprop.bench.worker import spawn

    (tmp_path / "probe_peer.py").write_text(PROBE_PEER)
    wl = bench.WORKLOADS["seed-minibatch"].scaled(0.02)
    from dataclasses import asdict

    task = {"kind": "fit", "runner": "probe_peer:setup", "workload": asdict(wl), "threads": 1, "warmup": 0,
            "repeats": 1, "preload": [], "sys_path": [str(tmp_path)]}
    rec = spawn(task, 1, timeout=120)
    assert rec["status"] == "ok", rec
    loaded = rec["note"].split("loaded: ")[1].split()
    assert "pybackprop.bench.peers" in loaded and "pybackprop.bench.worker" in loaded
    assert "pybackprop" not in loaded and "pybackprop._core" not in loaded, loaded
    assert rec["version"] == "probe 1" and rec["loss_before"] == rec["loss_after"] == 1.0
    assert rec["estimate_mib"] == pytest.approx(bench.memory_estimate(wl)["total"] / 2**20)


def test_a_worker_reports_an_unavailable_or_broken_peer(tmp_path):
    from pybackprop.bench.worker import spawn

    (tmp_path / "probe_peer.py").write_text(PROBE_PEER)
    from dataclasses import asdict

    task = {"kind": "fit", "workload": asdict(bench.WORKLOADS["seed-sgd"].scaled(0.01)), "threads": 1,
            "warmup": 0, "repeats": 1, "sys_path": [str(tmp_path)]}
    assert spawn({**task, "runner": "probe_peer:unavailable"}, 1, 120) == {"status": "skipped",
                                                                         "note": "probe: not here"}
    assert spawn({**task, "runner": "probe_peer:broken"}, 1, 120) == {"status": "error",
                                                                    "note": "RuntimeError: probe: boom"}
    assert spawn({"kind": "nope"}, 1, 120) == {"status": "error", "note": "ValueError: unknown task kind nope"}


def _record(peer, median, threads=1, **extra):
    return {"workload": "small", "peer": peer, "threads": threads, "status": "ok", "median": median,
            "min": median * 0.9, "max": median * 1.1, "gflops": median * 1e-6, "loss_before": 0.5,
            "loss_after": 0.25, **extra}


def test_report_rows_ratios_and_notes_without_running_anything():
    """format_report on a record made by hand: pybackprop first, the ratio against it,
    skipped and failed peers as notes under the table, a busy machine flagged."""
    result = {"machine": {"cpu": "TestCPU", "isa_flags": "avx2", "cpus_allowed": 2, "python": "3.x", "date": "d"},
              "settings": {"warmup": 1, "repeats": 3, "samples_scale": 1.0, "rounds": 1},
              "workloads": {"small": {"describe": "16 → 64 tanh → 64 tanh → 1 identity", "dtype": "float32"}},
              "records": [_record("torch", 1e5, version="torch 9", loadavg=[5.0, 1.0]),
                          _record("pybackprop", 4e5, version="pbp 1", compile_s=None),
                          {"workload": "small", "peer": "jax", "threads": 1, "status": "skipped",
                           "note": "jax: skipped, jax is not installed"},
                          {"workload": "small", "peer": "numpy", "threads": 1, "status": "error",
                           "note": "boom | bang"}]}
    text = bench.format_report(result).splitlines()
    assert text[0].startswith("machine: TestCPU (avx2), 2 CPUs allowed")
    assert text[2] == "versions: torch: torch 9; pybackprop: pbp 1"
    table = text[text.index("== small: 16 → 64 tanh → 64 tanh → 1 identity") + 1:]
    assert table[1].split()[:4] == ["pybackprop", "1", "400", "k"]
    assert table[2].split()[:2] == ["torch", "1"] and "4.00×" in table[2]
    assert "busy machine: load 5.0 on 2 CPUs" in table[2]
    assert table[3:5] == ["  jax: skipped, jax is not installed", "  [1 thr] boom | bang"]
    md = bench.format_report(result, markdown=True).splitlines()
    assert "### small: 16 → 64 tanh → 64 tanh → 1 identity" in md
    assert "- [1 thr] boom | bang" in md
    assert all(row.count("|") == 10 for row in md if row.startswith("| "))


def test_python_dash_m_pybackprop_bench_runs_the_same_command():
    import subprocess
    import sys

    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.abspath(bench.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    out = subprocess.run([sys.executable, "-m", "pybackprop.bench", "--help"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: pybackprop bench") and "--rounds" in out.stdout


def test_inference_rows_agree_with_numpy_and_name_missing_peers(capsys):
    ghost = bench.InferencePeer("ghost", "ghost_lib:setup", ("ghost_lib_not_installed_xyz",), "pip install ghost")
    peers = [bench.INFERENCE_PEERS["pybackprop"], ghost]
    if importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None:
        peers.append(bench.INFERENCE_PEERS["onnxruntime"])
    recs = bench.run_inference(["infer-mlp", "infer-mlp-f64"], peers, [1], batches=(1, 3), calls_scale=0.001)
    assert {(r["workload"], r["peer"]) for r in recs} == {(w, p.name) for w in ("infer-mlp", "infer-mlp-f64")
                                                          for p in peers}
    for r in recs:
        if r["peer"] == "ghost":
            assert r["status"] == "skipped" and "ghost_lib_not_installed_xyz is not installed" in r["note"]
            continue
        assert r["status"] == "ok", r
        assert set(r["us"]) == {"1", "3"} and all(t > 0 for t in r["us"].values())
        # the same weights and inputs: the float64 forward pass to the dtype's precision
        tol = 1e-5 if r["workload"] == "infer-mlp" else 1e-12
        assert max(r["max_rel_err"].values()) < tol, r
    table = bench.format_inference(recs)
    assert "infer-mlp-f64" in table and "ghost_lib_not_installed_xyz" in table


def test_inference_only_skips_training(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = parse(["--quick", "--peers", "pybackprop", "--inference", "only", "--json", str(out)])
    assert bench.run(args) == 0
    result = json.loads(out.read_text())
    assert result["records"] == [] and [r["peer"] for r in result["inference"]] == ["pybackprop"]
    assert "µs per predict call" in capsys.readouterr().out
