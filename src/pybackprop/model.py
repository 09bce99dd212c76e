"""The :class:`Sequential` model: a stack of layers trained by backpropagation.

A thin facade: :class:`Sequential` holds the layers and the public API, and
hands every call to its :class:`~pybackprop._engine.Engine` (``model.engine``),
which owns the C++ core (``pybackprop._core``), the data coercion and the one
fit loop. The core runs every forward, backward and update, without the GIL.
"""
from __future__ import annotations

import secrets
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import layers as _layers
from . import optimizers as _optimizers
from ._engine import (EXPLODING_RATIO, VANISHING_RATIO, DivergenceError, Engine, GradientFlowWarning,
                      gradient_flow_problem, gradient_flow_ratio, warn_gradient_flow)
from ._history import Callback, History
from ._validation import check_bool, check_dtype, check_int, fail
from .layers import BatchNorm, Dense, Dropout, Layer, Normalization
from .metrics import METRICS

__all__ = ["CONFIG_FORMAT", "DivergenceError", "EXPLODING_RATIO", "GradientFlowWarning", "Sequential",
           "VANISHING_RATIO", "gradient_flow_problem",
           "gradient_flow_ratio", "warn_gradient_flow"]

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
        dtype = check_dtype(dtype)
        seed = secrets.randbits(63) if seed is None else check_int("seed", seed, minimum=0)
        if seed >= 2 ** 63:
            fail("seed", "an integer in [0, 2**63)", seed)
        input_dim = None if input_dim is None else check_int("input_dim", input_dim, 1)
        self.layers: List[Layer] = []
        self.history: Optional[History] = None
        self.stop_training = False
        self._engine = Engine(self.layers, None, dtype, seed, owner=self)
        if layers is not None:
            if isinstance(layers, Layer) or not isinstance(layers, (list, tuple)):
                fail("layers", "a list of layers", layers, TypeError)
            for layer in layers:
                self.add(layer)
        if input_dim is not None:
            self._engine.input_dim = input_dim  # known before the layers are: built by build()
            if self.layers:
                self.build(input_dim)

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
        return self._engine.built

    @property
    def engine(self) -> Engine:
        """The model's :class:`~pybackprop._engine.Engine`: the core handle, data coercion, the fit
        loop, ``state()``/``load_state()`` (for modules acting on a model; not needed to use one).

        >>> import pybackprop as bp
        >>> bp.Sequential([bp.Dense(1)], input_dim=2).engine.built
        True
        """
        return self._engine

    @property
    def _net(self) -> Any:
        """The core network (None until built), for the tests' view of the core."""
        return self._engine.net

    @property
    def dtype(self) -> str:
        return self._engine.dtype

    @property
    def seed(self) -> int:
        return self._engine.seed

    @property
    def input_dim(self) -> Optional[int]:
        return self._engine.input_dim

    @property
    def loss(self) -> Optional[str]:
        return self._engine.loss

    @property
    def optimizer(self) -> Optional[_optimizers.Optimizer]:
        return self._engine.optimizer

    @property
    def output_dim(self) -> int:
        return self._engine.output_dim

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
        self._engine.build(input_dim)

    def count_params(self) -> int:
        """Number of trainable scalars (weights and biases)."""
        if not self.built:
            raise RuntimeError("the model is not built yet")
        return sum(w.size for w in self.get_weights())

    # ------------------------------------------------------------------ training setup
    def compile(self, loss: str = "mse", optimizer: Any = "sgd", metrics: Optional[Sequence[Any]] = None) -> None:
        """Choose the loss, the optimiser and the metrics to report.

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
        metrics : list of str or callable, optional
            Reported per epoch in ``History`` (``"accuracy"``, ``"val_accuracy"``,
            ...), by the progress line and by :meth:`evaluate`: ``"accuracy"``
            (0.5 threshold of one output or of a binary cross-entropy, else the
            argmax), ``"mae"``, ``"mse"``, ``"rmse"``, ``"r2"``, or a function
            ``(y_true, y_pred) -> float`` named by its ``__name__``. See
            :mod:`pybackprop.metrics` for what each is computed over.

        Examples
        --------
        >>> import pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(3, activation="softmax")], input_dim=4)
        >>> m.compile(loss="categorical_crossentropy", optimizer=bp.SGD(lr=0.1), metrics=["accuracy"])
        >>> [metric.name for metric in m.metrics]
        ['accuracy']
        >>> m.compile(loss="binary_crossentropy")
        Traceback (most recent call last):
        ...
        ValueError: loss: binary_crossentropy expected an output layer with activation 'sigmoid', got 'softmax'
        """
        self._engine.compile(loss, optimizer, metrics)

    @property
    def metrics(self) -> List[Any]:
        """The compiled metrics (:class:`pybackprop.metrics.Metric`, with ``name``), in order."""
        return list(self._engine.metrics)

    # ------------------------------------------------------------------ training
    def fit(self, X: Any, y: Any, epochs: int = 1, batch_size: int = 32, shuffle: bool = True,
            verbose: int = 1, validation_data: Optional[Tuple[Any, Any]] = None,
            validation_split: float = 0.0, callbacks: Optional[Sequence[Callback]] = None,
            sample_weight: Any = None, class_weight: Optional[Dict[int, float]] = None) -> History:
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
        validation_data : (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
            Evaluated after every epoch, in inference mode (``val_loss``, weighted
            by ``sample_weight_val`` when given, and ``val_<metric>``).
        validation_split : float
            Fraction in [0, 1) of the samples, taken from the end of ``X`` and
            ``y`` (and ``sample_weight``) before any shuffling, held out as
            validation data (ignored when ``validation_data`` is given).
        callbacks : list of Callback, optional
            E.g. ``EarlyStopping``, ``ModelCheckpoint``, ``LearningRateScheduler``,
            ``TerminateOnNaN``; called between epochs.
        sample_weight : array of shape (n_samples,), optional
            Each sample's weight in the loss, with Keras's convention: a batch's
            loss is ``sum(w_i * l_i) / rows_in_batch`` (``l_i`` the sample's loss,
            its mean over the outputs for mse/mae/huber/binary_crossentropy), so
            its gradient rows are scaled by ``w_i``; computed in the C++ loop, the
            weights shuffled with their rows. Finite, >= 0, not all zero.
            ``history["loss"]`` is then ``sum(w_i * l_i) / n`` over the epoch.
            The metrics are not weighted (Keras's ``metrics``).
        class_weight : dict, optional
            ``{class: weight}`` multiplied into each sample's weight (classes not
            named weigh 1): the class is the target's argmax for
            ``categorical_crossentropy``, the rounded target for
            ``binary_crossentropy`` with one output; other losses refuse it.
            Training data only (not the validation data), as Keras.

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

        Sample and class weights (here class 1 counts three times):

        >>> c = bp.Sequential([bp.Dense(1, activation="sigmoid")], input_dim=1, seed=0)
        >>> c.compile(loss="binary_crossentropy", optimizer=bp.SGD(lr=0.5))
        >>> labels = (X[:, 0] > 0.5).astype(int)
        >>> h = c.fit(X, labels, epochs=5, verbose=0, class_weight={1: 3.0}, sample_weight=np.ones(64))
        >>> len(h.history["loss"])
        5
        """
        args = self._engine.fit_arguments(X, y, epochs, batch_size, shuffle, verbose, validation_data,
                                          validation_split, callbacks, sample_weight=sample_weight,
                                          class_weight=class_weight)
        return self._engine.fit(self, args)

    def train_step(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """One gradient-descent update on ``(X, y)`` as a single batch.

        Returns the batch loss before the update (``sum(w_i * l_i) / n`` with
        ``sample_weight``, as in :meth:`fit`).

        >>> import numpy as np, pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(1, init="zeros")], input_dim=1, dtype="float64")
        >>> m.compile(loss="mse", optimizer=bp.SGD(lr=0.25))
        >>> m.train_step([[1.0]], [2.0])      # loss (0 - 2)^2
        4.0
        >>> float(m.layers[0].W[0, 0])        # 0 - 0.25 * 2 * (0 - 2) * 1
        1.0
        """
        Xc, Yc = self._engine.data(X, y)
        return self._engine.train_step(Xc, Yc, self._engine.sample_weights(sample_weight, Xc.shape[0]))

    def loss_and_gradients(self, X: Any, y: Any, training: bool = False,
                           masks: Optional[Dict[int, Any]] = None, return_masks: bool = False,
                           sample_weight: Any = None) -> Any:
        """The loss of ``(X, y)`` as one batch and its gradient, without updating.

        Parameters
        ----------
        X, y : arrays
            One batch.
        training : bool
            Training mode: Dropout drops (masks drawn from the model's RNG for
            the next step, or taken from ``masks``) and noisy_relu adds noise;
            BatchNorm normalises with the batch's statistics and, as torch's
            training forward does, moves its running estimates (the weights are
            not updated).
        masks : dict, optional
            ``{index of a Dropout in model.layers: 0/1 array of shape
            (n_samples, n_units)}`` (a single row is broadcast), to replay a step.
        return_masks : bool
            Also return the masks used, in the same form.
        sample_weight : array of shape (n_samples,), optional
            The loss ``sum(w_i * l_i) / n`` and its gradient (Keras's convention, as :meth:`fit`).

        Returns
        -------
        loss : float
        grads : list of dict
            One dict per entry of ``model.layers``: ``{"W": dL/dW, "b": dL/db}``
            (no ``"b"`` without bias; ``{}`` for Dropout; ``{"weight": dL/dγ,
            "bias": dL/dβ}`` for an affine BatchNorm or LayerNorm, ``{}`` otherwise).
        masks : dict
            Only with ``return_masks=True``.

        Examples
        --------
        >>> import pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(1, init=[[3.0]], use_bias=False)], input_dim=1, dtype="float64")
        >>> m.compile(loss="mse")
        >>> m.loss_and_gradients([[2.0]], [1.0])   # L = (3*2 - 1)^2, dL/dW = 2*(6 - 1)*2
        (25.0, [{'W': array([[20.]])}])
        >>> m.loss_and_gradients([[2.0], [0.0]], [1.0, 0.0], sample_weight=[0.5, 1.0])   # (0.5·25 + 0) / 2
        (6.25, [{'W': array([[5.]])}])
        """
        training = check_bool("training", training)
        return_masks = check_bool("return_masks", return_masks)
        Xc, Yc = self._engine.data(X, y)
        weights = self._engine.sample_weights(sample_weight, Xc.shape[0])
        loss, grads, used = self._engine.loss_and_gradients(Xc, Yc, training, masks, weights)
        return (loss, grads, used) if return_masks else (loss, grads)

    # ------------------------------------------------------------------ inference
    def predict(self, X: Any, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Outputs for ``X`` in inference mode, shape ``(n_samples, n_outputs)``.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        out : numpy.ndarray, optional
            Where to write the outputs: a writeable, C-contiguous array of shape
            ``(n_samples, n_outputs)`` and of the model's dtype, not sharing memory
            with ``X``. The core writes into it directly (no output array is
            allocated; with ``X`` already C-contiguous in the model's dtype, nothing
            is), and it is returned. A repeated inference loop then allocates nothing.

        Returns
        -------
        numpy.ndarray
            A new array, or ``out``.

        Raises
        ------
        TypeError
            ``out`` is not a NumPy array of the model's dtype.
        ValueError
            ``out`` has the wrong shape, is not C-contiguous, is read-only or
            overlaps ``X``.

        Notes
        -----
        The core runs without the GIL and computes in a workspace of the call's own
        (pooled: no allocation once warm), so several Python threads may predict with
        one model at once, with the results of one thread; a training call waits for
        them. Rows go in chunks of 128, split over the core's threads
        (:func:`pybackprop.set_num_threads`); a row's output does not depend on the
        thread count. An ``X`` already C-contiguous in the model's dtype skips every
        copy: its checks are a few attribute reads and one pass for NaN/inf in C++.

        Examples
        --------
        >>> import numpy as np, pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(2, init=[[1., -1.]], activation="relu")], input_dim=1)
        >>> m.predict([[2.0]])
        array([[2., 0.]], dtype=float32)
        >>> buf = np.empty((3, 2), dtype=np.float32)
        >>> m.predict(np.array([[1.0], [2.0], [-1.0]], dtype=np.float32), out=buf) is buf
        True
        >>> buf
        array([[1., 0.],
               [2., 0.],
               [0., 1.]], dtype=float32)
        >>> m.predict([[1.0]], out=np.empty((1, 2)))
        Traceback (most recent call last):
        ...
        TypeError: out: expected a writeable C-contiguous float32 array of shape (1, 2) (the model's dtype; rows of X, outputs), got an array of dtype float64
        """
        return self._engine.predict(X, out)

    def evaluate(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """The loss over ``(X, y)`` in inference mode (and the compiled metrics).

        Parameters
        ----------
        X, y : arrays
        sample_weight : array of shape (n_samples,), optional
            The loss is then ``sum(w_i * l_i) / n`` (Keras's convention, as in
            :meth:`fit`); the metrics are not weighted.

        Returns
        -------
        float or dict
            The mean loss; with metrics compiled, ``{"loss": ..., name: ...}`` in
            the order of ``compile(metrics=...)`` (Keras's ``return_dict=True``).

        Examples
        --------
        >>> import pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(1, init=[[1.0]])], input_dim=1)
        >>> m.compile(loss="mae")
        >>> m.evaluate([[1.0], [2.0]], [0.0, 0.0])
        1.5
        >>> m.evaluate([[1.0], [2.0]], [0.0, 0.0], sample_weight=[1.0, 0.0])   # (1·1 + 0·2) / 2
        0.5
        """
        Xc, Yc = self._engine.data(X, y)  # first: it builds an unbuilt model
        return self._engine.evaluate(Xc, Yc, self._engine.sample_weights(sample_weight, Xc.shape[0]))

    # ------------------------------------------------------------------ weights and config
    def get_weights(self) -> List[np.ndarray]:
        """Copies of the parameters, ``[W0, b0, W1, ...]`` (no b without bias)."""
        return self._engine.get_weights()

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
        self._engine.set_weights(weights)

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
            if self._engine.metrics:  # by name; a callable's name cannot be compiled back (from_config)
                compile_cfg["metrics"] = [m.name for m in self._engine.metrics]
        return {"class_name": "Sequential", "format": CONFIG_FORMAT, "input_dim": self.input_dim,
                "dtype": self.dtype, "seed": self.seed,
                "layers": [layer.get_config() for layer in self.layers], "compile": compile_cfg}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Sequential":
        """A new model from :meth:`get_config` output (fresh weights from the seed).

        Metrics come back by name; a name that is not a built-in one (a callable's) is
        dropped with a ``UserWarning``: compile again with the function.
        """
        if not isinstance(config, dict) or config.get("class_name") != "Sequential":
            fail("config", "a dict from Sequential.get_config()", config, TypeError)
        if config.get("format") != CONFIG_FORMAT:
            fail("config['format']", str(CONFIG_FORMAT), config.get("format"))
        model = cls([_layers.from_config(c) for c in config["layers"]], input_dim=config["input_dim"],
                    dtype=config["dtype"], seed=config["seed"])
        if config.get("compile"):
            names = config["compile"].get("metrics") or []
            lost = [name for name in names if name not in METRICS]
            if lost:
                warnings.warn(f"metrics {lost} were functions and are not restored from a config or a file: "
                              "compile the model again with them", UserWarning, stacklevel=2)
            model.compile(loss=config["compile"]["loss"],
                          optimizer=_optimizers.from_config(config["compile"]["optimizer"]),
                          metrics=[name for name in names if name in METRICS] or None)
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
        >>> bp.Sequential([bp.Dense(4, activation="relu"), bp.BatchNorm(), bp.Dense(1)], input_dim=3).summary()
        Sequential (float32, seed ...)
        #   layer      units  activation  bias  params
        0   Dense      4      relu        yes   16
        1   BatchNorm  4      eps=1e-05         16
        2   Dense      1      identity    yes   5
        Total params: 37
        """
        rows = [("#", "layer", "units", "activation", "bias", "params")]
        total, fan_in = 0, self.input_dim
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dropout):
                rows.append((str(i), "Dropout", "", f"keep_prob={layer.keep_prob}", "", "0"))
                continue
            if isinstance(layer, Normalization):  # γ, β (+ BatchNorm's running mean and variance, as Keras counts)
                per = (2 if layer.affine else 0) + (2 if isinstance(layer, BatchNorm) else 0)
                count = None if fan_in is None else per * fan_in
                total += count or 0
                rows.append((str(i), type(layer).__name__, "" if fan_in is None else str(fan_in), f"eps={layer.eps}",
                             "", "?" if count is None else str(count)))
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

    def to_onnx(self, path: Any, *, opset: int = 17) -> None:
        """Write the model's inference to an ONNX file (needs ``pip install 'pybackprop[onnx]'``).

        See :func:`pybackprop.export.to_onnx` (which also returns the ``onnx.ModelProto``):
        every layer and activation as pybackprop computes them, a dynamic batch
        dimension, the model's dtype; written atomically (nothing half-written).

        Raises
        ------
        ValueError
            The model is not built.
        ImportError
            The ``onnx`` package is not installed (the message names the extra).
        OSError
            ``path`` cannot be written.

        Examples
        --------
        >>> import os, tempfile, pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(2, activation="relu"), bp.Dense(1)], input_dim=3, seed=0)
        >>> path = os.path.join(tempfile.mkdtemp(), "m.onnx")
        >>> m.to_onnx(path)  # doctest: +SKIP
        >>> import onnxruntime as ort, numpy as np  # doctest: +SKIP
        >>> sess = ort.InferenceSession(path)  # doctest: +SKIP
        >>> x = np.ones((5, 3), np.float32)  # doctest: +SKIP
        >>> bool(np.allclose(sess.run(None, {"input": x})[0], m.predict(x), atol=1e-6))  # doctest: +SKIP
        True
        """
        from .export import to_onnx

        to_onnx(self, path, opset=opset)

    def __getstate__(self) -> Dict[str, Any]:
        from .io import model_to_bytes

        return {"pybackprop": model_to_bytes(self)}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        from .io import model_from_bytes

        self.__dict__.update(model_from_bytes(state["pybackprop"]).__dict__)
        self._engine.owner = self
        for layer in self.layers:
            layer._model = self

    def __repr__(self) -> str:
        return (f"Sequential({self.layers!r}, input_dim={self.input_dim}, dtype={self.dtype!r}, "
                f"seed={self.seed})")
