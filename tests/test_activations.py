"""The activation objects: names, parameters (checked when made), config round trip, repr,
equality and hashing (the math is tested against the reference in test_parity/test_reference)."""
from __future__ import annotations

import inspect
import pickle

import pytest

import pybackprop as bp
from pybackprop import activations

PARAMETRISED = [(activations.LeakyReLU, "alpha", 0.01), (activations.NoisyReLU, "sigma", 0.1),
                (activations.ELU, "alpha", 1.0)]


@pytest.mark.parametrize("cls, param, default", PARAMETRISED, ids=[c.__name__ for c, _, _ in PARAMETRISED])
def test_parametrised_activations(cls, param, default):
    assert list(inspect.signature(cls).parameters) == [param]
    a = cls()
    assert getattr(a, param) == default and a.params() == {param: default}
    b = cls(0.25)  # positional, as before
    assert repr(b) == f"{cls.__name__}({param}=0.25)"
    assert b.get_config() == {"name": cls.name, param: 0.25}
    assert activations.from_config(b.get_config()) == b and hash(activations.from_config(b.get_config())) == hash(b)
    assert pickle.loads(pickle.dumps(b)) == b and b != a
    assert type(cls(**{param: 1}).params()[param]) is float
    with pytest.raises(ValueError, match=rf"^{param}: expected a finite number in \[0.0, inf\), got -1"):
        cls(-1)
    with pytest.raises(TypeError, match=rf"^{param}: expected a finite number"):
        cls("big")


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_every_activation_by_name(name):
    a = activations.get(name)
    assert a.name == name and a.get_config()["name"] == name
    assert activations.from_config(a.get_config()) == a == activations.ACTIVATIONS[name]()
    assert repr(a).startswith(type(a).__name__ + "(")
    if not a.params():
        assert repr(a) == f"{type(a).__name__}()" and list(inspect.signature(type(a)).parameters) == []


def test_equality_is_by_config():
    assert activations.ReLU() == activations.get("relu") and activations.ReLU() != activations.Tanh()
    assert activations.LeakyReLU(0.0) != activations.ELU(0.0)
    assert len({activations.ELU(), activations.ELU(1.0), activations.ReLU()}) == 2
    assert bp.Dense(2, activation=activations.ELU(0.5)).activation == activations.ELU(alpha=0.5)
