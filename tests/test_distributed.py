"""Data-parallel training over MPI (pybackprop.distributed), run under ``mpiexec -n 2``.

Each test writes a small script, launches it with ``mpiexec -n 2`` in a
subprocess and checks what the ranks saved: the weights equal a single-process
``fit`` on the same global batches (float64, to rounding), the ranks agree
bitwise, and a failing rank ends the job with a non-zero exit instead of a hang.
Skipped when mpi4py or mpiexec is missing (``pip install "pybackprop[mpi]"``).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import pybackprop as bp
from pybackprop.distributed import per_rank_batches, rank_shares

pytest.importorskip("mpi4py")
# the mpich wheel installs mpiexec next to the interpreter, which may not be on PATH
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=str(Path(sys.executable).parent))
if MPIEXEC is None:  # pragma: no cover - depends on the environment
    pytest.skip("mpiexec not found (pip install mpich)", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
SRC = Path(bp.__file__).resolve().parent.parent
#: float64 weights: N ranks sum the batch gradient in a different order than one process, so they
#: agree to rounding (measured over 320 steps: max |diff| <= 4.4e-16, <= 6.3e-14 relative element-wise
#: where |w| > 1e-3; docs/distributed.md).
RTOL, ATOL = 1e-10, 1e-12
TIMEOUT = 60

#: the model and data of every test, defined once for the MPI scripts and for this process
MODEL_SRC = """
import numpy as np
import pybackprop as bp


def make_model(dropout=False, seed=3):
    layers = [bp.Dense(16, activation="tanh")]
    if dropout:
        layers.append(bp.Dropout(keep_prob=bp.schedules.Linear(0.9, 0.6, 40, unit="step")))
    layers += [bp.Dense(8, activation="relu", init="he_normal"), bp.Dense(1)]
    model = bp.Sequential(layers, input_dim=5, dtype="float64", seed=seed)
    model.compile(loss="mse", optimizer=bp.SGD(lr=bp.schedules.Exponential(0.05, 0.98, unit="step"),
                                               momentum=0.9, clip_norm=2.0))
    return model


def make_data(n=203):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 5))
    return X, np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
"""
PREAMBLE = MODEL_SRC + """
import sys
from mpi4py import MPI
from pybackprop.distributed import DistributedTrainer, DistributedError, fit_distributed

comm = MPI.COMM_WORLD
out = sys.argv[1]
"""

SINGLE = {"epochs": 4, "batch_size": 32, "shuffle": True}


def mpirun(tmp_path: Path, body: str, n: int = 2, timeout: float = TIMEOUT,
           save: bool = False) -> subprocess.CompletedProcess:
    """Run PREAMBLE + body (+ SAVE: each rank writes w<rank>.npz) on n ranks."""
    script = tmp_path / "script.py"
    script.write_text(PREAMBLE + textwrap.dedent(body) + (SAVE if save else ""))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    cmd = [MPIEXEC, "-n", str(n), sys.executable, str(script), str(tmp_path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)


def in_process(extra: str = "") -> dict:
    """MODEL_SRC (and ``extra``, more of the scripts' definitions) run in this process: its names."""
    ns: dict = {}
    exec(MODEL_SRC + extra, ns)
    return ns


def single_process(dropout: bool = False) -> bp.Sequential:
    """The same model trained by plain ``fit`` in this process."""
    ns = in_process()
    model = ns["make_model"](dropout)
    X, y = ns["make_data"]()
    model.fit(X, y, verbose=0, **SINGLE)
    return model


def load_ranks(tmp_path: Path, name: str, n: int = 2):
    return [np.load(tmp_path / f"{name}{r}.npz") for r in range(n)]


def check_same(ranks, model: bp.Sequential) -> None:
    want = model.get_weights()
    for r, saved in enumerate(ranks):
        got = [saved[f"w{i}"] for i in range(len(want))]
        for i, (g, w) in enumerate(zip(got, want)):
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL, err_msg=f"rank {r}, weights[{i}]")
    for i in range(len(want)):  # all ranks agree bitwise
        assert all(np.array_equal(ranks[0][f"w{i}"], other[f"w{i}"]) for other in ranks[1:]), i


SAVE = """
np.savez(f"{out}/w{comm.rank}.npz", **{f"w{i}": w for i, w in enumerate(model.get_weights())},
         loss=np.array(history.history["loss"] if history is not None else []),
         update_ratio=np.array(history.history["update_ratio"] if history is not None else []),
         counters=np.array([model._net.epoch_counter, model._net.step_counter]))
"""


@pytest.mark.parametrize("dropout,sharded", [(False, False), (True, True)])
def test_two_ranks_match_single_process(tmp_path, dropout, sharded):
    body = f"""
    model = make_model({dropout})
    if comm.rank == 1:  # rank 0's initial weights must win
        model.set_weights([w + 1.0 for w in model.get_weights()])
    X, y = make_data()
    if {sharded}:  # uneven shards: rank 0 holds the first 150 rows, rank 1 the rest
        X, y = (X[:150], y[:150]) if comm.rank == 0 else (X[150:], y[150:])
    history = fit_distributed(model, X, y, verbose=0, sharded={sharded}, **{SINGLE!r})
    assert (history is not None) == (comm.rank == 0)
    """
    proc = mpirun(tmp_path, body, save=True)
    assert proc.returncode == 0, proc.stderr
    ranks = load_ranks(tmp_path, "w")
    model = single_process(dropout)
    check_same(ranks, model)
    np.testing.assert_allclose(ranks[0]["loss"], model.history.history["loss"], rtol=1e-12)
    # the last step's update-to-weight ratio comes from the core in both (fp addition order aside)
    np.testing.assert_allclose(ranks[0]["update_ratio"], model.history.history["update_ratio"], rtol=1e-9)
    for saved in ranks:
        assert saved["counters"].tolist() == [model._net.epoch_counter, model._net.step_counter]


def test_rank0_prints_and_checkpoints_only(tmp_path):
    body = """
    model = make_model()
    X, y = make_data()
    ckpt = bp.ModelCheckpoint(f"{out}/ckpt-{{epoch}}-rank{comm.rank}.pbp", monitor="loss")
    stop = bp.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)  # stops after 2 epochs everywhere
    history = fit_distributed(model, X, y, epochs=5, batch_size=50, verbose=1, callbacks=[ckpt, stop])
    """
    proc = mpirun(tmp_path, body, save=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Epoch 1/5") == 1 and proc.stdout.count("Epoch 2/5") == 1, proc.stdout
    assert "Epoch 3/5" not in proc.stdout
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == ["ckpt-0-rank0.pbp", "ckpt-1-rank0.pbp"]
    ranks = load_ranks(tmp_path, "w")
    assert [r["counters"][0] for r in ranks] == [2, 2] and len(ranks[0]["loss"]) == 2
    loaded = bp.load(tmp_path / "ckpt-1-rank0.pbp").get_weights()
    assert all(np.array_equal(a, ranks[1][f"w{i}"]) for i, a in enumerate(loaded))


@pytest.mark.parametrize("how", ["raise", "exit"])
def test_failing_rank_ends_the_job(tmp_path, how):
    """Rank 1 fails in the middle of training while rank 0 waits in the Allreduce; the job must end
    non-zero (a hang would raise TimeoutExpired): an exception makes rank 1 call MPI_Abort, a process
    that dies outright is detected by mpiexec, which kills the other ranks."""
    fail = 'raise RuntimeError("disk on fire")' if how == "raise" else "os._exit(3)"
    body = f"""
    import os

    class Boom(bp.Callback):
        def on_epoch_end(self, epoch, logs):
            if comm.rank == 1 and epoch == 1:
                {fail}

    model = make_model()
    X, y = make_data()
    fit_distributed(model, X, y, epochs=50, batch_size=8, verbose=0, callbacks=[Boom()])
    open(f"{{out}}/finished{{comm.rank}}", "w").close()
    """
    proc = mpirun(tmp_path, body, timeout=TIMEOUT)
    assert proc.returncode != 0
    if how == "raise":
        assert "rank 1 of 2 failed with RuntimeError: disk on fire" in proc.stderr
        assert "MPI_Abort" in proc.stderr
    assert not list(tmp_path.glob("finished*"))


def test_rank_specific_bad_input_raises_everywhere(tmp_path):
    """Invalid data on one rank is reported on every rank (collective check), no abort needed."""
    body = """
    model = make_model()
    X, y = make_data()
    if comm.rank == 1:
        X = X.copy(); X[3, 2] = np.nan
    try:
        fit_distributed(model, X, y, epochs=1, batch_size=8, verbose=0)
    except DistributedError as exc:
        print(f"rank {comm.rank} caught: {exc}")
    try:
        fit_distributed(model, make_data()[0], make_data()[1], epochs=1, batch_size=8 + comm.rank, verbose=0)
    except DistributedError as exc:
        print(f"rank {comm.rank} caught: {exc}")
    """
    proc = mpirun(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    for r in (0, 1):
        assert f"rank {r} caught: checking the arguments of fit failed on 1 of 2 ranks: rank 1: ValueError" \
            in proc.stdout, proc.stdout
        assert f"rank {r} caught: rank {r} and rank {1 - r} differ in batch_size" in proc.stdout, proc.stdout


def test_example_mpi_train(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(ROOT / "examples" / "mpi_train.py"),
                           "--epochs", "2", "--samples", "2000", "--width", "32", "--dtype", "float64",
                           "--checkpoint", str(tmp_path / "m.pbp"), "--check"],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Epoch 2/2") == 1 and "allreduce share of the step" in proc.stdout
    diff = float(proc.stdout.split("largest weight difference")[1].split()[0])
    assert diff < 1e-12 and (tmp_path / "m.pbp").exists()


def test_divergence_is_raised_on_every_rank(tmp_path):
    body = """
    model = bp.Sequential([bp.Dense(8, activation="relu"), bp.Dense(1)], input_dim=5, dtype="float64", seed=0)
    model.compile(loss="mse", optimizer=bp.SGD(lr=1e6))
    X, y = make_data()
    try:
        fit_distributed(model, X, 1e3 * y, epochs=5, batch_size=16, verbose=0)
    except bp.DivergenceError as exc:
        print(f"rank {comm.rank} diverged at epoch {exc.epoch} step {exc.step}")
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    stop = bp.TerminateOnNaN()
    history = fit_distributed(model, X, 1e3 * y, epochs=5, batch_size=16, verbose=0, callbacks=[stop])
    print(f"rank {comm.rank} terminated={stop.terminated}")
    """
    proc = mpirun(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    # the ranks' lines may interleave on the shared stdout
    diverged = sorted(re.findall(r"rank (\d) diverged at (epoch \d+ step \d+)", proc.stdout))
    assert [r for r, _ in diverged] == ["0", "1"] and diverged[0][1] == diverged[1][1], proc.stdout
    assert "rank 0 terminated=True" in proc.stdout and "rank 1 terminated=True" in proc.stdout


def test_a_root_only_callback_taking_over_a_divergence_stops_every_rank(tmp_path):
    """A root_only callback runs on rank 0 only: its on_divergence answer must reach every rank
    (once rank 0 stopped while rank 1 raised DivergenceError, and the job hung)."""
    body = """
    class Rescue(bp.Callback):
        root_only = True

        def on_divergence(self, epoch, step, loss):
            return True

    model = bp.Sequential([bp.Dense(8, activation="relu"), bp.Dense(1)], input_dim=5, dtype="float64", seed=0)
    model.compile(loss="mse", optimizer=bp.SGD(lr=1e6))
    X, y = make_data()
    try:
        fit_distributed(model, X, 1e3 * y, epochs=5, batch_size=16, verbose=0, callbacks=[Rescue()])
        print(f"rank {comm.rank} stopped={model.stop_training}")
    except bp.DivergenceError:
        print(f"rank {comm.rank} raised")
    """
    try:
        proc = mpirun(tmp_path, body, timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover - the bug this test pins
        pytest.fail("the ranks did not agree on stopping at the divergence (the job hung)")
    assert proc.returncode == 0, proc.stderr
    assert "rank 0 stopped=True" in proc.stdout and "rank 1 stopped=True" in proc.stdout, proc.stdout


ADAMW_SRC = """
def make_adamw_model():
    model = make_model()
    sched = bp.schedules.Warmup(bp.schedules.Cosine(0.01, T_max=10, eta_min=1e-4, unit="step"), steps=4,
                                start_factor=0.1)
    model.compile(loss="mse", optimizer=bp.AdamW(lr=sched, weight_decay=0.05, amsgrad=True, clip_norm=2.0))
    return model
"""


def test_adamw_amsgrad_with_a_schedule_and_the_new_callbacks_on_two_ranks(tmp_path):
    """AdamW with amsgrad (its third state arena), a Warmup(Cosine) lr, ReduceLROnPlateau on the
    agreed logs (the same lr on every rank) and CSVLogger (rank 0's file only): the weights of
    one process."""
    body = textwrap.indent(ADAMW_SRC, "    ") + """
    model = make_adamw_model()
    X, y = make_data()
    stop = bp.EarlyStopping(monitor="loss", patience=1, min_delta=1e-9)
    history = fit_distributed(model, X, y, verbose=0, callbacks=[bp.CSVLogger(f"{out}/log-{comm.rank}.csv"), stop],
                              **{SINGLE!r})
    """.replace("{SINGLE!r}", repr(SINGLE))
    proc = mpirun(tmp_path, body, save=True)
    assert proc.returncode == 0, proc.stderr
    ns = in_process(ADAMW_SRC)
    model = ns["make_adamw_model"]()
    X, y = ns["make_data"]()
    model.fit(X, y, verbose=0, callbacks=[bp.EarlyStopping(monitor="loss", patience=1, min_delta=1e-9)], **SINGLE)
    check_same(load_ranks(tmp_path, "w"), model)
    assert sorted(p.name for p in tmp_path.glob("log-*.csv")) == ["log-0.csv"]
    assert len((tmp_path / "log-0.csv").read_text().splitlines()) == 1 + len(model.history.epoch)


def test_reduce_lr_on_plateau_reduces_alike_on_two_ranks(tmp_path):
    body = """
    model = make_model()
    model.compile(loss="mse", optimizer=bp.Adam(lr=0.01, amsgrad=True))
    X, y = make_data()
    plateau = bp.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0)
    history = fit_distributed(model, X, y, verbose=0, callbacks=[plateau], epochs=4, batch_size=32)
    assert model.optimizer.lr == 0.01 * 0.5 ** 3, model.optimizer.lr
    """
    proc = mpirun(tmp_path, body, save=True)
    assert proc.returncode == 0, proc.stderr
    ns = in_process()
    model = ns["make_model"]()
    model.compile(loss="mse", optimizer=bp.Adam(lr=0.01, amsgrad=True))
    X, y = ns["make_data"]()
    plateau = bp.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0)
    model.fit(X, y, verbose=0, callbacks=[plateau], epochs=4, batch_size=32)
    check_same(load_ranks(tmp_path, "w"), model)


def test_sample_weight_on_two_sharded_ranks_matches_single_process(tmp_path):
    """Each rank weights the rows it computes: the same weights as plain fit with sample_weight."""
    body = f"""
    model = make_model(False)
    X, y = make_data()
    w = np.random.default_rng(5).uniform(0.0, 2.0, size=X.shape[0])
    X, y, w = (X[:150], y[:150], w[:150]) if comm.rank == 0 else (X[150:], y[150:], w[150:])
    history = fit_distributed(model, X, y, verbose=0, sharded=True, sample_weight=w, **{SINGLE!r})
    """
    proc = mpirun(tmp_path, body, save=True)
    assert proc.returncode == 0, proc.stderr
    ns = in_process()
    model = ns["make_model"](False)
    X, y = ns["make_data"]()
    model.fit(X, y, verbose=0, sample_weight=np.random.default_rng(5).uniform(0.0, 2.0, size=X.shape[0]), **SINGLE)
    check_same(load_ranks(tmp_path, "w"), model)
    np.testing.assert_allclose(load_ranks(tmp_path, "w")[0]["loss"], model.history.history["loss"], rtol=1e-12)


@pytest.mark.parametrize("sharded", [False, True])
def test_metrics_on_two_ranks_match_single_process(tmp_path, sharded):
    """Each rank's rows of the epoch's outputs are joined by one all-reduce: the root's metrics are the
    single process's (to the rounding of the reduced gradients)."""
    body = f"""
    model = make_model(False)
    model.compile(loss="mse", optimizer=model.optimizer, metrics=["mae", "r2"])
    X, y = make_data()
    if {sharded}:
        X, y = (X[:150], y[:150]) if comm.rank == 0 else (X[150:], y[150:])
    history = fit_distributed(model, X, y, verbose=0, sharded={sharded}, **{SINGLE!r})
    if comm.rank == 0:
        np.savez(f"{{out}}/metrics.npz", mae=history.history["mae"], r2=history.history["r2"])
    """
    proc = mpirun(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    ns = in_process()
    model = ns["make_model"](False)
    model.compile(loss="mse", optimizer=model.optimizer, metrics=["mae", "r2"])
    X, y = ns["make_data"]()
    h = model.fit(X, y, verbose=0, **SINGLE)
    got = np.load(tmp_path / "metrics.npz")
    np.testing.assert_allclose(got["mae"], h.history["mae"], rtol=1e-10)
    np.testing.assert_allclose(got["r2"], h.history["r2"], rtol=1e-10)


NORM_SRC = """
def make_norm_model(seed=3):
    layers = [bp.BatchNorm(), bp.Dense(12, activation="tanh"), bp.BatchNorm(momentum=0.2), bp.Dropout(0.8),
              bp.Dense(8, activation="relu"), bp.LayerNorm(), bp.Dense(6, activation="tanh"),
              bp.BatchNorm(affine=False), bp.Dense(1)]
    model = bp.Sequential(layers, input_dim=5, dtype="float64", seed=seed)
    model.compile(loss="mse", optimizer=bp.SGD(lr=0.05, momentum=0.9))
    return model
"""


@pytest.mark.parametrize("sharded", [False, True])
def test_batchnorm_statistics_are_the_global_batch(tmp_path, sharded):
    """BatchNorm over 2 ranks: the global batch's statistics, gradients and running estimates, as one process.

    Sharded, rank 1 holds 3 rows only, so most batches have no row of it: it takes part in the
    reductions with zeros."""
    body = NORM_SRC + textwrap.dedent(f"""
    model = make_norm_model()
    X, y = make_data()
    if {sharded}:
        X, y = (X[:200], y[:200]) if comm.rank == 0 else (X[200:], y[200:])
    history = fit_distributed(model, X, y, verbose=0, sharded={sharded}, epochs=3, batch_size=40, shuffle=True)
    """)
    proc = mpirun(tmp_path, body, save=True)
    assert proc.returncode == 0, proc.stderr
    ranks = load_ranks(tmp_path, "w")
    ns = in_process(NORM_SRC)
    model = ns["make_norm_model"]()
    X, y = ns["make_data"]()
    model.fit(X, y, verbose=0, epochs=3, batch_size=40, shuffle=True)
    check_same(ranks, model)  # running means and variances among the weights
    np.testing.assert_allclose(ranks[0]["loss"], model.history.history["loss"], rtol=1e-12)


def test_batchnorm_batch_of_one_refused_on_every_rank(tmp_path):
    body = NORM_SRC + textwrap.dedent("""
    model = make_norm_model()
    X, y = make_data(n=81)
    try:
        fit_distributed(model, X, y, verbose=0, batch_size=40)
    except ValueError as e:
        assert "BatchNorm layer 0" in str(e), e
        open(f"{out}/refused{comm.rank}", "w").close()
    """)
    proc = mpirun(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "refused0").exists() and (tmp_path / "refused1").exists()


@pytest.mark.parametrize("shuffle", [False, True])
def test_per_rank_layout_matches_its_batches_in_one_process(tmp_path, shuffle):
    """layout="per_rank": each step joins every rank's next local batch (uneven shards: rank 1 runs
    out first); the same batches trained one by one in one process give the same weights."""
    sizes = [130, 73]
    body = f"""
    model = make_model(True)
    X, y = make_data()
    X, y = (X[:{sizes[0]}], y[:{sizes[0]}]) if comm.rank == 0 else (X[{sizes[0]}:], y[{sizes[0]}:])
    history = fit_distributed(model, X, y, verbose=0, sharded=True, layout="per_rank", epochs=3,
                              batch_size=32, shuffle={shuffle})
    if comm.rank == 0:
        assert history.params["layout"] == "per_rank" and history.params["steps"] == 9
    """
    proc = mpirun(tmp_path, body, save=True)
    assert proc.returncode == 0, proc.stderr
    ns = in_process()
    model = ns["make_model"](True)
    X, y = ns["make_data"]()
    for epoch in range(3):
        batches = per_rank_batches(sizes, 32, model.seed, epoch, shuffle)
        # shares 16 + 16: rank 1's 73 rows last 5 steps (the 5th has 9), rank 0's 130 rows 9 (the 9th has 2)
        assert [b.size for b in batches] == [32, 32, 32, 32, 25, 16, 16, 16, 2]
        for b in batches:
            model.train_step(X[b], y[b])
    check_same(load_ranks(tmp_path, "w"), model)


def test_per_rank_batches_keep_every_rank_busy():
    sizes, B = [400, 400], 64
    for epoch in range(3):
        batches = per_rank_batches(sizes, B, seed=7, epoch=epoch, shuffle=True)
        rows = np.concatenate(batches)
        assert sorted(rows.tolist()) == list(range(800))  # every row once
        for b in batches:  # each step: each rank's share, from its own shard
            assert (b < 400).sum() == rank_shares(B, 2)[0] or b.size < B
            assert (b >= 400).sum() > 0 and (b < 400).sum() > 0
    one, two = (per_rank_batches(sizes, B, seed=7, epoch=e, shuffle=True) for e in (0, 1))
    assert not np.array_equal(np.concatenate(one), np.concatenate(two))  # a new shuffle each epoch
    first = np.concatenate(one)
    assert not np.array_equal(np.sort(first[first < 400])[:10], first[first < 400][:10])  # shuffled
    assert not np.array_equal(first[first < 400], first[first >= 400] - 400)  # a stream per rank


def test_per_rank_layout_needs_sharded_data_and_a_row_per_rank(tmp_path):
    body = """
    model = make_model()
    X, y = make_data()
    for kwargs, message in [(dict(sharded=False), "layout: expected 'global'"),
                            (dict(sharded=True, batch_size=1), "batch_size: expected at least one row per rank"),
                            (dict(sharded=True, layout="rows"), "layout: expected one of")]:
        kwargs = {"layout": "per_rank", **kwargs}
        try:
            fit_distributed(model, X, y, verbose=0, **kwargs)
        except (ValueError, TypeError, DistributedError) as exc:
            assert message in str(exc), (message, str(exc))
        else:
            raise AssertionError(f"no error for {kwargs}")
    """
    proc = mpirun(tmp_path, body)
    assert proc.returncode == 0, proc.stderr


ONECYCLE_SRC = """
def make_onecycle_model(name):
    model = make_model()
    cycle = bp.schedules.OneCycle(0.02, total_steps=28, three_phase=name == "Adam")  # 4 epochs of 7 steps
    model.compile(loss="mse", optimizer=bp.SGD(lr=cycle, momentum=0.9) if name == "SGD" else bp.Adam(lr=cycle))
    return model
"""


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_one_cycle_momentum_on_two_ranks_matches_single_process(tmp_path, name):
    """OneCycle's cycled momentum (SGD's momentum, Adam's beta1) reaches each rank's steps: the
    weights and the recorded momentum of one process."""
    body = textwrap.indent(ONECYCLE_SRC, "    ") + f"""
    model = make_onecycle_model({name!r})
    X, y = make_data()
    history = fit_distributed(model, X, y, verbose=0, **{SINGLE!r})
    if history is not None:  # the root's
        np.save(f"{{out}}/momentum.npy", history.steps["momentum"])
    """
    proc = mpirun(tmp_path, body, save=True)
    assert proc.returncode == 0, proc.stderr
    ns = in_process(ONECYCLE_SRC)
    model = ns["make_onecycle_model"](name)
    X, y = ns["make_data"]()
    h = model.fit(X, y, verbose=0, **SINGLE)
    check_same(load_ranks(tmp_path, "w"), model)
    np.testing.assert_array_equal(np.load(tmp_path / "momentum.npy"), h.steps["momentum"])
    cycle = model.optimizer.lr
    assert h.steps["momentum"].tolist() == [cycle.momentum(t) for t in range(28)]


# ---------------------------------------------------------------- BatchNorm: one collective per layer each way
BN_PARITY_SRC = """
BN_ARCHS = {
    # a BatchNorm of the network's input (no backward collective) and one in the middle
    "first": lambda: [bp.BatchNorm(), bp.Dense(12, activation="tanh"), bp.BatchNorm(momentum=0.2),
                      bp.Dense(8, activation="relu"), bp.Dense(1)],
    # BatchNorm in the middle only (without affine: no gamma, beta), and after a LayerNorm
    "middle": lambda: [bp.Dense(12, activation="tanh"), bp.BatchNorm(affine=False), bp.Dense(8, activation="elu"),
                       bp.LayerNorm(), bp.Dense(6, activation="tanh"), bp.BatchNorm(), bp.Dense(1)],
}


def make_bn_model(arch, dtype):
    model = bp.Sequential(BN_ARCHS[arch](), input_dim=5, dtype=dtype, seed=7)
    model.compile(loss="mse", optimizer=bp.SGD(lr=0.05, momentum=0.9))
    return model


BN_FIT = dict(epochs=2, batch_size=40, shuffle=True)
#: uneven shards of the 203 rows (rank r holds rows [cut[r], cut[r + 1])); the last rank's 3 rows
#: leave it without rows in most batches
BN_CUTS = {2: [0, 120, 203], 3: [0, 60, 200, 203]}
"""
BN_TOL = {"float64": 1e-12, "float32": 1e-5}


def _bn_single(arch: str, dtype: str) -> bp.Sequential:
    ns = in_process(BN_PARITY_SRC)
    model = ns["make_bn_model"](arch, dtype)
    X, y = ns["make_data"]()
    model.fit(X, y, verbose=0, **ns["BN_FIT"])
    return model


@pytest.mark.parametrize("ranks", [2, 3])
def test_batchnorm_ranks_match_one_process_on_the_global_batch(tmp_path, ranks):
    """2 and 3 ranks, BatchNorm first and in the middle, float64 and float32, the batch split by rank
    and uneven shards: the weights, the running mean and variance (in get_weights) and the loss are
    one process's on the global batches (relative 1e-12 in float64, 1e-5 in float32), and the ranks
    agree bitwise (the statistics are combined in rank order on every rank)."""
    body = BN_PARITY_SRC + textwrap.dedent("""
    X, y = make_data()
    cut = BN_CUTS[comm.size]
    for arch in BN_ARCHS:
        for dtype in ("float64", "float32"):
            for sharded in (False, True):
                model = make_bn_model(arch, dtype)
                Xs, ys = (X[cut[comm.rank]:cut[comm.rank + 1]], y[cut[comm.rank]:cut[comm.rank + 1]]) if sharded \\
                    else (X, y)
                history = fit_distributed(model, Xs, ys, verbose=0, sharded=sharded, **BN_FIT)
                loss = history.history["loss"] if history is not None else []
                np.savez(f"{out}/{arch}-{dtype}-{sharded}-{comm.rank}.npz", loss=np.array(loss),
                         **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    """)
    proc = mpirun(tmp_path, body, n=ranks, timeout=3 * TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    for arch in ("first", "middle"):
        for dtype in ("float64", "float32"):
            model = _bn_single(arch, dtype)
            want, tol = model.get_weights(), BN_TOL[dtype]
            for sharded in (False, True):
                saved = [np.load(tmp_path / f"{arch}-{dtype}-{sharded}-{r}.npz") for r in range(ranks)]
                for i, w in enumerate(want):
                    scale = float(np.abs(w).max())
                    for r in range(ranks):
                        got = saved[r][f"w{i}"]
                        assert got.dtype == w.dtype
                        np.testing.assert_allclose(got, w, rtol=tol, atol=tol * scale,
                                                   err_msg=f"{arch} {dtype} sharded={sharded} rank {r} weights[{i}]")
                    assert all(np.array_equal(saved[0][f"w{i}"], s[f"w{i}"]) for s in saved[1:]), (arch, dtype, i)
                np.testing.assert_allclose(saved[0]["loss"], model.history.history["loss"], rtol=tol)


def test_batchnorm_collectives_per_step(tmp_path):
    """Per step: one Allgather per BatchNorm layer in the forward (its n, mean and M2), one Allreduce per
    BatchNorm layer in the backward except a BatchNorm of the network's input (none), then the gradients'
    Allreduce; the same sequence on a rank without rows in the step's batch (rank 1 holds 3 rows)."""
    body = BN_PARITY_SRC + textwrap.dedent("""
    import json

    class CountingComm:
        '''COMM_WORLD, recording every buffer collective (name, elements).'''

        def __init__(self, comm):
            self.comm, self.calls = comm, []

        def __getattr__(self, name):
            return getattr(self.comm, name)

        def Allgather(self, send, recv):
            self.calls.append(["Allgather", int(np.asarray(send).size), int(np.asarray(recv).size)])
            return self.comm.Allgather(send, recv)

        def Allreduce(self, send, recv, op=MPI.SUM):
            self.calls.append(["Allreduce", int(np.asarray(recv).size)])
            return self.comm.Allreduce(send, recv, op=op)

        def Bcast(self, *args, **kwargs):
            self.calls.append(["Bcast"])
            return self.comm.Bcast(*args, **kwargs)

        def Reduce(self, *args, **kwargs):
            self.calls.append(["Reduce"])
            return self.comm.Reduce(*args, **kwargs)

    counting = CountingComm(comm)
    model = make_bn_model("first", "float64")
    X, y = make_data(n=123)
    X, y = (X[:120], y[:120]) if comm.rank == 0 else (X[120:], y[120:])
    fit_distributed(model, X, y, verbose=0, sharded=True, epochs=2, batch_size=30, comm=counting)
    json.dump({"calls": counting.calls, "arena": model.engine.net.arena_size},
              open(f"{out}/calls{comm.rank}.json", "w"))
    """)
    proc = mpirun(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    import json

    logs = [json.loads((tmp_path / f"calls{r}.json").read_text()) for r in range(2)]
    arena = logs[0]["arena"]
    # make_bn_model("first"): BatchNorm of the input (5 features), BatchNorm of Dense(12)'s output
    step = [["Allgather", 1 + 2 * 5, 2 * (1 + 2 * 5)], ["Allgather", 1 + 2 * 12, 2 * (1 + 2 * 12)],
            ["Allreduce", 2 * 12],  # the middle BatchNorm's backward; none for the input's
            ["Allreduce", arena]]   # the gradients
    steps = -(-123 // 30)
    epoch = step * steps + [["Allreduce", 1]]  # + the epoch's loss
    assert logs[0]["calls"] == epoch * 2
    assert logs[1]["calls"] == logs[0]["calls"]  # rank 1 has no rows in most steps: the same collectives


def test_per_rank_batchnorm_check_takes_the_per_rank_batches(tmp_path):
    """The BatchNorm check reads the layout's own batches: 129 rows in batches of 32 would end
    on a batch of one drawn over the global data, but per rank ([66, 63] rows, shares 16 + 16)
    the smallest batch has 2 rows; and a per-rank layout ending on one row is refused on every rank."""
    body = textwrap.indent(NORM_SRC, "    ") + """
    X, y = make_data(129)
    mine = slice(0, 66) if comm.rank == 0 else slice(66, 129)
    model = make_norm_model()
    fit_distributed(model, X[mine], y[mine], verbose=0, sharded=True, layout="per_rank", epochs=1, batch_size=32)
    mine = slice(0, 65) if comm.rank == 0 else slice(65, 129)  # rank 0's 65 rows: a last batch of one
    try:
        fit_distributed(make_norm_model(), X[mine], y[mine], verbose=0, sharded=True, layout="per_rank",
                        epochs=1, batch_size=32)
    except ValueError as exc:
        assert "BatchNorm layer 0: expected training batches of more than one sample" in str(exc), str(exc)
    else:
        raise AssertionError("no error for a per-rank batch of one row")
    """
    proc = mpirun(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
