"""The :class:`Sequential` model: a stack of layers trained by backpropagation.

Python validates and casts once; the C++ core (``pybackprop._core``) owns the
parameters and runs every forward, backward and update, without the GIL.
"""
from __future__ import annotations

import secrets
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from . import layers as _layers
from . import optimizers as _optimizers
from . import schedules as _schedules
from ._validation import (as_matrix, as_numeric_array, check_bool, check_choice, check_dtype, check_float,
                          check_int, fail)
from .callbacks import Callback, History, ProgressBar, TerminateOnNaN
from .losses import LOSSES
from .layers import Dense, Dropout, Layer

_CORE_CLASSES = {"float32": _core.NetworkF32, "float64": _core.NetworkF64}
#: per-layer gradient-flow diagnostics the C++ loop records every epoch (see History)
_HEALTH_KEYS = ("weight_norm", "update_ratio", "dead_fraction", "saturated_fraction", "nonfinite")
#: the first layer's gradient norm relative to the last's beyond which fit warns
VANISHING_RATIO, EXPLODING_RATIO = 1e-4, 1e4


class DivergenceError(FloatingPointError):
    """The loss (or a gradient) became NaN or infinite during training.

    The model keeps the weights of the last finite step. Attributes: ``epoch``,
    ``step`` (within the epoch), ``loss`` and ``history`` (the epochs completed).
    """

    def __init__(self, epoch: int, step: int, loss: float, history: Optional[History] = None) -> None:
        self.epoch, self.step, self.loss, self.history = epoch, step, loss, history
        super().__init__(f"training diverged in epoch {epoch}, step {step}: the loss is {loss} (or a gradient "
                         "is NaN/inf); the model keeps the weights of the last finite step. Try a smaller "
                         "learning rate, clip_norm on the optimiser (e.g. bp.SGD(lr, clip_norm=1.0)), or "
                         "standardised inputs and targets.")


class GradientFlowWarning(UserWarning):
    """The first layer's gradient is vanishing or exploding relative to the last layer's."""


def _warn_gradient_flow(grad_norm: Sequence[float], epoch: int) -> bool:
    """Warn (and return True) when the first layer's gradient is tiny or huge relative to the last's."""
    if len(grad_norm) < 2 or not all(np.isfinite(grad_norm)) or grad_norm[-1] == 0:
        return False
    ratio = grad_norm[0] / grad_norm[-1]
    if VANISHING_RATIO <= ratio <= EXPLODING_RATIO:
        return False
    kind = "vanishing" if ratio < VANISHING_RATIO else "exploding"
    hint = ("try relu/leaky_relu activations, he_normal init, or fewer layers" if kind == "vanishing"
            else "try a smaller lr, clip_norm on the optimiser, or a smaller init")
    warnings.warn(f"{kind} gradients in epoch {epoch}: the first layer's gradient norm is {ratio:.2e} times "
                  f"the last layer's ({hint}); see history['grad_norm']", GradientFlowWarning, stacklevel=3)
    return True
CONFIG_FORMAT = 1


class Sequential:
    """A multi-layer perceptron: layers applied one after the other.

    Parameters
    ----------
    layers : list of Layer, optional
        The layers, first to last (more can be added with :meth:`add`).
    input_dim : int, optional
        Number of input features. If omitted, the model is built on the first
        call that sees data (``fit``, ``predict``, ...).
    dtype : {"float32", "float64"}
        Precision of parameters and arithmetic, fixed for the model.
    seed : int, optional
        Seed of the model's random generator (initial weights, shuffling,
        noise). The same seed, data and settings give bitwise-identical weights
        after ``fit``. Drawn at random when omitted (and kept in ``seed``).

    Examples
    --------
    The textbook network: 3 inputs, a ReLU layer, a sigmoid layer, an identity
    output, no biases, squared error.

    >>> import numpy as np, pybackprop as bp
    >>> model = bp.Sequential([
    ...     bp.Dense(4, activation="relu", use_bias=False, init="he_normal"),
    ...     bp.Dense(4, activation="sigmoid", use_bias=False),
    ...     bp.Dense(1, activation="identity", use_bias=False),
    ... ], input_dim=3, dtype="float64", seed=0)
    >>> model.compile(loss="mse", optimizer=bp.SGD(lr=0.05, momentum=0.9))
    >>> X = np.random.default_rng(0).normal(size=(200, 3))
    >>> y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2]
    >>> hist = model.fit(X, y, epochs=30, batch_size=10, verbose=0)
    >>> bool(hist.history["loss"][-1] < hist.history["loss"][0])
    True
    >>> model.predict(X[:2]).shape
    (2, 1)
    """

    def __init__(self, layers: Optional[Sequence[Layer]] = None, input_dim: Optional[int] = None,
                 dtype: Any = "float32", seed: Optional[int] = None) -> None:
        self.dtype: str = check_dtype(dtype)
        self.seed: int = secrets.randbits(63) if seed is None else check_int("seed", seed, minimum=0)
        if self.seed >= 2 ** 63:
            fail("seed", "an integer in [0, 2**63)", seed)
        self.input_dim: Optional[int] = None if input_dim is None else check_int("input_dim", input_dim, 1)
        self.layers: List[Layer] = []
        self.loss: Optional[str] = None
        self.optimizer: Optional[_optimizers.Optimizer] = None
        self.history: Optional[History] = None
        self.stop_training = False
        self._net: Any = None
        if layers is not None:
            if isinstance(layers, Layer) or not isinstance(layers, (list, tuple)):
                fail("layers", "a list of layers", layers, TypeError)
            for layer in layers:
                self.add(layer)
        if self.input_dim is not None and self.layers:
            self.build(self.input_dim)

    # ------------------------------------------------------------------ structure
    def add(self, layer: Layer) -> None:
        """Append a layer (before the model is built).

        >>> import pybackprop as bp
        >>> m = bp.Sequential(input_dim=2)
        >>> m.add(bp.Dense(1))
        >>> len(m.layers)
        1
        """
        if not isinstance(layer, Layer):
            fail("layer", "a pybackprop layer such as bp.Dense(4)", layer, TypeError)
        if self.built:
            raise RuntimeError("cannot add a layer to a built model: create a new Sequential")
        if layer._model is not None:
            fail("layer", "a layer not already part of a model", layer)
        self.layers.append(layer)

    @property
    def built(self) -> bool:
        return self._net is not None

    @property
    def _dense(self) -> List[Dense]:
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    @property
    def _dropouts(self) -> List[Dropout]:
        return [layer for layer in self.layers if isinstance(layer, Dropout)]

    @property
    def output_dim(self) -> int:
        dense = self._dense
        if not dense:
            raise RuntimeError("the model has no Dense layer")
        return dense[-1].units

    def build(self, input_dim: int) -> None:
        """Allocate the parameters and draw the initial weights.

        Called by the constructor when ``input_dim`` is given, else by the first
        call with data.

        >>> import pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(3)], seed=1)
        >>> m.build(2)
        >>> m.layers[0].W.shape
        (2, 3)
        """
        input_dim = check_int("input_dim", input_dim, minimum=1)
        if self.built:
            if input_dim != self.input_dim:
                fail("input_dim", f"{self.input_dim} (the model is built)", input_dim)
            return
        dense = self._dense
        if not dense:
            raise RuntimeError("the model has no Dense layer: add at least one")
        if isinstance(self.layers[-1], Dropout):
            fail("layers", "a Dense layer after the last Dropout (Dropout cannot be the output)",
                 self.layers[-1])
        specs: List[Any] = []
        pending: Optional[Tuple[int, Dropout]] = None  # a Dropout waiting for its Dense layer
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dropout):
                if pending is not None:
                    fail(f"layers[{i}]", "a Dense layer between two Dropout layers", layer)
                pending = (i, layer)
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
            p = layer.activation.params()
            specs.append(_core.DenseSpec(units=layer.units, activation=layer.activation.name,
                                         alpha=p.get("alpha", 0.0), sigma=p.get("sigma", 0.0),
                                         use_bias=layer.use_bias, index=i, dropout=drop))
            layer._index = d
        net = _CORE_CLASSES[self.dtype](input_dim, specs, self.seed)
        for d, layer in enumerate(dense):
            if isinstance(layer.init, str):
                net.init_layer(d, layer.init)
            else:
                net.W(d)[...] = layer.init
        for layer in self.layers:
            layer._model = self
        self._net, self.input_dim = net, input_dim
        if self.loss is not None:
            self._configure_core()

    def count_params(self) -> int:
        """Number of trainable scalars (weights and biases)."""
        if not self.built:
            raise RuntimeError("the model is not built yet")
        return sum(w.size for w in self.get_weights())

    # ------------------------------------------------------------------ training setup
    def compile(self, loss: str = "mse", optimizer: Any = "sgd") -> None:
        """Choose the loss and the optimiser.

        Parameters
        ----------
        loss : str
            ``"mse"``, ``"mae"``, ``"huber"``, ``"binary_crossentropy"`` (sigmoid
            output) or ``"categorical_crossentropy"`` (softmax output; integer
            class labels or one-hot targets).
        optimizer : str or Optimizer
            ``"sgd"`` (lr 0.01), ``"adam"``, ``"rmsprop"``, ``"adagrad"`` or an
            optimiser object, e.g. ``bp.SGD(lr=0.1, momentum=0.9)``. Compiling
            resets the optimiser's state (momentum buffers, moments).

        Examples
        --------
        >>> import pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(3, activation="softmax")], input_dim=4)
        >>> m.compile(loss="categorical_crossentropy", optimizer=bp.SGD(lr=0.1))
        >>> m.compile(loss="binary_crossentropy")
        Traceback (most recent call last):
        ...
        ValueError: loss: binary_crossentropy expected an output layer with activation 'sigmoid', got 'softmax'
        """
        loss = check_choice("loss", loss, LOSSES)
        optimizer = _optimizers.get(optimizer)
        if self._dense:
            required = LOSSES[loss]
            out = self._dense[-1].activation.name
            if required is not None and out != required:
                raise ValueError(f"loss: {loss} expected an output layer with activation "
                                 f"'{required}', got '{out}'")
        self.loss, self.optimizer = loss, optimizer
        if self.built:
            self._configure_core()

    def _configure_core(self) -> None:
        assert self.loss is not None
        self._net.set_loss(self.loss)
        self._configure_optimizer(reset_state=True)

    def _configure_optimizer(self, reset_state: bool) -> None:
        assert self.optimizer is not None
        if self.built:
            self._net.set_optimizer(self.optimizer.core_config())
            if reset_state:
                self._net.reset_optimizer_state()

    def _lr_now(self) -> float:
        """The learning rate of the next step (a schedule evaluated at the current time)."""
        assert self.optimizer is not None
        lr = self.optimizer.lr
        if isinstance(lr, _schedules.Schedule):
            t = self._net.epoch_counter if lr.unit == "epoch" else self._net.step_counter
            lr = lr(t)
        return check_float("lr (schedule value)", lr, minimum=0.0)

    def _set_keep_probs_now(self) -> None:
        """Give scheduled Dropout keep probabilities their value at the current time to the core."""
        for dropout in self._dropouts:
            if isinstance(dropout.keep_prob, _schedules.Schedule):
                unit = dropout.keep_prob.unit
                t = self._net.epoch_counter if unit == "epoch" else self._net.step_counter
                value = dropout.keep_prob(t)
                _schedules.check_values("keep_prob", np.array([value]), 0.0, 1.0, low_inclusive=False)
                self._net.set_keep_prob(dropout._index, value)

    def _require_compiled(self) -> None:
        if self.loss is None:
            raise RuntimeError("the model is not compiled: call model.compile(loss=..., optimizer=...) first")

    # ------------------------------------------------------------------ data
    def _inputs(self, X: Any, name: str = "X") -> np.ndarray:
        if not self.built:
            # Check the data fully before building, so that bad data never builds the model.
            arr = as_matrix(name, X, self.dtype)
            self.build(int(arr.shape[1]))
            return arr
        return as_matrix(name, X, self.dtype, columns=self.input_dim)

    def _targets(self, y: Any, n: int, name: str = "y") -> np.ndarray:
        """Targets as (n, output_dim) of the model dtype (one-hot for class labels)."""
        self._require_compiled()
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

    def _data(self, X: Any, y: Any) -> Tuple[np.ndarray, np.ndarray]:
        self._require_compiled()
        Xc = self._inputs(X)
        return Xc, self._targets(y, Xc.shape[0])

    # ------------------------------------------------------------------ training
    def fit(self, X: Any, y: Any, epochs: int = 1, batch_size: int = 32, shuffle: bool = True,
            verbose: int = 1, validation_data: Optional[Tuple[Any, Any]] = None,
            validation_split: float = 0.0, callbacks: Optional[Sequence[Callback]] = None) -> History:
        """Train with mini-batch gradient descent; the epoch loop runs in C++.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        y : array of shape (n_samples,) or (n_samples, n_outputs)
            Targets; integer class labels for ``categorical_crossentropy``.
        epochs : int
            Passes over the data (>= 0).
        batch_size : int
            Samples per update: 1 is stochastic gradient descent, ``len(X)``
            (or more) full-batch; the last batch of an epoch may be smaller.
        shuffle : bool
            Reshuffle the samples every epoch (from the model's seed).
        verbose : {0, 1, 2}
            0 silent, 1 or 2 one line per epoch (epoch, loss, val_loss, samples/s).
        validation_data : (X_val, y_val), optional
            Evaluated after every epoch, in inference mode (``val_loss``).
        validation_split : float
            Fraction in [0, 1) of the samples, taken from the end of ``X`` and
            ``y`` before any shuffling, held out as validation data (ignored when
            ``validation_data`` is given).
        callbacks : list of Callback, optional
            E.g. ``EarlyStopping``, ``ModelCheckpoint``, ``LearningRateScheduler``,
            ``TerminateOnNaN``; called between epochs.

        Raises
        ------
        DivergenceError
            When a loss or gradient becomes NaN/inf (unless a ``TerminateOnNaN``
            callback is given: then training just stops). The weights are those
            of the last finite step.
        KeyboardInterrupt
            On Ctrl-C, within a fraction of a second, after a completed step;
            ``model.history`` holds the epochs completed.

        Returns
        -------
        History
            ``history.history["loss"]``, ``["grad_norm"]``, ``["lr"]``
            (``["keep_prob"]`` with Dropout, ``["val_loss"]`` with validation),
            and the per-step values in ``history.steps``.

        Examples
        --------
        >>> import numpy as np, pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(8, activation="tanh"), bp.Dense(1)], seed=0)
        >>> m.compile(loss="mse", optimizer=bp.SGD(lr=0.1))
        >>> X = np.linspace(-1, 1, 64).reshape(-1, 1); y = X[:, 0] ** 2
        >>> h = m.fit(X, y, epochs=50, batch_size=8, verbose=0)
        >>> bool(h.history["loss"][-1] < 0.5 * h.history["loss"][0])
        True
        """
        Xc, Yc = self._data(X, y)
        epochs = check_int("epochs", epochs, minimum=0)
        batch_size = check_int("batch_size", batch_size, minimum=1)
        shuffle = check_bool("shuffle", shuffle)
        verbose = check_int("verbose", verbose, minimum=0)
        validation_split = check_float("validation_split", validation_split, minimum=0.0, maximum=1.0,
                                       max_inclusive=False)
        callbacks = list(callbacks or [])
        for i, cb in enumerate(callbacks):
            if not isinstance(cb, Callback):
                fail(f"callbacks[{i}]", "a pybackprop.callbacks.Callback", cb, TypeError)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                fail("validation_data", "a tuple (X_val, y_val)", validation_data, TypeError)
            Xv = self._inputs(validation_data[0], "validation_data[0]")
            val = (Xv, self._targets(validation_data[1], Xv.shape[0], "validation_data[1]"))
        elif validation_split > 0:
            cut = int(round(Xc.shape[0] * (1.0 - validation_split)))
            if not 0 < cut < Xc.shape[0]:
                fail("validation_split", f"a fraction leaving samples on both sides of {Xc.shape[0]}",
                     validation_split)
            val = (Xc[cut:], Yc[cut:])
            Xc, Yc = np.ascontiguousarray(Xc[:cut]), np.ascontiguousarray(Yc[:cut])

        n, net = Xc.shape[0], self._net
        steps = -(-n // min(batch_size, n))
        history = History()
        history.params = {"epochs": epochs, "batch_size": batch_size, "samples": n, "steps": steps}
        self.history, self.stop_training = history, False
        callbacks = ([ProgressBar()] if verbose else []) + callbacks
        warned = False
        for cb in callbacks:
            cb.set_model(self)
            cb.on_train_begin()
        for _ in range(epochs):
            epoch = net.epoch_counter
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            lr_steps, keep_steps = self._epoch_schedules(epoch, net.step_counter, steps)
            r = net.fit_epoch(Xc, Yc, min(batch_size, n), shuffle, lr_steps, keep_steps)
            loss, grad_norm, lr_used, keep_used, health = r.loss, r.grad_norm, r.lr, r.keep_prob, r.health
            if r.diverged:
                step, bad_loss = r.diverged_step, r.diverged_loss
                if any(isinstance(cb, TerminateOnNaN) for cb in callbacks):
                    history.append(epoch, {"loss": bad_loss})
                    for cb in callbacks:
                        if isinstance(cb, TerminateOnNaN):
                            cb.terminated = True
                    break
                raise DivergenceError(epoch, step, bad_loss, history)
            logs: Dict[str, Any] = {"loss": loss, "grad_norm": list(grad_norm), "lr": float(lr_used[0])}
            for key in _HEALTH_KEYS:
                logs[key] = health[key]
            if not warned:
                warned = _warn_gradient_flow(grad_norm, epoch)
            if keep_used.shape[1]:
                logs["keep_prob"] = [float(v) for v in keep_used[0]]
            if val is not None:
                logs["val_loss"] = float(net.evaluate(*val))
            history.append(epoch, logs, {"lr": lr_used, "keep_prob": keep_used})
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end()
        return history

    def _epoch_schedules(self, epoch: int, first_step: int, steps: int
                         ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """Per-step lr and keep_prob arrays for the coming epoch (None when constant)."""
        assert self.optimizer is not None
        lr = None
        if isinstance(self.optimizer.lr, _schedules.Schedule):
            lr = self.optimizer.lr.values(epoch, first_step, steps)
            _schedules.check_values("lr", lr, 0.0, np.inf, low_inclusive=True)
        dropouts = self._dropouts
        keep = None
        if any(isinstance(d.keep_prob, _schedules.Schedule) for d in dropouts):
            keep = np.empty((steps, len(dropouts)))
            for k, d in enumerate(dropouts):
                p = d.keep_prob
                keep[:, k] = p.values(epoch, first_step, steps) if isinstance(p, _schedules.Schedule) \
                    else float(p)  # type: ignore[arg-type]
            _schedules.check_values("keep_prob", keep.ravel(), 0.0, 1.0, low_inclusive=False)
        return lr, keep

    def train_step(self, X: Any, y: Any) -> float:
        """One gradient-descent update on ``(X, y)`` as a single batch.

        Returns the batch loss before the update.

        >>> import numpy as np, pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(1, init="zeros")], input_dim=1, dtype="float64")
        >>> m.compile(loss="mse", optimizer=bp.SGD(lr=0.25))
        >>> m.train_step([[1.0]], [2.0])      # loss (0 - 2)^2
        4.0
        >>> float(m.layers[0].W[0, 0])        # 0 - 0.25 * 2 * (0 - 2) * 1
        1.0
        """
        Xc, Yc = self._data(X, y)
        lr = self._lr_now()
        self._set_keep_probs_now()
        loss, applied = self._net.train_step(Xc, Yc, lr)
        if not applied:
            raise DivergenceError(self._net.epoch_counter, 0, loss)
        return float(loss)

    def loss_and_gradients(self, X: Any, y: Any, training: bool = False,
                           masks: Optional[Dict[int, Any]] = None, return_masks: bool = False) -> Any:
        """The loss of ``(X, y)`` as one batch and its gradient, without updating.

        Parameters
        ----------
        X, y : arrays
            One batch.
        training : bool
            Training mode: Dropout drops (masks drawn from the model's RNG for
            the next step, or taken from ``masks``) and noisy_relu adds noise.
        masks : dict, optional
            ``{index of a Dropout in model.layers: 0/1 array of shape
            (n_samples, n_units)}`` (a single row is broadcast), to replay a step.
        return_masks : bool
            Also return the masks used, in the same form.

        Returns
        -------
        loss : float
        grads : list of dict
            One dict per entry of ``model.layers``: ``{"W": dL/dW, "b": dL/db}``
            (no ``"b"`` without bias; ``{}`` for Dropout).
        masks : dict
            Only with ``return_masks=True``.

        Examples
        --------
        >>> import pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(1, init=[[3.0]], use_bias=False)], input_dim=1, dtype="float64")
        >>> m.compile(loss="mse")
        >>> m.loss_and_gradients([[2.0]], [1.0])   # L = (3*2 - 1)^2, dL/dW = 2*(6 - 1)*2
        (25.0, [{'W': array([[20.]])}])
        """
        training = check_bool("training", training)
        return_masks = check_bool("return_masks", return_masks)
        Xc, Yc = self._data(X, y)
        if masks is not None and not training:
            fail("masks", "training=True (dropout masks are not used in inference mode)", masks)
        mask_list = None if masks is None else self._mask_list(masks, Xc.shape[0])
        if training:
            self._set_keep_probs_now()
        loss, core_grads, core_masks = self._net.loss_and_gradients(Xc, Yc, training, mask_list)
        grads: List[Dict[str, np.ndarray]] = []
        for layer in self.layers:
            g: Dict[str, np.ndarray] = {}
            if isinstance(layer, Dense):
                g["W"], *bias = core_grads[layer._index]
                if bias:
                    g["b"] = bias[0]
            grads.append(g)
        if not return_masks:
            return float(loss), grads
        dropout_positions = [i for i, layer in enumerate(self.layers) if isinstance(layer, Dropout)]
        return float(loss), grads, dict(zip(dropout_positions, core_masks))

    def _mask_list(self, masks: Any, n: int) -> List[Optional[np.ndarray]]:
        """Dropout masks keyed by layer index -> the core's list (one entry per Dense layer)."""
        if not isinstance(masks, dict):
            fail("masks", "a dict {Dropout layer index: 0/1 array}", masks, TypeError)
        out: List[Optional[np.ndarray]] = [None] * len(self._dense)
        for key, value in masks.items():
            if not isinstance(key, int) or not 0 <= key < len(self.layers) \
                    or not isinstance(self.layers[key], Dropout):
                fail("masks", "keys that are indices of Dropout layers in model.layers", key)
            dropout = self.layers[key]
            fan = int(self.input_dim or 0) if dropout._index == 0 else self._dense[dropout._index - 1].units
            arr = as_numeric_array(f"masks[{key}]", value)
            try:
                arr = np.broadcast_to(arr, (n, fan))
            except ValueError:
                fail(f"masks[{key}]", f"an array of shape ({n}, {fan}) or ({fan},)", arr)
            if not np.isin(arr, (0, 1)).all():
                fail(f"masks[{key}]", "only 0 (dropped) and 1 (kept)", arr)
            out[dropout._index] = np.ascontiguousarray(arr, dtype=self.dtype)
        return out

    # ------------------------------------------------------------------ inference
    def predict(self, X: Any) -> np.ndarray:
        """Outputs for ``X`` in inference mode, shape ``(n_samples, n_outputs)``.

        >>> import pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(2, init=[[1., -1.]], activation="relu")], input_dim=1)
        >>> m.predict([[2.0]])
        array([[2., 0.]], dtype=float32)
        """
        Xc = self._inputs(X)  # first: it builds an unbuilt model (self._net is None until then)
        return self._net.predict(Xc)  # type: ignore[no-any-return]

    def evaluate(self, X: Any, y: Any) -> float:
        """Mean loss over ``(X, y)`` in inference mode.

        >>> import pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(1, init=[[1.0]])], input_dim=1)
        >>> m.compile(loss="mae")
        >>> m.evaluate([[1.0], [2.0]], [0.0, 0.0])
        1.5
        """
        Xc, Yc = self._data(X, y)
        return float(self._net.evaluate(Xc, Yc))

    # ------------------------------------------------------------------ weights and config
    def get_weights(self) -> List[np.ndarray]:
        """Copies of the parameters, ``[W0, b0, W1, ...]`` (no b without bias)."""
        if not self.built:
            return []
        return list(self._net.get_weights())  # copied under the core's lock

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set every parameter from a list shaped like :meth:`get_weights`.

        All arrays are checked before any is written, so on error the model is
        unchanged.

        >>> import pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(1)], input_dim=2, seed=0)
        >>> m.set_weights([[[1.0], [2.0]], [0.5]])
        >>> m.predict([[1.0, 1.0]])
        array([[3.5]], dtype=float32)
        """
        if not self.built:
            raise RuntimeError("the model is not built yet: give input_dim or call build() first")
        targets: List[Tuple[str, np.ndarray]] = []
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dense):
                targets.append((f"weights[{len(targets)}] (W of layer {i})", self._net.W(layer._index)))
                if layer.use_bias:
                    targets.append((f"weights[{len(targets)}] (b of layer {i})", self._net.b(layer._index)))
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
            arrays.append(arr)
        self._net.set_weights(arrays)  # written under the core's lock

    def get_config(self) -> Dict[str, Any]:
        """A JSON-serialisable description (not the trained weights).

        >>> import json, pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(2, activation="tanh")], input_dim=3, seed=7)
        >>> cfg = m.get_config(); cfg["layers"][0]["activation"]
        {'name': 'tanh'}
        >>> bp.Sequential.from_config(json.loads(json.dumps(cfg))).get_config() == cfg
        True
        """
        compile_cfg = None
        if self.loss is not None:
            assert self.optimizer is not None
            compile_cfg = {"loss": self.loss, "optimizer": self.optimizer.get_config()}
        return {"class_name": "Sequential", "format": CONFIG_FORMAT, "input_dim": self.input_dim,
                "dtype": self.dtype, "seed": self.seed,
                "layers": [layer.get_config() for layer in self.layers], "compile": compile_cfg}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Sequential":
        """A new model from :meth:`get_config` output (fresh weights from the seed)."""
        if not isinstance(config, dict) or config.get("class_name") != "Sequential":
            fail("config", "a dict from Sequential.get_config()", config, TypeError)
        if config.get("format") != CONFIG_FORMAT:
            fail("config['format']", str(CONFIG_FORMAT), config.get("format"))
        model = cls([_layers.from_config(c) for c in config["layers"]], input_dim=config["input_dim"],
                    dtype=config["dtype"], seed=config["seed"])
        if config.get("compile"):
            model.compile(loss=config["compile"]["loss"],
                          optimizer=_optimizers.from_config(config["compile"]["optimizer"]))
        return model

    def summary(self, print_fn: Callable[[str], Any] = print) -> None:
        """Print the layers, their output shapes and parameter counts.

        >>> import pybackprop as bp
        >>> bp.Sequential([bp.Dense(4, activation="relu"), bp.Dense(1)], input_dim=3).summary()
        Sequential (float32, seed ...)
        #   layer   units  activation  bias  params
        0   Dense   4      relu        yes   16
        1   Dense   1      identity    yes   5
        Total params: 21
        """
        rows = [("#", "layer", "units", "activation", "bias", "params")]
        total, fan_in = 0, self.input_dim
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dropout):
                rows.append((str(i), "Dropout", "", f"keep_prob={layer.keep_prob}", "", "0"))
                continue
            assert isinstance(layer, Dense)
            units, bias = layer.units, layer.use_bias
            params = None if fan_in is None else fan_in * units + (units if bias else 0)
            total += params or 0
            rows.append((str(i), "Dense", str(units), layer.activation.name,
                         "yes" if bias else "no", "?" if params is None else str(params)))
            fan_in = units
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        print_fn(f"Sequential ({self.dtype}, seed {self.seed})")
        for r in rows:
            print_fn("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
        print_fn(f"Total params: {total if self.built else '? (not built: input_dim unknown)'}")

    def explain(self, x: Any, y: Any, lr: Optional[float] = None) -> Any:
        """One SGD step on one sample with every value of the chain rule.

        Returns a :class:`pybackprop.explain.Trace`: ``print(trace)`` is a
        walk-through to follow with pen and paper, ``trace.to_dict()`` the data,
        ``trace.to_markdown()`` a table. The step runs on a copy, through the
        same C++ core that trains; this model is not changed.

        >>> import pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(1, init=[[2.0]], use_bias=False)], input_dim=1, dtype="float64")
        >>> m.compile(loss="mse")
        >>> t = m.explain([1.0], [0.5], lr=0.1)
        >>> t.loss, t.layers[0]["dW"], t.layers[0]["W_new"]   # (2 - 0.5)^2; 2·1.5·1; 2 - 0.1·3
        (2.25, array([[3.]]), array([[1.7]]))
        """
        from .explain import explain

        return explain(self, x, y, lr)

    def save(self, path: Any) -> None:
        """Write the model to one file: config, weights, optimiser and RNG state.

        The write goes to a temporary file renamed over ``path``, so a failed
        write never destroys an earlier file. See :func:`pybackprop.load`.

        >>> import os, tempfile, numpy as np, pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(2)], input_dim=3, seed=0)
        >>> m.compile(loss="mse", optimizer=bp.Adam())
        >>> path = os.path.join(tempfile.mkdtemp(), "m.pbp")
        >>> m.save(path)
        >>> x = np.ones((1, 3))
        >>> np.array_equal(bp.load(path).predict(x), m.predict(x))
        True
        """
        from .io import save_model

        save_model(self, path)

    def __getstate__(self) -> Dict[str, Any]:
        from .io import model_to_bytes

        return {"pybackprop": model_to_bytes(self)}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        from .io import model_from_bytes

        self.__dict__.update(model_from_bytes(state["pybackprop"]).__dict__)
        for layer in self.layers:
            layer._model = self

    def __repr__(self) -> str:
        return (f"Sequential({self.layers!r}, input_dim={self.input_dim}, dtype={self.dtype!r}, "
                f"seed={self.seed})")
