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
    """Where a built layer finds its parameters: views into the model's arena by Dense index
    (a normalisation's by the index of the Dense layer whose input it normalises)."""

    def W(self, d: int) -> np.ndarray: ...

    def b(self, d: int) -> Optional[np.ndarray]: ...

    def norm_view(self, d: int, name: str) -> Optional[np.ndarray]: ...


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
    _index: int = -1  # Dense: its index in the core; Dropout, BatchNorm, LayerNorm: the index of the Dense layer it feeds

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


class Normalization(Layer):
    """What BatchNorm and LayerNorm share: γ (``weight``), β (``bias``) and the views of a built one."""

    kind = ""
    affine = True
    eps = 1e-5

    @property
    def weight(self) -> Optional[np.ndarray]:
        """γ, shape ``(features,)`` (init 1): a view into the parameter arena; None without affine."""
        return self._views().norm_view(self._index, "gamma")

    @property
    def bias(self) -> Optional[np.ndarray]:
        """β, shape ``(features,)`` (init 0): a view into the parameter arena; None without affine."""
        return self._views().norm_view(self._index, "beta")

    def num_weights(self) -> int:
        """How many arrays of ``get_weights()`` are this layer's."""
        return 2 if self.affine else 0


class BatchNorm(Normalization):
    """Batch normalisation of the features, as ``torch.nn.BatchNorm1d``.

    While training each feature is normalised with its batch's mean and biased
    variance, ``y = γ (x − μ) / √(σ² + ε) + β``, and the running estimates move
    towards them: ``running_mean ← (1 − momentum)·running_mean + momentum·μ``,
    ``running_var`` likewise with the unbiased variance ``σ²·n/(n − 1)``. At
    inference (``predict``, ``evaluate``) the running estimates take the batch's
    place. It normalises the output of the layer before it (or the input
    features when first) and feeds the next Dense layer, through a Dropout if one
    follows it.

    Parameters
    ----------
    momentum : float
        In [0, 1], the weight of the newest batch in the running estimates (torch's meaning).
    eps : float
        > 0, added to the variance.
    affine : bool
        Learnable γ (``weight``, init 1) and β (``bias``, init 0), trained by the
        optimiser as every parameter.

    Attributes
    ----------
    weight, bias : numpy.ndarray or None
        γ and β views into the parameter arena (None without affine).
    running_mean, running_var : numpy.ndarray
        Views of the running estimates (init 0 and 1); saved, loaded and in
        ``get_weights()`` after γ and β, as Keras's order.

    Notes
    -----
    A training batch of one sample raises a ValueError naming the layer (as
    torch): choose a ``batch_size`` that leaves no last batch of one.

    Examples
    --------
    >>> import numpy as np, pybackprop as bp
    >>> m = bp.Sequential([bp.Dense(3, activation="relu"), bp.BatchNorm(), bp.Dense(1)], input_dim=2, seed=0)
    >>> m.layers[1]
    BatchNorm(momentum=0.1, eps=1e-05, affine=True)
    >>> m.layers[1].running_var
    array([1., 1., 1.], dtype=float32)
    >>> X = np.random.default_rng(0).normal(size=(8, 2)); m.compile("mse", "sgd")
    >>> h = np.maximum(X @ m.layers[0].W, 0)   # the batch the BatchNorm will see: relu(X W + 0)
    >>> _ = m.fit(X, X[:, :1], batch_size=8, shuffle=False, verbose=0)
    >>> np.allclose(m.layers[1].running_var, 0.9 + 0.1 * h.var(axis=0, ddof=1), rtol=1e-5)
    True
    """

    kind = "batch"

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5, affine: bool = True) -> None:
        self.momentum = check_float("momentum", momentum, minimum=0.0, maximum=1.0)
        self.eps = check_float("eps", eps, minimum=0.0, min_inclusive=False)
        self.affine = check_bool("affine", affine)

    @property
    def running_mean(self) -> np.ndarray:
        view = self._views().norm_view(self._index, "running_mean")
        assert view is not None
        return view

    @property
    def running_var(self) -> np.ndarray:
        view = self._views().norm_view(self._index, "running_var")
        assert view is not None
        return view

    def num_weights(self) -> int:
        return (2 if self.affine else 0) + 2

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "BatchNorm", "momentum": self.momentum, "eps": self.eps, "affine": self.affine}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "BatchNorm":
        return cls(momentum=config["momentum"], eps=config["eps"], affine=config["affine"])

    def __repr__(self) -> str:
        return f"BatchNorm(momentum={self.momentum!r}, eps={self.eps!r}, affine={self.affine!r})"


class LayerNorm(Normalization):
    """Layer normalisation over the features of each sample, as ``torch.nn.LayerNorm(features)``.

    ``y = γ (x − μ) / √(σ² + ε) + β`` with μ and the biased σ² of each row, in
    training and at inference alike. It normalises the output of the layer
    before it (or the input features when first).

    Parameters
    ----------
    eps : float
        > 0, added to the variance.
    elementwise_affine : bool
        Learnable per-feature γ (``weight``, init 1) and β (``bias``, init 0).

    Examples
    --------
    >>> import numpy as np, pybackprop as bp
    >>> m = bp.Sequential([bp.LayerNorm(elementwise_affine=False), bp.Dense(1, init=[[1.], [0.]])],
    ...                   input_dim=2, dtype="float64")
    >>> m.predict([[3.0, 1.0]])   # x̂ = (1, -1) up to eps
    array([[0.999995]])
    """

    kind = "layer"

    def __init__(self, eps: float = 1e-5, elementwise_affine: bool = True) -> None:
        self.eps = check_float("eps", eps, minimum=0.0, min_inclusive=False)
        self.elementwise_affine = check_bool("elementwise_affine", elementwise_affine)
        self.affine = self.elementwise_affine

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "LayerNorm", "eps": self.eps, "elementwise_affine": self.elementwise_affine}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "LayerNorm":
        return cls(eps=config["eps"], elementwise_affine=config["elementwise_affine"])

    def __repr__(self) -> str:
        return f"LayerNorm(eps={self.eps!r}, elementwise_affine={self.elementwise_affine!r})"


LAYERS = {"Dense": Dense, "Dropout": Dropout, "BatchNorm": BatchNorm, "LayerNorm": LayerNorm}


def from_config(config: Dict[str, Any]) -> Layer:
    """A layer from its ``get_config()`` dict."""
    name = config.get("class_name")
    if name == "Dense":
        return Dense.from_config(config)
    if name == "Dropout":
        return Dropout.from_config(config)
    if name == "BatchNorm":
        return BatchNorm.from_config(config)
    if name == "LayerNorm":
        return LayerNorm.from_config(config)
    fail("layer config class_name", "one of " + ", ".join(LAYERS), name)
    raise AssertionError  # unreachable
