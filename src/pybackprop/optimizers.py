"""Optimisers. They match ``torch.optim`` step by step (docs/internals.md).

>>> import pybackprop as bp
>>> opt = bp.SGD(lr=0.1, momentum=0.9, nesterov=True)
>>> opt.get_config()["nesterov"]
True
"""
from __future__ import annotations

from typing import Any, Dict

from ._validation import check_bool, check_float, fail


class Optimizer:
    """Base class of the optimisers."""

    def get_config(self) -> Dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        cfg = self.get_config()
        args = ", ".join(f"{k}={v!r}" for k, v in cfg.items() if k != "class_name")
        return f"{cfg['class_name']}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay.

    Exactly ``torch.optim.SGD`` with ``dampening=0``::

        g = grad + weight_decay * w
        v = momentum * v + g                  (v starts at 0)
        g = g + momentum * v if nesterov else v
        w = w - lr * g

    Parameters
    ----------
    lr : float
        Learning rate, >= 0.
    momentum : float
        Momentum factor in [0, 1).
    nesterov : bool
        Nesterov momentum (needs momentum > 0).
    weight_decay : float
        L2 penalty added to the gradient, >= 0.

    Examples
    --------
    >>> SGD(lr=0.01, momentum=0.9)
    SGD(lr=0.01, momentum=0.9, nesterov=False, weight_decay=0.0)
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        self.lr = check_float("lr", lr, minimum=0.0)
        self.momentum = check_float("momentum", momentum, minimum=0.0, maximum=1.0, max_inclusive=False)
        self.nesterov = check_bool("nesterov", nesterov)
        self.weight_decay = check_float("weight_decay", weight_decay, minimum=0.0)
        if self.nesterov and self.momentum == 0:
            fail("nesterov", "momentum > 0 with nesterov=True", momentum)

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "SGD", "lr": self.lr, "momentum": self.momentum,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}


OPTIMIZERS = {"sgd": SGD, "SGD": SGD}


def get(spec: Any) -> Optimizer:
    """An optimiser from a name (``"sgd"``, defaults) or an object."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, str) and spec in OPTIMIZERS:
        return OPTIMIZERS[spec]()
    fail("optimizer", "'sgd' or an optimiser object such as bp.SGD(lr=0.01)", spec,
         ValueError if isinstance(spec, str) else TypeError)
    raise AssertionError  # unreachable


def from_config(config: Dict[str, Any]) -> Optimizer:
    """Inverse of ``get_config``."""
    params = dict(config)
    name = params.pop("class_name", None)
    if name not in OPTIMIZERS:
        fail("optimizer config class_name", "'SGD'", name)
    return OPTIMIZERS[name](**params)
