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

TINY = ["--samples-scale", "0.02", "--warmup", "0", "--repeats", "2", "--no-gemm", "--no-imports"]


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
