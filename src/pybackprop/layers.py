"""Layers of a :class:`~pybackprop.Sequential` model.

>>> import pybackprop as bp
>>> bp.Dense(4, activation="relu", use_bias=False, init="he_normal")
Dense(4, activation='relu', use_bias=False, init='he_normal')
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Protocol, Union

import numpy as np

from . import activations as _activations
from . import initializers as _initializers
from . import schedules as _schedules
from ._validation import as_numeric_array, check_bool, check_choice, check_float, check_int, fail


class ParameterViews(Protocol):
    """Where a built layer finds its parameters: views into the model's arena by Dense index."""

    def W(self, d: int) -> np.ndarray: ...

    def b(self, d: int) -> Optional[np.ndarray]: ...


class LayerOwner(Protocol):
    """What a layer needs of the model it belongs to (a Sequential): its parameter views.

    Layers import nothing of the model; the model gives itself to its layers when built.
    """

    @property
    def engine(self) -> ParameterViews: ...


class Layer:
    """Base class: a layer knows its model once it is built.

    >>> import pybackprop as bp
    >>> bp.Dense(2)._model is None      # not part of a built model yet
    True
    """

    _model: Optional[LayerOwner] = None
    _index: int = -1  # Dense: its index in the core; Dropout: the index of the Dense layer it feeds

    def get_config(self) -> Dict[str, Any]:
        raise NotImplementedError

    def _views(self) -> ParameterViews:
        if self._model is None:
            raise RuntimeError(f"{type(self).__name__} layer is not built yet: give input_dim to "
                               "Sequential, or call build(input_dim), fit or predict first")
        return self._model.engine


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
        return self._views().W(self._index)

    @property
    def b(self) -> Optional[np.ndarray]:
        return self._views().b(self._index)

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


class Dropout(Layer):
    """Dropout with keep probability ``p``: each unit is KEPT with probability p.

    Placed first it drops input features; after a Dense layer it drops that
    layer's units. Give exactly one of ``keep_prob`` (p, in (0, 1]) or ``rate``
    (the drop probability of Keras and PyTorch, 1 - p, in [0, 1)).

    Parameters
    ----------
    keep_prob : float or schedule
        Probability of keeping a unit; a schedule (e.g.
        ``bp.schedules.Linear(1.0, 0.5, steps=20)``) changes it during training.
    rate : float
        Probability of dropping a unit (instead of keep_prob).
    scaling : {"inverted", "classic"}
        ``"inverted"`` (default): kept units are scaled by 1/p while training and
        nothing happens at inference. ``"classic"``: nothing while training, the
        outputs are multiplied by p at inference (the textbook form). Both have
        the same expected output.
    mask : {"per_sample", "per_batch"}
        A new mask for every sample (default), or one mask for the whole
        mini-batch (a dropped unit then gets exactly zero gradient in that step).

    Notes
    -----
    With a keep_prob schedule and classic scaling, inference multiplies by the
    keep probability of the last training step.

    Examples
    --------
    >>> import pybackprop as bp
    >>> bp.Dropout(keep_prob=0.8)
    Dropout(keep_prob=0.8, scaling='inverted', mask='per_sample')
    >>> bp.Dropout(rate=0.2).keep_prob
    0.8
    >>> bp.Dropout(keep_prob=0.8, rate=0.2)
    Traceback (most recent call last):
    ...
    ValueError: Dropout: give exactly one of keep_prob (the probability of KEEPING a unit, in (0, 1]) or rate (the probability of DROPPING a unit, = 1 - keep_prob, in [0, 1)); got both
    """

    def __init__(self, keep_prob: Any = None, *, rate: Optional[float] = None, scaling: str = "inverted",
                 mask: str = "per_sample") -> None:
        both = "give exactly one of keep_prob (the probability of KEEPING a unit, in (0, 1]) or rate " \
               "(the probability of DROPPING a unit, = 1 - keep_prob, in [0, 1))"
        if (keep_prob is None) == (rate is None):
            raise ValueError(f"Dropout: {both}; got {'both' if rate is not None else 'neither'}")
        if rate is not None:
            r = check_float("rate", rate)
            if not 0.0 <= r < 1.0:
                raise ValueError(f"rate: expected the probability of DROPPING a unit in [0, 1) "
                                 f"(keep_prob = 1 - rate), got {rate!r}")
            keep_prob = 1.0 - r
        value = _schedules.get("keep_prob", keep_prob)
        if not isinstance(value, _schedules.Schedule) and not 0.0 < value <= 1.0:
            raise ValueError(f"keep_prob: expected the probability of KEEPING a unit in (0, 1] "
                             f"(rate = 1 - keep_prob is the drop probability), got {keep_prob!r}")
        self.keep_prob: Union[float, _schedules.Schedule] = value
        self.scaling = check_choice("scaling", scaling, ("inverted", "classic"))
        self.mask = check_choice("mask", mask, ("per_sample", "per_batch"))

    def current_keep_prob(self) -> float:
        """The keep probability now (a schedule's value at t = 0 before training)."""
        return self.keep_prob(0) if isinstance(self.keep_prob, _schedules.Schedule) else self.keep_prob

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Dropout", "keep_prob": _schedules.to_config(self.keep_prob),
                "scaling": self.scaling, "mask": self.mask}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Dropout":
        return cls(keep_prob=_schedules.from_value(config["keep_prob"]), scaling=config["scaling"],
                   mask=config["mask"])

    def __repr__(self) -> str:
        return f"Dropout(keep_prob={self.keep_prob!r}, scaling={self.scaling!r}, mask={self.mask!r})"


LAYERS = {"Dense": Dense, "Dropout": Dropout}


def from_config(config: Dict[str, Any]) -> Layer:
    """A layer from its ``get_config()`` dict."""
    name = config.get("class_name")
    if name == "Dense":
        return Dense.from_config(config)
    if name == "Dropout":
        return Dropout.from_config(config)
    fail("layer config class_name", "one of " + ", ".join(LAYERS), name)
    raise AssertionError  # unreachable
