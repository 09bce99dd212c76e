"""A whole MLP in NumPy: forward, loss, backward, SGD update, the epoch loop.

Follow it top-down: ``fit`` -> ``train_step`` -> ``forward_trace`` (forward),
``loss_and_gradients`` (loss and backward) -> ``sgd_update``.

Shapes: B = batch size, IN/OUT = fan-in/fan-out of a layer, K = output units.
Every array of the network is in its dtype (float32 or float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import rng
from .functional import ACTIVATIONS, LOSSES, dense_backward, dense_forward, sgd_update


@dataclass
class Dense:
    """One Dense layer: ``a = activation(a_prev @ W + b)``.

    Attributes
    ----------
    W : (IN, OUT) array
    b : (OUT,) array or None (no bias)
    activation : str
        Key of ``ACTIVATIONS``.
    params : dict
        Parameters of the activation (alpha, sigma), defaults filled in.
    index : int
        Position in the config's layer list (selects the RNG streams).
    """

    W: np.ndarray
    b: np.ndarray | None
    activation: str
    params: dict[str, float]
    index: int


class Network:
    """The reference MLP, built from the same config dict as ``Sequential.get_config()``.

    Attributes
    ----------
    layers : list of Dense
    dtype : numpy.dtype
    seed : int
    loss : str or None
        Key of ``LOSSES`` (None if the config has no "compile" entry).
    optimizer : dict or None
        ``{"lr", "momentum", "nesterov", "weight_decay"}`` of SGD.
    epoch_counter, step_counter : int
        Epochs and updates done so far (they drive shuffling and noise).

    Examples
    --------
    >>> cfg = {"input_dim": 3, "dtype": "float64", "seed": 0,
    ...        "layers": [{"class_name": "Dense", "units": 2, "use_bias": True,
    ...                    "init": "glorot_uniform", "activation": {"name": "tanh"}}],
    ...        "compile": {"loss": "mse", "optimizer": {"class_name": "SGD", "lr": 0.1}}}
    >>> net = Network.from_config(cfg)
    >>> net.predict(np.ones((5, 3))).shape
    (5, 2)
    """

    def __init__(self, layers: list[Dense], dtype: Any, seed: int,
                 loss: str | None, optimizer: dict[str, Any] | None) -> None:
        self.layers = layers
        self.dtype = np.dtype(dtype)
        self.seed = seed
        self.loss = loss
        self.optimizer = optimizer
        self.epoch_counter = 0
        self.step_counter = 0
        # SGD momentum buffers, one per parameter, in get_weights() order.
        self.momentum_buffers = [np.zeros_like(p) for p in self._parameters()]

    # ---------------------------------------------------------------- building

    @classmethod
    def from_config(cls, config: dict[str, Any],
                    weights: list[np.ndarray] | None = None) -> Network:
        """Build a network from a config dict (see docs/internals.md).

        Parameters
        ----------
        config : dict
            ``{"input_dim", "dtype", "seed", "layers": [...], "compile": {...} or None}``.
        weights : list of arrays, optional
            Flat ``[W0, b0, W1, ...]`` as ``get_weights()``; a layer without bias
            gives W only. If None, W is drawn with ``rng.init_weights`` from the
            seed and biases start at zero.

        Examples
        --------
        >>> cfg = {"input_dim": 2, "dtype": "float32", "seed": 1, "compile": None,
        ...        "layers": [{"class_name": "Dense", "units": 1, "use_bias": False,
        ...                    "init": "zeros", "activation": {"name": "relu"}}]}
        >>> [w.shape for w in Network.from_config(cfg).get_weights()]
        [(2, 1)]
        """
        dtype = np.dtype(config.get("dtype", "float32"))
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype: expected 'float32' or 'float64', got {config.get('dtype')!r}")
        seed = int(config.get("seed", 0))
        remaining = [np.asarray(w) for w in weights] if weights is not None else None
        fan_in = config.get("input_dim")
        if fan_in is None and remaining:
            fan_in = remaining[0].shape[0]
        if fan_in is None:
            raise ValueError("input_dim: expected an int (or weights to infer it from), got None")

        layers = []
        for index, spec in enumerate(config["layers"]):
            if spec.get("class_name", "Dense") != "Dense":
                raise ValueError(f"layers[{index}].class_name: the reference supports 'Dense' "
                                 f"only, got {spec['class_name']!r}")
            units, use_bias = int(spec["units"]), bool(spec.get("use_bias", True))
            act = spec.get("activation", {"name": "identity"})
            act = {"name": act} if isinstance(act, str) else dict(act)
            name = act.pop("name")
            if name not in ACTIVATIONS:
                raise ValueError(f"layers[{index}].activation: expected one of "
                                 f"{sorted(ACTIVATIONS)}, got {name!r}")
            params = {**ACTIVATIONS[name].params, **act}
            if name == "softmax" and index != len(config["layers"]) - 1:
                raise ValueError(f"layers[{index}].activation: softmax is for the output layer only")
            if remaining is not None:
                W = cls._take(remaining, (fan_in, units), dtype, f"weights for layers[{index}].W")
                b = cls._take(remaining, (units,), dtype,
                              f"weights for layers[{index}].b") if use_bias else None
            else:
                init = spec.get("init", "glorot_uniform")
                if init == "explicit":
                    raise ValueError(f"layers[{index}].init: 'explicit' needs the weights argument")
                W = rng.init_weights(init, fan_in, units, seed, index, dtype)
                b = np.zeros(units, dtype=dtype) if use_bias else None
            layers.append(Dense(W, b, ACTIVATIONS[name].name, params, index))
            fan_in = units
        if remaining:
            raise ValueError(f"weights: {len(remaining)} array(s) more than the layers take")

        loss, optimizer = None, None
        compiled = config.get("compile")
        if compiled is not None:
            loss = compiled["loss"]
            if loss not in LOSSES:
                raise ValueError(f"compile.loss: expected one of {sorted(LOSSES)}, got {loss!r}")
            fused = LOSSES[loss].fused_with
            if fused is not None and layers[-1].activation != fused:
                raise ValueError(f"compile.loss: {loss} needs a {fused} output layer, "
                                 f"got {layers[-1].activation!r}")
            opt = dict(compiled.get("optimizer") or {"class_name": "SGD", "lr": 0.01})
            if opt.pop("class_name", "SGD") != "SGD":
                raise ValueError("compile.optimizer: the reference implements SGD only")
            if opt.pop("clip_norm", None) is not None:
                raise ValueError("compile.optimizer: the reference does not implement clip_norm yet")
            optimizer = {"lr": 0.01, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0, **opt}
            if optimizer["nesterov"] and optimizer["momentum"] == 0:
                raise ValueError("compile.optimizer: nesterov needs momentum > 0")
        return cls(layers, dtype, seed, loss, optimizer)

    @staticmethod
    def _take(arrays: list[np.ndarray], shape: tuple[int, ...], dtype: np.dtype,
              what: str) -> np.ndarray:
        if not arrays:
            raise ValueError(f"{what}: expected an array of shape {shape}, got none")
        w = arrays.pop(0)
        if w.shape != shape:
            raise ValueError(f"{what}: expected shape {shape}, got {w.shape}")
        return np.array(w, dtype=dtype)  # a copy, in the network's dtype

    def _parameters(self) -> list[np.ndarray]:
        """The parameter arrays themselves (not copies): [W0, b0, W1, ...]."""
        return [p for layer in self.layers for p in (layer.W, layer.b) if p is not None]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters, flat: ``[W0, b0, W1, ...]`` (no b without bias).

        Examples
        --------
        >>> # net.get_weights()[0].shape == (input_dim, units of layer 0)
        """
        return [p.copy() for p in self._parameters()]

    # ----------------------------------------------------------------- forward

    def _inputs(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.layers[0].W.shape[0]:
            raise ValueError(f"X: expected shape (n, {self.layers[0].W.shape[0]}), got {X.shape}")
        if X.shape[0] == 0:
            raise ValueError("X: expected at least one sample, got 0 rows")
        return X

    def forward_trace(self, X: Any, training: bool = False) -> list[dict[str, np.ndarray]]:
        """Forward pass keeping, for every layer, ``{"a_prev", "z", "a"}``.

        While training, a noisy_relu layer adds its noise to z first (z <- z + eps,
        eps from ``rng.noise`` at the current ``step_counter``); its dict then
        holds the noisy z and also ``"noise"`` (eps).

        Examples
        --------
        >>> # [t["a"].shape for t in net.forward_trace(X)]
        """
        a = self._inputs(X)
        trace = []
        for layer in self.layers:
            z = dense_forward(a, layer.W, layer.b)  # (B, OUT)
            record = {"a_prev": a}
            if training and layer.activation == "noisy_relu":
                eps = rng.noise(self.seed, self.step_counter, layer.index, z.shape,
                                layer.params["sigma"], self.dtype)
                z = z + eps
                record["noise"] = eps
            a = ACTIVATIONS[layer.activation].f(z, **layer.params)  # (B, OUT)
            record.update(z=z, a=a)
            trace.append(record)
        return trace

    def forward(self, X: Any, training: bool = False) -> np.ndarray:
        """Output of the network, shape (B, K).

        Examples
        --------
        >>> # y_hat = net.forward(X)
        """
        return self.forward_trace(X, training)[-1]["a"]

    def predict(self, X: Any) -> np.ndarray:
        """Output in inference mode (no noise), shape (B, K).

        Examples
        --------
        >>> # y_hat = net.predict(X)
        """
        return self.forward(X, training=False)

    # ------------------------------------------------------- loss and backward

    def _targets(self, Y: Any, n: int) -> np.ndarray:
        """Y as a (B, K) array of the dtype; integer labels (B,) become one-hot rows."""
        K = self.layers[-1].W.shape[1]
        Y = np.asarray(Y)
        if Y.ndim == 1 and self.loss == "categorical_crossentropy":
            labels = Y.astype(np.int64)
            if not np.array_equal(labels, Y) or labels.min() < 0 or labels.max() >= K:
                raise ValueError(f"y: expected class labels in [0, {K}), got {Y[:5]}...")
            Y = np.eye(K, dtype=self.dtype)[labels]
        elif Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        Y = np.asarray(Y, dtype=self.dtype)
        if Y.shape != (n, K):
            raise ValueError(f"y: expected shape ({n}, {K}), got {Y.shape}")
        return Y

    def loss_and_gradients(self, X: Any, Y: Any, training: bool = False
                           ) -> tuple[float, list[dict[str, np.ndarray]]]:
        """Mean loss over the batch and its gradient for every parameter.

        Returns
        -------
        loss : float
        grads : list of dict
            One ``{"W": dW, "b": db}`` per layer (no "b" without bias).

        Examples
        --------
        >>> # loss, grads = net.loss_and_gradients(X, Y); grads[0]["W"].shape
        """
        if self.loss is None:
            raise ValueError("loss: the config has no 'compile' entry, so no loss is defined")
        trace = self.forward_trace(X, training)
        Y = self._targets(Y, trace[0]["a_prev"].shape[0])
        loss_fn, out = LOSSES[self.loss], trace[-1]

        # Start of the chain rule: dL/dz of the output layer, (B, K).
        if loss_fn.fused_with is not None:  # sigmoid+BCE, softmax+CE: on the logits
            loss = loss_fn.loss(out["z"], Y)
            dz = loss_fn.grad(out["z"], Y)
        else:
            loss = loss_fn.loss(out["a"], Y)
            dA = loss_fn.grad(out["a"], Y)
            last = self.layers[-1]
            dz = ACTIVATIONS[last.activation].df(out["z"], out["a"], dA, **last.params)

        # Walk back through the layers: Dense backward, then the previous activation.
        grads: list[dict[str, np.ndarray]] = [{} for _ in self.layers]
        for i in reversed(range(len(self.layers))):
            layer = self.layers[i]
            dW, db, da_prev = dense_backward(dz, trace[i]["a_prev"], layer.W, layer.b is not None)
            grads[i]["W"] = dW
            if db is not None:
                grads[i]["b"] = db
            if i > 0:
                prev, t = self.layers[i - 1], trace[i - 1]
                dz = ACTIVATIONS[prev.activation].df(t["z"], t["a"], da_prev, **prev.params)
        return float(loss), grads

    # ---------------------------------------------------------------- training

    def _step(self, X: np.ndarray, Y: np.ndarray) -> tuple[float, list[dict[str, np.ndarray]]]:
        """Forward (training), loss, backward, SGD update; returns the loss and gradients."""
        if self.optimizer is None:
            raise ValueError("optimizer: the config has no 'compile' entry, so no optimizer")
        loss, grads = self.loss_and_gradients(X, Y, training=True)
        flat = [g[k] for g in grads for k in ("W", "b") if k in g]  # same order as parameters
        sgd_update(self._parameters(), flat, self.momentum_buffers, **self.optimizer)
        self.step_counter += 1
        return loss, grads

    def train_step(self, X: Any, Y: Any) -> float:
        """One SGD update on one batch; returns the batch loss (before the update).

        Examples
        --------
        >>> # loss = net.train_step(Xb, Yb)
        """
        return self._step(X, Y)[0]

    def fit(self, X: Any, Y: Any, epochs: int = 1, batch_size: int = 32,
            shuffle: bool = True) -> dict[str, list]:
        """Train by mini-batch SGD.

        Each epoch visits the samples in the order ``rng.permutation(seed,
        epoch_counter, n)`` (or ``arange(n)`` without shuffle), in consecutive
        batches of ``batch_size`` rows (the last may be smaller).

        Returns
        -------
        dict
            ``"loss"``: per epoch, sum(loss_b * N_b) / n over its batches;
            ``"grad_norm"``: per epoch, per layer, the mean over the steps of
            sqrt(sum dW^2 + sum db^2).

        Examples
        --------
        >>> # history = net.fit(X, Y, epochs=10, batch_size=32); history["loss"][-1]
        """
        if batch_size < 1:
            raise ValueError(f"batch_size: expected an int >= 1, got {batch_size}")
        X = self._inputs(X)
        n = X.shape[0]
        Y = self._targets(Y, n)
        history: dict[str, list] = {"loss": [], "grad_norm": []}
        for _ in range(epochs):
            order = rng.permutation(self.seed, self.epoch_counter, n) if shuffle else np.arange(n)
            loss_sum, norm_sums, steps = 0.0, [0.0] * len(self.layers), 0
            for start in range(0, n, batch_size):
                rows = order[start:start + batch_size]  # (B,) sample indices
                loss, grads = self._step(X[rows], Y[rows])
                loss_sum += loss * len(rows)
                for i, g in enumerate(grads):
                    norm_sums[i] += math.sqrt(sum(float(np.sum(v.astype(np.float64) ** 2))
                                                  for v in g.values()))
                steps += 1
            history["loss"].append(loss_sum / n)
            history["grad_norm"].append([s / steps for s in norm_sums])
            self.epoch_counter += 1
        return history

    def evaluate(self, X: Any, Y: Any) -> float:
        """Mean loss over the whole set, in inference mode.

        Examples
        --------
        >>> # net.evaluate(X, Y)
        """
        return self.loss_and_gradients(X, Y, training=False)[0]
