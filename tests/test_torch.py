"""The core against PyTorch: autograd gradients and torch.optim.SGD, step by step.

A torch twin of each model is built from the model's weights (``W`` of shape
(fan_in, fan_out), ``z = a @ W + b`` as in the core), with torch's own
activations (``F.gelu(approximate="tanh")``, ``F.softplus`` with its threshold
20, ...) and losses (``F.mse_loss``, ``F.l1_loss``, ``F.huber_loss(delta=1)``,
``F.binary_cross_entropy_with_logits``, ``F.cross_entropy`` with class indices
or one-hot probabilities). Skipped when torch is not installed.
"""
from __future__ import annotations

from typing import Any, List, Sequence

import numpy as np
import pytest

import pybackprop as bp
from conftest import (HIDDEN_ACTIVATIONS, assert_close, assert_tensors_close, make_data, make_model,
                      tolerance, weight_names)
from pybackprop.reference import rng as ref_rng

torch = pytest.importorskip("torch")
F = torch.nn.functional

N_SAMPLES, INPUT_DIM = 20, 4
DTYPES = ["float32", "float64"]
LOSS_VARIANTS = [("mse", None), ("mae", None), ("huber", None), ("binary_crossentropy", None),
                 ("categorical_crossentropy", "labels"), ("categorical_crossentropy", "onehot")]


# ---------------------------------------------------------------------- the torch twin
class TorchTwin:
    """The model's network in torch: parameters as leaf tensors, same layout."""

    def __init__(self, model: bp.Sequential) -> None:
        self.model = model
        self.params: List[Any] = [torch.tensor(w, requires_grad=True) for w in model.get_weights()]
        self.layers = []  # (W, b or None, activation name, params)
        it = iter(self.params)
        for layer in model.layers:
            W = next(it)
            b = next(it) if layer.use_bias else None
            self.layers.append((W, b, layer.activation.name, layer.activation.params()))

    @staticmethod
    def activation(name: str, z, p):
        if name == "identity":
            return z
        if name in ("relu", "noisy_relu"):
            return torch.relu(z)
        if name == "leaky_relu":
            return F.leaky_relu(z, negative_slope=p["alpha"])
        if name == "sigmoid":
            return torch.sigmoid(z)
        if name == "tanh":
            return torch.tanh(z)
        if name == "elu":
            return F.elu(z, alpha=p["alpha"])
        if name == "softplus":
            return F.softplus(z)  # beta 1, threshold 20: as the core
        if name == "gelu":
            return F.gelu(z, approximate="tanh")
        if name == "softmax":
            return torch.softmax(z, dim=1)
        raise AssertionError(name)

    def forward(self, X: np.ndarray, training: bool = False, step: int = 0):
        """(logits z, output a) of the last layer. With ``training``, noisy_relu
        layers add the noise of stream (NOISE, step, layer) (docs/internals.md)."""
        a = torch.tensor(X)
        for i, (W, b, name, p) in enumerate(self.layers):
            z = a @ W
            if b is not None:
                z = z + b
            if training and name == "noisy_relu":
                eps = ref_rng.noise(self.model.seed, step, i, tuple(z.shape), p["sigma"], self.model.dtype)
                z = z + torch.tensor(eps)
            a = self.activation(name, z, p)
        return z, a

    def loss(self, X: np.ndarray, y: np.ndarray, training: bool = False, step: int = 0):
        z, a = self.forward(X, training, step)
        loss = self.model.loss
        if loss == "mse":
            return F.mse_loss(a, _column(y, a))
        if loss == "mae":
            return F.l1_loss(a, _column(y, a))
        if loss == "huber":
            return F.huber_loss(a, _column(y, a), delta=1.0)
        if loss == "binary_crossentropy":
            return F.binary_cross_entropy_with_logits(z, _column(y, a))
        if loss == "categorical_crossentropy":
            y = np.asarray(y)
            if y.ndim == 1:
                return F.cross_entropy(z, torch.tensor(y.astype(np.int64)))
            return F.cross_entropy(z, torch.tensor(y, dtype=z.dtype))  # class probabilities
        raise AssertionError(loss)

    def gradients(self, X, y, training: bool = False, step: int = 0):
        for p in self.params:
            p.grad = None
        loss = self.loss(X, y, training, step)
        loss.backward()
        return loss.item(), [p.grad.numpy().copy() for p in self.params]

    def weights(self) -> List[np.ndarray]:
        return [p.detach().numpy().copy() for p in self.params]


def _column(y, like):
    y = np.asarray(y)
    return torch.tensor(y.reshape(-1, 1) if y.ndim == 1 else y, dtype=like.dtype)


def _flat(grads: Sequence[dict]) -> List[np.ndarray]:
    return [g[k] for g in grads for k in ("W", "b") if k in g]


# ---------------------------------------------------------------------- gradients
def _gradient_cases():
    cases = []
    for ai, act in enumerate(HIDDEN_ACTIVATIONS):
        for li, (loss, targets) in enumerate(LOSS_VARIANTS):
            out = {"binary_crossentropy": "sigmoid", "categorical_crossentropy": "softmax"}.get(loss, act)
            depth, bias = 1 + (ai + li) % 3, (ai + li) % 2 == 0
            cid = f"{act}-{loss}{'-' + targets if targets else ''}-d{depth}"
            cases.append(pytest.param(act, out, loss, targets or "onehot", depth, bias, id=cid))
    for loss in ("mse", "mae", "huber"):
        cases.append(pytest.param("tanh", "softmax", loss, "onehot", 2, True, id=f"softmax_out-{loss}"))
    return cases


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act,out_act,loss,targets,depth,use_bias", _gradient_cases())
def test_gradients_match_autograd(act, out_act, loss, targets, depth, use_bias, dtype):
    k = {"binary_crossentropy": 2, "categorical_crossentropy": 3}.get(loss, 2)
    hidden = [(w, act) for w in [5, 4, 6][:depth]]
    model = make_model(hidden, k, out_act, loss, use_bias, dtype, seed=depth, input_dim=INPUT_DIM,
                       init="he_normal")
    twin = TorchTwin(model)
    X, y = make_data(9, INPUT_DIM, k, loss, dtype, seed=1, targets=targets)
    modes = [False, True] if "noisy_relu" in (act, out_act) else [False]
    for training in modes:
        loss_c, grads = model.loss_and_gradients(X, y, training=training)
        loss_t, grads_t = twin.gradients(X, y, training=training, step=0)
        label = "training" if training else "inference"
        assert_close(f"{label} loss", loss_c, loss_t, *tolerance(dtype, loss_t))
        assert_tensors_close(f"{label} gradient", _flat(grads), grads_t, dtype,
                             ["d" + n for n in weight_names(model)])
    assert_close("predict", model.predict(X), twin.forward(X)[1].detach().numpy(),
                 *tolerance(dtype, twin.forward(X)[1].detach().numpy()))


# ---------------------------------------------------------------------- SGD
SGD_VARIANTS = [
    pytest.param(dict(lr=0.1), id="plain"),
    pytest.param(dict(lr=0.05, momentum=0.9), id="momentum"),
    pytest.param(dict(lr=0.05, momentum=0.9, nesterov=True), id="nesterov"),
    pytest.param(dict(lr=0.1, weight_decay=0.05), id="weight_decay"),
    pytest.param(dict(lr=0.05, momentum=0.8, weight_decay=0.01), id="momentum-weight_decay"),
    pytest.param(dict(lr=0.03, momentum=0.7, nesterov=True, weight_decay=0.1), id="nesterov-weight_decay"),
]


def _sgd_model(dtype: str, sgd: dict, loss: str = "mse", out_act: str = "identity", k: int = 2,
               noisy: bool = False) -> bp.Sequential:
    hidden = [(6, "noisy_relu" if noisy else "tanh"), (5, "elu")]
    return make_model(hidden, k, out_act, loss, True, dtype, seed=7, input_dim=INPUT_DIM,
                      optimizer=bp.SGD(**sgd))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sgd", SGD_VARIANTS)
def test_twenty_train_steps_match_torch_sgd(sgd, dtype):
    model = _sgd_model(dtype, sgd, noisy=True)
    twin = TorchTwin(model)
    opt = torch.optim.SGD(twin.params, dampening=0, **sgd)
    X, y = make_data(N_SAMPLES, INPUT_DIM, 2, "mse", dtype, seed=8)
    for step in range(20):
        rows = np.arange(4 * step, 4 * step + 5) % N_SAMPLES  # overlapping batches of 5
        loss_c = model.train_step(X[rows], y[rows])  # training mode: noise of stream step
        opt.zero_grad()
        loss_t = twin.loss(X[rows], y[rows], training=True, step=step)
        loss_t.backward()
        opt.step()
        assert_close(f"step {step} loss", loss_c, loss_t.item(), *tolerance(dtype, loss_t.item()))
        assert_tensors_close(f"step {step} weights", model.get_weights(), twin.weights(), dtype,
                             weight_names(model))
    assert model._net.step_counter == 20


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss,out_act,k", [("mse", "identity", 2),
                                            ("categorical_crossentropy", "softmax", 3),
                                            ("binary_crossentropy", "sigmoid", 1)])
@pytest.mark.parametrize("shuffle", [False, True], ids=["ordered", "shuffled"])
def test_fit_matches_a_torch_training_loop(shuffle, loss, out_act, k, dtype):
    """fit(epochs=3, batch_size=7) on 20 samples (batches 7, 7, 6) equals the torch loop:
    history loss = sum(loss_b * B) / n, grad_norm = mean over steps of per-layer norms."""
    sgd = dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
    model = _sgd_model(dtype, sgd, loss, out_act, k)
    twin = TorchTwin(model)
    opt = torch.optim.SGD(twin.params, dampening=0, **sgd)
    X, y = make_data(N_SAMPLES, INPUT_DIM, k, loss, dtype, seed=9, targets="labels")
    hist = model.fit(X, y, epochs=3, batch_size=7, shuffle=shuffle, verbose=0).history

    losses, norms = [], []
    for epoch in range(3):
        order = ref_rng.permutation(model.seed, epoch, N_SAMPLES) if shuffle else np.arange(N_SAMPLES)
        total, layer_norms, steps = 0.0, np.zeros(len(model.layers)), 0
        for start in range(0, N_SAMPLES, 7):
            rows = order[start:start + 7]
            opt.zero_grad()
            batch_loss = twin.loss(X[rows], y[rows])
            batch_loss.backward()
            total += batch_loss.item() * len(rows)
            j = 0
            for i, layer in enumerate(model.layers):
                sq = float((twin.params[j].grad.double() ** 2).sum())
                if layer.use_bias:
                    sq += float((twin.params[j + 1].grad.double() ** 2).sum())
                layer_norms[i] += np.sqrt(sq)
                j += 2 if layer.use_bias else 1
            steps += 1
            opt.step()
        losses.append(total / N_SAMPLES)
        norms.append(layer_norms / steps)
    assert_tensors_close("history", [np.array(hist["loss"]), np.array(hist["grad_norm"])],
                         [np.array(losses), np.array(norms)], dtype,
                         ["loss[epoch]", "grad_norm[epoch, layer]"])
    assert_tensors_close("weights after fit", model.get_weights(), twin.weights(), dtype, weight_names(model))


@pytest.mark.parametrize("dtype", DTYPES)
def test_integer_labels_equal_one_hot_in_torch_and_core(dtype):
    model = make_model([(5, "relu")], 4, "softmax", "categorical_crossentropy", True, dtype, seed=3,
                       input_dim=INPUT_DIM)
    twin = TorchTwin(model)
    X, labels = make_data(12, INPUT_DIM, 4, "categorical_crossentropy", dtype, seed=4, targets="labels")
    onehot = np.eye(4, dtype=dtype)[labels]
    loss_l, g_l = model.loss_and_gradients(X, labels)
    loss_o, g_o = model.loss_and_gradients(X, onehot)
    assert loss_l == loss_o
    for a, b in zip(_flat(g_l), _flat(g_o)):
        assert np.array_equal(a, b)
    loss_t, g_t = twin.gradients(X, labels)
    assert_close("loss", loss_l, loss_t, *tolerance(dtype, loss_t))
    assert_tensors_close("gradient", _flat(g_l), g_t, dtype)
