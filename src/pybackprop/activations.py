"""Activation functions, by name or as objects with parameters.

>>> import pybackprop as bp
>>> bp.activations.get("relu")
ReLU()
>>> bp.activations.get(bp.activations.LeakyReLU(alpha=0.2)).get_config()
{'name': 'leaky_relu', 'alpha': 0.2}

The math (and the derivative conventions, those of PyTorch) is in the C++ core
and, readably, in :mod:`pybackprop.reference.functional`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Union

from ._validation import Checked, Real, fail, parameter


class Activation(Checked):
    """Base class: an activation's name and parameters (the math lives in the core).

    A subclass is a dataclass whose fields, declared with ``parameter(constraint, default)``,
    are its parameters: checked when it is made, listed by :meth:`params`, in its config and
    its repr.
    """

    name: str = ""

    def params(self) -> Dict[str, float]:
        """The parameters by name (none for most activations)."""
        return self.parameters()

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, **self.params()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Activation) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.get_config().items())))


class Identity(Activation):
    """f(z) = z."""
    name = "identity"


class ReLU(Activation):
    """f(z) = max(0, z); f'(0) = 0."""
    name = "relu"


@dataclasses.dataclass(eq=False, repr=False)
class LeakyReLU(Activation):
    """f(z) = z if z > 0 else alpha·z.

    >>> LeakyReLU(alpha=0.1)
    LeakyReLU(alpha=0.1)
    """
    name = "leaky_relu"

    alpha: float = parameter(Real(minimum=0.0), 0.01)


@dataclasses.dataclass(eq=False, repr=False)
class NoisyReLU(Activation):
    """max(0, z + N(0, sigma²)) while training, plain ReLU at inference.

    >>> NoisyReLU(sigma=0.5).get_config()
    {'name': 'noisy_relu', 'sigma': 0.5}
    """
    name = "noisy_relu"

    sigma: float = parameter(Real(minimum=0.0), 0.1)


class Sigmoid(Activation):
    """f(z) = 1 / (1 + e^-z), computed without overflow."""
    name = "sigmoid"


class Tanh(Activation):
    """f(z) = tanh(z)."""
    name = "tanh"


@dataclasses.dataclass(eq=False, repr=False)
class ELU(Activation):
    """f(z) = z if z > 0 else alpha·(e^z − 1).

    >>> ELU().alpha
    1.0
    """
    name = "elu"

    alpha: float = parameter(Real(minimum=0.0), 1.0)


class Softplus(Activation):
    """f(z) = log(1 + e^z) (z itself above 20, as PyTorch)."""
    name = "softplus"


class GELU(Activation):
    """The tanh form 0.5·z·(1 + tanh(√(2/π)(z + 0.044715 z³)))."""
    name = "gelu"


class Softmax(Activation):
    """Row-wise softmax; output layer only."""
    name = "softmax"


ACTIVATIONS: Dict[str, type] = {cls.name: cls for cls in
                                (Identity, ReLU, LeakyReLU, NoisyReLU, Sigmoid, Tanh, ELU, Softplus, GELU, Softmax)}
ALIASES = {"linear": "identity"}

ActivationLike = Union[str, Activation]


def get(spec: ActivationLike) -> Activation:
    """An :class:`Activation` from a name (``"relu"``, ``"linear"``...) or an object.

    >>> get("linear")
    Identity()
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        name = ALIASES.get(spec, spec)
        if name in ACTIVATIONS:
            return ACTIVATIONS[name]()
        fail("activation", "one of " + ", ".join(sorted([*ACTIVATIONS, *ALIASES])), spec)
    fail("activation", "a name or a pybackprop.activations object", spec, TypeError)
    raise AssertionError  # unreachable


def from_config(config: Dict[str, Any]) -> Activation:
    """Inverse of :meth:`Activation.get_config`.

    >>> from_config({"name": "elu", "alpha": 0.5})
    ELU(alpha=0.5)
    """
    params = dict(config)
    name = params.pop("name", None)
    name = ALIASES.get(name, name)
    if name not in ACTIVATIONS:
        fail("activation config name", "one of " + ", ".join(sorted(ACTIVATIONS)), config)
    return ACTIVATIONS[name](**params)
