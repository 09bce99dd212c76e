"""Determinism: one seed drives everything, bit for bit, whatever the thread count.

- same seed, data and settings => bitwise-identical weights after fit
  (np.array_equal, not allclose); another seed => other weights;
- the same with 1, 2 and 3 threads, on a net wide enough that the core
  actually splits its matrix products over threads;
- the initial weights are exactly those of the reference's ``rng.init_weights``
  (the PCG32 draws of docs/internals.md) for every initialiser, and they have
  the statistics of the Keras formulas.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import pybackprop as bp
from conftest import INITIALIZERS, make_data, make_model, weight_names
from pybackprop.reference import rng as ref_rng


def _assert_bitwise_equal(a: bp.Sequential, b: bp.Sequential, what: str) -> None:
    for name, wa, wb in zip(weight_names(a), a.get_weights(), b.get_weights()):
        if not np.array_equal(wa, wb):
            idx = np.unravel_index(np.argmax(wa != wb), wa.shape)
            raise AssertionError(f"{what}: {name} differs ({int(np.sum(wa != wb))} elements); first at "
                                 f"{tuple(int(i) for i in idx)}: {wa[idx]!r} vs {wb[idx]!r}")


def _trained(seed: int, dtype: str) -> bp.Sequential:
    model = make_model([(8, "noisy_relu"), (6, "tanh")], 3, "softmax", "categorical_crossentropy", True,
                       dtype, seed=seed, input_dim=5, init="he_normal",
                       optimizer=bp.SGD(lr=0.05, momentum=0.9, nesterov=True))
    X, y = make_data(50, 5, 3, "categorical_crossentropy", dtype, seed=0, targets="labels")
    model.fit(X, y, epochs=3, batch_size=8, shuffle=True, verbose=0)
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_bitwise_identical_weights(dtype):
    _assert_bitwise_equal(_trained(123, dtype), _trained(123, dtype), "same seed")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_different_seed_gives_different_weights(dtype):
    a, b = _trained(123, dtype), _trained(124, dtype)
    for name, wa, wb in zip(weight_names(a), a.get_weights(), b.get_weights()):
        assert not np.array_equal(wa, wb), f"{name} is the same for seeds 123 and 124"


def test_seed_alone_decides_initial_weights_and_shuffling():
    """Same initial weights but another seed: the shuffles (and noise) differ."""
    a = make_model([(8, "relu")], 1, seed=1, input_dim=5)
    b = make_model([(8, "relu")], 1, seed=2, input_dim=5)
    b.set_weights(a.get_weights())
    X, y = make_data(40, 5, 1, "mse", seed=3)
    a.fit(X, y, epochs=1, batch_size=4, verbose=0)
    b.fit(X, y, epochs=1, batch_size=4, verbose=0)
    assert not np.array_equal(a.get_weights()[0], b.get_weights()[0])
    # ... while without shuffling (and without noise) the seed no longer matters.
    c = make_model([(8, "relu")], 1, seed=1, input_dim=5)
    d = make_model([(8, "relu")], 1, seed=2, input_dim=5)
    d.set_weights(c.get_weights())
    c.fit(X, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    d.fit(X, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    _assert_bitwise_equal(c, d, "no shuffle")


def _wide_run(threads: int, dtype: str):
    """64 -> 256 -> 256 -> 10 with batches of 128: the products of the first two layers
    are 2M-8M multiply-adds, above the core's threshold for a second thread (2 x 1M
    multiply-adds, common/threads.hpp), so they really are split over threads."""
    bp.set_num_threads(threads)
    assert bp.get_num_threads() == threads
    model = make_model([(256, "relu"), (256, "noisy_relu")], 10, "softmax", "categorical_crossentropy", True,
                       dtype, seed=5, input_dim=64, init="he_normal",
                       optimizer=bp.SGD(lr=0.01, momentum=0.9))
    X, y = make_data(256, 64, 10, "categorical_crossentropy", dtype, seed=6, targets="labels")
    hist = model.fit(X, y, epochs=2, batch_size=128, verbose=0).history
    loss, grads = model.loss_and_gradients(X[:200], y[:200], training=True)
    return model, hist, loss, grads, model.predict(X)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bitwise_identical_for_any_thread_count(dtype, restore_num_threads):
    one = _wide_run(1, dtype)
    for threads in (2, 3):
        other = _wide_run(threads, dtype)
        _assert_bitwise_equal(one[0], other[0], f"1 thread vs {threads}")
        assert one[1]["loss"] == other[1]["loss"], f"history loss, 1 vs {threads} threads"
        assert one[1]["grad_norm"] == other[1]["grad_norm"], f"history grad_norm, 1 vs {threads} threads"
        assert one[2] == other[2], f"loss, 1 vs {threads} threads"
        for i, (g1, g2) in enumerate(zip(one[3], other[3])):
            for key in g1:
                assert np.array_equal(g1[key], g2[key]), f"layer {i} d{key}, 1 vs {threads} threads"
        assert np.array_equal(one[4], other[4]), f"predict, 1 vs {threads} threads"


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_threaded_passes_over_a_large_arena_are_bitwise_thread_invariant(optimizer, restore_num_threads):
    """Over 2M parameters the optimiser's update (optimizers/optimizer.hpp,
    apply_update_threaded) and the zeroing of the gradients (common/arena.hpp) are split
    into fixed chunks over threads, and a layer's gradient norm sums fixed chunks in order
    (kernels/reductions.hpp, sum_squares_chunked): the weights, optimiser state and history
    after fit are bitwise those of one thread."""
    runs = []
    for threads in (1, 2):
        bp.set_num_threads(threads)
        opt = bp.SGD(lr=0.01, momentum=0.9, weight_decay=1e-3) if optimizer == "sgd" else bp.Adam(lr=1e-3)
        model = make_model([(1024, "tanh")], 2048, dtype="float32", seed=3, input_dim=64, optimizer=opt)
        assert sum(w.size for w in model.get_weights()) > 2_000_000
        X, y = make_data(64, 64, 2048, "mse", "float32", seed=4)
        hist = model.fit(X, y, epochs=2, batch_size=32, shuffle=False, verbose=0).history
        runs.append((model, model._net.state1().copy(), hist))
    _assert_bitwise_equal(runs[0][0], runs[1][0], "1 thread vs 2")
    assert np.array_equal(runs[0][1], runs[1][1]), "optimiser state, 1 thread vs 2"
    for key in ("loss", "grad_norm", "weight_norm", "update_ratio"):
        assert runs[0][2][key] == runs[1][2][key], f"history {key}, 1 thread vs 2"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("init", INITIALIZERS + ["xavier_uniform", "xavier_normal"])
def test_initial_weights_equal_the_reference_draws(init, dtype):
    """Every layer i draws W from stream (INIT, 0, i) in float64, cast last: bitwise equal."""
    model = bp.Sequential([bp.Dense(7, init=init), bp.Dense(5, init=init, use_bias=False),
                           bp.Dense(2, init=init)], input_dim=4, dtype=dtype, seed=2024)
    fans = [(4, 7), (7, 5), (5, 2)]
    for i, ((fan_in, fan_out), layer) in enumerate(zip(fans, model.layers)):
        want = ref_rng.init_weights(init, fan_in, fan_out, seed=2024, layer_index=i, dtype=dtype)
        assert layer.W.dtype == np.dtype(dtype)
        if not np.array_equal(layer.W, want):
            idx = np.unravel_index(np.argmax(layer.W != want), want.shape)
            raise AssertionError(f"layer {i} W ({init}): first difference at {idx}: "
                                 f"{layer.W[idx]!r} vs {want[idx]!r}")
        if layer.use_bias:
            assert np.array_equal(layer.b, np.zeros(fan_out, dtype)), f"layer {i}: biases start at zero"
        else:
            assert layer.b is None


def test_init_depends_on_seed_and_layer_index():
    a = bp.Sequential([bp.Dense(6), bp.Dense(6)], input_dim=6, seed=1)
    b = bp.Sequential([bp.Dense(6), bp.Dense(6)], input_dim=6, seed=2)
    assert not np.array_equal(a.layers[0].W, a.layers[1].W)  # same shape, other stream
    assert not np.array_equal(a.layers[0].W, b.layers[0].W)


FAN_IN, FAN_OUT = 400, 300


def _expected_stats(init: str):
    """(std, bound or None) of W for the Keras formulas; truncated normals are cut at
    two (pre-correction) standard deviations."""
    glorot, he = 2.0 / (FAN_IN + FAN_OUT), 2.0 / FAN_IN
    return {
        "random_normal": (0.05, None),
        "random_uniform": (0.05 / math.sqrt(3), 0.05),
        "glorot_uniform": (math.sqrt(3 * glorot) / math.sqrt(3), math.sqrt(3 * glorot)),
        "glorot_normal": (math.sqrt(glorot), 2 * math.sqrt(glorot) / ref_rng.TRUNCATED_NORMAL_STD),
        "he_normal": (math.sqrt(he), 2 * math.sqrt(he) / ref_rng.TRUNCATED_NORMAL_STD),
        "he_uniform": (math.sqrt(3 * he) / math.sqrt(3), math.sqrt(3 * he)),
    }[init]


@pytest.mark.parametrize("init", [i for i in INITIALIZERS if i != "zeros"])
def test_initialiser_statistics(init):
    W = bp.Sequential([bp.Dense(FAN_OUT, init=init)], input_dim=FAN_IN, dtype="float64", seed=9).layers[0].W
    std, bound = _expected_stats(init)
    # 120000 draws: the sample std is within ~0.5% of the truth, the mean within ~0.01 std.
    assert abs(W.std() / std - 1) < 0.02, f"{init}: std {W.std():.5f}, expected {std:.5f}"
    assert abs(W.mean()) < 0.02 * std, f"{init}: mean {W.mean():.2e}"
    if bound is not None:
        assert np.abs(W).max() <= bound, f"{init}: max |w| {np.abs(W).max()} above {bound}"
        assert np.abs(W).max() > 0.95 * bound, f"{init}: draws do not reach near the bound {bound}"


def test_zeros_initialiser():
    model = bp.Sequential([bp.Dense(3, init="zeros")], input_dim=2, seed=0)
    assert not model.layers[0].W.any() and not model.layers[0].b.any()


def test_core_permutation_is_the_reference_shuffle():
    """The shuffle order fit uses (exposed for distributed training) equals the reference's."""
    from pybackprop import _core
    from pybackprop.reference import rng

    for seed, epoch, n in [(0, 0, 1), (7, 3, 2), (123, 41, 1000)]:
        np.testing.assert_array_equal(_core.permutation(seed, epoch, n), rng.permutation(seed, epoch, n))
    assert _core.permutation(0, 0, 0).shape == (0,)
