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

import dataclasses
import math
from typing import Any, Callable, Dict, Union

import numpy as np

from ._validation import Checked, Integer, Options, Real, check_float, fail, parameter

UNITS = ("epoch", "step")


class Schedule(Checked):
    """Base class: ``schedule(t)`` gives the value at time ``t``; ``unit`` says what t counts.

    A subclass is a dataclass whose fields, declared with ``parameter(constraint[, default])``
    and ending with ``unit``, are its parameters: checked when it is made, and its config
    (``{"class_name": ..., **fields}``, the keyword arguments that make it again) and repr.
    """

    unit: str = "epoch"

    def __call__(self, t: int) -> float:
        raise NotImplementedError

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": type(self).__name__, **self.parameters()}

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


#: the last field of every schedule
_UNIT = Options(UNITS)


@dataclasses.dataclass(eq=False, repr=False)
class Constant(Schedule):
    """Always ``value``.

    >>> Constant(0.01)(100)
    0.01
    """

    value: float = parameter(Real())
    unit: str = parameter(_UNIT, "epoch")

    def __call__(self, t: int) -> float:
        return self.value


@dataclasses.dataclass(eq=False, repr=False)
class TimeBased(Schedule):
    """``initial / (1 + decay · t)`` (Keras' time-based decay).

    >>> TimeBased(1.0, decay=1.0)(3)
    0.25
    """

    initial: float = parameter(Real())
    decay: float = parameter(Real(minimum=0.0))
    unit: str = parameter(_UNIT, "epoch")

    def __call__(self, t: int) -> float:
        return self.initial / (1.0 + self.decay * t)


@dataclasses.dataclass(eq=False, repr=False)
class Exponential(Schedule):
    """``initial · rate^t``.

    >>> Exponential(1.0, rate=0.5)(3)
    0.125
    """

    initial: float = parameter(Real())
    rate: float = parameter(Real(minimum=0.0))
    unit: str = parameter(_UNIT, "epoch")

    def __call__(self, t: int) -> float:
        return self.initial * _power(self.rate, t)


@dataclasses.dataclass(eq=False, repr=False)
class Step(Schedule):
    """``initial · factor^(t // every)``: multiplied by ``factor`` every ``every`` units.

    >>> [Step(1.0, factor=0.1, every=2)(t) for t in range(5)]
    [1.0, 1.0, 0.1, 0.1, 0.010000000000000002]
    """

    initial: float = parameter(Real())
    factor: float = parameter(Real(minimum=0.0))
    every: int = parameter(Integer(minimum=1))
    unit: str = parameter(_UNIT, "epoch")

    def __call__(self, t: int) -> float:
        return self.initial * _power(self.factor, t // self.every)


@dataclasses.dataclass(eq=False, repr=False)
class Linear(Schedule):
    """From ``start`` to ``end`` in a straight line over ``steps`` units, then ``end``.

    A dropout ramp, keep_prob 1.0 → 0.5 over 20 epochs: ``Linear(1.0, 0.5, steps=20)``.

    >>> [Linear(1.0, 0.5, steps=2)(t) for t in range(4)]
    [1.0, 0.75, 0.5, 0.5]
    """

    start: float = parameter(Real())
    end: float = parameter(Real())
    steps: int = parameter(Integer(minimum=1))
    unit: str = parameter(_UNIT, "epoch")

    def __call__(self, t: int) -> float:
        return self.start + (self.end - self.start) * min(t, self.steps) / self.steps


def _callable(name: str, value: Any) -> Any:
    if not callable(value):
        fail(name, "a callable t -> value", value, TypeError)
    return value


@dataclasses.dataclass(eq=False, repr=False)
class FromCallable(Schedule):
    """Any callable ``t -> value``.

    >>> FromCallable(lambda t: 0.1 * 0.9 ** t, unit="step")(1)
    0.09000000000000001
    """

    fn: Callable[[int], float] = parameter(_callable)
    unit: str = parameter(_UNIT, "epoch")

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


