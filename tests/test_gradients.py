"""The core's analytic gradients against central finite differences.

Each weight of the core model is perturbed in place through the zero-copy
``layer.W`` / ``layer.b`` views, and the loss is re-evaluated by the core
itself (``evaluate``, inference mode): only the differencing is shared
(``pybackprop.reference.numeric_gradient``, the project's one finite
difference), no reference network is involved, so this checks the C++
backward pass directly against the C++ forward pass.

float64: dL/dw ~ (L(w + h) - L(w - h)) / 2h with h = 1e-6 has truncation error
~h^2 |L'''| and round-off ~ulp(L) / h ~ 1e-10 |L|, so analytic and numeric
gradients must agree to 1e-6 relative plus 1e-8 max(1, |L|) absolute.

float32: the analytic gradient of a float32 model is compared with finite
differences of a float64 twin holding exactly the same weights; float32
arithmetic makes the analytic gradient accurate to a few float32 ulps times the
depth of the computation, hence the looser 1e-4 (relative to the tensor scale).
"""
from __future__ import annotations

from typing import Callable, Dict, List

import numpy as np
import pytest

import pybackprop as bp
from conftest import assert_close, make_data, make_model
from pybackprop.reference import numeric_gradient

ARCHITECTURES = {
    "single-layer": [],
    "tanh": [(4, "tanh")],
    "relu-sigmoid": [(5, "relu"), (4, "sigmoid")],
    "elu-gelu-softplus": [(4, "elu"), (5, "gelu"), (3, "softplus")],
    "leaky-noisy-identity-tanh": [(6, "leaky_relu"), (4, "noisy_relu"), (3, "identity"), (4, "tanh")],
}
# (loss, output activation, output units)
LOSS_CASES = {
    "mse": ("mse", "identity", 2),
    "mse-softmax": ("mse", "softmax", 3),
    "mae": ("mae", "tanh", 2),
    "huber": ("huber", "identity", 2),
    "huber-elu": ("huber", "elu", 1),
    "binary_crossentropy": ("binary_crossentropy", "sigmoid", 2),
    "categorical_crossentropy": ("categorical_crossentropy", "softmax", 3),
}
H = 1e-6


def numeric_gradients(model: bp.Sequential, loss_fn: Callable[[], float], h: float = H
                      ) -> List[Dict[str, np.ndarray]]:
    """Central differences of ``loss_fn()`` w.r.t. every W and b of ``model`` (``reference.numeric_gradient``
    on each layer's view, changed in place and restored)."""
    return [{key: numeric_gradient(loss_fn, getattr(layer, key), h) for key in ("W", "b")
             if getattr(layer, key, None) is not None} for layer in model.layers]


def assert_gradients_match(analytic, numeric, rtol: float, atol: float, label: str) -> None:
    """Every dW and db: |analytic - numeric| <= atol + rtol |numeric|, worst element reported."""
    assert len(analytic) == len(numeric)
    for i, (ga, gn) in enumerate(zip(analytic, numeric)):
        assert sorted(ga) == sorted(gn), f"{label} layer {i}: keys {sorted(ga)} != {sorted(gn)}"
        for key in gn:
            assert_close(f"{label} layer {i} d{key}", ga[key], gn[key], rtol, atol)


def _model(arch: str, loss_case: str, use_bias: bool, dtype: str, seed: int = 0) -> bp.Sequential:
    loss, out_act, k = LOSS_CASES[loss_case]
    return make_model(ARCHITECTURES[arch], k, out_act, loss, use_bias, dtype, seed=seed, input_dim=3)


def _data(loss_case: str, n: int = 6, seed: int = 1):
    loss, _, k = LOSS_CASES[loss_case]
    X, y = make_data(n, 3, k, loss, "float64", seed=seed, targets="labels")
    return X, y


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("loss_case", list(LOSS_CASES))
def test_float64_gradients_match_finite_differences(loss_case, arch, use_bias):
    model = _model(arch, loss_case, use_bias, "float64")
    X, y = _data(loss_case)
    loss, analytic = model.loss_and_gradients(X, y)
    assert loss == pytest.approx(model.evaluate(X, y), rel=1e-15)  # evaluate: sum(l_b * B) / n
    numeric = numeric_gradients(model, lambda: model.evaluate(X, y))
    assert_gradients_match(analytic, numeric, 1e-6, 1e-8 * max(1.0, abs(loss)), "float64")
    assert any(np.any(g != 0) for layer in analytic for g in layer.values())


@pytest.mark.parametrize("arch", ["relu-sigmoid", "elu-gelu-softplus", "leaky-noisy-identity-tanh"])
@pytest.mark.parametrize("loss_case", ["mse", "huber", "binary_crossentropy", "categorical_crossentropy"])
def test_float32_gradients_match_float64_finite_differences(loss_case, arch):
    m32 = _model(arch, loss_case, True, "float32", seed=2)
    m64 = bp.Sequential.from_config({**m32.get_config(), "dtype": "float64"})
    m64.set_weights([w.astype(np.float64) for w in m32.get_weights()])  # exactly the same numbers
    X, y = _data(loss_case, seed=3)
    X = X.astype(np.float32).astype(np.float64)  # representable in both
    loss, analytic = m32.loss_and_gradients(X, y)
    assert all(g.dtype == np.float32 for layer in analytic for g in layer.values())
    numeric = numeric_gradients(m64, lambda: m64.evaluate(X, y))
    scale = max(float(np.max(np.abs(g))) for layer in numeric for g in layer.values())
    assert_gradients_match(analytic, numeric, 1e-4, 1e-4 * max(scale, abs(loss)), "float32")


@pytest.mark.parametrize("loss_case", ["mse", "categorical_crossentropy"])
def test_training_mode_gradient_with_noise_matches_finite_differences(loss_case):
    """With training=True a noisy_relu adds noise drawn from the step's stream; the
    noise does not change between calls (no step is taken), so the training-mode
    loss is a smooth function of the weights and its gradient can be checked."""
    model = _model("leaky-noisy-identity-tanh", loss_case, True, "float64", seed=4)
    X, y = _data(loss_case, seed=5)
    loss, analytic = model.loss_and_gradients(X, y, training=True)
    assert loss != model.evaluate(X, y)  # the noise is there
    numeric = numeric_gradients(model, lambda: model.loss_and_gradients(X, y, training=True)[0])
    assert_gradients_match(analytic, numeric, 1e-6, 1e-8 * max(1.0, abs(loss)), "training")


@pytest.mark.parametrize("batch", [1, 2, 9])
def test_gradient_is_that_of_the_batch_mean(batch):
    """The gradient of a batch is the mean of the per-sample gradients."""
    model = _model("relu-sigmoid", "huber", True, "float64", seed=6)
    X, y = _data("huber", n=batch, seed=7)
    _, g = model.loss_and_gradients(X, y)
    per_sample = [model.loss_and_gradients(X[i:i + 1], y[i:i + 1])[1] for i in range(batch)]
    for i, layer in enumerate(g):
        for key, value in layer.items():
            mean = np.mean([s[i][key] for s in per_sample], axis=0)
            assert_close(f"layer {i} d{key}", value, mean, 1e-12, 1e-14)


def test_gradients_at_large_logits_are_finite_and_match():
    """Saturated sigmoid/softmax outputs: the fused cross-entropy gradients stay exact."""
    for loss_case in ("binary_crossentropy", "categorical_crossentropy"):
        model = _model("tanh", loss_case, True, "float64", seed=8)
        model.layers[-1].W[...] *= 40.0  # logits of size ~tens: probabilities near 0 and 1
        X, y = _data(loss_case, seed=9)
        loss, analytic = model.loss_and_gradients(X, y)
        assert np.isfinite(loss)
        numeric = numeric_gradients(model, lambda: model.evaluate(X, y))
        assert_gradients_match(analytic, numeric, 1e-6, 1e-8 * max(1.0, abs(loss)), loss_case)


def test_categorical_crossentropy_with_class_probabilities():
    """Soft targets (rows summing to 1, e.g. label smoothing) are allowed: the fused
    gradient softmax(z) - y is exact for them too."""
    model = _model("tanh", "categorical_crossentropy", True, "float64", seed=10)
    X, labels = _data("categorical_crossentropy", seed=11)
    y = 0.8 * np.eye(3)[labels] + 0.2 / 3  # label smoothing 0.2
    loss, analytic = model.loss_and_gradients(X, y)
    numeric = numeric_gradients(model, lambda: model.evaluate(X, y))
    assert_gradients_match(analytic, numeric, 1e-6, 1e-8 * max(1.0, abs(loss)), "smoothed")
