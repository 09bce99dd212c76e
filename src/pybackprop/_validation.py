"""Argument checks at the public boundary.

Every check raises ``TypeError`` (wrong kind of value) or ``ValueError``
(right kind, wrong value) with a message naming the argument, what was
expected and what came, e.g. ``batch_size: expected an integer >= 1, got 0``.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple

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


def _finite_number(minimum: float | None, maximum: float | None, min_inclusive: bool, max_inclusive: bool) -> str:
    """The phrase of :func:`check_float` and :class:`Real`: ``a finite number in [0.0, 1.0)``."""
    lo = "" if minimum is None else ("[" if min_inclusive else "(") + f"{minimum}"
    hi = "" if maximum is None else f"{maximum}" + ("]" if max_inclusive else ")")
    return "a finite number" + (f" in {lo or '(-inf'}, {hi or 'inf)'}" if lo or hi else "")


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
    expected = _finite_number(minimum, maximum, min_inclusive, max_inclusive)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        fail(name, expected, value, TypeError)
    try:
        v = float(value)
    except OverflowError:  # an int beyond float's range (10**400): not a finite number either
        fail(name, expected, value)
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


# =====================================================================================================
# Declarative constraints
#
# A constraint states what one parameter accepts. Calling it, ``constraint(name, value)``, checks
# ``value`` with the checks above (so the same error types and messages) and returns it normalised;
# any callable of that form is a constraint. A class states its parameters once, as a table
# ``{name: constraint}`` checked in one place by :func:`check_params`, or as dataclass fields
# declared with :func:`parameter` and checked by :class:`Checked`.
# =====================================================================================================
Check = Callable[[str, Any], Any]


class Constraint:
    """Base class of the constraints below; :attr:`expected` is the phrase of their error messages."""

    @property
    def expected(self) -> str:
        raise NotImplementedError

    def __call__(self, name: str, value: Any) -> Any:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Integer(Constraint):
    """An integer, ``>= minimum`` if given (:func:`check_int`); returns an ``int``.

    >>> Integer(minimum=1)("max_iter", 0)
    Traceback (most recent call last):
    ...
    ValueError: max_iter: expected an integer >= 1, got 0 (int)
    """

    minimum: Optional[int] = None

    @property
    def expected(self) -> str:
        return "an integer" + (f" >= {self.minimum}" if self.minimum is not None else "")

    def __call__(self, name: str, value: Any) -> int:
        return check_int(name, value, self.minimum)


@dataclasses.dataclass(frozen=True)
class Real(Constraint):
    """A finite real number within the bounds given (:func:`check_float`); returns a ``float``.

    >>> Real(minimum=0.0, maximum=1.0, max_inclusive=False)("momentum", 1.0)
    Traceback (most recent call last):
    ...
    ValueError: momentum: expected a finite number in [0.0, 1.0), got 1.0 (float)
    """

    minimum: Optional[float] = None
    maximum: Optional[float] = None
    min_inclusive: bool = True
    max_inclusive: bool = True

    @property
    def expected(self) -> str:
        return _finite_number(self.minimum, self.maximum, self.min_inclusive, self.max_inclusive)

    def __call__(self, name: str, value: Any) -> float:
        return check_float(name, value, self.minimum, self.maximum, self.min_inclusive, self.max_inclusive)


@dataclasses.dataclass(frozen=True)
class Boolean(Constraint):
    """``True`` or ``False`` (a NumPy bool too; :func:`check_bool`); returns a ``bool``."""

    @property
    def expected(self) -> str:
        return "True or False"

    def __call__(self, name: str, value: Any) -> bool:
        return check_bool(name, value)


@dataclasses.dataclass(frozen=True)
class Options(Constraint):
    """One of the strings ``options`` (:func:`check_choice`).

    >>> Options(("adam", "sgd"))("solver", "newton")
    Traceback (most recent call last):
    ...
    ValueError: solver: expected one of 'adam', 'sgd', got 'newton' (str)
    """

    options: Tuple[str, ...]

    @property
    def expected(self) -> str:  # within AnyOf's phrase, a single option reads as itself: "'auto' or ..."
        return repr(self.options[0]) if len(self.options) == 1 else "one of " + ", ".join(map(repr, self.options))

    def __call__(self, name: str, value: Any) -> str:
        return check_choice(name, value, self.options)


@dataclasses.dataclass(frozen=True)
class Dtype(Constraint):
    """A floating-point dtype the core computes in (:func:`check_dtype`); returns its name.
    For a parameter named ``dtype``: the message names it so."""

    @property
    def expected(self) -> str:
        return "'float32' or 'float64'"

    def __call__(self, name: str, value: Any) -> str:
        return check_dtype(value)


class AnyOf(Constraint):
    """A value one of ``alternatives`` accepts (the first that does normalises it).

    When none does, the error is a ``ValueError`` if some alternative took the value
    for its kind but refused it (an int below the minimum), else a ``TypeError``;
    its message lists every alternative.

    >>> batch_size = AnyOf(Options(("auto",)), Integer(minimum=1))
    >>> batch_size("batch_size", "auto"), batch_size("batch_size", 32)
    ('auto', 32)
    >>> batch_size("batch_size", 0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size: expected 'auto' or an integer >= 1, got 0 (int)
    """

    def __init__(self, *alternatives: Constraint) -> None:
        self.alternatives = alternatives

    @property
    def expected(self) -> str:
        return " or ".join(c.expected for c in self.alternatives)

    def __call__(self, name: str, value: Any) -> Any:
        kind: type = TypeError
        for constraint in self.alternatives:
            try:
                return constraint(name, value)
            except ValueError:
                kind = ValueError
            except TypeError:
                pass
        fail(name, self.expected, value, kind)
        raise AssertionError  # unreachable: fail raised

    def __repr__(self) -> str:
        return f"AnyOf({', '.join(map(repr, self.alternatives))})"


class Described(Constraint):
    """``constraint`` with the expectation stated in the caller's words (same error types).

    >>> keep = Described(Real(0.0, 1.0, min_inclusive=False), "a keep probability in (0, 1]")
    >>> keep("p", 0.0)
    Traceback (most recent call last):
    ...
    ValueError: p: expected a keep probability in (0, 1], got 0.0 (float)
    """

    def __init__(self, constraint: Check, expected: str) -> None:
        self.constraint, self._expected = constraint, expected

    @property
    def expected(self) -> str:
        return self._expected

    def __call__(self, name: str, value: Any) -> Any:
        try:
            return self.constraint(name, value)
        except (TypeError, ValueError) as exc:
            kind = ValueError if isinstance(exc, ValueError) else TypeError
        fail(name, self._expected, value, kind)
        raise AssertionError  # unreachable: fail raised

    def __repr__(self) -> str:
        return f"Described({self.constraint!r}, {self._expected!r})"


def check_params(constraints: Mapping[str, Check], values: Mapping[str, Any]) -> Dict[str, Any]:
    """Check each of ``values`` against its row of ``constraints``, in the table's order (the first
    failure raises); returns the values normalised.

    >>> check_params({"max_iter": Integer(minimum=1), "tol": Real(minimum=0.0)}, {"max_iter": 5, "tol": 0})
    {'max_iter': 5, 'tol': 0.0}
    """
    return {name: constraint(name, values[name]) for name, constraint in constraints.items()}


def parameter(constraint: Check, default: Any = dataclasses.MISSING) -> Any:
    """A dataclass field whose value :class:`Checked` checks with ``constraint``."""
    return dataclasses.field(default=default, metadata={"constraint": constraint})


class Checked:
    """Base of dataclasses whose fields are declared with :func:`parameter`: each field is checked,
    in declaration order, once the generated ``__init__`` has stored them all, and replaced by its
    normalised value. :meth:`parameters` gives them back by name. (Declare the dataclass with
    ``eq=False, repr=False`` to keep a base class's equality and repr.)

    >>> @dataclasses.dataclass
    ... class Decay(Checked):
    ...     rate: float = parameter(Real(minimum=0.0), 0.5)
    >>> Decay(1).parameters()
    {'rate': 1.0}
    >>> Decay(-1)
    Traceback (most recent call last):
    ...
    ValueError: rate: expected a finite number in [0.0, inf), got -1 (int)
    """

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            constraint = f.metadata.get("constraint")
            if constraint is not None:
                setattr(self, f.name, constraint(f.name, getattr(self, f.name)))

    def parameters(self) -> Dict[str, Any]:
        """The fields' values by name, in declaration order (none for a class that is no dataclass)."""
        if not dataclasses.is_dataclass(self):
            return {}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
