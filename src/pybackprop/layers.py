"""Layers of a :class:`~pybackprop.Sequential` model.

>>> import pybackprop as bp
>>> bp.Dense(4, activation="relu", use_bias=False, init="he_normal")
Dense(4, activation='relu', use_bias=False, init='he_normal')
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Union

import numpy as np

from . import activations as _activations
from . import initializers as _initializers
from ._validation import as_numeric_array, check_bool, check_int, fail

if TYPE_CHECKING:  # pragma: no cover
    from .model import Sequential


class Layer:
    """Base class: a layer knows its model once it is built."""

    _model: Optional["Sequential"] = None
    _index: int = -1

    def get_config(self) -> Dict[str, Any]:
        raise NotImplementedError

    def _net(self) -> Any:
        if self._model is None or self._model._net is None:
            raise RuntimeError(f"{type(self).__name__} layer is not built yet: give input_dim to "
                               "Sequential, or call build(input_dim), fit or predict first")
        return self._model._net


class Dense(Layer):
    """A fully connected layer: ``z = a_prev @ W + b``, ``a = activation(z)``.

    Parameters
    ----------
    units : int
        Number of output units (``fan_out``).
    activation : str or pybackprop.activations.Activation
        ``"identity"`` (alias ``"linear"``, the default), ``"relu"``, ``"leaky_relu"``,
        ``"noisy_relu"``, ``"sigmoid"``, ``"tanh"``, ``"elu"``, ``"softplus"``,
        ``"gelu"``, ``"softmax"`` (output layer only), or an object with parameters.
    use_bias : bool
        Whether the layer has a bias ``b`` (default True).
    init : str or array
        Initialiser of ``W`` (default ``"glorot_uniform"``), or an explicit array
        of shape ``(fan_in, units)``.

    Attributes
    ----------
    W : numpy.ndarray
        ``(fan_in, units)`` weights: a view into the model's parameter arena
        (writing to it changes the model).
    b : numpy.ndarray or None
        ``(units,)`` bias view, None without bias.

    Examples
    --------
    >>> import pybackprop as bp
    >>> m = bp.Sequential([bp.Dense(2, init=[[1., 2.], [3., 4.], [5., 6.]])], input_dim=3)
    >>> m.layers[0].W
    array([[1., 2.],
           [3., 4.],
           [5., 6.]], dtype=float32)
    >>> m.layers[0].b
    array([0., 0.], dtype=float32)
    """

    def __init__(self, units: int, activation: Union[str, _activations.Activation] = "identity",
                 use_bias: bool = True, init: Union[str, Any] = "glorot_uniform") -> None:
        self.units = check_int("units", units, minimum=1)
        self.activation = _activations.get(activation)
        self.use_bias = check_bool("use_bias", use_bias)
        if isinstance(init, str):
            self.init: Union[str, np.ndarray] = _initializers.canonical(init)
        else:
            arr = as_numeric_array("init", init)
            if arr.ndim != 2 or arr.shape[1] != self.units:
                fail("init", f"an initialiser name or a 2-D array with {self.units} columns", arr)
            if not np.isfinite(arr).all():
                fail("init", "finite values", arr)
            self.init = np.array(arr, dtype=np.float64)

    @property
    def W(self) -> np.ndarray:
        return self._net().W(self._index)

    @property
    def b(self) -> Optional[np.ndarray]:
        return self._net().b(self._index)

    def get_config(self) -> Dict[str, Any]:
        init = self.init if isinstance(self.init, str) else self.init.tolist()
        return {"class_name": "Dense", "units": self.units, "activation": self.activation.get_config(),
                "use_bias": self.use_bias, "init": init}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Dense":
        return cls(units=config["units"], activation=_activations.from_config(config["activation"]),
                   use_bias=config["use_bias"], init=config["init"])

    def __repr__(self) -> str:
        act = self.activation.name if not self.activation.params() else self.activation
        init = self.init if isinstance(self.init, str) else f"array{self.init.shape}"
        return f"Dense({self.units}, activation={act!r}, use_bias={self.use_bias}, init={init!r})"


LAYERS = {"Dense": Dense}


def from_config(config: Dict[str, Any]) -> Layer:
    """A layer from its ``get_config()`` dict."""
    name = config.get("class_name")
    if name not in LAYERS:
        fail("layer config class_name", "one of " + ", ".join(LAYERS), name)
    return LAYERS[name].from_config(config)
