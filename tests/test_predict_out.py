"""predict(X, out=...): the core writes into the caller's array, which is checked first."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import pybackprop as bp
from conftest import assert_state_unchanged, core_state


def _model(dtype: str = "float32", outputs: int = 3) -> bp.Sequential:
    return bp.Sequential([bp.Dense(5, activation="tanh"), bp.Dropout(keep_prob=0.5, scaling="classic"),
                          bp.Dense(outputs, activation="softmax")], input_dim=4, dtype=dtype, seed=3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows", [1, 257, 700])  # 700: three inference chunks of the core
def test_out_is_filled_returned_and_equal_to_a_new_array(dtype, rows):
    model = _model(dtype)
    X = np.random.default_rng(rows).normal(size=(rows, 4)).astype(dtype)
    out = np.full((rows, 3), np.nan, dtype=dtype)
    got = model.predict(X, out=out)
    assert got is out
    assert np.array_equal(out, model.predict(X))  # bitwise: the same core call
    assert out.dtype == np.dtype(dtype)


def test_out_takes_inputs_that_need_a_cast():
    model = _model("float32")
    X = np.random.default_rng(0).normal(size=(10, 4))  # float64, cast once by predict
    out = np.empty((10, 3), dtype=np.float32)
    assert np.array_equal(model.predict(X, out=out), model.predict(X))
    assert np.array_equal(model.predict(X.tolist(), out=out), model.predict(X))


def test_out_allocates_no_new_output_array():
    # The refcount of the buffer goes up by exactly the one reference returned: the result is out.
    model = _model("float64")
    X = np.ones((4, 4))
    out = np.empty((4, 3))
    before = sys.getrefcount(out)
    res = model.predict(X, out=out)
    assert res is out and sys.getrefcount(out) == before + 1


BAD = [
    ("a list", lambda n, k, dt: [[0.0] * k] * n, TypeError, "got a list"),
    ("another dtype", lambda n, k, dt: np.empty((n, k), "float64" if dt == "float32" else "float32"),
     TypeError, "got an array of dtype"),
    ("an int array", lambda n, k, dt: np.empty((n, k), np.int64), TypeError, "got an array of dtype int64"),
    ("too few rows", lambda n, k, dt: np.empty((n - 1, k), dt), ValueError, "got an array of shape (4, 3)"),
    ("too many columns", lambda n, k, dt: np.empty((n, k + 1), dt), ValueError, "got an array of shape (5, 4)"),
    ("1-D", lambda n, k, dt: np.empty(n * k, dt), ValueError, "got an array of shape (15,)"),
    ("Fortran order", lambda n, k, dt: np.empty((n, k), dt, order="F"), ValueError, "got a non-contiguous array"),
    ("a strided view", lambda n, k, dt: np.empty((n, 2 * k), dt)[:, ::2], ValueError, "got a non-contiguous array"),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("what, make, exc, got", BAD, ids=[b[0] for b in BAD])
def test_bad_out_is_refused_naming_out_and_left_untouched(dtype, what, make, exc, got):
    model = _model(dtype)
    X = np.ones((5, 4), dtype=dtype)
    out = make(5, 3, dtype)
    snapshot = np.array(out, copy=True) if isinstance(out, np.ndarray) else None
    before = core_state(model)
    with pytest.raises(exc, match=r"^out: expected a writeable C-contiguous") as info:
        model.predict(X, out=out)
    assert got in str(info.value) and dtype in str(info.value) and "(5, 3)" in str(info.value)
    if snapshot is not None:
        assert np.array_equal(np.asarray(out), snapshot, equal_nan=True)
    assert_state_unchanged(model, before)


def test_read_only_out_is_refused():
    model = _model()
    out = np.zeros((2, 3), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="got a read-only array"):
        model.predict(np.ones((2, 4)), out=out)
    assert not out.any()


def test_out_aliasing_x_is_refused():
    model = bp.Sequential([bp.Dense(4, activation="relu")], input_dim=4, seed=0)
    X = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    keep = X.copy()
    with pytest.raises(ValueError, match="not sharing memory with X, got an array overlapping X"):
        model.predict(X, out=X)
    big = np.zeros((7, 4), np.float32)  # out overlapping X by one row
    with pytest.raises(ValueError, match="overlapping X"):
        model.predict(big[1:], out=big[:6])
    assert np.array_equal(X, keep)


def test_out_aliasing_an_input_that_is_cast_is_refused():
    # X float64 for a float32 model: the core sees the cast copy; out sharing X's memory is still refused.
    model = bp.Sequential([bp.Dense(8)], input_dim=4, seed=0)
    X = np.random.default_rng(0).normal(size=(3, 4))
    with pytest.raises(ValueError, match="overlapping X"):
        model.predict(X, out=X.view(np.float32))


def test_out_on_an_unbuilt_model_builds_it():
    model = bp.Sequential([bp.Dense(2)], seed=0)
    out = np.empty((3, 2), np.float32)
    assert model.predict(np.ones((3, 5)), out=out) is out and model.input_dim == 5
