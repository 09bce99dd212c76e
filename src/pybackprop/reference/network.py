"""A whole MLP in NumPy: forward, loss, backward, optimiser update, the epoch loop.

Follow it top-down: ``fit`` -> ``train_step`` -> ``forward_trace`` (forward),
``loss_and_gradients`` (loss and backward) -> ``_update`` (clipping, then
``sgd_update``, ``adam_update``, ``rmsprop_update`` or ``adagrad_update``).

Shapes: B = batch size, IN/OUT = fan-in/fan-out of a layer, K = output units.
Every array of the network is in its dtype (float32 or float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from . import rng
from .functional import (
    ACTIVATIONS,
    LOSSES,
    adagrad_update,
    adam_update,
    batchnorm_backward,
    batchnorm_forward,
    batchnorm_running,
    clip_grad_norm,
    dense_backward,
    dense_forward,
    dropout_backward,
    dropout_forward,
    dropout_scales,
    layernorm_backward,
    layernorm_forward,
    rmsprop_update,
    schedule_value,
    sgd_update,
)

# Hyperparameters of each optimiser and their defaults (those of torch.optim and
# of pybackprop.optimizers); "lr" may be a number or a schedule config dict.
_DECAY = {"weight_decay": 0.0, "clip_norm": None, "decay_bias": True, "decay_per_sample": False}
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "SGD": {"lr": 0.01, "momentum": 0.0, "nesterov": False, **_DECAY},
    "Adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "amsgrad": False, **_DECAY},
    "AdamW": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "amsgrad": False, **_DECAY,
              "weight_decay": 0.01},
    "RMSprop": {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0, **_DECAY},
    "Adagrad": {"lr": 0.01, "lr_decay": 0.0, "eps": 1e-10, "initial_accumulator_value": 0.0, **_DECAY},
}


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
        Position in the config's layer list, Dropouts included (selects the RNG streams).
    """

    W: np.ndarray
    b: np.ndarray | None
    activation: str
    params: dict[str, float]
    index: int


@dataclass
class Dropout:
    """A Dropout layer: ``d = a * mask * s`` while training, ``d = a * s'`` at inference.

    Attributes
    ----------
    keep_prob : float
        p, the probability of KEEPING a unit, in (0, 1].
    scaling : str
        ``"inverted"`` (s = 1/p, s' = 1) or ``"classic"`` (s = 1, s' = p).
    per_batch : bool
        One mask for the whole batch (``mask="per_batch"``) instead of one per sample.
    units : int
        F, the number of units (or input features) it drops.
    index : int
        Position in the config's layer list (selects the RNG stream of its masks).
    """

    keep_prob: float
    scaling: str
    per_batch: bool
    units: int
    index: int


@dataclass
class Norm:
    """A BatchNorm (``kind="batch"``) or LayerNorm (``kind="layer"``) over F features.

    Attributes
    ----------
    kind : str
    gamma, beta : (F,) arrays or None (no affine)
    running_mean, running_var : (F,) arrays or None (BatchNorm's running estimates)
    momentum, eps : float
    index : int
        Position in the config's layer list.
    """

    kind: str
    gamma: np.ndarray | None
    beta: np.ndarray | None
    running_mean: np.ndarray | None
    running_var: np.ndarray | None
    momentum: float
    eps: float
    index: int


Layer = Union[Dense, Dropout, Norm]


class Network:
    """The reference MLP, built from the same config dict as ``Sequential.get_config()``.

    Attributes
    ----------
    layers : list of Dense and Dropout
        In config order.
    dtype : numpy.dtype
    seed : int
    loss : str or None
        Key of ``LOSSES`` (None if the config has no "compile" entry).
    optimizer : dict or None
        ``{"class_name": "SGD" | "Adam" | "AdamW" | "RMSprop" | "Adagrad", "lr", ...,
        "weight_decay", "clip_norm"}`` with every default filled in (see ``OPTIMIZERS``).
    optimizer_state : dict of lists of arrays
        The optimiser's buffers, one array per parameter in get_weights() order:
        SGD ``"momentum_buffer"``; Adam and AdamW ``"m"``, ``"v"`` (and ``"v_max"`` with
        amsgrad); RMSprop ``"square_avg"``,
        ``"momentum_buffer"``; Adagrad ``"sum"``.
    optimizer_step : int
        The optimiser's own update count (Adam's and Adagrad's t is this + 1).
    epoch_counter, step_counter : int
        Epochs and updates done so far (they drive shuffling, dropout, noise, schedules).
    weight_norm : {"rows", "weight_sum"}
        What a weighted batch's loss is divided by: its rows (Keras's, the default) or its
        weights' sum (scikit-learn's; a batch of weight zero has loss 0 and makes no update).
        The core's ``Engine.set_weight_norm``.

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

    def __init__(self, layers: list[Layer], dtype: Any, seed: int,
                 loss: str | None, optimizer: dict[str, Any] | None) -> None:
        self.layers = layers
        self.dtype = np.dtype(dtype)
        self.seed = seed
        self.loss = loss
        self.optimizer = optimizer
        self.epoch_counter = 0
        self.step_counter = 0
        self.weight_norm = "rows"
        self.last_count = 0.0  # what the last loss_and_gradients divided by (rows, or the weights' sum)
        self.reset_optimizer_state()

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

        specs = config["layers"]
        dense_indices = [i for i, s in enumerate(specs) if s.get("class_name", "Dense") == "Dense"]
        if not dense_indices:
            raise ValueError("layers: expected at least one Dense layer, got none")
        layers: list[Layer] = []
        for index, spec in enumerate(specs):
            kind = spec.get("class_name", "Dense")
            if kind == "Dropout":
                layers.append(cls._dropout_from_config(spec, index, specs, fan_in))
                continue
            if kind in ("BatchNorm", "LayerNorm"):
                layers.append(cls._norm_from_config(spec, index, fan_in, dtype, remaining))
                continue
            if kind != "Dense":
                raise ValueError(f"layers[{index}].class_name: expected 'Dense', 'Dropout', 'BatchNorm' "
                                 f"or 'LayerNorm', got {kind!r}")
            units, use_bias = int(spec["units"]), bool(spec.get("use_bias", True))
            act = spec.get("activation", {"name": "identity"})
            act = {"name": act} if isinstance(act, str) else dict(act)
            name = act.pop("name")
            if name not in ACTIVATIONS:
                raise ValueError(f"layers[{index}].activation: expected one of "
                                 f"{sorted(ACTIVATIONS)}, got {name!r}")
            params = {**ACTIVATIONS[name].params, **act}
            if name == "softmax" and index != dense_indices[-1]:
                raise ValueError(f"layers[{index}].activation: softmax is for the output layer only")
            if remaining is not None:
                W = cls._take(remaining, (fan_in, units), dtype, f"weights for layers[{index}].W")
                b = cls._take(remaining, (units,), dtype,
                              f"weights for layers[{index}].b") if use_bias else None
            else:
                init = spec.get("init", "glorot_uniform")
                if init == "explicit" or not isinstance(init, str):
                    raise ValueError(f"layers[{index}].init: an explicit init needs the weights argument")
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
            out = [layer for layer in layers if isinstance(layer, Dense)][-1]
            if fused is not None and out.activation != fused:
                raise ValueError(f"compile.loss: {loss} needs a {fused} output layer, "
                                 f"got {out.activation!r}")
            optimizer = cls._optimizer_from_config(compiled.get("optimizer"))
        return cls(layers, dtype, seed, loss, optimizer)

    @staticmethod
    def _dropout_from_config(spec: dict[str, Any], index: int, specs: list[dict[str, Any]],
                             units: int) -> Dropout:
        """A Dropout from its config dict, checked (numbers only: no keep_prob schedule)."""
        where = f"layers[{index}]"
        nxt = specs[index + 1].get("class_name", "Dense") if index + 1 < len(specs) else None
        if nxt != "Dense":
            raise ValueError(f"{where}: a Dropout must be followed by a Dense layer, got "
                             f"{'the end of the model' if nxt is None else nxt!r}")
        keep_prob = spec["keep_prob"]
        if isinstance(keep_prob, dict):
            raise ValueError(f"{where}.keep_prob: the reference takes a number only, got the "
                             f"schedule {keep_prob.get('class_name')!r}")
        keep_prob = float(keep_prob)
        if not 0.0 < keep_prob <= 1.0:
            raise ValueError(f"{where}.keep_prob: expected the probability of KEEPING a unit in "
                             f"(0, 1] (the drop rate is 1 - keep_prob), got {keep_prob!r}")
        scaling, mask = spec.get("scaling", "inverted"), spec.get("mask", "per_sample")
        if scaling not in ("inverted", "classic"):
            raise ValueError(f"{where}.scaling: expected 'inverted' or 'classic', got {scaling!r}")
        if mask not in ("per_sample", "per_batch"):
            raise ValueError(f"{where}.mask: expected 'per_sample' or 'per_batch', got {mask!r}")
        return Dropout(keep_prob, scaling, mask == "per_batch", int(units), index)

    @classmethod
    def _norm_from_config(cls, spec: dict[str, Any], index: int, F: int, dtype: np.dtype,
                          remaining: list[np.ndarray] | None) -> Norm:
        """A BatchNorm or LayerNorm; its arrays from ``remaining`` (get_weights order) or fresh."""
        batch = spec["class_name"] == "BatchNorm"
        affine = bool(spec.get("affine", True) if batch else spec.get("elementwise_affine", True))
        names = (["gamma", "beta"] if affine else []) + (["running_mean", "running_var"] if batch else [])
        fresh = {"gamma": np.ones(F, dtype), "beta": np.zeros(F, dtype),
                 "running_mean": np.zeros(F, dtype), "running_var": np.ones(F, dtype)}
        arrays: dict[str, np.ndarray | None] = {"gamma": None, "beta": None, "running_mean": None,
                                                "running_var": None}
        for name in names:
            arrays[name] = (cls._take(remaining, (F,), dtype, f"weights for layers[{index}].{name}")
                            if remaining is not None else fresh[name])
        return Norm("batch" if batch else "layer", arrays["gamma"], arrays["beta"], arrays["running_mean"],
                    arrays["running_var"], float(spec.get("momentum", 0.1)), float(spec.get("eps", 1e-5)), index)

    @staticmethod
    def _optimizer_from_config(spec: dict[str, Any] | None) -> dict[str, Any]:
        """The optimiser dict: class_name and every hyperparameter, defaults filled in."""
        spec = dict(spec or {"class_name": "SGD"})
        name = spec.pop("class_name", "SGD")
        if name not in OPTIMIZERS:
            raise ValueError(f"compile.optimizer.class_name: expected one of {sorted(OPTIMIZERS)}, "
                             f"got {name!r}")
        unknown = sorted(set(spec) - set(OPTIMIZERS[name]))
        if unknown:
            raise ValueError(f"compile.optimizer: {name} has no hyperparameter(s) {unknown}")
        optimizer = {"class_name": name, **OPTIMIZERS[name], **spec}
        if isinstance(optimizer["lr"], dict):
            schedule_value(optimizer["lr"], 0)  # raises for a schedule the reference cannot evaluate
        if name == "SGD" and optimizer["nesterov"] and optimizer["momentum"] == 0:
            raise ValueError("compile.optimizer: nesterov needs momentum > 0")
        return optimizer

    @staticmethod
    def _take(arrays: list[np.ndarray], shape: tuple[int, ...], dtype: np.dtype,
              what: str) -> np.ndarray:
        if not arrays:
            raise ValueError(f"{what}: expected an array of shape {shape}, got none")
        w = arrays.pop(0)
        if w.shape != shape:
            raise ValueError(f"{what}: expected shape {shape}, got {w.shape}")
        return np.array(w, dtype=dtype)  # a copy, in the network's dtype

    @property
    def dense_layers(self) -> list[Dense]:
        """The layers that hold parameters, in order."""
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    @property
    def input_dim(self) -> int:
        return self.dense_layers[0].W.shape[0]

    def _parameters(self) -> list[np.ndarray]:
        """The parameter arrays themselves (not copies): [W0, b0, W1, ...], a norm's gamma, beta in place."""
        out: list[np.ndarray] = []
        for layer in self.layers:
            if isinstance(layer, Dense):
                out += [p for p in (layer.W, layer.b) if p is not None]
            elif isinstance(layer, Norm):
                out += [p for p in (layer.gamma, layer.beta) if p is not None]
        return out

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters, flat: ``[W0, b0, W1, ...]`` (no b without bias); a
        BatchNorm gives gamma, beta, running_mean, running_var, a LayerNorm gamma, beta.

        Examples
        --------
        >>> # net.get_weights()[0].shape == (input_dim, units of layer 0)
        """
        out: list[np.ndarray] = []
        for layer in self.layers:
            if isinstance(layer, Dense):
                out += [p.copy() for p in (layer.W, layer.b) if p is not None]
            elif isinstance(layer, Norm):
                out += [p.copy() for p in (layer.gamma, layer.beta, layer.running_mean, layer.running_var)
                        if p is not None]
        return out

    def reset_optimizer_state(self) -> None:
        """Zero the optimiser's buffers and step count (what ``compile`` does in the core)."""
        params = self._parameters()
        zeros = lambda: [np.zeros_like(p) for p in params]  # noqa: E731
        name = self.optimizer["class_name"] if self.optimizer else None
        self.optimizer_state: dict[str, list[np.ndarray]] = {}
        if name == "SGD":
            self.optimizer_state = {"momentum_buffer": zeros()}
        elif name in ("Adam", "AdamW"):
            self.optimizer_state = {"m": zeros(), "v": zeros()}
            assert self.optimizer is not None
            if self.optimizer["amsgrad"]:
                self.optimizer_state["v_max"] = zeros()
        elif name == "RMSprop":
            self.optimizer_state = {"square_avg": zeros(), "momentum_buffer": zeros()}
        elif name == "Adagrad":
            assert self.optimizer is not None
            start = self.optimizer["initial_accumulator_value"]
            self.optimizer_state = {"sum": [np.full_like(p, start) for p in params]}
        self.optimizer_step = 0

    @property
    def momentum_buffers(self) -> list[np.ndarray] | None:
        """The momentum buffers of SGD (or RMSprop), one per parameter; None for the others."""
        return self.optimizer_state.get("momentum_buffer")

    def _now(self, spec: float | dict) -> float:
        """A hyperparameter's value for the next step: a number, or a schedule evaluated at
        t = epoch_counter (unit "epoch", the default) or t = step_counter (unit "step")."""
        if isinstance(spec, dict) and spec.get("unit", "epoch") == "step":
            return schedule_value(spec, self.step_counter)
        return schedule_value(spec, self.epoch_counter)

    # ----------------------------------------------------------------- forward

    def _inputs(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.input_dim:
            raise ValueError(f"X: expected shape (n, {self.input_dim}), got {X.shape}")
        if X.shape[0] == 0:
            raise ValueError("X: expected at least one sample, got 0 rows")
        return X

    def _given_mask(self, masks: dict[int, Any], layer: Dropout, B: int) -> np.ndarray | None:
        """The mask given for ``layer`` in ``masks`` as a (B, F) array, or None."""
        if layer.index not in masks:
            return None
        where = f"masks[{layer.index}]"
        try:
            mask = np.broadcast_to(np.asarray(masks[layer.index], dtype=self.dtype), (B, layer.units))
        except ValueError:
            raise ValueError(f"{where}: expected shape ({B}, {layer.units}) or ({layer.units},), "
                             f"got {np.shape(masks[layer.index])}") from None
        if not np.isin(mask, (0, 1)).all():
            raise ValueError(f"{where}: expected only 0 (dropped) and 1 (kept)")
        return mask

    def forward_trace(self, X: Any, training: bool = False,
                      masks: dict[int, Any] | None = None) -> list[dict[str, Any]]:
        """Forward pass keeping a dict for every layer.

        Dense: ``{"a_prev", "z", "a"}``. While training, a noisy_relu layer adds
        its noise to z first (z <- z + eps, eps from ``rng.noise`` at the current
        ``step_counter``); its dict then holds the noisy z and also ``"noise"`` (eps).

        Dropout: ``{"a_prev", "mask", "scale", "a"}``, ``a = a_prev * mask * scale``.

        BatchNorm, LayerNorm: ``{"a_prev", "mean", "var", "inv_std", "x_hat", "training", "a"}``;
        a BatchNorm in training moves its running estimates (as torch's forward does).
        While training the mask comes from ``masks[index]`` if given (a 0/1 array of
        shape (B, F), or (F,) for every row), else from ``rng.dropout_mask`` at the
        current ``step_counter``; at inference the mask is None and the scale is s'.

        Examples
        --------
        >>> # [t["a"].shape for t in net.forward_trace(X)]
        """
        a = self._inputs(X)
        masks = {} if masks is None else masks
        unknown = set(masks) - {layer.index for layer in self.layers if isinstance(layer, Dropout)}
        if unknown:
            raise ValueError(f"masks: keys must be indices of Dropout layers, got {sorted(unknown)}")
        B = a.shape[0]
        trace: list[dict[str, Any]] = []
        for layer in self.layers:
            if isinstance(layer, Norm):
                if layer.kind == "layer":
                    y, cache = layernorm_forward(a, layer.gamma, layer.beta, layer.eps)
                elif training:
                    if B < 2:
                        raise ValueError(f"BatchNorm layer {layer.index}: expected a training batch of more "
                                         f"than one sample, got {B}")
                    y, cache = batchnorm_forward(a, layer.gamma, layer.beta, layer.eps)
                    assert layer.running_mean is not None and layer.running_var is not None
                    batchnorm_running(layer.running_mean, layer.running_var, cache, B, layer.momentum)
                else:
                    y, cache = batchnorm_forward(a, layer.gamma, layer.beta, layer.eps,
                                                 layer.running_mean, layer.running_var)
                trace.append({"a_prev": a, **cache, "training": training, "a": y})
                a = y
                continue
            if isinstance(layer, Dropout):
                train_scale, inference_scale = dropout_scales(layer.keep_prob, layer.scaling)
                if training:
                    mask = self._given_mask(masks, layer, B)
                    if mask is None:
                        mask = rng.dropout_mask(self.seed, self.step_counter, layer.index,
                                                (B, layer.units), layer.keep_prob, layer.per_batch,
                                                self.dtype)
                    scale = train_scale
                else:
                    mask, scale = None, inference_scale
                d = dropout_forward(a, mask, scale)  # (B, F)
                trace.append({"a_prev": a, "mask": mask, "scale": scale, "a": d})
                a = d
                continue
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

    def forward(self, X: Any, training: bool = False,
                masks: dict[int, Any] | None = None) -> np.ndarray:
        """Output of the network, shape (B, K).

        Examples
        --------
        >>> # y_hat = net.forward(X)
        """
        return self.forward_trace(X, training, masks)[-1]["a"]

    def predict(self, X: Any) -> np.ndarray:
        """Output in inference mode (no noise, no dropping), shape (B, K).

        Examples
        --------
        >>> # y_hat = net.predict(X)
        """
        return self.forward(X, training=False)

    # ------------------------------------------------------- loss and backward

    def _targets(self, Y: Any, n: int) -> np.ndarray:
        """Y as a (B, K) array of the dtype; integer labels (B,) become one-hot rows."""
        K = self.dense_layers[-1].W.shape[1]
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

    def loss_and_gradients(self, X: Any, Y: Any, training: bool = False,
                           masks: dict[int, Any] | None = None, return_masks: bool = False,
                           sample_weight: Any = None) -> Any:
        """Mean loss over the batch and its gradient for every parameter.

        Parameters
        ----------
        X, Y : arrays
            One batch.
        training : bool
            Training mode: Dropouts drop and noisy_relu adds noise (from the
            current ``step_counter``).
        masks : dict, optional
            ``{index of a Dropout in layers: 0/1 array (B, F) or (F,)}``, used
            instead of drawing (training mode), to replay a step.
        return_masks : bool
            Also return the masks used (training mode), in the same form.
        sample_weight : array (B,), optional
            Keras's weighted loss ``sum_r w_r * l_r / B``, ``l_r`` the loss of row r
            alone; its gradient is the unweighted one with row r scaled by ``w_r``.
            With ``weight_norm="weight_sum"``, ``sum_r w_r * l_r / sum_r w_r`` (and its
            gradient; 0 and zero gradients when the weights sum to zero).

        Returns
        -------
        loss : float
        grads : list of dict
            One per layer: ``{"W": dW, "b": db}`` (no "b" without bias), ``{}`` for Dropout,
            ``{"weight": dgamma, "bias": dbeta}`` for an affine BatchNorm or LayerNorm.
        masks : dict
            Only with ``return_masks=True``.

        Examples
        --------
        >>> # loss, grads = net.loss_and_gradients(X, Y); grads[0]["W"].shape
        """
        if self.loss is None:
            raise ValueError("loss: the config has no 'compile' entry, so no loss is defined")
        trace = self.forward_trace(X, training, masks)
        Y = self._targets(Y, trace[0]["a_prev"].shape[0])
        loss_fn, out, last = LOSSES[self.loss], trace[-1], self.layers[-1]
        assert isinstance(last, Dense)  # the config checks that the last layer is Dense

        # Start of the chain rule: dL/dz of the output layer, (B, K).
        pred = out["z"] if loss_fn.fused_with is not None else out["a"]  # fused (sigmoid+BCE, softmax+CE): logits
        loss = loss_fn.loss(pred, Y)
        dpred = loss_fn.grad(pred, Y)
        self.last_count = float(pred.shape[0])
        if sample_weight is not None:  # l_r: the loss of row r alone (its mean over the outputs)
            w = np.asarray(sample_weight, dtype=pred.dtype)
            rows = np.array([loss_fn.loss(pred[r:r + 1], Y[r:r + 1]) for r in range(pred.shape[0])])
            if self.weight_norm == "weight_sum":  # sum w_r l_r / sum w_r: the mean's B / sum w times it
                self.last_count = float(np.sum(w.astype(np.float64)))
                share = pred.shape[0] / self.last_count if self.last_count > 0 else 0.0
                w = w * share
            loss = np.sum(w * rows) / pred.shape[0]
            dpred = dpred * w[:, None]
        if loss_fn.fused_with is not None:
            dz = dpred
        else:
            dz = ACTIVATIONS[last.activation].df(out["z"], out["a"], dpred, **last.params)

        # Walk back through the layers. da = dL/da of the layer below the one done.
        grads: list[dict[str, np.ndarray]] = [{} for _ in self.layers]
        da: np.ndarray
        for i in reversed(range(len(self.layers))):
            layer, t = self.layers[i], trace[i]
            if isinstance(layer, Dropout):  # d = a * mask * s, so dL/da = dL/dd * mask * s
                da = dropout_backward(da, t["mask"], t["scale"])
                continue
            if isinstance(layer, Norm):  # y = gamma * x_hat + beta, x_hat through the statistics
                if layer.kind == "layer":
                    da, dgamma, dbeta = layernorm_backward(da, t, layer.gamma)
                else:
                    da, dgamma, dbeta = batchnorm_backward(da, t, layer.gamma, t["training"])
                if dgamma is not None and dbeta is not None:
                    grads[i]["weight"], grads[i]["bias"] = dgamma, dbeta
                continue
            if i != len(self.layers) - 1:  # through this layer's activation
                dz = ACTIVATIONS[layer.activation].df(t["z"], t["a"], da, **layer.params)
            dW, db, da = dense_backward(dz, t["a_prev"], layer.W, layer.b is not None)
            grads[i]["W"] = dW
            if db is not None:
                grads[i]["b"] = db
        if not return_masks:
            return float(loss), grads
        used = {layer.index: t["mask"] for layer, t in zip(self.layers, trace)
                if isinstance(layer, Dropout) and training}
        return float(loss), grads, used

    # ---------------------------------------------------------------- training

    def _update(self, grads: list[np.ndarray], rows: float) -> None:
        """One optimiser step on every parameter: clip the gradients, then the update rule.

        ``rows`` is the batch's sample count (or its weights' sum with ``weight_norm="weight_sum"``):
        with ``decay_per_sample`` the step's weight decay is ``weight_decay / rows``. Without
        ``decay_bias`` the rule runs twice, on the weights with the decay and on the biases without (the rules
        are elementwise, so this is the same as one call with a per-parameter decay).
        """
        opt, state, params = self.optimizer, self.optimizer_state, self._parameters()
        assert opt is not None, "the config has no optimiser"
        lr = self._now(opt["lr"])
        if opt["clip_norm"] is not None:
            grads = clip_grad_norm(grads, opt["clip_norm"])
        self.optimizer_step += 1
        wd = opt["weight_decay"] / rows if opt["decay_per_sample"] and rows > 0 else opt["weight_decay"]
        if opt["decay_bias"] or wd == 0:
            self._rule(params, grads, state, lr, wd)
            return
        is_bias = [p.ndim == 1 for p in params]  # [W0, b0, W1, ...]: the biases are the vectors
        for want_bias, decay in ((False, wd), (True, 0.0)):
            index = [i for i, b in enumerate(is_bias) if b == want_bias]
            self._rule([params[i] for i in index], [grads[i] for i in index],
                       {key: [bufs[i] for i in index] for key, bufs in state.items()}, lr, decay)

    def _rule(self, params: list[np.ndarray], grads: list[np.ndarray], state: dict[str, list[np.ndarray]],
              lr: float, wd: float) -> None:
        """The compiled update rule on these parameters, in place."""
        opt, t = self.optimizer, self.optimizer_step
        assert opt is not None
        if opt["class_name"] == "SGD":
            sgd_update(params, grads, state["momentum_buffer"], lr, opt["momentum"], opt["nesterov"], wd)
        elif opt["class_name"] in ("Adam", "AdamW"):
            adam_update(params, grads, state["m"], state["v"], t, lr, opt["beta1"], opt["beta2"],
                        opt["eps"], wd, decoupled=opt["class_name"] == "AdamW", v_max=state.get("v_max"))
        elif opt["class_name"] == "RMSprop":
            rmsprop_update(params, grads, state["square_avg"], state["momentum_buffer"], lr,
                           opt["alpha"], opt["eps"], opt["momentum"], wd)
        else:
            adagrad_update(params, grads, state["sum"], t, lr, opt["lr_decay"], opt["eps"], wd)

    def _step(self, X: np.ndarray, Y: np.ndarray, w: np.ndarray | None = None
              ) -> tuple[float, list[dict[str, np.ndarray]]]:
        """Forward (training), loss (weighted by ``w``), backward, update; the loss and gradients."""
        if self.optimizer is None:
            raise ValueError("optimizer: the config has no 'compile' entry, so no optimizer")
        loss, grads = self.loss_and_gradients(X, Y, training=True, sample_weight=w)
        flat = [g[k] for g in grads for k in ("W", "b", "weight", "bias") if k in g]  # as parameters
        if self.last_count > 0:  # (weights summing to zero with "weight_sum": no update)
            self._update(flat, self.last_count)
        self.step_counter += 1
        return loss, grads

    def train_step(self, X: Any, Y: Any) -> float:
        """One update on one batch; returns the batch loss (before the update).

        Examples
        --------
        >>> # loss = net.train_step(Xb, Yb)
        """
        return self._step(X, Y)[0]

    def fit(self, X: Any, Y: Any, epochs: int = 1, batch_size: int = 32,
            shuffle: bool = True, sample_weight: Any = None) -> dict[str, Any]:
        """Train by mini-batch gradient descent.

        Each epoch visits the samples in the order ``rng.permutation(seed,
        epoch_counter, n)`` (or ``arange(n)`` without shuffle), in consecutive
        batches of ``batch_size`` rows (the last may be smaller). With
        ``sample_weight`` (n,), each batch's loss is weighted by its rows' weights
        (see :meth:`loss_and_gradients`).

        Returns
        -------
        dict
            ``"loss"``: per epoch, sum(loss_b * N_b) / n over its batches;
            ``"grad_norm"``: per epoch, per Dense layer, the mean over the steps
            of sqrt(sum dW^2 + sum db^2) (before any clipping; with the dgamma, dbeta
            of the BatchNorm or LayerNorm in front of it);
            ``"steps"``: ``{"lr": [...]}``, the learning rate of every step.

        Examples
        --------
        >>> # history = net.fit(X, Y, epochs=10, batch_size=32); history["loss"][-1]
        """
        if batch_size < 1:
            raise ValueError(f"batch_size: expected an int >= 1, got {batch_size}")
        if self.optimizer is None:
            raise ValueError("optimizer: the config has no 'compile' entry, so no optimizer")
        X = self._inputs(X)
        n = X.shape[0]
        Y = self._targets(Y, n)
        dense = [i for i, layer in enumerate(self.layers) if isinstance(layer, Dense)]
        history: dict[str, Any] = {"loss": [], "grad_norm": [], "steps": {"lr": []}}
        for _ in range(epochs):
            order = rng.permutation(self.seed, self.epoch_counter, n) if shuffle else np.arange(n)
            loss_sum, norm_sums, steps = 0.0, [0.0] * len(dense), 0
            for start in range(0, n, batch_size):
                rows = order[start:start + batch_size]  # (B,) sample indices
                history["steps"]["lr"].append(self._now(self.optimizer["lr"]))
                w = None if sample_weight is None else np.asarray(sample_weight)[rows]
                loss, grads = self._step(X[rows], Y[rows], w)
                loss_sum += loss * len(rows)
                for k, i in enumerate(dense):  # a Dense layer's norm includes the gamma, beta of its input's norm
                    first = dense[k - 1] + 1 if k else 0
                    norm_sums[k] += math.sqrt(sum(float(np.sum(v.astype(np.float64) ** 2))
                                                  for g in grads[first:i + 1] for v in g.values()))
                steps += 1
            history["loss"].append(loss_sum / n)
            history["grad_norm"].append([s / steps for s in norm_sums])
            self.epoch_counter += 1
        return history

    def evaluate(self, X: Any, Y: Any, sample_weight: Any = None) -> float:
        """Mean loss over the whole set, in inference mode (``sum w_i l_i / n`` with weights).

        Examples
        --------
        >>> # net.evaluate(X, Y)
        """
        return self.loss_and_gradients(X, Y, training=False, sample_weight=sample_weight)[0]
