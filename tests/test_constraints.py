"""The declarative constraints of pybackprop._validation (its last section): each constraint says
what its check says, unions and restated expectations keep the error types, and dataclasses
declared with ``parameter`` are checked field by field."""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from pybackprop._validation import (AnyOf, Boolean, Checked, Described, Dtype, Integer, Options, Real,
                                    check_params, parameter)

#: (constraint, a value it refuses, the error type): its message must state constraint.expected
REFUSALS = [
    (Integer(), 1.5, TypeError), (Integer(minimum=1), 0, ValueError), (Integer(minimum=1), True, TypeError),
    (Real(), "x", TypeError), (Real(), np.inf, ValueError), (Real(minimum=0.0), -1.0, ValueError),
    (Real(0.0, 1.0, max_inclusive=False), 1.0, ValueError), (Real(0.0, 1.0, min_inclusive=False), 0.0, ValueError),
    (Real(maximum=2.0), 3.0, ValueError), (Real(minimum=0.0), True, TypeError),
    (Boolean(), "yes", TypeError), (Boolean(), 1, TypeError),
    (Options(("adam", "sgd")), "newton", ValueError), (Options(("adam", "sgd")), 3, TypeError),
    (Dtype(), "float16", ValueError), (Dtype(), 3, TypeError),
]


@pytest.mark.parametrize("constraint, value, exc", REFUSALS, ids=[f"{c!r}-{v!r}" for c, v, _ in REFUSALS])
def test_each_constraint_states_what_its_check_says(constraint, value, exc):
    name = "dtype" if isinstance(constraint, Dtype) else "param"
    with pytest.raises(exc) as info:
        constraint(name, value)
    assert str(info.value).startswith(f"{name}: expected {constraint.expected}, got "), str(info.value)


def test_constraints_return_the_value_normalised():
    assert Integer(minimum=0)("n", np.int64(3)) == 3 and type(Integer()("n", np.int64(3))) is int
    assert type(Real()("x", 1)) is float and Boolean()("b", np.bool_(True)) is True
    assert Dtype()("dtype", np.float64) == "float64" and Options(("a",))("o", "a") == "a"


def test_any_of_takes_the_first_alternative_that_accepts_and_reports_all():
    batch = AnyOf(Options(("auto",)), Integer(minimum=1))
    assert batch("b", "auto") == "auto" and batch("b", 7) == 7
    assert batch.expected == "'auto' or an integer >= 1"
    for value, exc in [("big", ValueError), (0, ValueError), (1.5, TypeError), (None, TypeError)]:
        with pytest.raises(exc, match=re.escape("b: expected 'auto' or an integer >= 1, got ")):
            batch("b", value)
    verbose = AnyOf(Boolean(), Integer(minimum=0))
    assert verbose("v", True) is True and verbose("v", 2) == 2
    with pytest.raises(ValueError, match="v: expected True or False or an integer >= 0"):
        verbose("v", -1)


def test_described_restates_the_expectation_and_keeps_the_error_type():
    keep = Described(Real(0.0, 1.0, min_inclusive=False), "a keep probability")
    assert keep("p", 1) == 1.0
    with pytest.raises(ValueError, match="p: expected a keep probability, got 0.0"):
        keep("p", 0.0)
    with pytest.raises(TypeError, match="p: expected a keep probability, got 'x'"):
        keep("p", "x")


def test_check_params_checks_in_the_table_order():
    table = {"a": Integer(minimum=1), "b": Real()}
    assert check_params(table, {"b": 2, "a": 1}) == {"a": 1, "b": 2.0}
    with pytest.raises(ValueError, match="^a:"):
        check_params(table, {"a": 0, "b": "x"})  # a, first in the table, is reported first


def test_checked_dataclasses():
    @dataclasses.dataclass(eq=False)
    class Ramp(Checked):
        start: float = parameter(Real())
        steps: int = parameter(Integer(minimum=1), 10)

    r = Ramp(1)
    assert r.parameters() == {"start": 1.0, "steps": 10} and type(r.start) is float
    with pytest.raises(ValueError, match="steps: expected an integer >= 1, got 0"):
        Ramp(1.0, steps=0)
    with pytest.raises(TypeError, match="start: expected a finite number"):
        Ramp("x", steps=0)  # the fields in declaration order: start fails first

    class Plain(Checked):
        pass

    assert Plain().parameters() == {}
