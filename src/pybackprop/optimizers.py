"""Optimisers. Each matches its ``torch.optim`` namesake step by step
(docs/internals.md), and each takes ``clip_norm``: before the update, the
gradients of all parameters are scaled so that their global L2 norm is at most
``clip_norm`` (as ``torch.nn.utils.clip_grad_norm_``).

The learning rate may be a number or a schedule (:mod:`pybackprop.schedules`).

>>> import pybackprop as bp
>>> bp.Adam(lr=1e-3, clip_norm=1.0)
Adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0.0, clip_norm=1.0)
>>> bp.SGD(lr=bp.schedules.TimeBased(0.1, decay=0.01)).lr
TimeBased(initial=0.1, decay=0.01, unit='epoch')
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

from . import _core
from . import schedules as _schedules
from ._validation import check_bool, check_float, fail

LrLike = Union[float, _schedules.Schedule, Any]


class Optimizer:
    """Base class: hyperparameters only; the update runs in the C++ core."""

    kind: str = ""
    #: the hyperparameter torch's OneCycleLR cycles (``momentum``, or Adam's ``beta1``); None: none
    momentum_name: Optional[str] = "momentum"

    def __init__(self, lr: LrLike, weight_decay: float, clip_norm: Optional[float], decay_bias: bool = True,
                 decay_per_sample: bool = False) -> None:
        self.lr: Union[float, _schedules.Schedule] = _schedules.get("lr", lr)
        if not isinstance(self.lr, _schedules.Schedule):
            self.lr = check_float("lr", self.lr, minimum=0.0)
        self.momentum_schedule()
        self.weight_decay = check_float("weight_decay", weight_decay, minimum=0.0)
        self.decay_bias = check_bool("decay_bias", decay_bias)
        self.decay_per_sample = check_bool("decay_per_sample", decay_per_sample)
        self.clip_norm = None if clip_norm is None else check_float("clip_norm", clip_norm, minimum=0.0,
                                                                     min_inclusive=False)

    def _params(self) -> Dict[str, Any]:
        raise NotImplementedError

    def core_config(self) -> _core.OptimizerConfig:
        """This optimiser for ``_core.Network*.set_optimizer`` (lr at t = 0 for schedules).

        >>> SGD(lr=0.1, momentum=0.9).core_config().momentum
        0.9
        """
        lr = self.lr(0) if isinstance(self.lr, _schedules.Schedule) else self.lr
        params = self._params()
        cycle = self.momentum_schedule()
        if cycle is not None and self.momentum_name is not None:
            # as torch's OneCycleLR, which sets it to max_momentum first (the steps get their own values)
            params[self.momentum_name] = max(cycle.max_momentum, cycle.base_momentum)
        return _core.OptimizerConfig(kind=self.kind, lr=lr, weight_decay=self.weight_decay,
                                     clip_norm=self.clip_norm, decay_bias=self.decay_bias,
                                     decay_per_sample=self.decay_per_sample, **params)

    def momentum_schedule(self) -> Optional[_schedules.OneCycle]:
        """The schedule that cycles this optimiser's momentum (``beta1``): its ``lr`` when that is
        a ``OneCycle`` with ``cycle_momentum``, else None; ValueError for an optimiser without a
        momentum (Adagrad), as torch's OneCycleLR.

        >>> SGD(lr=_schedules.OneCycle(0.1, total_steps=10)).momentum_schedule().max_momentum
        0.95
        """
        cycle = _schedules.momentum_schedule(self.lr)
        if cycle is not None and self.momentum_name is None:
            fail("cycle_momentum", f"False for {type(self).__name__} (OneCycle cycles the momentum, or Adam's "
                 "beta1, and it has neither; torch's OneCycleLR refuses it too)", True)
        return cycle

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": type(self).__name__, "lr": _schedules.to_config(self.lr), **self._params(),
                "weight_decay": self.weight_decay, "clip_norm": self.clip_norm,
                "decay_bias": self.decay_bias, "decay_per_sample": self.decay_per_sample}

    def __repr__(self) -> str:
        cfg = self.get_config()
        name = cfg.pop("class_name")
        for key, default in (("amsgrad", False), ("decay_bias", True), ("decay_per_sample", False)):
            if key in cfg and cfg[key] == default:  # shown when changed
                del cfg[key]
        cfg["lr"] = self.lr
        return f"{name}(" + ", ".join(f"{k}={v!r}" for k, v in cfg.items()) + ")"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay.

    Exactly ``torch.optim.SGD`` with ``dampening=0``::

        g = grad + weight_decay * w
        v = momentum * v + g                  (v starts at 0)
        g = g + momentum * v if nesterov else v
        w = w - lr * g

    Parameters
    ----------
    lr : float or schedule
        Learning rate, >= 0.
    momentum : float
        Momentum factor in [0, 1).
    nesterov : bool
        Nesterov momentum (needs momentum > 0).
    weight_decay : float
        L2 penalty added to the gradient, >= 0.
    clip_norm : float, optional
        Clip the global gradient norm to this value before the update.
    decay_bias : bool, keyword-only
        Whether ``weight_decay`` acts on biases too (default True, as torch
        applies it to every parameter); False decays weights only.
    decay_per_sample : bool, keyword-only
        If True, each step uses ``weight_decay / batch rows`` (the L2 term of a
        summed loss, as scikit-learn's ``alpha``; a short last batch decays more).

    Examples
    --------
    >>> SGD(lr=0.01, momentum=0.9)
    SGD(lr=0.01, momentum=0.9, nesterov=False, weight_decay=0.0, clip_norm=None)
    """

    kind = "sgd"

    def __init__(self, lr: LrLike = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, clip_norm: Optional[float] = None, *, decay_bias: bool = True,
                 decay_per_sample: bool = False) -> None:
        super().__init__(lr, weight_decay, clip_norm, decay_bias, decay_per_sample)
        self.momentum = check_float("momentum", momentum, minimum=0.0, maximum=1.0, max_inclusive=False)
        self.nesterov = check_bool("nesterov", nesterov)
        if self.nesterov and self.momentum == 0:
            fail("nesterov", "momentum > 0 with nesterov=True", momentum)

    def _params(self) -> Dict[str, Any]:
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam, exactly ``torch.optim.Adam`` (``amsgrad`` included)::

        g = grad + weight_decay * w
        m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g**2
        amsgrad:  v_max = max(v_max, v), used in place of v below
        w = w - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Parameters
    ----------
    lr : float or schedule
        Learning rate (default 0.001).
    beta1, beta2 : float
        Decay rates of the moment estimates, in [0, 1). ``betas=(beta1, beta2)``,
        torch's spelling, is accepted too.
    eps : float
        Added to the denominator.
    weight_decay : float
        L2 penalty added to the gradient (for the decoupled decay, use :class:`AdamW`).
    clip_norm : float, optional
        Global gradient norm clipping.
    betas : tuple of two floats, optional
        ``(beta1, beta2)``, as torch spells them.
    amsgrad : bool
        The AMSGrad variant (torch's ``amsgrad=True``): the denominator uses the
        running maximum of the second moment, kept as the optimiser state
        ``max_exp_avg_sq`` (saved and loaded with the model).
    decay_bias : bool, keyword-only
        Whether ``weight_decay`` acts on biases too (default True, as torch
        applies it to every parameter); False decays weights only.
    decay_per_sample : bool, keyword-only
        If True, each step uses ``weight_decay / batch rows`` (the L2 term of a
        summed loss, as scikit-learn's ``alpha``; a short last batch decays more).

    Examples
    --------
    >>> Adam(betas=(0.8, 0.99)).beta1
    0.8
    >>> Adam(lr=0.01, amsgrad=True)
    Adam(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-08, amsgrad=True, weight_decay=0.0, clip_norm=None)
    """

    kind = "adam"
    momentum_name = "beta1"

    def __init__(self, lr: LrLike = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0, clip_norm: Optional[float] = None,
                 betas: Optional[Tuple[float, float]] = None, amsgrad: bool = False, *, decay_bias: bool = True,
                 decay_per_sample: bool = False) -> None:
        super().__init__(lr, weight_decay, clip_norm, decay_bias, decay_per_sample)
        if betas is not None:
            if not isinstance(betas, (tuple, list)) or len(betas) != 2:
                fail("betas", "a pair (beta1, beta2)", betas, TypeError)
            beta1, beta2 = betas
        self.beta1 = check_float("beta1", beta1, minimum=0.0, maximum=1.0, max_inclusive=False)
        self.beta2 = check_float("beta2", beta2, minimum=0.0, maximum=1.0, max_inclusive=False)
        self.eps = check_float("eps", eps, minimum=0.0)
        self.amsgrad = check_bool("amsgrad", amsgrad)

    def _params(self) -> Dict[str, Any]:
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """AdamW, exactly ``torch.optim.AdamW``: Adam with decoupled weight decay::

        w = w * (1 - lr * weight_decay)          (first, as torch; not part of the gradient)
        m = beta1 * m + (1 - beta1) * grad;   v = beta2 * v + (1 - beta2) * grad**2
        amsgrad:  v_max = max(v_max, v), used in place of v below
        w = w - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    With a scheduled ``lr`` the decay follows it, step by step, as torch's does.

    Parameters
    ----------
    lr : float or schedule
        Learning rate (default 0.001).
    betas : tuple of two floats
        ``(beta1, beta2)``, the decay rates of the moments, each in [0, 1)
        (default (0.9, 0.999)). ``beta1=``/``beta2=`` are accepted as keywords.
    eps : float
        Added to the denominator (default 1e-8).
    weight_decay : float
        Decoupled decay factor, >= 0 (default 0.01, torch's).
    amsgrad : bool
        The AMSGrad variant (state ``max_exp_avg_sq``).
    clip_norm : float, optional
        Global gradient norm clipping, before the update.
    beta1, beta2 : float, keyword-only
        ``betas`` one at a time (the names of :class:`Adam` and of the config).
    decay_bias : bool, keyword-only
        Whether the decay acts on biases too (default True, as torch's for
        every parameter); False decays weights only (torch: the biases in a
        parameter group with ``weight_decay=0``).
    decay_per_sample : bool, keyword-only
        If True, each step uses ``weight_decay / batch rows``.

    Examples
    --------
    >>> AdamW(lr=1e-3, weight_decay=0.05)
    AdamW(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0.05, clip_norm=None)
    >>> AdamW(betas=(0.9, 0.95), amsgrad=True).beta2
    0.95
    """

    kind = "adamw"

    def __init__(self, lr: LrLike = 0.001, betas: Optional[Tuple[float, float]] = None, eps: float = 1e-8,
                 weight_decay: float = 0.01, amsgrad: bool = False, clip_norm: Optional[float] = None, *,
                 beta1: Optional[float] = None, beta2: Optional[float] = None, decay_bias: bool = True,
                 decay_per_sample: bool = False) -> None:
        if betas is not None and (beta1 is not None or beta2 is not None):
            fail("betas", "either betas=(beta1, beta2) or beta1=/beta2=, not both", betas, TypeError)
        if betas is None:
            betas = (0.9 if beta1 is None else beta1, 0.999 if beta2 is None else beta2)
        super().__init__(lr, eps=eps, weight_decay=weight_decay, clip_norm=clip_norm, betas=betas,
                         amsgrad=amsgrad, decay_bias=decay_bias, decay_per_sample=decay_per_sample)


class RMSprop(Optimizer):
    """RMSprop, exactly ``torch.optim.RMSprop`` (centered off)::

        g = grad + weight_decay * w
        s = alpha * s + (1 - alpha) * g**2;   d = g / (sqrt(s) + eps)
        momentum > 0:  v = momentum * v + d;  w = w - lr * v      else  w = w - lr * d

    Parameters
    ----------
    lr : float or schedule
        Learning rate (default 0.01, as torch).
    alpha : float
        Smoothing constant in [0, 1].
    eps : float
        Added to the denominator.
    momentum : float
        Momentum factor in [0, 1).
    weight_decay : float
        L2 penalty.
    clip_norm : float, optional
        Global gradient norm clipping.
    decay_bias : bool, keyword-only
        Whether ``weight_decay`` acts on biases too (default True, as torch
        applies it to every parameter); False decays weights only.
    decay_per_sample : bool, keyword-only
        If True, each step uses ``weight_decay / batch rows`` (the L2 term of a
        summed loss, as scikit-learn's ``alpha``; a short last batch decays more).

    Examples
    --------
    >>> RMSprop(momentum=0.9).alpha
    0.99
    """

    kind = "rmsprop"

    def __init__(self, lr: LrLike = 0.01, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0,
                 weight_decay: float = 0.0, clip_norm: Optional[float] = None, *, decay_bias: bool = True,
                 decay_per_sample: bool = False) -> None:
        super().__init__(lr, weight_decay, clip_norm, decay_bias, decay_per_sample)
        self.alpha = check_float("alpha", alpha, minimum=0.0, maximum=1.0)
        self.eps = check_float("eps", eps, minimum=0.0)
        self.momentum = check_float("momentum", momentum, minimum=0.0, maximum=1.0, max_inclusive=False)

    def _params(self) -> Dict[str, Any]:
        return {"alpha": self.alpha, "eps": self.eps, "momentum": self.momentum}


class Adagrad(Optimizer):
    """Adagrad, exactly ``torch.optim.Adagrad``::

        g = grad + weight_decay * w
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g**2                         (s starts at initial_accumulator_value)
        w = w - clr * g / (sqrt(s) + eps)

    Parameters
    ----------
    lr : float or schedule
        Learning rate (default 0.01).
    lr_decay : float
        Learning-rate decay per step.
    eps : float
        Added to the denominator (default 1e-10).
    initial_accumulator_value : float
        Starting value of the sum of squares.
    weight_decay : float
        L2 penalty.
    clip_norm : float, optional
        Global gradient norm clipping.
    decay_bias : bool, keyword-only
        Whether ``weight_decay`` acts on biases too (default True, as torch
        applies it to every parameter); False decays weights only.
    decay_per_sample : bool, keyword-only
        If True, each step uses ``weight_decay / batch rows`` (the L2 term of a
        summed loss, as scikit-learn's ``alpha``; a short last batch decays more).

    Examples
    --------
    >>> Adagrad(lr=0.1).eps
    1e-10
    """

    kind = "adagrad"
    momentum_name = None

    def __init__(self, lr: LrLike = 0.01, lr_decay: float = 0.0, eps: float = 1e-10,
                 initial_accumulator_value: float = 0.0, weight_decay: float = 0.0,
                 clip_norm: Optional[float] = None, *, decay_bias: bool = True,
                 decay_per_sample: bool = False) -> None:
        super().__init__(lr, weight_decay, clip_norm, decay_bias, decay_per_sample)
        self.lr_decay = check_float("lr_decay", lr_decay, minimum=0.0)
        self.eps = check_float("eps", eps, minimum=0.0)
        self.initial_accumulator_value = check_float("initial_accumulator_value", initial_accumulator_value,
                                                     minimum=0.0)

    def _params(self) -> Dict[str, Any]:
        return {"lr_decay": self.lr_decay, "eps": self.eps,
                "initial_accumulator_value": self.initial_accumulator_value}


OPTIMIZERS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop, "Adagrad": Adagrad}
_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def get(spec: Any) -> Optimizer:
    """An optimiser from a name (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, ``"adagrad"``, with
    defaults) or an object.

    >>> get("adam")
    Adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0.0, clip_norm=None)
    """
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, str) and spec.lower() in _BY_NAME:
        return _BY_NAME[spec.lower()]()
    fail("optimizer", "one of 'sgd', 'adam', 'adamw', 'rmsprop', 'adagrad', or an optimiser object such as "
         "bp.SGD(lr=0.01)", spec, ValueError if isinstance(spec, str) else TypeError)
    raise AssertionError  # unreachable


def from_config(config: Dict[str, Any]) -> Optimizer:
    """Inverse of ``get_config``."""
    params = dict(config)
    name = params.pop("class_name", None)
    if name not in OPTIMIZERS:
        fail("optimizer config class_name", "one of " + ", ".join(OPTIMIZERS), name)
    params["lr"] = _schedules.from_value(params["lr"])
    return OPTIMIZERS[name](**params)  # type: ignore[no-any-return]
