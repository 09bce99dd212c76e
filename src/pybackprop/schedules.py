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
from typing import Any, Callable, Dict, Optional, Union

import numpy as np

from ._validation import Boolean, Checked, Integer, Options, Real, check_float, fail, parameter

UNITS = ("epoch", "step")


class Schedule(Checked):
    """Base class: ``schedule(t)`` gives the value at time ``t``; ``unit`` says what t counts.

    A subclass is a dataclass whose fields, declared with ``parameter(constraint[, default])``
    and ending with ``unit`` (``OneCycle``'s later momentum fields come after it), are its
    parameters: checked when it is made, and its config
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


@dataclasses.dataclass(eq=False, repr=False)
class Cosine(Schedule):
    """Cosine annealing from ``initial`` to ``eta_min`` over ``T_max`` units: torch's
    ``CosineAnnealingLR(optimizer, T_max, eta_min)`` with ``initial`` the optimiser's lr.

    The values are torch's own, bit for bit: torch steps the recursive form ::

        lr_t = (1 + cos(pi t / T_max)) / (1 + cos(pi (t - 1) / T_max)) * (lr_{t-1} - eta_min) + eta_min
        (and lr_t = lr_{t-1} + (initial - eta_min) (1 - cos(pi / T_max)) / 2  where t - 1 - T_max
        is a multiple of 2 T_max, where the quotient's denominator is 0)

    from ``lr_0 = initial``, not its closed form
    ``eta_min + (initial - eta_min) (1 + cos(pi t / T_max)) / 2``; the two agree in exact
    arithmetic and differ by rounding, which the recursion accumulates (to ~1e-11 relative
    after a few periods of a long T_max). As torch's, it does not stop at ``T_max``: past
    it the cosine rises again, a period being ``2 T_max`` (for restarts, use
    ``Warmup``/callables). ``unit="epoch"`` (default) steps once per epoch as the usual
    ``scheduler.step()`` after each epoch; ``unit="step"`` once per batch.

    Parameters
    ----------
    initial : float
        The value at t = 0 (the base lr), >= 0.
    T_max : int
        Units from ``initial`` down to ``eta_min``, >= 1.
    eta_min : float
        The minimum, >= 0 (default 0).
    unit : {"epoch", "step"}

    Examples
    --------
    >>> s = Cosine(0.1, T_max=4, eta_min=0.01)
    >>> [round(s(t), 6) for t in range(9)]
    [0.1, 0.08682, 0.055, 0.02318, 0.01, 0.02318, 0.055, 0.08682, 0.1]
    """

    initial: float = parameter(Real(minimum=0.0))
    T_max: int = parameter(Integer(minimum=1))
    eta_min: float = parameter(Real(minimum=0.0), 0.0)
    unit: str = parameter(_UNIT, "epoch")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._memo = (0, self.initial)  # (t, value): the recursion goes on from the last value asked

    def __call__(self, t: int) -> float:
        if t < 0:
            fail("t", "a time >= 0", t)
        k, lr = self._memo if self._memo[0] <= t else (0, self.initial)
        T, eta, base = self.T_max, self.eta_min, self.initial
        while k < t:
            k += 1
            if (k - 1 - T) % (2 * T) == 0:
                lr = lr + (base - eta) * (1 - math.cos(math.pi / T)) / 2
            else:
                lr = (1 + math.cos(math.pi * k / T)) / (1 + math.cos(math.pi * (k - 1) / T)) * (lr - eta) + eta
        self._memo = (k, lr)
        return lr


def _inner_schedule(name: str, value: Any) -> Any:
    """Warmup's schedule: a Schedule, a schedule config dict, or a number (kept; made a Constant later)."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, dict):
        return from_config(value)
    if callable(value):
        return FromCallable(value)
    return check_float(name, value, minimum=0.0)


def _optional_unit(name: str, value: Any) -> Any:
    return None if value is None else _UNIT(name, value)


@dataclasses.dataclass(eq=False, repr=False)
class Warmup(Schedule):
    """A linear warm-up of ``steps`` units, then ``schedule`` (any schedule, or a number).

    torch's ``SequentialLR([LinearLR(start_factor, end_factor=1, total_iters=steps), inner],
    milestones=[steps])``::

        t < steps:   base * (start_factor + (1 - start_factor) * t / steps),  base = schedule(0)
        t >= steps:  schedule(t - steps)           (the inner schedule's clock starts after the warm-up)

    The linear part is LinearLR's closed form (its stepped values agree to rounding,
    ~1e-16). ``start_factor=0`` (the default) is the warm-up from zero of Hugging Face's
    ``get_*_schedule_with_warmup`` and Keras's ``warmup_target``: the first step has lr 0 (a
    step that moves no weight, though Adam's moments see its gradient); torch's LinearLR needs
    ``start_factor > 0``, e.g. ``1e-3``, for the same values as torch.

    Parameters
    ----------
    schedule : Schedule or float
        What follows the warm-up; a number is a constant.
    steps : int
        Length of the warm-up, >= 1, in the schedule's unit.
    start_factor : float
        The first value's fraction of ``schedule(0)``, in [0, 1).
    unit : {"epoch", "step"}, optional
        The inner schedule's (the default; giving another is an error); for a
        number, default "epoch".

    Examples
    --------
    >>> w = Warmup(Cosine(1e-3, T_max=1000, unit="step"), steps=4)
    >>> [round(w(t), 6) for t in (0, 1, 2, 3, 4, 1004)]
    [0.0, 0.00025, 0.0005, 0.00075, 0.001, 0.0]
    >>> Warmup(0.1, steps=2, start_factor=0.5, unit="step")(1)
    0.07500000000000001
    """

    schedule: Any = parameter(_inner_schedule)
    steps: int = parameter(Integer(minimum=1))
    start_factor: float = parameter(Real(minimum=0.0, maximum=1.0, max_inclusive=False), 0.0)
    unit: Any = parameter(_optional_unit, None)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.schedule, Schedule):
            if self.unit is not None and self.unit != self.schedule.unit:
                fail("unit", f"the unit of the warmed-up schedule, {self.schedule.unit!r} (or None)", self.unit)
            self.unit = self.schedule.unit
        else:
            self.unit = self.unit or "epoch"
            self.schedule = Constant(self.schedule, unit=self.unit)

    def __call__(self, t: int) -> float:
        if t >= self.steps:
            return self.schedule(t - self.steps)
        base = self.schedule(0)
        return base * (self.start_factor + (1.0 - self.start_factor) * min(self.steps, t) / self.steps)

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Warmup", "schedule": self.schedule.get_config(), "steps": self.steps,
                "start_factor": self.start_factor, "unit": self.unit}

    def __repr__(self) -> str:
        return (f"Warmup(schedule={self.schedule!r}, steps={self.steps!r}, start_factor={self.start_factor!r}, "
                f"unit={self.unit!r})")


@dataclasses.dataclass(eq=False, repr=False)
class OneCycle(Schedule):
    """The one-cycle policy: torch's ``OneCycleLR(optimizer, max_lr, total_steps, pct_start,
    anneal_strategy, cycle_momentum, base_momentum, max_momentum, div_factor, final_div_factor,
    three_phase)``, value for value, the momentum included.

    From ``max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start`` of
    ``total_steps``, then down to ``max_lr / div_factor / final_div_factor`` (with
    ``three_phase``: back to the start value by ``2 pct_start``, then down), each phase a
    half cosine (or a line). As torch's: phase k ends at step ``pct_start * total_steps - 1``
    (``2 pct_start * total_steps - 2``), the last at ``total_steps - 1``, and a time past
    ``total_steps`` is an error (``fit`` raises before the epoch that would reach it).

    With ``cycle_momentum`` (the default, as torch's) the optimiser's momentum moves
    inversely to the lr, over the same phases: from ``max_momentum`` down to
    ``base_momentum`` while the lr rises, back up while it falls (three phases: down, up,
    then ``max_momentum`` to the end). It is SGD's and RMSprop's ``momentum`` and Adam's and
    AdamW's ``beta1`` (torch's ``betas[0]``, which Adam's bias correction ``1 - beta1**t``
    then uses at each step's value); it replaces the optimiser's own value while the
    schedule is its ``lr`` (an SGD or RMSprop with ``momentum=0`` gets the cycled momentum,
    as in torch). Adagrad has no momentum: a cycling ``OneCycle`` as its lr is a
    ValueError naming ``cycle_momentum``, as torch's. ``History.steps["momentum"]`` records each step's value.
    ``cycle_momentum=False`` leaves the optimiser's momentum alone.

    Parameters
    ----------
    max_lr : float
        The peak, > 0.
    total_steps : int
        Length of the cycle, >= 2 (torch: ``epochs * steps_per_epoch``).
    pct_start : float
        Fraction of the cycle spent rising, in [0, 1] (default 0.3).
    div_factor : float
        ``initial = max_lr / div_factor`` (default 25).
    final_div_factor : float
        ``final = initial / final_div_factor`` (default 1e4).
    three_phase : bool
        torch's three-phase cycle (default False).
    anneal_strategy : {"cos", "linear"}
        Shape of each phase (default "cos").
    unit : {"step", "epoch"}
        Default "step": the cycle counts batches, as torch's.
    cycle_momentum : bool
        Cycle the optimiser's momentum (beta1) inversely to the lr (default True).
    base_momentum : float
        The momentum at the lr's peak, in [0, 1) (default 0.85).
    max_momentum : float
        The momentum at the start (and end) of the cycle, in [0, 1) (default 0.95).

    Examples
    --------
    >>> s = OneCycle(0.1, total_steps=10)
    >>> [round(s(t), 5) for t in (0, 2, 9)]
    [0.004, 0.1, 0.0]
    >>> [round(s.momentum(t), 5) for t in (0, 2, 9)]
    [0.95, 0.85, 0.95]
    >>> import pybackprop as bp
    >>> opt = bp.SGD(lr=OneCycle(0.1, total_steps=100))  # its momentum: 0.95 -> 0.85 -> 0.95
    >>> fixed = bp.SGD(lr=OneCycle(0.1, total_steps=100, cycle_momentum=False), momentum=0.9)  # 0.9 throughout
    """

    max_lr: float = parameter(Real(minimum=0.0, min_inclusive=False))
    total_steps: int = parameter(Integer(minimum=2))
    pct_start: float = parameter(Real(minimum=0.0, maximum=1.0), 0.3)
    div_factor: float = parameter(Real(minimum=0.0, min_inclusive=False), 25.0)
    final_div_factor: float = parameter(Real(minimum=0.0, min_inclusive=False), 1e4)
    three_phase: bool = parameter(Boolean(), False)
    anneal_strategy: str = parameter(Options(("cos", "linear")), "cos")
    unit: str = parameter(_UNIT, "step")
    # after unit (they came later): positional calls of the fields above keep their meaning
    cycle_momentum: bool = parameter(Boolean(), True)
    base_momentum: float = parameter(Real(minimum=0.0, maximum=1.0, max_inclusive=False), 0.85)
    max_momentum: float = parameter(Real(minimum=0.0, maximum=1.0, max_inclusive=False), 0.95)

    def __post_init__(self) -> None:
        super().__post_init__()
        initial = self.max_lr / self.div_factor
        low = initial / self.final_div_factor
        n, p = self.total_steps, self.pct_start
        top, bottom = self.max_momentum, self.base_momentum
        # (end step, lr from, lr to, momentum from, momentum to), as torch's _schedule_phases
        if self.three_phase:
            self._phases = [(float(p * n) - 1, initial, self.max_lr, top, bottom),
                            (float(2 * p * n) - 2, self.max_lr, initial, bottom, top),
                            (n - 1, initial, low, top, top)]
        else:
            self._phases = [(float(p * n) - 1, initial, self.max_lr, top, bottom),
                            (n - 1, self.max_lr, low, bottom, top)]
        start = 0.0
        for end, *_ in self._phases:  # torch divides by each phase's length
            if end == start:
                fail("pct_start", f"a fraction giving every phase of total_steps={n} a length (torch divides by "
                     "it)", p)
            start = end

    def _anneal(self, t: int, which: int) -> float:
        """torch's get_lr at step t: the lr (which = 1) or the momentum (which = 3) of t's phase."""
        if t > self.total_steps:
            fail("OneCycle time", f"at most total_steps={self.total_steps} (the cycle is over; give a larger "
                 "total_steps)", t)
        start = 0.0
        for i, phase in enumerate(self._phases):
            end, high, low = phase[0], phase[which], phase[which + 1]
            if t <= end or i == len(self._phases) - 1:
                pct = (t - start) / (end - start)
                if self.anneal_strategy == "cos":
                    return low + (high - low) / 2.0 * (math.cos(math.pi * pct) + 1)
                return (low - high) * pct + high
            start = end
        raise AssertionError  # unreachable: the last phase returns

    def __call__(self, t: int) -> float:
        return self._anneal(t, 1)

    def momentum(self, t: int) -> float:
        """The momentum (Adam's beta1) at time ``t``, as torch's OneCycleLR sets it (whether or
        not ``cycle_momentum``: the optimiser only gets it with ``cycle_momentum``).

        >>> [round(OneCycle(0.1, total_steps=10, anneal_strategy="linear").momentum(t), 6) for t in (0, 1, 2, 9)]
        [0.95, 0.9, 0.85, 0.95]
        """
        return self._anneal(t, 3)

    def momentum_values(self, epoch: int, first_step: int, steps: int) -> np.ndarray:
        """The momentum for each of the ``steps`` steps of an epoch, as float64 (see :meth:`values`)."""
        if self.unit == "epoch":
            return np.full(steps, self.momentum(epoch))
        return np.array([self.momentum(first_step + s) for s in range(steps)], dtype=np.float64)


def momentum_schedule(lr: Any) -> Optional[OneCycle]:
    """The schedule that cycles an optimiser's momentum when ``lr`` is its learning rate: a
    ``OneCycle`` with ``cycle_momentum``, else None.

    >>> momentum_schedule(OneCycle(0.1, total_steps=10)) is not None, momentum_schedule(0.1)
    (True, None)
    """
    return lr if isinstance(lr, OneCycle) and lr.cycle_momentum else None


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


SCHEDULES = {cls.__name__: cls for cls in (Constant, TimeBased, Exponential, Step, Linear, Cosine, Warmup, OneCycle)}
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


