"""Schedules: a value that changes with training time, for an optimiser's
``lr`` or a Dropout's ``keep_prob``.

Each schedule is a function of ``t``: the model's epoch count (``unit="epoch"``,
the default) or its step count (``unit="step"``). Before each epoch Python
evaluates the schedule for every step of that epoch into an array and hands it
to the C++ loop: no Python call happens inside the loop.

>>> from pybackprop import schedules
>>> s = schedules.TimeBased(0.1, decay=0.5)
>>> [round(s(t), 4) for t in range(3)]
[0.1, 0.0667, 0.05]
>>> schedules.Linear(1.0, 0.5, steps=10)(5)
0.75
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Union

import numpy as np

from ._validation import check_choice, check_float, check_int, fail

UNITS = ("epoch", "step")


class Schedule:
    """Base class: ``schedule(t)`` gives the value at time ``t``; ``unit`` says what t counts."""

    unit: str = "epoch"

    def __call__(self, t: int) -> float:
        raise NotImplementedError

    def get_config(self) -> Dict[str, Any]:
        raise NotImplementedError

    def values(self, epoch: int, first_step: int, steps: int) -> np.ndarray:
        """The value for each of the ``steps`` steps of an epoch, as float64."""
        if self.unit == "epoch":
            return np.full(steps, float(self(epoch)))
        return np.array([float(self(first_step + s)) for s in range(steps)], dtype=np.float64)

    def __repr__(self) -> str:
        cfg = self.get_config()
        return f"{cfg.pop('class_name')}(" + ", ".join(f"{k}={v!r}" for k, v in cfg.items()) + ")"


def _power(base: float, exponent: int) -> float:
    """base ** exponent, inf when it overflows (Python raises OverflowError; the value
    is then refused like any out-of-range schedule value, with a ValueError)."""
    try:
        return float(base ** exponent)
    except OverflowError:
        return math.inf


def _unit(unit: str) -> str:
    return check_choice("unit", unit, UNITS)


class Constant(Schedule):
    """Always ``value``.

    >>> Constant(0.01)(100)
    0.01
    """

    def __init__(self, value: float, unit: str = "epoch") -> None:
        self.value = check_float("value", value)
        self.unit = _unit(unit)

    def __call__(self, t: int) -> float:
        return self.value

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Constant", "value": self.value, "unit": self.unit}


class TimeBased(Schedule):
    """``initial / (1 + decay · t)`` (Keras' time-based decay).

    >>> TimeBased(1.0, decay=1.0)(3)
    0.25
    """

    def __init__(self, initial: float, decay: float, unit: str = "epoch") -> None:
        self.initial = check_float("initial", initial)
        self.decay = check_float("decay", decay, minimum=0.0)
        self.unit = _unit(unit)

    def __call__(self, t: int) -> float:
        return self.initial / (1.0 + self.decay * t)

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "TimeBased", "initial": self.initial, "decay": self.decay, "unit": self.unit}


class Exponential(Schedule):
    """``initial · rate^t``.

    >>> Exponential(1.0, rate=0.5)(3)
    0.125
    """

    def __init__(self, initial: float, rate: float, unit: str = "epoch") -> None:
        self.initial = check_float("initial", initial)
        self.rate = check_float("rate", rate, minimum=0.0)
        self.unit = _unit(unit)

    def __call__(self, t: int) -> float:
        return self.initial * _power(self.rate, t)

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Exponential", "initial": self.initial, "rate": self.rate, "unit": self.unit}


class Step(Schedule):
    """``initial · factor^(t // every)``: multiplied by ``factor`` every ``every`` units.

    >>> [Step(1.0, factor=0.1, every=2)(t) for t in range(5)]
    [1.0, 1.0, 0.1, 0.1, 0.010000000000000002]
    """

    def __init__(self, initial: float, factor: float, every: int, unit: str = "epoch") -> None:
        self.initial = check_float("initial", initial)
        self.factor = check_float("factor", factor, minimum=0.0)
        self.every = check_int("every", every, minimum=1)
        self.unit = _unit(unit)

    def __call__(self, t: int) -> float:
        return self.initial * _power(self.factor, t // self.every)

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Step", "initial": self.initial, "factor": self.factor, "every": self.every,
                "unit": self.unit}


class Linear(Schedule):
    """From ``start`` to ``end`` in a straight line over ``steps`` units, then ``end``.

    A dropout ramp, keep_prob 1.0 → 0.5 over 20 epochs: ``Linear(1.0, 0.5, steps=20)``.

    >>> [Linear(1.0, 0.5, steps=2)(t) for t in range(4)]
    [1.0, 0.75, 0.5, 0.5]
    """

    def __init__(self, start: float, end: float, steps: int, unit: str = "epoch") -> None:
        self.start = check_float("start", start)
        self.end = check_float("end", end)
        self.steps = check_int("steps", steps, minimum=1)
        self.unit = _unit(unit)

    def __call__(self, t: int) -> float:
        return self.start + (self.end - self.start) * min(t, self.steps) / self.steps

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Linear", "start": self.start, "end": self.end, "steps": self.steps,
                "unit": self.unit}


class FromCallable(Schedule):
    """Any callable ``t -> value``.

    >>> FromCallable(lambda t: 0.1 * 0.9 ** t, unit="step")(1)
    0.09000000000000001
    """

    def __init__(self, fn: Callable[[int], float], unit: str = "epoch") -> None:
        if not callable(fn):
            fail("fn", "a callable t -> value", fn, TypeError)
        self.fn = fn
        self.unit = _unit(unit)

    def __call__(self, t: int) -> float:
        return float(self.fn(t))

    def get_config(self) -> Dict[str, Any]:
        # A Python callable is not serialisable: the config records its name only.
        return {"class_name": "FromCallable", "fn": getattr(self.fn, "__qualname__", repr(self.fn)),
                "unit": self.unit}


SCHEDULES = {cls.__name__: cls for cls in (Constant, TimeBased, Exponential, Step, Linear)}
ScheduleLike = Union[float, Schedule, Callable[[int], float]]


def get(name: str, value: Any) -> Union[float, Schedule]:
    """A number stays a number; a Schedule stays; any other callable is wrapped.

    >>> get("lr", 0.1), get("lr", TimeBased(0.1, 0.01))
    (0.1, TimeBased(initial=0.1, decay=0.01, unit='epoch'))
    """
    if isinstance(value, Schedule):
        return value
    if callable(value):
        return FromCallable(value)
    return check_float(name, value)


def check_values(name: str, values: np.ndarray, low: float, high: float, low_inclusive: bool) -> None:
    """Raise ValueError naming the first step whose scheduled value is out of range."""
    bad = ~np.isfinite(values) | (values > high) | ((values < low) if low_inclusive else (values <= low))
    if bad.any():
        i = int(np.argmax(bad))
        fail(f"{name} schedule at step {i} of the epoch",
             f"a value in {'[' if low_inclusive else '('}{low}, {high}]", float(values[i]))


def from_config(config: Dict[str, Any]) -> Schedule:
    """Inverse of ``get_config`` (not for FromCallable, whose function is not stored)."""
    params = dict(config)
    name = params.pop("class_name", None)
    if name not in SCHEDULES:
        fail("schedule config class_name", "one of " + ", ".join(SCHEDULES), name)
    return SCHEDULES[name](**params)  # type: ignore[no-any-return]


def to_config(value: Union[float, Schedule]) -> Any:
    """A number, or a schedule's config dict."""
    return value.get_config() if isinstance(value, Schedule) else value


def from_value(value: Any) -> Union[float, Schedule]:
    """Inverse of :func:`to_config`."""
    return from_config(value) if isinstance(value, dict) else float(value)


