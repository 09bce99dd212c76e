"""The :class:`Sequential` model: a stack of layers trained by backpropagation.

Python validates and casts once; the C++ core (``pybackprop._core``) owns the
parameters and runs every forward, backward and update, without the GIL.
"""
from __future__ import annotations

import secrets
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from . import layers as _layers
from . import optimizers as _optimizers
from ._validation import (as_matrix, as_numeric_array, check_bool, check_choice, check_dtype, check_int,
                          fail)
from .callbacks import History
from .losses import LOSSES
from .layers import Dense, Layer

_CORE_CLASSES = {"float32": _core.NetworkF32, "float64": _core.NetworkF64}
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
    def output_dim(self) -> int:
        if not self.layers:
            raise RuntimeError("the model has no layers")
        return self.layers[-1].units  # type: ignore[attr-defined, no-any-return]

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
        if not self.layers:
            raise RuntimeError("the model has no layers: add at least one Dense layer")
        dense = [layer for layer in self.layers if isinstance(layer, Dense)]
        for i, layer in enumerate(dense):
            if layer.activation.name == "softmax" and i != len(dense) - 1:
                fail(f"activation of layer {i}", "softmax only on the output layer", "softmax")
            fan_in = input_dim if i == 0 else dense[i - 1].units
            if not isinstance(layer.init, str) and layer.init.shape != (fan_in, layer.units):
                fail(f"init of layer {i}", f"an array of shape {(fan_in, layer.units)}", layer.init)
        specs = []  # (units, activation, alpha, sigma, use_bias) for the core
        for layer in dense:
            p = layer.activation.params()
            specs.append((layer.units, layer.activation.name, p.get("alpha", 0.0), p.get("sigma", 0.0),
                          layer.use_bias))
        net = _CORE_CLASSES[self.dtype](input_dim, specs, self.seed)
        for i, layer in enumerate(dense):
            if isinstance(layer.init, str):
                net.init_layer(i, layer.init)
            else:
                net.W(i)[...] = layer.init
        for i, layer in enumerate(self.layers):
            layer._model, layer._index = self, i
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
            ``"sgd"`` (lr 0.01) or an optimiser object, e.g. ``bp.SGD(lr=0.1, momentum=0.9)``.

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
        if self.layers:
            required = LOSSES[loss]
            out = self.layers[-1].activation.name  # type: ignore[attr-defined]
            if required is not None and out != required:
                raise ValueError(f"loss: {loss} expected an output layer with activation "
                                 f"'{required}', got '{out}'")
        self.loss, self.optimizer = loss, optimizer
        if self.built:
            self._configure_core()

    def _configure_core(self) -> None:
        assert self.optimizer is not None and self.loss is not None
        cfg = self.optimizer.get_config()
        self._net.set_loss(self.loss)
        self._net.set_sgd(cfg["lr"], cfg["momentum"], cfg["nesterov"], cfg["weight_decay"])

    def _require_compiled(self) -> None:
        if self.loss is None:
            raise RuntimeError("the model is not compiled: call model.compile(loss=..., optimizer=...) first")

    # ------------------------------------------------------------------ data
    def _inputs(self, X: Any, name: str = "X") -> np.ndarray:
        if not self.built:
            arr = as_numeric_array(name, X)
            if arr.ndim != 2:
                as_matrix(name, arr, self.dtype)  # raises the standard message
            self.build(int(arr.shape[1]))
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
        return as_matrix(name, arr, self.dtype, columns=k)

    def _data(self, X: Any, y: Any) -> Tuple[np.ndarray, np.ndarray]:
        self._require_compiled()
        Xc = self._inputs(X)
        return Xc, self._targets(y, Xc.shape[0])

    # ------------------------------------------------------------------ training
    def fit(self, X: Any, y: Any, epochs: int = 1, batch_size: int = 32, shuffle: bool = True,
            verbose: int = 1, validation_data: Optional[Tuple[Any, Any]] = None) -> History:
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
            0 silent, 1 or 2 one line per epoch.
        validation_data : (X_val, y_val), optional
            Evaluated after every epoch, in inference mode (``val_loss``).

        Returns
        -------
        History
            ``history.history["loss"]``, ``["grad_norm"]`` (and ``["val_loss"]``).

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
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                fail("validation_data", "a tuple (X_val, y_val)", validation_data, TypeError)
            Xv = self._inputs(validation_data[0], "validation_data[0]")
            val = (Xv, self._targets(validation_data[1], Xv.shape[0], "validation_data[1]"))

        history = History()
        history.params = {"epochs": epochs, "batch_size": batch_size, "samples": Xc.shape[0],
                          "steps": -(-Xc.shape[0] // batch_size)}
        self.history = history
        for i in range(epochs):
            epoch = self._net.epoch_counter
            start = time.perf_counter()
            loss, grad_norm, _ = self._net.fit_epoch(Xc, Yc, batch_size, shuffle)
            logs: Dict[str, Any] = {"loss": loss, "grad_norm": list(grad_norm)}
            if val is not None:
                logs["val_loss"] = self._net.evaluate(*val)
            history.append(epoch, logs)
            if verbose:
                extra = f" - val_loss: {logs['val_loss']:.6g}" if val is not None else ""
                print(f"Epoch {i + 1}/{epochs} - loss: {loss:.6g}{extra} - "
                      f"{time.perf_counter() - start:.3f}s", file=sys.stdout, flush=True)
        return history

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
        return float(self._net.train_step(Xc, Yc))

    def loss_and_gradients(self, X: Any, y: Any, training: bool = False
                           ) -> Tuple[float, List[Dict[str, np.ndarray]]]:
        """The loss of ``(X, y)`` as one batch and its gradient, without updating.

        Returns
        -------
        loss : float
        grads : list of dict
            One dict per layer: ``{"W": dL/dW, "b": dL/db}`` (no ``"b"`` without bias).

        Examples
        --------
        >>> import pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(1, init=[[3.0]], use_bias=False)], input_dim=1, dtype="float64")
        >>> m.compile(loss="mse")
        >>> m.loss_and_gradients([[2.0]], [1.0])   # L = (3*2 - 1)^2, dL/dW = 2*(6 - 1)*2
        (25.0, [{'W': array([[20.]])}])
        """
        training = check_bool("training", training)
        Xc, Yc = self._data(X, y)
        loss = float(self._net.loss_and_gradients(Xc, Yc, training))
        grads: List[Dict[str, np.ndarray]] = []
        for i, layer in enumerate(self.layers):
            g = {"W": self._net.dW(i).copy()}
            if layer.use_bias:  # type: ignore[attr-defined]
                g["b"] = self._net.db(i).copy()
            grads.append(g)
        return loss, grads

    # ------------------------------------------------------------------ inference
    def predict(self, X: Any) -> np.ndarray:
        """Outputs for ``X`` in inference mode, shape ``(n_samples, n_outputs)``.

        >>> import pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(2, init=[[1., -1.]], activation="relu")], input_dim=1)
        >>> m.predict([[2.0]])
        array([[2., 0.]], dtype=float32)
        """
        return self._net.predict(self._inputs(X))  # type: ignore[no-any-return]

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
        out: List[np.ndarray] = []
        for i, layer in enumerate(self.layers):
            out.append(self._net.W(i).copy())
            if layer.use_bias:  # type: ignore[attr-defined]
                out.append(self._net.b(i).copy())
        return out

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
        targets = []
        for i, layer in enumerate(self.layers):
            targets.append((f"weights[{len(targets)}] (W of layer {i})", self._net.W(i)))
            if layer.use_bias:  # type: ignore[attr-defined]
                targets.append((f"weights[{len(targets)}] (b of layer {i})", self._net.b(i)))
        if not isinstance(weights, (list, tuple)):
            fail("weights", f"a list of {len(targets)} arrays", weights, TypeError)
        if len(weights) != len(targets):
            fail("weights", f"a list of {len(targets)} arrays (W and b per layer)", weights)
        arrays = []
        for (name, dest), w in zip(targets, weights):
            arr = as_numeric_array(name, w)
            if arr.shape != dest.shape:
                fail(name, f"shape {dest.shape}", arr)
            arr = np.asarray(arr, dtype=self.dtype)
            if not np.isfinite(arr).all():
                fail(name, "finite values", arr)
            arrays.append(arr)
        for (_, dest), arr in zip(targets, arrays):
            dest[...] = arr

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
        total = 0
        for i, layer in enumerate(self.layers):
            fan_in = (self.input_dim if i == 0 else self.layers[i - 1].units)  # type: ignore[attr-defined]
            units, bias = layer.units, layer.use_bias  # type: ignore[attr-defined]
            params = None if fan_in is None else fan_in * units + (units if bias else 0)
            total += params or 0
            rows.append((str(i), type(layer).__name__, str(units), layer.activation.name,  # type: ignore
                         "yes" if bias else "no", "?" if params is None else str(params)))
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        print_fn(f"Sequential ({self.dtype}, seed {self.seed})")
        for r in rows:
            print_fn("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
        print_fn(f"Total params: {total if self.built else '? (not built: input_dim unknown)'}")

    def __repr__(self) -> str:
        return (f"Sequential({self.layers!r}, input_dim={self.input_dim}, dtype={self.dtype!r}, "
                f"seed={self.seed})")
