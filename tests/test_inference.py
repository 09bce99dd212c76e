"""Inference (predict, evaluate): its own forward pass, workspaces and threads.

- Several Python threads predicting with one model at once get exactly the
  outputs of one thread, and the pool holds no more workspaces than calls ran at once.
- A row's output depends on neither the core's thread count nor the training
  buffers' size (fixed chunks of 128 rows).
- The inference kernels (a vector GEMV for few rows, the unpacked path for a
  narrow output layer) agree with the NumPy reference in float64 and float32.
- The fast path (an X already as the core takes it) refuses NaN and inf as the
  checked path does; other inputs still take the checked path.
"""
from __future__ import annotations

import threading
from typing import Any, List

import numpy as np
import pytest

import pybackprop as bp
from pybackprop import _core
from pybackprop._core import _testing

from conftest import reference_of


def mlp(dtype: str = "float32", seed: int = 0, norm: bool = False, dropout: bool = False,
        out_act: str = "identity") -> bp.Sequential:
    """The 64-256-256-10 ReLU net of the inference benchmark (optionally with a norm and dropout)."""
    layers: List[Any] = [bp.Dense(256, activation="relu")]
    if norm:
        layers.append(bp.LayerNorm())
    if dropout:
        layers.append(bp.Dropout(keep_prob=0.8))
    layers += [bp.Dense(256, activation="relu"), bp.Dense(10, activation=out_act)]
    m = bp.Sequential(layers, input_dim=64, dtype=dtype, seed=seed)
    m.compile(loss="mse", optimizer=bp.SGD(lr=0.01))
    return m


def data(n: int, dtype: str = "float32", seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 64)).astype(dtype)


def test_threads_predicting_one_model_get_one_threads_results(restore_num_threads: None) -> None:
    bp.set_num_threads(1)
    m = mlp()
    X = data(1500)
    want = m.predict(X)
    results: List[np.ndarray] = []
    errors: List[BaseException] = []
    start = threading.Barrier(4)

    def work(i: int) -> None:
        try:
            start.wait()
            for r in range(5):
                rows = X if (i + r) % 2 else X[i:i + 1 + 37 * r]
                results.append((rows is X, i, r, m.predict(rows)))  # type: ignore[arg-type]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(results) == 20
    for whole, i, r, got in results:  # type: ignore[misc]
        expected = want if whole else want[i:i + 1 + 37 * r]
        np.testing.assert_array_equal(got, expected, err_msg=f"thread {i}, call {r}")
    # one workspace per call that ran at once, back in the pool: at most the 4 threads'
    assert 1 <= _testing.inference_workspaces(m.engine.net) <= 4


def test_one_thread_reuses_one_workspace(restore_num_threads: None) -> None:
    bp.set_num_threads(1)
    m = mlp()
    X = data(700)
    for n in (1, 5, 256, 700, 3):
        m.predict(X[:n])
        m.evaluate(X[:n], np.zeros((n, 10), np.float32))
    assert _testing.inference_workspaces(m.engine.net) == 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rows_do_not_depend_on_thread_count(dtype: str, restore_num_threads: None) -> None:
    m = mlp(dtype, norm=True, dropout=True)
    X = data(1100, dtype)
    Y = np.random.default_rng(2).standard_normal((1100, 10)).astype(dtype)
    bp.set_num_threads(1)
    p1, e1 = m.predict(X), m.evaluate(X, Y)
    bp.set_num_threads(2)
    p2, e2 = m.predict(X), m.evaluate(X, Y)
    np.testing.assert_array_equal(p1, p2)
    assert e1 == e2
    # and a row's output is the same alone as in its chunk: chunks are fixed, not the batch size
    np.testing.assert_array_equal(m.predict(X[256:512]), p1[256:512])


def test_rows_do_not_depend_on_the_training_buffers() -> None:
    m = mlp("float64")
    X = data(900, "float64")
    before = m.predict(X)
    m.loss_and_gradients(X, np.zeros((900, 10)))  # grows the training buffers to 900 rows
    np.testing.assert_array_equal(m.predict(X), before)


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("rows", [1, 2, 3, 7, 8, 300])
@pytest.mark.parametrize("out_act", ["identity", "softmax", "sigmoid"])
def test_inference_kernels_match_the_reference(dtype: str, rtol: float, rows: int, out_act: str) -> None:
    m = mlp(dtype, seed=3, norm=True, dropout=True, out_act=out_act)
    if out_act == "softmax":
        m.compile(loss="categorical_crossentropy", optimizer=bp.SGD(lr=0.01))
    X = data(rows, dtype, seed=rows)
    want = reference_of(m).predict(X)
    np.testing.assert_allclose(m.predict(X), want, rtol=rtol, atol=rtol * np.abs(want).max())


def test_evaluate_is_the_mean_loss_of_predict() -> None:
    m = mlp("float64")
    X = data(600, "float64")
    Y = np.random.default_rng(4).standard_normal((600, 10))
    w = np.random.default_rng(5).uniform(0, 2, 600)
    per_row = ((m.predict(X) - Y) ** 2).mean(axis=1)
    assert m.evaluate(X, Y) == pytest.approx(per_row.mean(), rel=1e-13)
    assert m.evaluate(X, Y, sample_weight=w) == pytest.approx((w * per_row).mean(), rel=1e-13)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fast_path_refuses_non_finite_values_as_the_checked_path(bad: float) -> None:
    m = mlp()
    X = data(3)
    X[2, 5] = bad
    with pytest.raises(ValueError, match=r"X: expected finite values .*first at index \(2, 5\)"):
        m.predict(X)
    with pytest.raises(ValueError, match=r"X: expected finite values"):
        m.predict(X.astype(np.float64))  # the checked path says the same


@pytest.mark.parametrize("make", [
    lambda X: X.astype(">f4"),                 # another byte order
    lambda X: np.asfortranarray(X),            # not C-contiguous
    lambda X: X.astype(np.float64),            # another dtype
    lambda X: X.tolist(),                      # not an array
])
def test_inputs_off_the_fast_path_give_the_same_outputs(make: Any) -> None:
    m = mlp()
    X = data(20)
    np.testing.assert_array_equal(m.predict(make(X)), m.predict(X))


def test_fast_path_keeps_the_shape_checks() -> None:
    m = mlp()
    with pytest.raises(ValueError, match="X: expected 64 columns"):
        m.predict(np.zeros((2, 63), np.float32))
    with pytest.raises(ValueError, match="X: expected at least one sample"):
        m.predict(np.zeros((0, 64), np.float32))
    assert _core.all_finite(np.zeros((0, 64), np.float32))


def test_views_before_any_training_pass_are_empty() -> None:
    m = mlp()
    m.predict(data(4))  # predict never writes the training buffers
    assert m.engine.net.A(0).shape == (0, 256) and m.engine.net.Z(2).shape == (0, 10)
    m.engine.net.forward_views(data(4))  # the training kernels: the same values to rounding
    np.testing.assert_allclose(m.engine.net.A(2), m.predict(data(4)), rtol=1e-5, atol=1e-6)
