"""Argument checks at the public boundary.

Every check raises ``TypeError`` (wrong kind of value) or ``ValueError``
(right kind, wrong value) with a message naming the argument, what was
expected and what came, e.g. ``batch_size: expected an integer >= 1, got 0``.
"""
from __future__ import annotations

import numbers
from typing import Any, Iterable

import numpy as np

DTYPES = ("float32", "float64")


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def fail(name: str, expected: str, value: Any, exc: type = ValueError) -> None:
    """Raise ``exc`` with the standard message."""
    raise exc(f"{name}: expected {expected}, got {_describe(value)}")


def check_int(name: str, value: Any, minimum: int | None = None) -> int:
    """Return ``value`` as an int, checking its type and lower bound."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        fail(name, "an integer" + (f" >= {minimum}" if minimum is not None else ""), value, TypeError)
    if minimum is not None and value < minimum:
        fail(name, f"an integer >= {minimum}", value)
    return int(value)


def check_float(name: str, value: Any, minimum: float | None = None, maximum: float | None = None,
                min_inclusive: bool = True, max_inclusive: bool = True) -> float:
    """Return ``value`` as a finite float within the given bounds."""
    lo = "" if minimum is None else ("[" if min_inclusive else "(") + f"{minimum}"
    hi = "" if maximum is None else f"{maximum}" + ("]" if max_inclusive else ")")
    expected = "a finite number" + (f" in {lo or '(-inf'}, {hi or 'inf)'}" if lo or hi else "")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        fail(name, expected, value, TypeError)
    v = float(value)
    if not np.isfinite(v):
        fail(name, expected, value)
    if minimum is not None and (v < minimum or (v == minimum and not min_inclusive)):
        fail(name, expected, value)
    if maximum is not None and (v > maximum or (v == maximum and not max_inclusive)):
        fail(name, expected, value)
    return v


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        fail(name, "True or False", value, TypeError)
    return bool(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    choices = list(choices)
    if not isinstance(value, str):
        fail(name, "one of " + ", ".join(repr(c) for c in choices), value, TypeError)
    if value not in choices:
        fail(name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def check_dtype(value: Any) -> str:
    """Normalise a dtype argument to ``"float32"`` or ``"float64"``."""
    try:
        name = None if value is None else np.dtype(value).name  # np.dtype(None) would be float64
    except TypeError:
        name = None
    if name not in DTYPES:  # an unknown dtype name is a wrong value (ValueError), not a wrong type
        wrong_value = name is not None or isinstance(value, str)
        fail("dtype", "'float32' or 'float64'", value, ValueError if wrong_value else TypeError)
    return name  # type: ignore[return-value]


def as_numeric_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a real numeric ndarray (not yet cast), with a clear error otherwise."""
    if isinstance(value, np.ndarray):
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            fail(name, "an array-like of real numbers", value, TypeError)
    if arr.dtype.kind not in "biuf":
        fail(name, "an array of real numbers (bool, int or float)", arr, TypeError)
    return arr


def as_matrix(name: str, value: Any, dtype: str, columns: int | None = None,
              columns_are: str = "features") -> np.ndarray:
    """Check a 2-D, non-empty, finite array and return it C-contiguous in ``dtype``."""
    arr = as_numeric_array(name, value)
    if arr.ndim != 2:
        hint = " (reshape a single feature with x.reshape(-1, 1), a single sample with x.reshape(1, -1))" \
            if arr.ndim == 1 else ""
        fail(name, "a 2-D array of shape (n_samples, n_features)" + hint, arr)
    if arr.shape[0] == 0:
        fail(name, "at least one sample", arr)
    if columns is not None and arr.shape[1] != columns:
        fail(name, f"{columns} columns ({columns_are})", arr)
    with np.errstate(over="ignore", invalid="ignore"):  # values too large for dtype: reported below
        out = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(out).all():
        where = np.argwhere(~np.isfinite(out))[0]
        fail(name, f"finite values (no NaN or inf; first at index {tuple(int(i) for i in where)} after "
             f"casting to {dtype})", arr)
    return out
