"""Sample and class weights (Keras's convention) against PyTorch, and their bad input.

A batch's loss is ``sum(w_i * l_i) / rows``, ``l_i`` the sample's loss (its mean over
the outputs for mse, mae, huber and binary_crossentropy); the torch twin computes
``(w * per_sample_loss).sum() / n`` for every loss and takes the same SGD steps over
the same shuffled batches (``_core.permutation``), to 1e-12 in float64. Weights of one
equal no weights bitwise.
"""
from __future__ import annotations

from typing import Any, List, Optional

import numpy as np
import pytest

import pybackprop as bp
from conftest import assert_close, assert_tensors_close, make_data, make_model, tolerance
from pybackprop import _core

torch = pytest.importorskip("torch")
F = torch.nn.functional

N, D = 23, 4
LOSS_SETUPS = [("mse", 2, "identity"), ("mae", 2, "identity"), ("huber", 2, "identity"),
               ("binary_crossentropy", 2, "sigmoid"), ("categorical_crossentropy", 3, "softmax")]


def per_sample_loss(loss: str, z: Any, a: Any, y: Any) -> Any:
    if loss == "mse":
        return ((a - y) ** 2).mean(dim=1)
    if loss == "mae":
        return (a - y).abs().mean(dim=1)
    if loss == "huber":
        return F.huber_loss(a, y, reduction="none", delta=1.0).mean(dim=1)
    if loss == "binary_crossentropy":
        return F.binary_cross_entropy_with_logits(z, y, reduction="none").mean(dim=1)
    return F.cross_entropy(z, y, reduction="none")  # one-hot probabilities


class Twin:
    """The model in torch: z = a @ W + b, tanh hidden layer, the model's output activation."""

    def __init__(self, model: bp.Sequential) -> None:
        self.params = [torch.tensor(w, requires_grad=True) for w in model.get_weights()]
        self.out_act = model.layers[-1].activation.name

    def forward(self, X: np.ndarray) -> Any:
        W0, b0, W1, b1 = self.params
        z = torch.tanh(torch.tensor(X) @ W0 + b0) @ W1 + b1
        a = {"identity": z, "sigmoid": torch.sigmoid(z), "softmax": torch.softmax(z, dim=1)}[self.out_act]
        return z, a

    def batch_loss(self, loss: str, X: np.ndarray, Y: np.ndarray, w: np.ndarray) -> Any:
        z, a = self.forward(X)
        return (torch.tensor(w) * per_sample_loss(loss, z, a, torch.tensor(Y))).sum() / X.shape[0]


def model_for(loss: str, k: int, act: str, dtype: str = "float64", lr: float = 0.1) -> bp.Sequential:
    return make_model([(5, "tanh")], k, act, loss=loss, dtype=dtype, seed=3, input_dim=D,
                      optimizer=bp.SGD(lr=lr, momentum=0.5))


def data_for(loss: str, k: int, dtype: str = "float64"):
    X, Y = make_data(N, D, k, loss, dtype=dtype, seed=1, targets="onehot")
    w = np.random.default_rng(7).uniform(0.0, 3.0, size=N).astype(dtype)
    w[2] = 0.0  # a zero weight is allowed
    return X, Y, w


@pytest.mark.parametrize("loss,k,act", LOSS_SETUPS)
def test_fit_with_sample_weight_equals_torch_step_for_step(loss, k, act):
    X, Y, w = data_for(loss, k)
    model = model_for(loss, k, act)
    twin = Twin(model)
    opt = torch.optim.SGD(twin.params, lr=0.1, momentum=0.5)
    batch, epochs = 5, 3
    seed = model.seed
    hist = model.fit(X, Y, epochs=epochs, batch_size=batch, verbose=0, sample_weight=w)
    want_losses = []
    for epoch in range(epochs):
        order = _core.permutation(seed, epoch, N)
        total = 0.0
        for s in range(0, N, batch):
            rows = order[s:s + batch]
            opt.zero_grad()
            L = twin.batch_loss(loss, X[rows], Y[rows], w[rows])
            L.backward()
            opt.step()
            total += float(L.detach()) * rows.size
        want_losses.append(total / N)
    assert_close(f"{loss} epoch losses", hist.history["loss"], want_losses, 1e-12, 1e-12)
    assert_tensors_close(f"{loss} weights after {epochs} epochs", model.get_weights(),
                         [p.detach().numpy() for p in twin.params], "float64")


@pytest.mark.parametrize("loss,k,act", LOSS_SETUPS)
def test_evaluate_and_loss_and_gradients_with_sample_weight_equal_torch(loss, k, act):
    X, Y, w = data_for(loss, k)
    assert_weighted_loss_is_torchs(model_for(loss, k, act), loss, X, Y, w, divisor=N)


def assert_weighted_loss_is_torchs(model, loss, X, Y, w, divisor) -> float:
    """evaluate and loss_and_gradients with weights ``w`` against torch's ``(w * l).sum() / divisor``
    and its gradients (the twin's batch loss is ``(w * l).sum() / N``); returns torch's loss."""
    twin = Twin(model)
    L = twin.batch_loss(loss, X, Y, w) * (N / divisor)
    L.backward()
    assert_close(f"{loss} evaluate", model.evaluate(X, Y, sample_weight=w), float(L.detach()), 1e-12, 1e-12)
    got, grads = model.engine.net.loss_and_gradients(X, Y, False, None, sample_weight=w)[:2]
    assert_close(f"{loss} loss_and_gradients", got, float(L.detach()), 1e-12, 1e-12)
    assert_tensors_close(f"{loss} gradients", [g for layer in grads for g in layer],
                         [p.grad.numpy() for p in twin.params], "float64")
    return float(L.detach())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_size", [1, 4, N])
@pytest.mark.parametrize("loss,k,act", LOSS_SETUPS)
def test_weights_of_one_equal_no_weights_bitwise(loss, k, act, batch_size, dtype):
    X, Y, _ = data_for(loss, k, dtype)
    runs = []
    for w in (None, np.ones(N)):
        model = model_for(loss, k, act, dtype, lr=0.05)
        h = model.fit(X, Y, epochs=2, batch_size=batch_size, verbose=0, sample_weight=w,
                      validation_data=(X[:5], Y[:5]) if w is None else (X[:5], Y[:5], np.ones(5)))
        runs.append((h.history["loss"], h.history["val_loss"], model.get_weights(),
                     model.evaluate(X, Y), model.evaluate(X, Y, sample_weight=np.ones(N))))
    (l0, v0, w0, e0, _), (l1, v1, w1, e1, e1w) = runs
    assert l0 == l1 and v0 == v1 and e0 == e1 == e1w
    assert all(np.array_equal(a, b) for a, b in zip(w0, w1))


def test_weights_are_shuffled_with_their_rows():
    """A weight of 0 on a row removes it exactly: fitting the other rows with weight 1 on
    full batches gives the same weights as fitting them alone scaled by n_kept / n."""
    X, Y, _ = data_for("mse", 2)
    w = np.ones(N)
    w[::3] = 0.0
    a = model_for("mse", 2, "identity")
    a.fit(X, Y, epochs=2, batch_size=N, verbose=0, sample_weight=w)  # full batch: shuffle is a no-op
    b = model_for("mse", 2, "identity")
    keep = w > 0
    twin = Twin(b)
    opt = torch.optim.SGD(twin.params, lr=0.1, momentum=0.5)
    for _ in range(2):
        opt.zero_grad()
        L = twin.batch_loss("mse", X[keep], Y[keep], np.ones(int(keep.sum()))) * keep.sum() / N
        L.backward()
        opt.step()
    assert_tensors_close("zero-weight rows dropped", a.get_weights(), [p.detach().numpy() for p in twin.params],
                         "float64")
    # shuffled mini-batches: the same as torch's with the weights gathered by the same order
    c = model_for("mse", 2, "identity")
    h = c.fit(X, Y, epochs=1, batch_size=4, verbose=0, sample_weight=w, shuffle=True)
    assert np.isfinite(h.history["loss"][0])


def test_class_weight_multiplies_into_sample_weight():
    X, Y = make_data(N, D, 3, "categorical_crossentropy", targets="labels", seed=1)
    w = np.random.default_rng(2).uniform(0.5, 2.0, size=N)
    cw = {0: 2.0, 2: 0.5}  # class 1 weighs 1
    a = model_for("categorical_crossentropy", 3, "softmax")
    a.fit(X, Y, epochs=2, batch_size=6, verbose=0, sample_weight=w, class_weight=cw)
    b = model_for("categorical_crossentropy", 3, "softmax")
    per = np.array([cw.get(int(c), 1.0) for c in Y])
    b.fit(X, Y, epochs=2, batch_size=6, verbose=0, sample_weight=w * per)
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))
    # binary: the rounded target is the class
    Xb, Yb = make_data(N, D, 1, "binary_crossentropy", seed=4)
    c = model_for("binary_crossentropy", 1, "sigmoid")
    c.fit(Xb, Yb, epochs=1, batch_size=5, verbose=0, class_weight={1: 3.0})
    d = model_for("binary_crossentropy", 1, "sigmoid")
    d.fit(Xb, Yb, epochs=1, batch_size=5, verbose=0, sample_weight=np.where(Yb[:, 0] > 0.5, 3.0, 1.0))
    assert all(np.array_equal(p, q) for p, q in zip(c.get_weights(), d.get_weights()))


def test_validation_split_splits_the_weights_and_val_loss_is_weighted():
    X, Y, w = data_for("mse", 2)
    a = model_for("mse", 2, "identity")
    ha = a.fit(X, Y, epochs=2, batch_size=4, verbose=0, sample_weight=w, validation_split=0.3)
    cut = int(round(N * 0.7))
    b = model_for("mse", 2, "identity")
    hb = b.fit(X[:cut], Y[:cut], epochs=2, batch_size=4, verbose=0, sample_weight=w[:cut],
               validation_data=(X[cut:], Y[cut:], w[cut:]))
    assert ha.history["loss"] == hb.history["loss"] and ha.history["val_loss"] == hb.history["val_loss"]
    assert ha.history["val_loss"][-1] == a.evaluate(X[cut:], Y[cut:], sample_weight=w[cut:])
    assert ha.history["val_loss"][-1] != a.evaluate(X[cut:], Y[cut:])


def test_float32_weighted_fit_is_close_to_float64():
    X, Y, w = data_for("huber", 2)
    runs = []
    for dtype in ("float32", "float64"):
        model = model_for("huber", 2, "identity", dtype)
        model.fit(X, Y, epochs=2, batch_size=5, verbose=0, sample_weight=w)
        runs.append(model.get_weights())
    for g, want in zip(*runs):
        assert_close("float32 vs float64", g, want, 1e-4, 1e-4 * float(np.abs(want).max()))


BAD_WEIGHTS = [
    (np.ones(N - 1), ValueError, "sample_weight: expected a 1-D array of 23 weights"),
    (np.ones((N, 1)), ValueError, "sample_weight: expected a 1-D array"),
    (np.r_[-1.0, np.ones(N - 1)], ValueError, "sample_weight: expected weights >= 0"),
    (np.r_[np.nan, np.ones(N - 1)], ValueError, "sample_weight: expected finite weights"),
    (np.zeros(N), ValueError, "sample_weight: expected at least one weight > 0"),
    (["a"] * N, TypeError, "sample_weight: expected an array of real numbers"),
]


@pytest.mark.parametrize("weights,exc,message", BAD_WEIGHTS)
def test_bad_sample_weight_raises_naming_it_and_changes_nothing(weights, exc, message):
    X, Y, _ = data_for("mse", 2)
    model = model_for("mse", 2, "identity")
    before = model.get_weights()
    with pytest.raises(exc, match=message.replace("(", r"\(").replace(")", r"\)")):
        model.fit(X, Y, epochs=1, verbose=0, sample_weight=weights)
    with pytest.raises(exc, match="sample_weight"):
        model.evaluate(X, Y, sample_weight=weights)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert model.history is None and model.engine.net.epoch_counter == 0


def test_bad_validation_weights_and_class_weights_raise():
    X, Y, _ = data_for("mse", 2)
    model = model_for("mse", 2, "identity")
    with pytest.raises(ValueError, match=r"validation_data\[2\]: expected weights >= 0"):
        model.fit(X, Y, verbose=0, validation_data=(X, Y, -np.ones(N)))
    with pytest.raises(TypeError, match="validation_data: expected a tuple"):
        model.fit(X, Y, verbose=0, validation_data=(X, Y, None, None))
    with pytest.raises(ValueError, match="class_weight: expected a classification loss.*got \"loss 'mse'"):
        model.fit(X, Y, verbose=0, class_weight={0: 1.0})
    Xc, Yc = make_data(N, D, 3, "categorical_crossentropy", targets="labels")
    clf = model_for("categorical_crossentropy", 3, "softmax")
    with pytest.raises(ValueError, match=r"class_weight: expected class labels in \[0, 2\] as keys, got 3"):
        clf.fit(Xc, Yc, verbose=0, class_weight={3: 1.0})
    with pytest.raises(TypeError, match="class_weight: expected a dict"):
        clf.fit(Xc, Yc, verbose=0, class_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"class_weight\[1\]: expected a finite number in \[0.0"):
        clf.fit(Xc, Yc, verbose=0, class_weight={1: -2.0})
    with pytest.raises(ValueError, match=r"sample_weight \(times class_weight\): expected at least one weight > 0"):
        clf.fit(Xc, Yc, verbose=0, class_weight={0: 0.0, 1: 0.0, 2: 0.0})
    assert clf.history is None and clf.engine.net.epoch_counter == 0


@pytest.mark.parametrize("loss,k,act", LOSS_SETUPS)
def test_train_step_and_loss_and_gradients_take_sample_weight(loss, k, act):
    X, Y, w = data_for(loss, k)
    a, b = model_for(loss, k, act), model_for(loss, k, act)
    twin = Twin(a)
    L = twin.batch_loss(loss, X, Y, w)
    L.backward()
    got, grads = a.loss_and_gradients(X, Y, sample_weight=w)
    assert_close("loss_and_gradients", got, float(L.detach()), 1e-12, 1e-12)
    assert_tensors_close("gradients", [g[key] for g in grads for key in ("W", "b")],
                         [p.grad.numpy() for p in twin.params], "float64")
    # one train_step on all rows == one fit epoch of one full batch
    assert a.train_step(X, Y, sample_weight=w) == pytest.approx(float(L.detach()), rel=1e-12)
    b.fit(X, Y, epochs=1, batch_size=N, shuffle=False, verbose=0, sample_weight=w)
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))
    with pytest.raises(ValueError, match="sample_weight: expected a 1-D array of 23 weights"):
        a.train_step(X, Y, sample_weight=w[:-1])


@pytest.mark.parametrize("loss,k,act", LOSS_SETUPS)
def test_core_equals_the_reference_twin_with_sample_weight(loss, k, act):
    from conftest import reference_of

    X, Y, w = data_for(loss, k)
    model = model_for(loss, k, act)
    ref = reference_of(model)
    h = model.fit(X, Y, epochs=2, batch_size=6, verbose=0, sample_weight=w)
    want = ref.fit(X, Y, epochs=2, batch_size=6, sample_weight=w)
    assert_close(f"{loss} losses", h.history["loss"], want["loss"], 1e-12, 1e-12)
    assert_tensors_close(f"{loss} weights", model.get_weights(), ref.get_weights(), "float64")
    assert_close(f"{loss} evaluate", model.evaluate(X, Y, sample_weight=w), ref.evaluate(X, Y, sample_weight=w),
                 1e-12, 1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss,k,act", [("mse", 1, "identity"), ("huber", 2, "identity"),
                                        ("binary_crossentropy", 1, "sigmoid")])
@pytest.mark.parametrize("metrics", [None, ["mae"]])
def test_batch_size_one_with_weights_or_metrics_keeps_the_fused_step_bitwise(loss, k, act, dtype, metrics):
    """Batch size 1 on a tiny network: with weights (or the outputs recorded for metrics) the fused
    per-sample step runs its portable loops (never the table's kernel), bitwise the general path."""
    from pybackprop._core import _testing

    X, Y, w = data_for(loss, k, dtype)
    runs = []
    for fused in (True, False):
        model = make_model([(4, "tanh"), (3, "relu")], k, act, loss=None, dtype=dtype, seed=5, input_dim=D)
        model.compile(loss=loss, optimizer=bp.SGD(lr=0.05, momentum=0.9), metrics=metrics)
        _testing.set_per_sample_path(model._net, fused)
        h = model.fit(X, Y, epochs=2, batch_size=1, verbose=0, sample_weight=w)
        runs.append((h.history, model.get_weights(), _testing.fused_steps(model._net)))
    (h_fast, w_fast, n_fast), (h_gen, w_gen, n_gen) = runs
    assert (n_fast, n_gen) == (2 * (N - 1), 0)
    assert h_fast["loss"] == h_gen["loss"] and h_fast.get("mae") == h_gen.get("mae")
    assert all(np.array_equal(a, b) for a, b in zip(w_fast, w_gen))


# ---------------------------------------------------------------------- weight_norm="weight_sum"
def test_weight_norm_is_rows_by_default_and_checked():
    model = model_for("mse", 2, "identity")
    assert model.engine.weight_norm == "rows" and model.engine.net.weight_norm == "rows"
    with pytest.raises(ValueError, match="weight_norm: expected 'rows' or 'weight_sum', got 'mean'"):
        model.engine.set_weight_norm("mean")
    with pytest.raises(ValueError, match="weight_norm: expected one of rows, weight_sum, got 'mean'"):
        model.engine.net.weight_norm = "mean"
    model.engine.set_weight_norm("weight_sum")
    assert model.engine.net.weight_norm == "weight_sum"


@pytest.mark.parametrize("loss,k,act", LOSS_SETUPS)
def test_weight_sum_fit_equals_torch_step_for_step(loss, k, act):
    """weight_norm="weight_sum" (scikit-learn's): each batch's loss and gradient divided by its
    weights' sum, the per-sample weight decay too (weights only, decay_bias=False), and a batch of
    weight zero (rows 5..9) has loss 0 and makes no step: the torch twin's SGD steps to 1e-12, the
    epoch losses (zero batches counted with loss 0) and the decay's L2 term (EpochResult.penalty,
    each step's weights before it)."""
    X, Y, w = data_for(loss, k)
    w[5:10] = 0.0
    wd = 0.7
    model = make_model([(5, "tanh")], k, act, loss=loss, dtype="float64", seed=3, input_dim=D,
                       optimizer=bp.SGD(lr=0.1, momentum=0.5, weight_decay=wd, decay_bias=False,
                                        decay_per_sample=True))
    model.engine.set_weight_norm("weight_sum")
    twin = Twin(model)
    W0, b0, W1, b1 = twin.params
    opt = torch.optim.SGD([{"params": [W0, W1]}, {"params": [b0, b1], "weight_decay": 0.0}], lr=0.1, momentum=0.5)
    batch, epochs = 5, 3
    losses, penalties = [], []
    for _ in range(epochs):
        losses += model.fit(X, Y, epochs=1, batch_size=batch, shuffle=False, verbose=0,
                            sample_weight=w).history["loss"]
        penalties.append(model.engine.last_penalty)
    want_losses, want_penalties = [], []
    for epoch in range(epochs):
        total = penalty = 0.0
        for s in range(0, N, batch):
            rows = np.arange(s, min(s + batch, N))
            total_w = float(w[rows].sum())
            if total_w == 0:
                continue  # loss 0, no step
            opt.zero_grad()
            z, a = twin.forward(X[rows])
            L = (torch.tensor(w[rows]) * per_sample_loss(loss, z, a, torch.tensor(Y[rows]))).sum() / total_w
            L.backward()
            squares = float((W0.detach() ** 2).sum() + (W1.detach() ** 2).sum())
            penalty += 0.5 * wd / total_w * squares * rows.size
            opt.param_groups[0]["weight_decay"] = wd / total_w
            opt.step()
            total += float(L.detach()) * rows.size
        want_losses.append(total / N)
        want_penalties.append(penalty / N)
    assert_close(f"{loss} epoch losses", losses, want_losses, 1e-12, 1e-12)
    assert_close(f"{loss} penalties", penalties, want_penalties, 1e-12, 1e-12)
    assert model.engine.net.optimizer_step == epochs * 4  # 5 batches an epoch, one of weight zero
    assert_tensors_close(f"{loss} weights after {epochs} epochs", model.get_weights(),
                         [p.detach().numpy() for p in twin.params], "float64")


@pytest.mark.parametrize("loss,k,act", LOSS_SETUPS)
def test_weight_sum_evaluate_train_step_and_loss_and_gradients(loss, k, act):
    """evaluate is sum(w * l) / sum(w) over all rows; loss_and_gradients and train_step divide the
    batch by its weights' sum; weights summing to zero give loss 0, zero gradients, no update."""
    X, Y, w = data_for(loss, k)
    model = model_for(loss, k, act)
    model.engine.set_weight_norm("weight_sum")
    want = assert_weighted_loss_is_torchs(model, loss, X, Y, w, divisor=float(w.sum()))
    zero = np.zeros(4)
    got, grads = model.engine.net.loss_and_gradients(X[:4], Y[:4], False, None, sample_weight=zero)[:2]
    assert got == 0.0 and all(not g.any() for layer in grads for g in layer)
    before, step = model.get_weights(), model.engine.net.optimizer_step
    # (the public train_step refuses weights that are all zero; the core's, a batch of fit, takes them)
    assert model.engine.net.train_step(X[:4], Y[:4], 0.1, zero) == (0.0, True)
    assert model.engine.net.optimizer_step == step
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    loss_before = model.train_step(X, Y, sample_weight=w)
    assert loss_before == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_weight_sum_with_unit_weights_equals_no_weights_bitwise(batch_size):
    X, Y, _ = data_for("mse", 2)
    runs = []
    for w in (None, np.ones(N)):
        model = make_model([(5, "tanh")], 2, "identity", loss="mse", dtype="float64", seed=3, input_dim=D,
                           optimizer=bp.Adam(lr=0.01, weight_decay=0.3, decay_bias=False, decay_per_sample=True))
        model.engine.set_weight_norm("weight_sum")
        h = model.fit(X, Y, epochs=2, batch_size=batch_size, verbose=0, sample_weight=w)
        runs.append((h.history["loss"], model.engine.last_penalty, model.get_weights()))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1] > 0
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][2], runs[1][2]))


@pytest.mark.parametrize("loss,k,act", LOSS_SETUPS)
def test_core_equals_the_reference_twin_with_weight_sum(loss, k, act):
    """weight_norm="weight_sum" in the core and in pybackprop.reference: shuffled batches of 6 (some
    of weight zero), Adam with per-sample decay on the weights, two epochs; evaluate over all rows."""
    from conftest import reference_of

    X, Y, w = data_for(loss, k)
    w[_core.permutation(3, 0, N)[:6]] = 0.0  # the first batch of epoch 0 (seed 3) weighs nothing
    model = make_model([(5, "tanh")], k, act, loss=loss, dtype="float64", seed=3, input_dim=D,
                       optimizer=bp.Adam(lr=0.05, weight_decay=0.4, decay_bias=False, decay_per_sample=True))
    model.engine.set_weight_norm("weight_sum")
    ref = reference_of(model)
    ref.weight_norm = "weight_sum"
    h = model.fit(X, Y, epochs=2, batch_size=6, verbose=0, sample_weight=w)
    want = ref.fit(X, Y, epochs=2, batch_size=6, sample_weight=w)
    assert model.engine.net.optimizer_step == ref.optimizer_step == 7
    assert_close(f"{loss} losses", h.history["loss"], want["loss"], 1e-12, 1e-12)
    assert_tensors_close(f"{loss} weights", model.get_weights(), ref.get_weights(), "float64")
    assert_close(f"{loss} evaluate", model.evaluate(X, Y, sample_weight=w), ref.evaluate(X, Y, sample_weight=w),
                 1e-12, 1e-12)
