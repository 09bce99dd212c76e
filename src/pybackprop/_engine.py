"""The engine behind :class:`~pybackprop.Sequential`: the core handle and the one fit loop.

An :class:`Engine` owns one ``_core`` network and everything Python does
around it:

- building: the layer specs of the core from the layers, dtype and seed;
- data coercion: inputs, targets (one-hot for class labels), validation data
  or a validation split, Dropout masks given by the user;
- the schedules of an epoch (per-step lr, momentum and keep_prob arrays, the lr now);
- ONE fit loop (:meth:`Engine.fit`): callbacks, the ProgressBar of
  ``verbose``, ``History.params``, divergence (asked of every callback's
  ``on_divergence``), the gradient-flow warning. An epoch's steps run in the
  core's ``fit_epoch``; with a :class:`GradientReducer` (distributed
  training) they run step by step here: this rank's rows, the core's masks
  for them, ``loss_and_gradients``, the reducer's all-reduce of the flat
  gradient arena, ``apply_gradients``;
- one :meth:`Engine.state` / :meth:`Engine.load_state` (weights, named
  optimiser state, counters, keep probabilities), used by io, diagnostics,
  distributed's broadcast and the explainer, and :meth:`Engine.clone`.

Modules that act on a model (io, explain, diagnostics, distributed, callbacks,
sklearn) use ``model.engine`` and the public names here, never
``Sequential``'s private ones.

>>> import numpy as np, pybackprop as bp
>>> m = bp.Sequential([bp.Dense(2, activation="tanh"), bp.Dense(1)], input_dim=3, seed=0)
>>> m.compile(loss="mse", optimizer=bp.SGD(lr=0.1, momentum=0.9))
>>> engine = m.engine
>>> sorted(engine.state().optimizer)
['momentum_buffer']
>>> twin = engine.clone()
>>> bool(np.array_equal(twin.W(0), engine.W(0)))
True
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple, TypeVar

import numpy as np

from . import _core
from . import metrics as _metrics
from . import optimizers as _optimizers
from . import schedules as _schedules
from ._history import Callback, History, ProgressBar
from ._validation import as_matrix, as_numeric_array, check_bool, check_choice, check_float, check_int, fail
from .layers import BatchNorm, Dense, Dropout, Layer, LayerNorm, LayerOwner
from .layers import Normalization
from .losses import LOSSES, check_output_activation

CORE_CLASSES = {"float32": _core.NetworkF32, "float64": _core.NetworkF64}
#: per-layer gradient-flow diagnostics the C++ loop records every epoch (see History)
HEALTH_KEYS = ("weight_norm", "update_ratio", "dead_fraction", "saturated_fraction", "nonfinite")
#: History's own keys, which a metric's name may not take
RESERVED_KEYS = ("loss", "grad_norm", "lr", "momentum", "keep_prob") + HEALTH_KEYS
#: the first layer's gradient norm relative to the last's beyond which fit warns
VANISHING_RATIO, EXPLODING_RATIO = 1e-4, 1e4
#: the optimiser state the core keeps, by optimiser kind: the names of its first, second (and
#: third) state arena (torch.optim's names; the core's state1/2/3 meaning lives only here)
OPTIMIZER_STATE: Dict[str, Tuple[str, ...]] = {
    "sgd": ("momentum_buffer",),
    "adam": ("exp_avg", "exp_avg_sq"),
    "adamw": ("exp_avg", "exp_avg_sq"),
    "rmsprop": ("square_avg", "momentum_buffer"),
    "adagrad": ("sum",),
}
#: the third arena of Adam and AdamW with amsgrad=True (torch's name)
AMSGRAD_STATE = "max_exp_avg_sq"
_LEGACY_STATE = ("state1", "state2")  # the names of format-1 model files
_ARENAS = ("state1", "state2", "state3")  # the core's arenas, in the order of the names above

T = TypeVar("T")


class DivergenceError(FloatingPointError):
    """The loss (or a gradient) became NaN or infinite during training.

    The model keeps the weights of the last finite step. Attributes: ``epoch``,
    ``step`` (within the epoch), ``loss`` and ``history`` (the epochs completed).

    Examples
    --------
    >>> e = DivergenceError(2, 5, float("nan"))
    >>> e.epoch, e.step
    (2, 5)
    """

    def __init__(self, epoch: int, step: int, loss: float, history: Optional[History] = None) -> None:
        self.epoch, self.step, self.loss, self.history = epoch, step, loss, history
        super().__init__(f"training diverged in epoch {epoch}, step {step}: the loss is {loss} (or a gradient "
                         "is NaN/inf); the model keeps the weights of the last finite step. Try a smaller "
                         "learning rate, clip_norm on the optimiser (e.g. bp.SGD(lr, clip_norm=1.0)), or "
                         "standardised inputs and targets.")

    def __reduce__(self) -> Tuple[Any, ...]:  # pickled by its arguments (multiprocessing, MPI, joblib)
        return type(self), (self.epoch, self.step, self.loss, self.history)


class GradientFlowWarning(UserWarning):
    """The first layer's gradient is vanishing or exploding relative to the last layer's."""


def gradient_flow_ratio(grad_norm: Sequence[float]) -> Optional[float]:
    """The first layer's gradient norm over the last's, or None for fewer than two layers, a
    non-finite norm or a last norm of 0.

    >>> gradient_flow_ratio([1e-3, 0.5])
    0.002
    """
    if len(grad_norm) < 2 or not all(np.isfinite(grad_norm)) or grad_norm[-1] == 0:
        return None
    return float(grad_norm[0] / grad_norm[-1])


def gradient_flow_problem(grad_norm: Sequence[float]) -> Optional[Tuple[str, float]]:
    """``("vanishing" | "exploding", ratio)`` when :func:`gradient_flow_ratio` is below
    ``VANISHING_RATIO`` or above ``EXPLODING_RATIO``, else None: the one rule behind
    :class:`GradientFlowWarning`.

    >>> gradient_flow_problem([1e-6, 1.0])
    ('vanishing', 1e-06)
    >>> gradient_flow_problem([0.5, 1.0]) is None
    True
    """
    ratio = gradient_flow_ratio(grad_norm)
    if ratio is None or VANISHING_RATIO <= ratio <= EXPLODING_RATIO:
        return None
    return ("vanishing" if ratio < VANISHING_RATIO else "exploding"), ratio


def warn_gradient_flow(grad_norm: Sequence[float], epoch: int) -> bool:
    """Warn (and return True) when the first layer's gradient is tiny or huge relative to the last's.

    >>> warn_gradient_flow([1.0, 1.0], 0)
    False
    """
    problem = gradient_flow_problem(grad_norm)
    if problem is None:
        return False
    kind, ratio = problem
    hint = ("try relu/leaky_relu activations, he_normal init, or fewer layers" if kind == "vanishing"
            else "try a smaller lr, clip_norm on the optimiser, or a smaller init")
    warnings.warn(f"{kind} gradients in epoch {epoch}: the first layer's gradient norm is {ratio:.2e} times "
                  f"the last layer's ({hint}); see history['grad_norm']", GradientFlowWarning, stacklevel=4)
    return True


for _cls in (DivergenceError, GradientFlowWarning):  # their documented home (and pickles' path)
    _cls.__module__ = "pybackprop.model"


class TrainingOwner(Protocol):
    """What the fit loop needs of the object it trains: callbacks get it as ``callback.model``."""

    history: Optional[History]
    stop_training: bool


def epoch_batches(seed: int, epoch: int, n: int, batch_size: int, shuffle: bool) -> List[np.ndarray]:
    """The batches of an epoch as ``fit`` draws them: consecutive slices of ``batch_size`` rows of
    ``arange(n)`` or, with ``shuffle``, of the permutation of ``seed`` and ``epoch``
    (docs/internals.md, "An epoch"); the last one partial.

    >>> [b.tolist() for b in epoch_batches(0, 0, 5, 2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """
    order = _core.permutation(seed, epoch, n) if shuffle else np.arange(n)
    size = min(batch_size, n)
    return [order[s:s + size] for s in range(0, n, size)]


class GradientReducer(Protocol):
    """The hook of distributed training: how the ranks share the steps of an epoch.

    With a reducer, :meth:`Engine.fit` runs every step itself: the rows of the
    global batch this rank holds (``rows``), their loss and gradient from the
    core (masks from the core for exactly those rows), the gradient scaled to
    the rank's share, ``allreduce`` of the flat gradient arena (in place, a
    sum over ranks), then the optimiser's update on every rank.

    Attributes
    ----------
    root : bool
        This rank reports (progress bar, gradient-flow warning, the History).
    ranks : int
        The number of ranks.
    samples : int
        Size of the global data set (the batches are drawn over it).
    params : dict
        Added to ``History.params`` (e.g. ``{"ranks": 4}``).
    timings : dict
        ``compute``, ``update``, ``epochs``, ``steps`` are added to by the engine;
        the reducer adds its own (``allreduce``, ``wait``).
    """

    root: bool
    ranks: int
    samples: int
    params: Dict[str, Any]
    timings: Dict[str, float]

    def steps(self, batch_size: int) -> int:
        """The steps of an epoch (for the schedules, before it starts)."""
        ...

    def batches(self, epoch: int, batch_size: int, shuffle: bool) -> List[np.ndarray]:
        """The global batches of the epoch, in step order: arrays of global row indices, each row
        in exactly one (:func:`epoch_batches` for batches drawn over the global data set)."""
        ...

    def rows(self, batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``(positions in batch, rows of this rank's X)`` of the global batch ``batch``."""
        ...

    def allreduce(self, grads: np.ndarray) -> None:
        """Sum ``grads`` over the ranks, in place."""
        ...

    def gather_stats(self, local: np.ndarray, out: np.ndarray) -> None:
        """Every rank's ``local`` (k,) into the rows of ``out`` (ranks, k), in rank order (BatchNorm)."""
        ...

    def sum_stats(self, values: np.ndarray) -> None:
        """Sum ``values`` over the ranks, in place (BatchNorm's backward sums)."""
        ...

    def sum(self, value: float) -> float:
        """The sum of ``value`` over the ranks."""
        ...

    def agree(self, value: T) -> T:
        """The root's ``value`` on every rank."""
        ...


@dataclass
class EngineState:
    """Everything training changes in an engine, as copies.

    Attributes
    ----------
    weights : list of ndarray
        ``[W0, b0, W1, ...]`` as :meth:`Sequential.get_weights`.
    optimizer : dict
        The optimiser's state arenas by name (``OPTIMIZER_STATE``), e.g.
        ``{"exp_avg": ..., "exp_avg_sq": ...}`` for Adam; empty when not compiled.
    counters : dict
        ``epoch_counter``, ``step_counter`` (RNG streams), ``optimizer_step``.
    keep_probs : list of float
        Each Dropout's current keep probability, in layer order.
    """

    weights: List[np.ndarray]
    optimizer: Dict[str, np.ndarray] = field(default_factory=dict)
    counters: Dict[str, int] = field(default_factory=dict)
    keep_probs: List[float] = field(default_factory=list)


@dataclass
class FitArguments:
    """The checked and cast arguments of one ``fit`` call (see :meth:`Engine.fit_arguments`)."""

    X: np.ndarray
    Y: np.ndarray
    epochs: int
    batch_size: int
    shuffle: bool
    verbose: int
    #: (X_val, Y_val, per-sample weights of the validation data or None)
    validation: Optional[Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]]
    callbacks: List[Callback]
    #: per-sample weights of the training rows (sample_weight times class_weight), or None
    sample_weight: Optional[np.ndarray] = None


@dataclass
class EpochOutcome:
    """What one epoch's steps produced, from ``fit_epoch`` or from the reduced steps."""

    loss: float
    grad_norm: List[float]
    lr: np.ndarray
    keep_prob: np.ndarray
    health: Dict[str, Any]
    diverged: Optional[Tuple[int, float]] = None  # (step, loss) of the first non-finite step
    targets: Optional[np.ndarray] = None  # the global targets of the predictions (distributed: the ranks' rows)
    #: per-sample decay (decay_per_sample): each step's 0.5 * wd * ||theta||^2, averaged as the loss
    #: (the core's EpochResult.penalty; 0 from the reduced steps)
    penalty: float = 0.0


class Engine:
    """The core network of one model and the Python around it (see the module docstring).

    Parameters
    ----------
    layers : list of Layer
        The model's layer list (shared: layers added before :meth:`build` count).
    input_dim : int or None
        Built at once when given, else on the first data (:meth:`inputs`).
    dtype : {"float32", "float64"}
    seed : int
    owner : LayerOwner, optional
        Given to the layers when built (their ``W``/``b`` then read the views).

    Examples
    --------
    >>> import pybackprop as bp
    >>> e = Engine([bp.Dense(2)], input_dim=3, dtype="float64", seed=0)
    >>> e.compile("mse", bp.SGD(lr=0.1))
    >>> e.W(0).shape, e.state().counters["step_counter"]
    ((3, 2), 0)
    """

    def __init__(self, layers: List[Layer], input_dim: Optional[int], dtype: str, seed: int,
                 owner: Optional[LayerOwner] = None) -> None:
        self.layers, self.dtype, self.seed, self.owner = layers, dtype, seed, owner
        self.np_dtype = np.dtype(dtype)
        self.input_dim: Optional[int] = None
        self.net: Any = None  # the _core network, once built
        self.loss: Optional[str] = None
        self.optimizer: Optional[_optimizers.Optimizer] = None
        self.metrics: List[_metrics.Metric] = []  # compile(metrics=...), in order
        self.weight_norm = "rows"  # see set_weight_norm
        #: the last epoch's EpochOutcome.penalty (read by callbacks at on_epoch_end)
        self.last_penalty = 0.0
        if input_dim is not None and layers:
            self.build(input_dim)

    # ------------------------------------------------------------------ structure
    @property
    def built(self) -> bool:
        return self.net is not None

    @property
    def dense(self) -> List[Dense]:
        """The Dense layers in order (index d of the core)."""
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    @property
    def dropouts(self) -> List[Dropout]:
        """The Dropout layers in order."""
        return [layer for layer in self.layers if isinstance(layer, Dropout)]

    @property
    def output_dim(self) -> int:
        dense = self.dense
        if not dense:
            raise RuntimeError("the model has no Dense layer")
        return dense[-1].units

    def build(self, input_dim: int, init: bool = True) -> None:
        """Create the core network; draw the initial weights unless ``init`` is False."""
        input_dim = check_int("input_dim", input_dim, minimum=1)
        if self.built:
            if input_dim != self.input_dim:
                fail("input_dim", f"{self.input_dim} (the model is built)", input_dim)
            return
        dense = self.dense
        if not dense:
            raise RuntimeError("the model has no Dense layer: add at least one")
        if isinstance(self.layers[-1], (Dropout, Normalization)):
            last = type(self.layers[-1]).__name__
            fail("layers", f"a Dense layer after the last {last} ({last} cannot be the output)", self.layers[-1])
        specs: List[Any] = []
        pending: Optional[Tuple[int, Dropout]] = None  # a Dropout waiting for its Dense layer
        pending_norm: Optional[Tuple[int, Normalization]] = None  # a BatchNorm/LayerNorm waiting for it
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dropout):
                if pending is not None:
                    fail(f"layers[{i}]", "a Dense layer between two Dropout layers", layer)
                pending = (i, layer)
                continue
            if isinstance(layer, Normalization):
                if pending_norm is not None:
                    fail(f"layers[{i}]", "a Dense layer between two normalisation layers", layer)
                if pending is not None:
                    fail(f"layers[{i}]", f"the {type(layer).__name__} before the Dropout (Dense, "
                         f"{type(layer).__name__}, Dropout, Dense; a normalisation after a Dropout "
                         "is not supported)", layer)
                pending_norm = (i, layer)
                continue
            assert isinstance(layer, Dense)
            d = len(specs)  # index of this Dense layer in the core
            if layer.activation.name == "softmax" and d != len(dense) - 1:
                fail(f"activation of layer {i}", "softmax only on the output layer", "softmax")
            fan_in = input_dim if d == 0 else dense[d - 1].units
            if not isinstance(layer.init, str) and layer.init.shape != (fan_in, layer.units):
                fail(f"init of layer {i}", f"an array of shape {(fan_in, layer.units)}", layer.init)
            if not isinstance(layer.init, str):
                with np.errstate(over="ignore"):  # finite in float64 but too large for float32
                    finite = np.isfinite(layer.init.astype(self.dtype)).all()
                if not finite:
                    fail(f"init of layer {i}", f"values finite in {self.dtype}", layer.init)
            drop = None
            if pending is not None:
                j, dropout = pending
                drop = _core.DropoutSpec(keep_prob=dropout.current_keep_prob(),
                                         inverted=dropout.scaling == "inverted",
                                         per_batch=dropout.mask == "per_batch", index=j)
                dropout._index, pending = d, None
            norm = None
            if pending_norm is not None:
                j, normalization = pending_norm
                norm = _core.NormSpec(kind=normalization.kind, eps=normalization.eps,
                                      momentum=getattr(normalization, "momentum", 0.1),
                                      affine=normalization.affine, index=j)
                normalization._index, pending_norm = d, None
            p = layer.activation.params()
            specs.append(_core.DenseSpec(units=layer.units, activation=layer.activation.name,
                                         alpha=p.get("alpha", 0.0), sigma=p.get("sigma", 0.0),
                                         use_bias=layer.use_bias, index=i, dropout=drop, norm=norm))
            layer._index = d
        net = CORE_CLASSES[self.dtype](input_dim, specs, self.seed)
        if init:
            for d, layer in enumerate(dense):
                if isinstance(layer.init, str):
                    net.init_layer(d, layer.init)
                else:
                    net.W(d)[...] = layer.init
        net.weight_norm = self.weight_norm
        self.net, self.input_dim = net, input_dim
        if self.owner is not None:
            for layer in self.layers:
                layer._model = self.owner
        if self.loss is not None:
            self._configure_core()

    def require_built(self) -> Any:
        """The core network (RuntimeError when the model is not built yet)."""
        if self.net is None:
            raise RuntimeError("the model is not built yet: give input_dim or call build() first")
        return self.net

    def W(self, d: int) -> np.ndarray:
        """The weight view of Dense layer ``d`` (into the parameter arena)."""
        return self.require_built().W(d)  # type: ignore[no-any-return]

    def b(self, d: int) -> Optional[np.ndarray]:
        """The bias view of Dense layer ``d`` (None without bias)."""
        return self.require_built().b(d)  # type: ignore[no-any-return]

    def norm_view(self, d: int, name: str) -> Optional[np.ndarray]:
        """A view of the normalisation in front of Dense layer ``d``: ``gamma``, ``beta``,
        ``running_mean`` or ``running_var`` (None where it has none)."""
        return getattr(self.require_built(), name)(d)  # type: ignore[no-any-return]

    @property
    def norms(self) -> List[Normalization]:
        """The BatchNorm and LayerNorm layers in order."""
        return [layer for layer in self.layers if isinstance(layer, Normalization)]

    def fan_in(self, d: int) -> int:
        """Number of inputs of Dense layer ``d``."""
        return int(self.input_dim or 0) if d == 0 else self.dense[d - 1].units

    def keep_probs(self) -> List[float]:
        """Each Dropout's current keep probability, in layer order."""
        net = self.require_built()
        return [float(net.keep_prob(d._index)) for d in self.dropouts]

    def set_keep_probs(self, values: Sequence[float]) -> None:
        """Set each Dropout's keep probability (in layer order) in the core."""
        net = self.require_built()
        for dropout, p in zip(self.dropouts, values):
            net.set_keep_prob(dropout._index, float(p))

    # ------------------------------------------------------------------ loss and optimiser
    def compile(self, loss: str, optimizer: Any, metrics: Any = None) -> None:
        """Set the loss, the optimiser (its state reset) and the metrics.

        All or nothing: the loss, the output pairing, the metrics and the
        optimiser's core configuration (a schedule's lr at t = 0 included) are
        checked, and the core accepts the optimiser, before anything of this
        engine changes; a refused compile leaves the previous loss, optimiser,
        metrics and state.
        """
        loss = check_choice("loss", loss, LOSSES)
        metric_list = _metrics.get_list(metrics, RESERVED_KEYS)
        optimizer = _optimizers.get(optimizer)
        if self.dense:
            check_output_activation(loss, self.dense[-1].activation.name)
        config = optimizer.core_config()  # evaluates a schedule's lr(0)
        check_float("lr" if not isinstance(optimizer.lr, _schedules.Schedule) else "lr (schedule value at t=0)",
                    config.lr, minimum=0.0)
        if self.built:
            # set_optimizer refuses a config without changing the core; set_loss cannot refuse once
            # check_output_activation passed (the same rule): nothing can fail after the first write.
            self.net.set_optimizer(config)
            self.net.set_loss(loss)
            self.net.reset_optimizer_state()
        self.loss, self.optimizer, self.metrics = loss, optimizer, metric_list

    def metric_values(self, Yc: np.ndarray, pred: np.ndarray, prefix: str = "") -> Dict[str, float]:
        """``{prefix + name: value}`` of every compiled metric on targets ``Yc`` and outputs ``pred``."""
        return {prefix + m.name: m(Yc, pred, self.loss) for m in self.metrics}

    def _configure_core(self) -> None:
        assert self.loss is not None
        self.net.set_loss(self.loss)
        self.configure_optimizer(reset_state=True)

    def scale_optimizer_state(self, name: str, factor: float) -> None:
        """Multiply the optimiser state ``name`` (one of ``OPTIMIZER_STATE`` of the compiled
        optimiser, e.g. SGD's ``"momentum_buffer"``) by ``factor`` in place.

        With torch's SGD rule (``buf = m * buf + g``, step ``-lr * buf``) a buffer scaled by
        ``old_lr / new_lr`` when the learning rate changes makes the steps those of the rule that
        keeps a velocity ``v = m * v - lr * g`` (scikit-learn's ``SGDOptimizer``).

        >>> import pybackprop as bp
        >>> e = Engine([bp.Dense(1)], input_dim=2, dtype="float64", seed=0)
        >>> e.compile("mse", bp.SGD(momentum=0.9))
        >>> e.scale_optimizer_state("momentum_buffer", 0.5)
        >>> e.scale_optimizer_state("exp_avg", 0.5)
        Traceback (most recent call last):
        ...
        ValueError: name: expected one of ['momentum_buffer'] (the state of SGD), got 'exp_avg' (str)
        """
        net = self.require_built()
        names = list(self._state_names())
        if name not in names:
            fail("name", f"one of {names} (the state of {type(self.optimizer).__name__})", name)
        factor = check_float("factor", factor)
        arena = (net.state1, net.state2)[names.index(name)]()
        arena *= factor

    def set_weight_norm(self, mode: str) -> None:
        """What a batch's loss and gradient are divided by when it has per-sample weights ``w``.

        ``"rows"`` (the default, Keras's ``sum_over_batch_size``): ``sum(w * l) / rows``;
        ``"weight_sum"`` (scikit-learn's MLP): ``sum(w * l) / sum(w)`` of each batch, a batch whose
        weights sum to zero having loss 0 and making no update. It applies in ``fit``'s epochs,
        ``train_step``, ``loss_and_gradients`` and ``evaluate`` (there over all the rows), and
        ``decay_per_sample`` weight decay divides by the same count. Without weights both are
        the rows. An engine setting (not saved with the model).

        >>> import numpy as np, pybackprop as bp
        >>> e = Engine([bp.Dense(1, init="zeros")], input_dim=1, dtype="float64", seed=0)
        >>> e.compile("mse", bp.SGD())
        >>> X, Y = e.data(np.ones((2, 1)), np.array([[1.0], [3.0]]))
        >>> w = np.array([1.0, 3.0])
        >>> e.evaluate(X, Y, w), e.set_weight_norm("weight_sum"), e.evaluate(X, Y, w)
        (14.0, None, 7.0)
        """
        if mode not in ("rows", "weight_sum"):
            fail("weight_norm", "'rows' or 'weight_sum'", mode)
        self.weight_norm = mode
        if self.built:
            self.net.weight_norm = mode

    def configure_optimizer(self, reset_state: bool = False) -> None:
        """Give the core the optimiser's current hyperparameters (after a change such as
        ``optimizer.lr = ...``), keeping its state unless ``reset_state``."""
        assert self.optimizer is not None
        if self.built:
            self.net.set_optimizer(self.optimizer.core_config())
            if reset_state:
                self.net.reset_optimizer_state()

    def require_compiled(self) -> None:
        if self.loss is None:
            raise RuntimeError("the model is not compiled: call model.compile(loss=..., optimizer=...) first")

    # ------------------------------------------------------------------ schedules
    def _time(self, schedule: _schedules.Schedule) -> int:
        return int(self.net.epoch_counter if schedule.unit == "epoch" else self.net.step_counter)

    def lr_now(self) -> float:
        """The learning rate of the next step (a schedule evaluated at the current time)."""
        assert self.optimizer is not None
        lr = self.optimizer.lr
        if isinstance(lr, _schedules.Schedule):
            lr = lr(self._time(lr))
        return check_float("lr (schedule value)", lr, minimum=0.0)

    def _momentum_cycle(self) -> Optional[_schedules.OneCycle]:
        """The optimiser's OneCycle that cycles its momentum (beta1), or None (also when that
        cycle's momenta are all 0: the optimiser is then configured without momentum)."""
        assert self.optimizer is not None
        cycle = self.optimizer.momentum_schedule()
        if cycle is None or max(cycle.base_momentum, cycle.max_momentum) == 0:
            return None
        return cycle

    def momentum_now(self) -> Optional[float]:
        """The momentum (Adam's beta1) of the next step when a OneCycle cycles it, else None."""
        cycle = self._momentum_cycle()
        return None if cycle is None else cycle.momentum(self._time(cycle))

    def epoch_momentum(self, epoch: int, first_step: int, steps: int) -> Optional[np.ndarray]:
        """Per-step momentum (Adam's beta1) for the coming epoch when a OneCycle cycles it, else None."""
        cycle = self._momentum_cycle()
        return None if cycle is None else cycle.momentum_values(epoch, first_step, steps)

    def set_keep_probs_now(self) -> None:
        """Give scheduled Dropout keep probabilities their value at the current time to the core."""
        for dropout in self.dropouts:
            if isinstance(dropout.keep_prob, _schedules.Schedule):
                value = dropout.keep_prob(self._time(dropout.keep_prob))
                _schedules.check_values("keep_prob", np.array([value]), 0.0, 1.0, low_inclusive=False)
                self.net.set_keep_prob(dropout._index, value)

    def epoch_schedules(self, epoch: int, first_step: int, steps: int
                        ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """Per-step lr and keep_prob arrays for the coming epoch (None when constant)."""
        assert self.optimizer is not None
        lr = None
        if isinstance(self.optimizer.lr, _schedules.Schedule):
            lr = self.optimizer.lr.values(epoch, first_step, steps)
            _schedules.check_values("lr", lr, 0.0, np.inf, low_inclusive=True)
        dropouts = self.dropouts
        keep = None
        if any(isinstance(d.keep_prob, _schedules.Schedule) for d in dropouts):
            keep = np.empty((steps, len(dropouts)))
            for k, d in enumerate(dropouts):
                p = d.keep_prob
                keep[:, k] = p.values(epoch, first_step, steps) if isinstance(p, _schedules.Schedule) \
                    else float(p)  # type: ignore[arg-type]
            _schedules.check_values("keep_prob", keep.ravel(), 0.0, 1.0, low_inclusive=False)
        return lr, keep

    # ------------------------------------------------------------------ data
    def predict(self, X: Any, out: Optional[np.ndarray] = None) -> np.ndarray:
        """The outputs of ``X`` by the core (:meth:`Sequential.predict`'s checks and call).

        An ``X`` already as the core takes it (an ndarray of the model's dtype, 2-D,
        C-contiguous, non-empty, of ``input_dim`` columns and finite) goes to the core as it is:
        its checks are a few attribute reads and one vectorised pass in C++, so a one-sample
        predict costs little more than the forward pass. Anything else goes through
        :meth:`inputs` (a copy in the dtype, or the standard error naming ``X``)."""
        net = self.net
        if (net is not None and type(X) is np.ndarray and X.dtype is self.np_dtype and X.ndim == 2
                and X.flags.c_contiguous and X.shape[0] and X.shape[1] == self.input_dim and _core.all_finite(X)):
            return net.predict(X) if out is None else net.predict(X, out)  # type: ignore[no-any-return]
        Xc = self.inputs(X)  # first: it builds an unbuilt model
        if out is None:
            return self.require_built().predict(Xc)  # type: ignore[no-any-return]
        if isinstance(out, np.ndarray) and isinstance(X, np.ndarray) and X is not Xc \
                and np.may_share_memory(out, X):  # X was cast to Xc: the core sees only the copy
            raise ValueError("out: expected an array not sharing memory with X, got an array overlapping X")
        return self.require_built().predict(Xc, out)  # type: ignore[no-any-return]

    def inputs(self, X: Any, name: str = "X") -> np.ndarray:
        """``X`` checked and cast to a C-contiguous matrix of the dtype (builds an unbuilt model)."""
        if not self.built:
            # Check the data fully before building, so that bad data never builds the model.
            arr = as_matrix(name, X, self.dtype)
            self.build(int(arr.shape[1]))
            return arr
        return as_matrix(name, X, self.dtype, columns=self.input_dim)

    def targets(self, y: Any, n: int, name: str = "y") -> np.ndarray:
        """Targets as (n, output_dim) of the model dtype (one-hot for class labels)."""
        self.require_compiled()
        arr = as_numeric_array(name, y)
        k = self.output_dim
        if arr.ndim == 0 or arr.ndim > 2:
            fail(name, f"a 1-D or 2-D array with {n} rows", arr)
        if arr.shape[0] != n:
            fail(name, f"{n} rows, as many as X", arr)
        if self.loss == "categorical_crossentropy" and arr.ndim == 1:
            labels = arr
            if not np.isfinite(labels).all() or (labels != np.round(labels)).any() \
                    or labels.min() < 0 or labels.max() >= k:
                fail(name, f"integer class labels in [0, {k - 1}] (or one-hot rows of {k} columns)", arr)
            onehot = np.zeros((n, k), dtype=self.dtype)
            onehot[np.arange(n), labels.astype(np.int64)] = 1
            return onehot
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        out = as_matrix(name, arr, self.dtype, columns=k, columns_are="outputs")
        if self.loss == "categorical_crossentropy":
            # The fused gradient softmax(z) - y is the loss's gradient only for rows summing to 1.
            tol = 100 * np.finfo(self.dtype).eps * k
            if (out < 0).any() or (np.abs(out.sum(axis=1, dtype=np.float64) - 1) > tol).any():
                fail(name, f"one-hot rows of {k} columns (or class probabilities summing to 1), "
                     f"or integer class labels in [0, {k - 1}]", arr)
        return out

    def sample_weights(self, sample_weight: Any, n: int, name: str = "sample_weight") -> Optional[np.ndarray]:
        """Per-sample weights checked (``n`` finite values >= 0, not all zero) and cast to the dtype;
        None stays None (unweighted). See :func:`check_sample_weight`."""
        return check_sample_weight(sample_weight, n, self.dtype, name)

    def class_weights(self, class_weight: Any, Yc: np.ndarray) -> np.ndarray:
        """Each sample's weight from ``class_weight`` ({class: weight}; classes not named weigh 1), as
        Keras: the class of a row is its target's argmax (categorical_crossentropy) or its rounded
        target (binary_crossentropy with one output)."""
        if not isinstance(class_weight, dict):
            fail("class_weight", "a dict {class label: weight}", class_weight, TypeError)
        k = self.output_dim
        if self.loss == "categorical_crossentropy":
            classes, count = np.argmax(Yc, axis=1), k
        elif self.loss == "binary_crossentropy" and k == 1:
            classes, count = np.rint(Yc[:, 0]).astype(np.int64), 2
        else:
            fail("class_weight", "a classification loss: categorical_crossentropy, or binary_crossentropy "
                 "with one output", f"loss {self.loss!r} with {k} output(s)")
        table = np.ones(count)
        for key, value in class_weight.items():
            if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)) \
                    or not 0 <= key < count:
                fail("class_weight", f"class labels in [0, {count - 1}] as keys", key)
            table[int(key)] = check_float(f"class_weight[{key}]", value, minimum=0.0)
        return table[np.clip(classes, 0, count - 1)]

    def data(self, X: Any, y: Any) -> Tuple[np.ndarray, np.ndarray]:
        """Inputs and targets of one data set (the model must be compiled)."""
        self.require_compiled()
        Xc = self.inputs(X)
        return Xc, self.targets(y, Xc.shape[0])

    def masks_list(self, masks: Any, n: int) -> List[Optional[np.ndarray]]:
        """Dropout masks keyed by layer index -> the core's list (one entry per Dense layer)."""
        if not isinstance(masks, dict):
            fail("masks", "a dict {Dropout layer index: 0/1 array}", masks, TypeError)
        out: List[Optional[np.ndarray]] = [None] * len(self.dense)
        for key, value in masks.items():
            if not isinstance(key, int) or not 0 <= key < len(self.layers) \
                    or not isinstance(self.layers[key], Dropout):
                fail("masks", "keys that are indices of Dropout layers in model.layers", key)
            dropout = self.layers[key]
            fan = self.fan_in(dropout._index)
            arr = as_numeric_array(f"masks[{key}]", value)
            try:
                arr = np.broadcast_to(arr, (n, fan))
            except ValueError:
                fail(f"masks[{key}]", f"an array of shape ({n}, {fan}) or ({fan},)", arr)
            if not np.isin(arr, (0, 1)).all():
                fail(f"masks[{key}]", "only 0 (dropped) and 1 (kept)", arr)
            out[dropout._index] = np.ascontiguousarray(arr, dtype=self.dtype)
        return out

    def fit_arguments(self, X: Any, y: Any, epochs: Any = 1, batch_size: Any = 32, shuffle: Any = True,
                      verbose: Any = 1, validation_data: Optional[Tuple[Any, Any]] = None,
                      validation_split: Any = 0.0, callbacks: Optional[Sequence[Any]] = None,
                      validation: bool = True, sample_weight: Any = None, class_weight: Any = None
                      ) -> FitArguments:
        """Check and cast the arguments of ``fit`` (the one public boundary of these checks).

        ``validation=False`` skips the validation data (distributed training:
        only the root rank evaluates it). The training rows' weights are
        ``sample_weight`` times ``class_weight`` of each row's class; a
        ``validation_split`` splits ``sample_weight`` with the rows (the held-out
        part weights ``val_loss``; class weights are for training only, as Keras).
        """
        Xc, Yc = self.data(X, y)
        n = Xc.shape[0]
        user_w = self.sample_weights(sample_weight, n)
        W = user_w
        if class_weight is not None:
            per_class = self.class_weights(class_weight, Yc)
            W = per_class if user_w is None else user_w * per_class
            W = self.sample_weights(W, n, "sample_weight (times class_weight)")
        epochs = check_int("epochs", epochs, minimum=0)
        batch_size = check_int("batch_size", batch_size, minimum=1)
        shuffle = check_bool("shuffle", shuffle)
        verbose = check_int("verbose", verbose, minimum=0)
        validation_split = check_float("validation_split", validation_split, minimum=0.0, maximum=1.0,
                                       max_inclusive=False)
        cb_list = list(callbacks or [])
        for i, cb in enumerate(cb_list):
            if not isinstance(cb, Callback):
                fail(f"callbacks[{i}]", "a pybackprop.callbacks.Callback", cb, TypeError)
        val: Optional[Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]] = None
        if validation_data is not None and validation:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                fail("validation_data", "a tuple (X_val, y_val) or (X_val, y_val, sample_weight_val)",
                     validation_data, TypeError)
            Xv = self.inputs(validation_data[0], "validation_data[0]")
            Yv = self.targets(validation_data[1], Xv.shape[0], "validation_data[1]")
            Wv = self.sample_weights(validation_data[2], Xv.shape[0], "validation_data[2]") \
                if len(validation_data) == 3 else None
            val = (Xv, Yv, Wv)
        elif validation_data is None and validation_split > 0:
            cut = int(round(Xc.shape[0] * (1.0 - validation_split)))
            if not 0 < cut < Xc.shape[0]:
                fail("validation_split", f"a fraction leaving samples on both sides of {Xc.shape[0]}",
                     validation_split)
            Wv = None
            if user_w is not None:
                Wv = self.sample_weights(user_w[cut:], n - cut, "sample_weight (its validation_split part)")
            if W is not None:
                W = self.sample_weights(W[:cut], cut, "sample_weight (its training part after validation_split)")
            val = (Xc[cut:], Yc[cut:], Wv)
            Xc, Yc = np.ascontiguousarray(Xc[:cut]), np.ascontiguousarray(Yc[:cut])
        return FitArguments(Xc, Yc, epochs, batch_size, shuffle, verbose, val, cb_list, W)

    def evaluate(self, Xc: np.ndarray, Yc: np.ndarray, sample_weight: Optional[np.ndarray] = None) -> Any:
        """The loss of cast data (weighted when ``sample_weight`` is given): a float, or with
        metrics compiled a dict ``{"loss": ..., name: ...}``."""
        loss = float(self.net.evaluate(Xc, Yc, sample_weight))
        if not self.metrics:
            return loss
        return {"loss": loss, **self.metric_values(Yc, self.net.predict(Xc))}

    def check_batchnorm_batches(self, n: int, batch_size: int, batches: Optional[List[np.ndarray]] = None) -> None:
        """ValueError naming the first BatchNorm when an epoch of ``n`` samples would have a
        training batch of one (torch refuses it too: one sample has no variance). ``batches``: the
        epoch's batches when they are not fit's slices of ``batch_size`` (a reducer's)."""
        bs = min(batch_size, n)
        smallest = (n % bs or bs) if batches is None else min(b.size for b in batches)
        if smallest >= 2:
            return
        for i, layer in enumerate(self.layers):
            if isinstance(layer, BatchNorm):
                raise ValueError(
                    f"BatchNorm layer {i}: expected training batches of more than one sample, got a batch of one "
                    f"({n} samples in batches of {bs}); use another batch_size (as torch, BatchNorm cannot "
                    "train on one sample)")

    # ------------------------------------------------------------------ steps
    def train_step(self, Xc: np.ndarray, Yc: np.ndarray, sample_weight: Optional[np.ndarray] = None) -> float:
        """One update on one batch (cast data, checked weights or None); DivergenceError when it is
        not applied."""
        lr, momentum = self.lr_now(), self.momentum_now()
        self.set_keep_probs_now()
        loss, applied = self.net.train_step(Xc, Yc, lr, sample_weight, momentum)
        if not applied:
            raise DivergenceError(self.net.epoch_counter, 0, loss)
        return float(loss)

    def loss_and_gradients(self, Xc: np.ndarray, Yc: np.ndarray, training: bool = False,
                           masks: Optional[Dict[int, Any]] = None, sample_weight: Optional[np.ndarray] = None
                           ) -> Tuple[float, List[Dict[str, np.ndarray]], Dict[int, np.ndarray]]:
        """Loss, per-layer gradient dicts (one per entry of layers) and the masks used (by layer index);
        the loss weighted by ``sample_weight`` (checked, cast) when given."""
        if masks is not None and not training:
            fail("masks", "training=True (dropout masks are not used in inference mode)", masks)
        mask_list = None if masks is None else self.masks_list(masks, Xc.shape[0])
        if training:
            self.set_keep_probs_now()
        loss, core_grads, core_masks = self.net.loss_and_gradients(Xc, Yc, training, mask_list,
                                                                   sample_weight=sample_weight)
        grads: List[Dict[str, np.ndarray]] = []
        for layer in self.layers:
            g: Dict[str, np.ndarray] = {}
            if isinstance(layer, Dense):
                g["W"], *bias = core_grads[layer._index]
                if bias:
                    g["b"] = bias[0]
            elif isinstance(layer, Normalization) and layer.affine:
                g["weight"] = self.net.dgamma(layer._index).copy()
                g["bias"] = self.net.dbeta(layer._index).copy()
            grads.append(g)
        dropout_positions = [i for i, layer in enumerate(self.layers) if isinstance(layer, Dropout)]
        return float(loss), grads, dict(zip(dropout_positions, core_masks))

    # ------------------------------------------------------------------ flat parameters
    def arena_positions(self) -> List[Tuple[np.ndarray, Optional[np.ndarray]]]:
        """Per Dense layer, the positions of its ``W`` (row-major) and ``b`` (None without bias)
        in the flat parameter arena, which are also their positions in the gradient arena.

        Concatenate them in the order a flat vector should have (e.g. every W, then every b, as
        scikit-learn packs its MLP) and give the result to :meth:`flat_loss_and_gradient`.

        >>> import pybackprop as bp
        >>> e = Engine([bp.Dense(2), bp.Dense(1)], input_dim=3, dtype="float64", seed=0)
        >>> [(W.size, b.size) for W, b in e.arena_positions()]
        [(6, 2), (2, 1)]
        """
        net = self.require_built()
        params = net.params()
        base, size = params.__array_interface__["data"][0], params.itemsize

        def positions(view: np.ndarray) -> np.ndarray:
            start = (view.__array_interface__["data"][0] - base) // size
            assert np.shares_memory(view, params) and view.flags.c_contiguous
            return np.arange(start, start + view.size, dtype=np.intp)

        out: List[Tuple[np.ndarray, Optional[np.ndarray]]] = []
        for d in range(len(self.dense)):
            b = net.b(d)
            out.append((positions(net.W(d)), None if b is None else positions(b)))
        return out

    def last_outputs(self) -> np.ndarray:
        """A copy of the output layer's activations of the last forward pass (e.g. the
        probabilities behind :meth:`flat_loss_and_gradient`'s loss), shape (rows, outputs)."""
        return self.require_built().A(len(self.dense) - 1)  # type: ignore[no-any-return]

    def flat_loss_and_gradient(self, Xc: np.ndarray, Yc: np.ndarray, index: np.ndarray, theta: np.ndarray,
                               sample_weight: Optional[np.ndarray] = None) -> Tuple[float, np.ndarray]:
        """The loss over all rows of ``(Xc, Yc)`` and its gradient at the parameters ``theta``.

        ``theta`` (float64 or the model's dtype) is written at positions ``index`` of the
        parameter arena (see :meth:`arena_positions`; the other entries keep their values), then
        ONE core call computes the full-batch loss and every gradient in inference mode (no
        dropout, no weight decay: the compiled loss only); the gradient comes back as float64 at
        the same positions. This is the objective of a full-batch optimiser such as
        ``scipy.optimize.minimize``: no Python per layer. ``Xc``/``Yc`` are cast data (as
        :meth:`data` returns them), ``sample_weight`` checked weights (:meth:`sample_weights`:
        the loss ``sum(w * l) / rows``, see :meth:`fit`). The parameters stay at ``theta``.

        >>> import numpy as np, pybackprop as bp
        >>> e = Engine([bp.Dense(1)], input_dim=2, dtype="float64", seed=0)
        >>> e.compile("mse", bp.SGD())
        >>> idx = np.concatenate([p for layer in e.arena_positions() for p in layer])
        >>> X, Y = e.data(np.eye(2), np.array([[1.0], [3.0]]))
        >>> e.flat_loss_and_gradient(X, Y, idx, np.zeros(3))   # W = 0, b = 0: loss (1 + 9) / 2
        (5.0, array([-1., -3., -4.]))
        """
        net = self.require_built()
        self.require_compiled()
        net.params()[index] = theta
        loss = net.loss_and_gradients(Xc, Yc, False, None, copy=False, sample_weight=sample_weight)[0]
        return float(loss), np.asarray(net.grads()[index], dtype=np.float64)

    # ------------------------------------------------------------------ the fit loop
    def fit(self, owner: TrainingOwner, args: FitArguments, reducer: Optional[GradientReducer] = None) -> History:
        """Train for ``args.epochs`` epochs; the one epoch loop of pybackprop.

        ``owner`` (the Sequential) is what the callbacks see as ``model``; its
        ``history`` and ``stop_training`` are set here. Without ``reducer`` the
        core's ``fit_epoch`` runs each epoch; with one, the steps run here and
        the reducer sums the gradients over the ranks (see :class:`GradientReducer`).
        """
        net, Xc, Yc = self.net, args.X, args.Y
        root = reducer is None or reducer.root
        n = Xc.shape[0] if reducer is None else reducer.samples
        # the global batches, before anything starts
        self.check_batchnorm_batches(n, args.batch_size, None if reducer is None
                                     else reducer.batches(net.epoch_counter, args.batch_size, False))
        batch = min(args.batch_size, n)
        steps = -(-n // batch) if reducer is None else reducer.steps(args.batch_size)
        history = History()
        history.params = {"epochs": args.epochs, "batch_size": args.batch_size, "samples": n, "steps": steps,
                          **(reducer.params if reducer is not None else {})}
        owner.history, owner.stop_training = history, False
        callbacks = ([ProgressBar()] if args.verbose and root else []) + args.callbacks
        warned = False
        # Metrics: each row's training-mode output of the epoch, written by the core (or by the reduced steps)
        pred = np.empty((n, Yc.shape[1]), dtype=Yc.dtype) if self.metrics else None
        for cb in callbacks:
            cb.set_model(owner)  # type: ignore[arg-type]  # a Sequential in practice
            cb.on_train_begin()
        for _ in range(args.epochs):
            epoch = net.epoch_counter
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            lr_steps, keep_steps = self.epoch_schedules(epoch, net.step_counter, steps)
            momentum_steps = self.epoch_momentum(epoch, net.step_counter, steps)
            if reducer is None:
                out = self._core_epoch(Xc, Yc, batch, args.shuffle, lr_steps, keep_steps, args.sample_weight, pred,
                                       momentum_steps)
            else:
                out = self._reduced_epoch(reducer, Xc, Yc, n, args.batch_size, steps, args.shuffle, lr_steps,
                                          keep_steps, epoch, history, args.sample_weight, pred, momentum_steps)
            if out.diverged is not None:
                step, bad_loss = out.diverged
                stop = any([cb.on_divergence(epoch, step, bad_loss) for cb in callbacks])  # every one is told
                if reducer is not None:  # root_only callbacks answer on the root only: its decision holds
                    stop = reducer.agree(stop)
                if stop:
                    history.append(epoch, {"loss": bad_loss})
                    owner.stop_training = True
                    break
                raise DivergenceError(epoch, step, bad_loss, history if root else None)
            logs: Dict[str, Any] = {"loss": out.loss, "grad_norm": out.grad_norm, "lr": float(out.lr[0])}
            self.last_penalty = out.penalty
            step_logs = {"lr": out.lr, "keep_prob": out.keep_prob}
            if momentum_steps is not None:  # as the lr: the epoch's first step's, and every step's
                logs["momentum"] = float(momentum_steps[0])
                step_logs["momentum"] = momentum_steps[:len(out.lr)]
            logs.update(out.health)
            if root and not warned:
                warned = warn_gradient_flow(out.grad_norm, epoch)
            if out.keep_prob.shape[1]:
                logs["keep_prob"] = [float(v) for v in out.keep_prob[0]]
            if pred is not None and root:
                logs.update(self.metric_values(out.targets if out.targets is not None else Yc, pred))
            if args.validation is not None:
                logs["val_loss"] = float(net.evaluate(*args.validation))
                if self.metrics:
                    logs.update(self.metric_values(args.validation[1], net.predict(args.validation[0]), "val_"))
            if reducer is not None:
                logs = reducer.agree(logs)  # the root's val_loss reaches every rank's callbacks
            history.append(epoch, logs, step_logs)
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            stop = owner.stop_training if reducer is None else reducer.agree(owner.stop_training)
            if stop:
                owner.stop_training = True
                break
        for cb in callbacks:
            cb.on_train_end()
        return history

    def _core_epoch(self, Xc: np.ndarray, Yc: np.ndarray, batch: int, shuffle: bool,
                    lr_steps: Optional[np.ndarray], keep_steps: Optional[np.ndarray],
                    sample_weight: Optional[np.ndarray] = None, pred: Optional[np.ndarray] = None,
                    momentum_steps: Optional[np.ndarray] = None) -> EpochOutcome:
        r = self.net.fit_epoch(Xc, Yc, batch, shuffle, lr_steps, keep_steps, sample_weight, pred,
                               momentum_steps)  # an EpochResult
        health = r.health  # each read of a result's attribute converts it: read once
        return EpochOutcome(r.loss, list(r.grad_norm), r.lr, r.keep_prob, {key: health[key] for key in HEALTH_KEYS},
                            (r.diverged_step, r.diverged_loss) if r.diverged else None, penalty=r.penalty)

    def _reduced_epoch(self, reducer: GradientReducer, Xc: np.ndarray, Yc: np.ndarray, n: int, batch_size: int,
                       steps: int, shuffle: bool, lr_steps: Optional[np.ndarray], keep_steps: Optional[np.ndarray],
                       epoch: int, history: History, sample_weight: Optional[np.ndarray] = None,
                       pred: Optional[np.ndarray] = None, momentum_steps: Optional[np.ndarray] = None
                       ) -> EpochOutcome:
        """One epoch step by step, the gradients summed over the ranks by ``reducer``.

        With ``pred`` (n_global, outputs) the metrics' rows are gathered: each rank writes the
        outputs (and targets) of the rows it computes at their global positions, zeros elsewhere,
        and one all-reduce (a sum: every row comes from exactly one rank) joins them.

        BatchNorm: the training statistics are the global batch's. For each such layer the core
        hands the reducer its rows' moments (n, μ, M2) to gather from every rank (``gather_stats``;
        the core combines them in rank order), and in the backward Σdx̂ and Σdx̂·x̂ in one buffer to
        sum (``sum_stats``; not for a BatchNorm of the network's input); those sums are of this
        rank's mean loss, so they are weighed by its share of the batch for the sum (and back after).
        """
        batchnorms = [layer._index for layer in self.layers if isinstance(layer, BatchNorm)]
        try:
            return self._reduced_steps(reducer, Xc, Yc, n, batch_size, steps, shuffle, lr_steps, keep_steps,
                                       epoch, history, batchnorms, sample_weight, pred, momentum_steps)
        finally:
            if batchnorms:
                self.net.set_stat_sync(None, None)

    def _reduced_steps(self, reducer: GradientReducer, Xc: np.ndarray, Yc: np.ndarray, n: int, batch_size: int,
                       steps: int, shuffle: bool, lr_steps: Optional[np.ndarray], keep_steps: Optional[np.ndarray],
                       epoch: int, history: History, batchnorms: List[int], sample_weight: Optional[np.ndarray],
                       pred: Optional[np.ndarray], momentum_steps: Optional[np.ndarray]) -> EpochOutcome:
        """The steps of :meth:`_reduced_epoch`."""
        net, timings = self.net, reducer.timings
        t_epoch = time.perf_counter()
        dense, dropouts = self.dense, self.dropouts
        grads = net.grads()
        batches = reducer.batches(epoch, batch_size, shuffle)
        loss_sum = 0.0
        norm_sums = np.zeros(len(dense))
        lr_used = np.empty(steps)
        keep_used = np.empty((steps, len(dropouts)))
        update_ratio: Any = None
        targets = None
        if pred is not None:
            pred[...] = 0
            targets = np.zeros_like(pred)
        for s, batch in enumerate(batches):
            positions, rows = reducer.rows(batch)
            lr = float(lr_steps[s]) if lr_steps is not None else self.lr_now()
            momentum = float(momentum_steps[s]) if momentum_steps is not None else None
            if keep_steps is not None:
                self.set_keep_probs(keep_steps[s])
            keeps = self.keep_probs()
            t0 = time.perf_counter()
            if rows.size and batchnorms:
                share = rows.size / batch.size

                def sum_stats(v: np.ndarray, share: float = share) -> None:
                    v *= share
                    reducer.sum_stats(v)
                    v /= share

                net.set_stat_sync(reducer.gather_stats, sum_stats, batch.size, reducer.ranks)
            elif batchnorms:  # no rows here: this rank takes part in every collective with zeros (and its
                # running estimates move with the others')
                net.set_stat_sync(reducer.gather_stats, reducer.sum_stats, batch.size, reducer.ranks)
                net.stat_sync_idle()
            if rows.size:
                masks = self._masks(positions) if dropouts else None
                w = None if sample_weight is None else sample_weight[rows]
                loss = float(net.loss_and_gradients(Xc[rows], Yc[rows], True, masks, copy=False, sample_weight=w)[0])
                if pred is not None and targets is not None:
                    pred[batch[positions]] = net.A(len(dense) - 1)
                    targets[batch[positions]] = Yc[rows]
                grads *= rows.size / batch.size
                if not math.isfinite(loss):
                    grads[:1] = np.nan  # every rank then sees a non-finite reduced gradient
                loss_sum += loss * rows.size
            else:
                loss = 0.0
                grads[...] = 0
            t1 = time.perf_counter()
            timings["compute"] += t1 - t0
            reducer.allreduce(grads)
            t2 = time.perf_counter()
            norms = net.grad_norms()  # the core's per-layer norms, as single-process fit records them
            if not all(math.isfinite(x) for x in norms) and not np.isfinite(grads).all():
                net.discard_running_update()  # the running estimates too stay as after the last finite step
                return EpochOutcome(math.nan, [], lr_used, keep_used, {},
                                    (s, reducer.sum(loss * rows.size) / batch.size))
            norm_sums += norms
            if s == steps - 1:  # the last step also measures its update-to-weight ratio, as fit does
                ratio = np.zeros(len(dense))
                applied = net.apply_gradients(lr, batch.size, ratio, momentum)
                update_ratio = [float(v) for v in ratio]
            else:
                applied = net.apply_gradients(lr, batch.size, momentum=momentum)
            if not applied:  # refused (it would overflow) on every rank alike
                bad = reducer.sum(loss * rows.size) / batch.size
                raise DivergenceError(epoch, s, bad, history if reducer.root else None)
            timings["update"] += time.perf_counter() - t2
            timings["steps"] += 1
            lr_used[s] = lr
            keep_used[s] = keeps
        net.epoch_counter = epoch + 1
        total = reducer.sum(loss_sum)
        if pred is not None and targets is not None:
            reducer.allreduce(pred)
            reducer.allreduce(targets)
        weight_norm = [_norm([self.W(d)] + ([b] if (b := self.b(d)) is not None else [])) for d in range(len(dense))]
        health = {"weight_norm": weight_norm, "update_ratio": update_ratio, "nonfinite": [False] * len(dense)}
        timings["epochs"] += time.perf_counter() - t_epoch
        return EpochOutcome(total / n, [float(v) for v in norm_sums / steps], lr_used, keep_used, health,
                            targets=targets)

    def _masks(self, positions: np.ndarray) -> List[Optional[np.ndarray]]:
        """The core's masks of the coming step for rows ``positions`` of its global batch."""
        return list(self.net.dropout_masks(np.ascontiguousarray(positions, dtype=np.int64)))

    # ------------------------------------------------------------------ state
    def _state_names(self) -> Tuple[str, ...]:
        if self.optimizer is None:
            return ()
        names = OPTIMIZER_STATE[self.optimizer.kind]
        return names + (AMSGRAD_STATE,) if getattr(self.optimizer, "amsgrad", False) else names

    def state(self) -> EngineState:
        """Copies of the weights, the named optimiser state, the counters and the keep probabilities."""
        net = self.require_built()
        arenas = (net.state1, net.state2, net.state3)
        return EngineState(
            weights=list(net.get_weights()),
            optimizer={name: arenas[k]().copy() for k, name in enumerate(self._state_names())},
            counters={"epoch_counter": int(net.epoch_counter), "step_counter": int(net.step_counter),
                      "optimizer_step": int(net.optimizer_step)},
            keep_probs=self.keep_probs())

    def load_state(self, state: EngineState) -> None:
        """Write ``state`` (from :meth:`state`, possibly of another dtype) into this engine.

        Everything is checked before anything is written. Optimiser state names
        are those of ``OPTIMIZER_STATE`` (or ``state1``/``state2`` of format-1 files).
        """
        net = self.require_built()
        arenas = {"state1": net.state1, "state2": net.state2, "state3": net.state3}
        names = self._state_names()
        writes = []
        for name, arr in state.optimizer.items():
            if name in _LEGACY_STATE:
                target = arenas[name]
            elif name in names:
                target = arenas[_ARENAS[names.index(name)]]
            else:
                raise ValueError(f"optimizer state '{name}' is not one of {self.optimizer!r}'s: {list(names)}")
            label = f"optimizer state '{name}'"
            arr = as_numeric_array(label, arr)
            if arr.shape != (net.arena_size,):
                fail(label, f"shape ({net.arena_size},)", arr)
            with np.errstate(over="ignore", invalid="ignore"):  # too large for dtype: reported below
                arr = np.asarray(arr, dtype=self.dtype)
            if not np.isfinite(arr).all():
                fail(label, f"finite values (in {self.dtype})", arr)
            writes.append((target, arr))
        counters = {}
        for key in ("epoch_counter", "step_counter", "optimizer_step"):
            counters[key] = check_int(f"counters['{key}']", state.counters[key], minimum=0)
            if counters[key] >= 2**64:  # the core's counters are 64-bit unsigned
                fail(f"counters['{key}']", "an integer in [0, 2**64)", state.counters[key])
        dropouts = self.dropouts
        if len(state.keep_probs) != len(dropouts):
            fail("keep_probs", f"{len(dropouts)} keep probabilities (one per Dropout layer)", state.keep_probs)
        keep_probs = [check_float(f"keep_probs[{k}]", p, minimum=0.0, maximum=1.0, min_inclusive=False)
                      for k, p in enumerate(state.keep_probs)]
        self.set_weights(state.weights)  # checks every array before it writes any; the last check that can fail
        for target, arr in writes:
            target()[...] = arr
        net.epoch_counter = counters["epoch_counter"]
        net.step_counter = counters["step_counter"]
        net.optimizer_step = counters["optimizer_step"]
        self.set_keep_probs(keep_probs)

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set every parameter from a list shaped like :meth:`get_weights` (all checked before any is written)."""
        net = self.require_built()
        targets: List[Tuple[str, np.ndarray]] = []
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Normalization):
                names = (["gamma", "beta"] if layer.affine else []) + \
                    (["running_mean", "running_var"] if isinstance(layer, BatchNorm) else [])
                for name in names:
                    targets.append((f"weights[{len(targets)}] ({name} of layer {i})",
                                    getattr(net, name)(layer._index)))
            if isinstance(layer, Dense):
                targets.append((f"weights[{len(targets)}] (W of layer {i})", net.W(layer._index)))
                if layer.use_bias:
                    targets.append((f"weights[{len(targets)}] (b of layer {i})", net.b(layer._index)))
        if not isinstance(weights, (list, tuple)):
            fail("weights", f"a list of {len(targets)} arrays", weights, TypeError)
        if len(weights) != len(targets):
            fail("weights", f"a list of {len(targets)} arrays (W and b per layer)", weights)
        arrays = []
        for (name, dest), w in zip(targets, weights):
            arr = as_numeric_array(name, w)
            if arr.shape != dest.shape:
                fail(name, f"shape {dest.shape}", arr)
            with np.errstate(over="ignore", invalid="ignore"):  # too large for dtype: reported below
                arr = np.asarray(arr, dtype=self.dtype)
            if not np.isfinite(arr).all():
                fail(name, f"finite values (in {self.dtype})", arr)
            if "running_var" in name and (arr < 0).any():
                fail(name, "values >= 0 (a variance)", arr)
            arrays.append(arr)
        net.set_weights(arrays)  # written under the core's lock

    def get_weights(self) -> List[np.ndarray]:
        """Copies of the parameters, ``[W0, b0, W1, ...]`` (empty when not built)."""
        return [] if self.net is None else list(self.net.get_weights())  # copied under the core's lock

    def clone(self) -> "Engine":
        """A new engine with this one's layers, loss, optimiser and state (no file in between).

        The twin has its own layer list of shallow copies of the layers (the same
        activation, initialiser and schedule objects; this engine's layers stay
        this model's), and those copies' ``W``/``b`` read the twin's parameters,
        as do the twin's :meth:`W` and :meth:`b`. :func:`pybackprop.explain.explain`
        runs its step on such a twin and reads the weights before the step from
        this engine.
        """
        net = self.require_built()
        twin = Engine([copy.copy(layer) for layer in self.layers], None, self.dtype, self.seed)
        twin.owner = _TwinOwner(twin)
        twin.build(int(net.input_dim), init=False)
        if self.loss is not None:
            twin.compile(self.loss, self.optimizer, self.metrics)
        twin.load_state(self.state())
        return twin


def check_sample_weight(sample_weight: Any, n: int, dtype: str, name: str = "sample_weight") -> Optional[np.ndarray]:
    """Per-sample weights checked (``n`` finite values >= 0, not all zero) and cast to ``dtype``,
    C-contiguous; None stays None (unweighted). The one rule of fit, evaluate and the estimators.

    >>> check_sample_weight([1, 0, 2], 3, "float64")
    array([1., 0., 2.])
    >>> check_sample_weight([0, 0], 2, "float32")
    Traceback (most recent call last):
    ...
    ValueError: sample_weight: expected at least one weight > 0 (they are all zero), got an array of dtype int64 and shape (2,)
    """
    if sample_weight is None:
        return None
    arr = as_numeric_array(name, sample_weight)
    if arr.ndim != 1 or arr.shape[0] != n:
        fail(name, f"a 1-D array of {n} weights (one per sample)", arr)
    with np.errstate(over="ignore", invalid="ignore"):  # too large for the dtype: reported below
        w = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(w).all():
        fail(name, f"finite weights (in {dtype})", arr)
    if (w < 0).any():
        fail(name, "weights >= 0", arr)
    if not (w > 0).any():
        fail(name, "at least one weight > 0 (they are all zero)", arr)
    return w


class _TwinOwner:
    """The owner of a clone's layers (a :class:`~pybackprop.layers.LayerOwner`): the clone's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine


def _norm(arrays: Sequence[np.ndarray]) -> float:
    return math.sqrt(sum(float(np.dot(a.ravel(), a.ravel())) for a in arrays))
