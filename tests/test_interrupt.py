"""Ctrl-C during a long fit: KeyboardInterrupt within a fraction of a second, consistent weights,
the history so far. The C++ loop polls for signals between steps without holding the GIL."""
import signal
import subprocess
import sys
import textwrap
import time

import pytest

CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    import pybackprop as bp
    from pybackprop._core import _testing
    rng = np.random.default_rng(0)
    X = rng.standard_normal(size=(ROWS, INPUTS), dtype=np.float32)
    y = X[:, :3].sum(axis=1)
    m = bp.Sequential([LAYERS], input_dim=INPUTS, seed=0)
    m.compile(loss="mse", optimizer=bp.SGD(lr=1e-3))
    m.fit(X[:64], y[:64], epochs=2, batch_size=BATCH, verbose=0)   # two short epochs in the history
    steps, fused = m._net.step_counter, _testing.fused_steps(m._net)
    print("started", flush=True)
    try:
        m.fit(X, y, epochs=1, batch_size=BATCH, verbose=0)          # one long epoch, all in C++
        print("finished before the signal", flush=True)
    except KeyboardInterrupt:
        done = time.perf_counter()
        ok = all(np.isfinite(w).all() for w in m.get_weights())
        print(f"interrupted {done!r} steps={m._net.step_counter - steps} finite={ok} "
              f"history={len(m.history.epoch)} fused={_testing.fused_steps(m._net) - fused}", flush=True)
""")

WIDE = dict(ROWS="1_000_000", INPUTS="16", BATCH="32",
            LAYERS='bp.Dense(256, activation="relu"), bp.Dense(256, activation="relu"), bp.Dense(1)')
# batch 1 on the textbook network: the fused per-sample step (training/sample_step.cpp)
TEXTBOOK = dict(ROWS="20_000_000", INPUTS="3", BATCH="1",
                LAYERS='bp.Dense(4, activation="relu"), bp.Dense(4, activation="sigmoid"), bp.Dense(1)')


@pytest.mark.parametrize("shape", [WIDE, TEXTBOOK], ids=["wide-batch-32", "textbook-batch-1"])
def test_ctrl_c_stops_fit_quickly_with_consistent_weights(shape):
    child = CHILD
    for key, value in shape.items():
        child = child.replace(key, value)
    with subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        try:
            assert proc.stdout.readline().strip() == "started"
            time.sleep(1.0)  # well inside the long epoch
            sent = time.perf_counter()
            proc.send_signal(signal.SIGINT)
            line = proc.stdout.readline().split()
            proc.wait(timeout=60)
            err = proc.stderr.read()
        finally:
            proc.kill()
    assert line and line[0] == "interrupted", (line, err)
    latency = float(line[1]) - sent  # perf_counter is system-wide (CLOCK_MONOTONIC) on Linux
    fields = dict(item.split("=") for item in line[2:])
    assert fields["finite"] == "True"
    assert int(fields["steps"]) > 0  # steps of the long epoch were applied before the signal
    assert fields["history"] == "0"  # the interrupted fit had completed no epoch
    assert (int(fields["fused"]) > 0) == (shape is TEXTBOOK), fields  # by the fused step, with batch 1
    print(f"Ctrl-C latency: {latency * 1000:.1f} ms")
    assert latency < 2.0  # the goal is < 0.2 s; the bound is loose for shared, noisy machines
