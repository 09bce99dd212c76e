"""Memory: no leak over long training, and absurd sizes fail with MemoryError.

- Training a small model for 1,000 epochs (plus train_step / predict /
  loss_and_gradients loops) keeps the resident set size flat after a warm-up.
- A layer or a batch too large to allocate raises ``MemoryError`` (the core's
  ``std::bad_alloc``), including sizes whose byte count overflows ``size_t``
  (which once wrapped around to a tiny buffer), and leaves the model usable
  and unchanged.
"""
from __future__ import annotations

import gc
import os

import numpy as np
import pytest

import pybackprop as bp

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")


def small_model(optimizer: object = "adam", dropout: bool = True) -> bp.Sequential:
    layers = [bp.Dense(16, activation="relu")]
    if dropout:
        layers.append(bp.Dropout(keep_prob=0.8))
    layers += [bp.Dense(8, activation="tanh"), bp.Dense(1)]
    m = bp.Sequential(layers, input_dim=4, dtype="float64", seed=0)
    m.compile(loss="mse", optimizer=optimizer)
    return m


def data(n: int = 64) -> tuple:
    r = np.random.default_rng(0)
    X = r.normal(size=(n, 4))
    return X, np.sin(X[:, 0]) + X[:, 1] * X[:, 2]


@needs_proc
def test_rss_flat_over_1000_epochs() -> None:
    model = small_model(optimizer=bp.Adam(lr=bp.schedules.TimeBased(1e-3, decay=0.01)))
    X, y = data()
    Xv, yv = data(16)
    # Warm-up: the core's buffers grow to their final size; Python caches fill.
    for _ in range(3):
        model.fit(X, y, epochs=50, batch_size=8, verbose=0, validation_data=(Xv, yv))
    gc.collect()
    start = rss_bytes()
    samples = []
    for _ in range(10):  # 10 x 100 = 1,000 epochs, 8,000 steps
        model.fit(X, y, epochs=100, batch_size=8, verbose=0, validation_data=(Xv, yv))
        model.predict(X)
        model.evaluate(X, y)
        gc.collect()
        samples.append(rss_bytes())
    growth = max(samples) - start
    print(f"\nRSS over 1,000 epochs: start {start / 2**20:.1f} MiB, "
          f"samples (MiB) {[round(s / 2**20, 2) for s in samples]}, max growth {growth / 2**10:.0f} KiB")
    # One fit's History is ~100 KiB of Python lists; a leak of one float per step
    # would be 64 KiB over the 8,000 steps, one small array per step ~1 MiB.
    assert growth < 2 * 2**20, f"RSS grew by {growth / 2**20:.2f} MiB over 1,000 epochs"
    # and no upward trend in the second half
    assert samples[-1] - samples[4] < 1 * 2**20, [s / 2**20 for s in samples]
    assert np.isfinite(np.concatenate([w.ravel() for w in model.get_weights()])).all()


def rss_growth(work, repeats: int) -> int:
    """Bytes the RSS grew over ``repeats`` runs of ``work()``, after one warm-up run."""
    work()
    gc.collect()
    start = rss_bytes()
    for _ in range(repeats):
        work()
    gc.collect()
    return rss_bytes() - start


@needs_proc
def test_rss_flat_over_step_level_calls() -> None:
    model = small_model(optimizer=bp.SGD(lr=0.01, momentum=0.9))
    X, y = data(32)
    keep = {1: np.ones(16)}

    def round_() -> None:
        for _ in range(500):
            model.train_step(X, y)
            model.loss_and_gradients(X, y, training=True, masks=keep, return_masks=True)
            model.predict(X)

    growth = rss_growth(round_, repeats=4)
    print(f"\nRSS over 2,000 x (train_step, loss_and_gradients, predict): growth {growth / 2**10:.0f} KiB")
    assert growth < 1 * 2**20, f"RSS grew by {growth / 2**20:.2f} MiB"


@needs_proc
def test_rss_flat_over_build_and_save_cycles(tmp_path) -> None:
    """Creating, training, saving, loading and dropping models returns their memory."""
    X, y = data(32)
    path = tmp_path / "m.pbp"

    def cycle() -> None:
        for _ in range(30):
            m = small_model()
            m.fit(X, y, epochs=2, batch_size=8, verbose=0)
            m.save(path)
            bp.load(path).predict(X)

    growth = rss_growth(cycle, repeats=3)
    print(f"\nRSS over 90 build/fit/save/load cycles: growth {growth / 2**10:.0f} KiB")
    assert growth < 2 * 2**20, f"RSS grew by {growth / 2**20:.2f} MiB"


# ---------------------------------------------------------------------- absurd sizes
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("units, input_dim", [
    (10 ** 12, 10),        # 10^13 parameters: more than any machine has
    (2 ** 62, 4),          # 4 * 2^62 parameters wraps to 0 in size_t
    (2 ** 63, 2),          # 2 * 2^63 wraps to 0 as well
    (2 ** 40, 2 ** 30),    # the product overflows
    (2 ** 61, 1),          # fits in size_t, but not its bytes
])
def test_huge_dense_raises_memory_error(units: int, input_dim: int, dtype: str) -> None:
    with pytest.raises(MemoryError):
        bp.Sequential([bp.Dense(units)], input_dim=input_dim, dtype=dtype)


def test_huge_dense_lazy_build_leaves_model_unbuilt() -> None:
    model = bp.Sequential([bp.Dense(10 ** 12)], dtype="float32", seed=0)
    model.compile(loss="mse")
    with pytest.raises(MemoryError):
        model.fit(np.ones((4, 3)), np.ones((4, 10 ** 12 // 10 ** 12)), verbose=0)
    assert not model.built
    with pytest.raises(MemoryError):
        model.predict(np.ones((1, 3)))
    assert not model.built


def test_huge_hidden_layer_between_small_ones() -> None:
    with pytest.raises(MemoryError):
        bp.Sequential([bp.Dense(4), bp.Dense(10 ** 12), bp.Dense(1)], input_dim=3)


def test_batch_that_cannot_fit_raises_and_leaves_model_usable() -> None:
    # 2^22 units: the activations of a 2^20-row batch are 2^42 floats (16 TiB).
    model = bp.Sequential([bp.Dense(2 ** 22, use_bias=False, init="zeros"), bp.Dense(1, init="zeros")],
                          input_dim=1, dtype="float32", seed=0)
    model.compile(loss="mse", optimizer=bp.SGD(lr=0.1))
    small_X, small_y = np.ones((2, 1), np.float32), np.ones(2, np.float32)
    model.predict(small_X)  # the core now holds buffers for 2 rows
    X = np.ones((2 ** 20, 1), np.float32)
    y = np.ones(2 ** 20, np.float32)
    net = model._net
    before = [w.copy() for w in model.get_weights()]
    counters = (net.epoch_counter, net.step_counter, net.optimizer_step)
    for call in (lambda: model.train_step(X, y), lambda: model.loss_and_gradients(X, y),
                 lambda: model.fit(X, y, batch_size=2 ** 20, verbose=0)):
        with pytest.raises(MemoryError):
            call()
        assert (net.epoch_counter, net.step_counter, net.optimizer_step) == counters
        for a, b in zip(model.get_weights(), before):
            assert np.array_equal(a, b)
    # The failed allocation released the buffers: smaller batches reallocate and work.
    assert np.array_equal(model.predict(small_X), np.zeros((2, 1), np.float32))
    loss = model.train_step(small_X, small_y)
    assert loss == 1.0
    assert net.step_counter == counters[1] + 1
    # the A/Z views of the last forward pass are consistent with the small batch
    assert net.A(0).shape == (2, 2 ** 22)
