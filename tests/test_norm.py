"""BatchNorm and LayerNorm: torch parity (outputs, every gradient, running statistics, 5 SGD and
5 Adam steps, inference), finite differences, the core against the reference around every
activation and dropout, state (save/load, get_config, set_weights), the batch-of-one error, the
general path instead of the fused per-sample step, and bad arguments."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import pybackprop as bp
from pybackprop.reference import Network, numeric_gradient

from conftest import HIDDEN_ACTIVATIONS, assert_close, assert_gradients_close, assert_tensors_close, tolerance

torch = pytest.importorskip("torch")

NORMS = ["batch", "layer"]
DTYPES = ["float64", "float32"]
TORCH_ACT = {"identity": lambda: torch.nn.Identity(), "relu": lambda: torch.nn.ReLU(),
             "tanh": lambda: torch.nn.Tanh(), "sigmoid": lambda: torch.nn.Sigmoid(),
             "gelu": lambda: torch.nn.GELU(approximate="tanh"), "elu": lambda: torch.nn.ELU(),
             "softplus": lambda: torch.nn.Softplus(), "leaky_relu": lambda: torch.nn.LeakyReLU(0.01)}


def norm_layer(kind: str, affine: bool = True, **kw) -> bp.layers.Layer:
    if kind == "batch":
        return bp.BatchNorm(affine=affine, **kw)
    return bp.LayerNorm(elementwise_affine=affine, **kw)


def make(kind: str, dtype: str, act: str = "tanh", affine: bool = True, optimizer=None, first: bool = False,
         dropout: bool = False, seed: int = 1) -> bp.Sequential:
    """Dense(7, act) → norm → [Dropout] → Dense(6, act) → norm → Dense(2) (and a norm of the inputs first)."""
    layers = [norm_layer(kind, affine)] if first else []
    layers += [bp.Dense(7, act), norm_layer(kind, affine, eps=1e-3)]
    if dropout:
        layers.append(bp.Dropout(keep_prob=0.7))
    layers += [bp.Dense(6, act), norm_layer(kind, affine), bp.Dense(2)]
    m = bp.Sequential(layers, input_dim=5, dtype=dtype, seed=seed)
    m.compile("mse", optimizer if optimizer is not None else bp.SGD(lr=0.1))
    rng = np.random.default_rng(seed)
    for layer in m.layers:  # γ, β away from 1, 0 so that their gradients show
        if isinstance(layer, bp.layers.Normalization) and layer.affine:
            layer.weight[...] = rng.uniform(0.5, 1.5, layer.weight.shape)
            layer.bias[...] = rng.normal(0, 0.3, layer.bias.shape)
    return m


def to_torch(m: bp.Sequential) -> "torch.nn.Sequential":
    """The same network in torch (float64 or float32), with the same parameters and running estimates."""
    tdtype = torch.float64 if np.dtype(m.dtype) == np.float64 else torch.float32
    mods, fan_in = [], m.input_dim
    for layer in m.layers:
        if isinstance(layer, bp.Dense):
            lin = torch.nn.Linear(fan_in, layer.units, bias=layer.use_bias).to(tdtype)
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(layer.W.T))
                if layer.use_bias:
                    lin.bias.copy_(torch.tensor(layer.b))
            mods += [lin, TORCH_ACT[layer.activation.name]()]
            fan_in = layer.units
        elif isinstance(layer, bp.BatchNorm):
            bn = torch.nn.BatchNorm1d(fan_in, eps=layer.eps, momentum=layer.momentum, affine=layer.affine).to(tdtype)
            with torch.no_grad():
                if layer.affine:
                    bn.weight.copy_(torch.tensor(layer.weight))
                    bn.bias.copy_(torch.tensor(layer.bias))
                bn.running_mean.copy_(torch.tensor(layer.running_mean))
                bn.running_var.copy_(torch.tensor(layer.running_var))
            mods.append(bn)
        elif isinstance(layer, bp.LayerNorm):
            ln = torch.nn.LayerNorm(fan_in, eps=layer.eps, elementwise_affine=layer.elementwise_affine).to(tdtype)
            with torch.no_grad():
                if layer.affine:
                    ln.weight.copy_(torch.tensor(layer.weight))
                    ln.bias.copy_(torch.tensor(layer.bias))
            mods.append(ln)
        else:
            raise AssertionError(layer)
    return torch.nn.Sequential(*mods)


def torch_state(m: bp.Sequential, net: "torch.nn.Sequential"):
    """torch's tensors in pybackprop's get_weights() order."""
    out, mods = [], iter(net)
    for layer in m.layers:
        if isinstance(layer, bp.Dense):
            lin = next(mods)
            next(mods)  # its activation
            out.append(lin.weight.detach().numpy().T)
            if layer.use_bias:
                out.append(lin.bias.detach().numpy())
        else:
            mod = next(mods)
            if layer.affine:
                out += [mod.weight.detach().numpy(), mod.bias.detach().numpy()]
            if isinstance(layer, bp.BatchNorm):
                out += [mod.running_mean.numpy(), mod.running_var.numpy()]
    return out


def torch_grads(m: bp.Sequential, net: "torch.nn.Sequential"):
    """torch's .grad per layer as pybackprop's loss_and_gradients dicts."""
    out, mods = [], iter(net)
    for layer in m.layers:
        if isinstance(layer, bp.Dense):
            lin = next(mods)
            next(mods)
            g = {"W": lin.weight.grad.numpy().T}
            if layer.use_bias:
                g["b"] = lin.bias.grad.numpy()
        else:
            mod = next(mods)
            g = {"weight": mod.weight.grad.numpy(), "bias": mod.bias.grad.numpy()} if layer.affine else {}
        out.append(g)
    return out


def data(n=24, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)) * 2 + 0.5
    Y = np.stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]], axis=1)
    return X.astype(dtype), Y.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", NORMS)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("act", ["tanh", "relu", "gelu"])
def test_torch_forward_backward(kind, dtype, affine, act):
    m = make(kind, dtype, act=act, affine=affine, first=True)
    X, Y = data(dtype=dtype)
    net = to_torch(m).train()
    out = net(torch.tensor(X))
    tl = ((out - torch.tensor(Y)) ** 2).mean()
    tl.backward()
    loss, grads = m.loss_and_gradients(X, Y, training=True)
    assert_close("loss", loss, tl.item(), *tolerance(dtype, tl.item()))
    assert_gradients_close(f"{kind} {act}", grads, torch_grads(m, net), dtype)
    assert_tensors_close("running statistics", m.get_weights(), torch_state(m, net), dtype)
    net.eval()
    want = net(torch.tensor(X)).detach().numpy()
    assert_close("eval outputs", m.predict(X), want, *tolerance(dtype, want))
    assert_close("evaluate", m.evaluate(X, Y), float(((want - Y) ** 2).mean()), *tolerance(dtype, want))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", NORMS)
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_torch_five_steps(kind, dtype, opt):
    bp_opt = bp.SGD(lr=0.05, momentum=0.9) if opt == "sgd" else bp.Adam(lr=0.01)
    m = make(kind, dtype, optimizer=bp_opt, first=True)
    X, Y = data(n=30, dtype=dtype)
    net = to_torch(m).train()
    topt = (torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9) if opt == "sgd"
            else torch.optim.Adam(net.parameters(), lr=0.01))
    for step in range(5):  # batches of 10, in order: three steps an epoch
        rows = slice((step % 3) * 10, (step % 3) * 10 + 10)
        topt.zero_grad()
        ((net(torch.tensor(X[rows])) - torch.tensor(Y[rows])) ** 2).mean().backward()
        topt.step()
    m.fit(X[:30], Y[:30], batch_size=10, epochs=1, shuffle=False, verbose=0)
    m.fit(X[:20], Y[:20], batch_size=10, epochs=1, shuffle=False, verbose=0)
    assert_tensors_close(f"{kind} {opt} after 5 steps", m.get_weights(), torch_state(m, net), dtype)
    net.eval()
    want = net(torch.tensor(X)).detach().numpy()
    assert_close("eval outputs after 5 steps", m.predict(X), want, *tolerance(dtype, want))


@pytest.mark.parametrize("kind", NORMS)
def test_torch_refuses_one_sample_too(kind):
    m = make("batch", "float64")
    X, Y = data(n=9)
    with pytest.raises(ValueError, match=r"BatchNorm layer 1: expected training batches of more than one"):
        m.fit(X, Y, batch_size=4, verbose=0)  # 4 + 4 + 1
    with pytest.raises(ValueError, match="BatchNorm layer 1"):
        m.loss_and_gradients(X[:1], Y[:1], training=True)
    with pytest.raises(ValueError):
        to_torch(m).train()(torch.tensor(X[:1]))
    before = m.get_weights()
    assert m.predict(X[:1]).shape == (1, 2)  # inference takes one sample
    m.fit(X[:8], Y[:8], batch_size=4, verbose=0)  # 4 + 4 is fine
    assert not all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    if kind == "layer":  # LayerNorm normalises each sample: one is fine
        ln = make("layer", "float64")
        ln.fit(X, Y, batch_size=4, verbose=0)


@pytest.mark.parametrize("kind", NORMS)
@pytest.mark.parametrize("act", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("dropout", [False, True])
def test_core_equals_reference_around_every_activation(kind, act, dropout):
    # SGD: after a BatchNorm the gradient of a shift before it is 0 up to rounding, which Adam's
    # g/√v would turn into whole steps of noise (the torch tests above take Adam on nets where it is not)
    m = make(kind, "float64", act=act, first=True, dropout=dropout, optimizer=bp.SGD(lr=0.05, momentum=0.9))
    ref = Network.from_config(m.get_config(), m.get_weights())
    X, Y = data(n=21)
    loss, grads, masks = m.loss_and_gradients(X, Y, training=True, return_masks=True)
    rloss, rgrads = ref.loss_and_gradients(X, Y, training=True, masks=masks)
    assert_close("loss", loss, rloss, 1e-12, 1e-12)
    assert_gradients_close(f"{kind} {act}", grads, rgrads, "float64")
    ref = Network.from_config(m.get_config(), m.get_weights())
    m.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    ref.fit(X, Y, batch_size=8, epochs=2)
    assert_tensors_close("after two epochs", m.get_weights(), ref.get_weights(), "float64")
    assert_close("predict", m.predict(X), ref.predict(X), 1e-12, 1e-12)


@pytest.mark.parametrize("kind", NORMS)
@pytest.mark.parametrize("training", [True, False])
def test_gradients_against_finite_differences(kind, training):
    m = make(kind, "float64", act="tanh", first=True)
    X, Y = data(n=12)
    if kind == "batch":  # running estimates away from (0, 1) for the inference mode
        m.fit(X, Y, batch_size=12, epochs=3, verbose=0)
    _, grads = m.loss_and_gradients(X, Y, training=training)
    running = [(layer.running_mean.copy(), layer.running_var.copy()) for layer in m.layers
               if isinstance(layer, bp.BatchNorm)]

    def loss() -> float:  # a training pass moves the running estimates: each call puts them back
        value = m.loss_and_gradients(X, Y, training=training)[0]
        for layer, (mean, var) in zip([la for la in m.layers if isinstance(la, bp.BatchNorm)], running):
            layer.running_mean[...], layer.running_var[...] = mean, var
        return value

    for i, layer in enumerate(m.layers):
        views = {"W": layer.W, "b": layer.b} if isinstance(layer, bp.Dense) else \
            {"weight": layer.weight, "bias": layer.bias}
        for key, view in views.items():
            numeric = numeric_gradient(loss, view, eps=1e-6)
            assert_close(f"layer {i} d{key} vs central differences", grads[i][key], numeric, 1e-6, 1e-7)


@pytest.mark.parametrize("kind", NORMS)
def test_reference_against_finite_differences(kind):
    m = make(kind, "float64", act="sigmoid", first=True)
    ref = Network.from_config(m.get_config(), m.get_weights())
    X, Y = data(n=10)
    _, grads = ref.loss_and_gradients(X, Y, training=kind == "layer")
    for i, layer in enumerate(ref.layers):
        params = {"W": layer.W, "b": layer.b} if hasattr(layer, "W") else {"weight": layer.gamma, "bias": layer.beta}
        for key, arr in params.items():
            numeric = numeric_gradient(lambda: ref.loss_and_gradients(X, Y, training=kind == "layer")[0], arr)
            assert_close(f"reference layer {i} d{key}", grads[i][key], numeric, 1e-6, 1e-7)


@pytest.mark.parametrize("kind", NORMS)
def test_state_save_load_config_and_pickle(kind, tmp_path):
    m = make(kind, "float32", optimizer=bp.Adam(lr=0.01), dropout=True)
    X, Y = data(n=32, dtype="float32")
    m.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    if kind == "batch":
        assert not np.allclose(m.layers[1].running_var, 1.0)  # the estimates moved
    cfg = m.get_config()
    assert [c["class_name"] for c in cfg["layers"]][1] == ("BatchNorm" if kind == "batch" else "LayerNorm")
    again = bp.Sequential.from_config(cfg)
    assert again.get_config() == cfg
    assert repr(again.layers[1]) == repr(m.layers[1])
    fresh = again.layers[1]
    assert np.array_equal(fresh.weight, np.ones(7, np.float32)) and np.array_equal(fresh.bias, np.zeros(7, np.float32))
    path = tmp_path / "norm.pbp"
    m.save(path)
    loaded = bp.load(path)
    for a, b in zip(m.get_weights(), loaded.get_weights()):
        assert np.array_equal(a, b)
    assert np.array_equal(m.predict(X), loaded.predict(X))
    for twin in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert np.array_equal(m.predict(X), twin.predict(X))
    m.fit(X, Y, batch_size=8, epochs=1, verbose=0)  # resumes exactly
    loaded.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    for a, b in zip(m.get_weights(), loaded.get_weights()):
        assert np.array_equal(a, b)


def test_get_weights_order_and_set_weights_checks():
    m = bp.Sequential([bp.Dense(3), bp.BatchNorm(), bp.Dense(2), bp.LayerNorm(), bp.Dense(1)], input_dim=4)
    assert [w.shape for w in m.get_weights()] == [(4, 3), (3,), (3,), (3,), (3,), (3,), (3, 2), (2,), (2,), (2,),
                                                  (2, 1), (1,)]
    assert m.count_params() == 15 + 12 + 8 + 4 + 3
    w = m.get_weights()
    w[5] = -np.ones(3)  # a negative running variance
    with pytest.raises(ValueError, match=r"weights\[5\] \(running_var of layer 1\): expected values >= 0 \(a variance\)"):
        m.set_weights(w)
    w = m.get_weights()
    w[3] = np.full(3, 2.0)  # β of layer 1 (W0, b0, γ, β, running mean, running var, ...)
    m.set_weights(w)
    assert np.array_equal(m.layers[1].bias, np.full(3, 2.0, np.float32))


def test_old_files_still_load(tmp_path):
    """A Dense-only model's file is as before: its arrays are the W and b only."""
    m = bp.Sequential([bp.Dense(3, "relu"), bp.Dense(1)], input_dim=2, seed=0)
    m.compile("mse", "adam")
    path = tmp_path / "dense.pbp"
    m.save(path)
    with np.load(path) as f:
        assert sorted(k for k in f.files if k.startswith("weight_")) == ["weight_0", "weight_1", "weight_2",
                                                                          "weight_3"]
    assert bp.load(path).get_config() == m.get_config()


def test_general_path_not_the_fused_step():
    for kind in NORMS:
        m = bp.Sequential([bp.Dense(4, "tanh"), norm_layer(kind), bp.Dense(1)], input_dim=2, dtype="float64")
        m.compile("mse", bp.SGD(lr=0.1))
        assert bp._core._testing.per_sample_kind(m._net) == "general"
        m.fit(np.ones((3, 2)), np.ones((3, 1)), batch_size=1, verbose=0) if kind == "layer" else None
        assert bp._core._testing.fused_steps(m._net) == 0
    plain = bp.Sequential([bp.Dense(4, "tanh"), bp.Dense(1)], input_dim=2, dtype="float64")
    plain.compile("mse", bp.SGD(lr=0.1))
    assert bp._core._testing.per_sample_kind(plain._net) != "general"
    # LayerNorm trains with batch size 1 through the general path, as the reference
    m = make("layer", "float64")
    ref = Network.from_config(m.get_config(), m.get_weights())
    X, Y = data(n=6)
    m.fit(X, Y, batch_size=1, epochs=1, verbose=0)
    ref.fit(X, Y, batch_size=1, epochs=1)
    assert_tensors_close("batch size 1", m.get_weights(), ref.get_weights(), "float64")


def test_weight_decay_and_clip_norm_reach_gamma_and_beta():
    m = make("batch", "float64", optimizer=bp.SGD(lr=0.05, momentum=0.5, weight_decay=0.01, clip_norm=0.5))
    ref = Network.from_config(m.get_config(), m.get_weights())
    X, Y = data(n=16)
    m.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    ref.fit(X, Y, batch_size=8, epochs=2)
    assert_tensors_close("decay and clipping", m.get_weights(), ref.get_weights(), "float64")


@pytest.mark.parametrize("make_layer, message", [
    (lambda: bp.BatchNorm(momentum=1.5), r"momentum: expected a finite number in \[0.0, 1.0\], got 1.5"),
    (lambda: bp.BatchNorm(momentum=-0.1), r"momentum: expected a finite number in \[0.0, 1.0\]"),
    (lambda: bp.BatchNorm(eps=0), r"eps: expected a finite number in \(0.0, inf\)"),
    (lambda: bp.LayerNorm(eps=-1e-5), r"eps: expected a finite number in \(0.0, inf\)"),
    (lambda: bp.BatchNorm(eps=float("nan")), "eps"),
])
def test_bad_values(make_layer, message):
    with pytest.raises(ValueError, match=message):
        make_layer()


@pytest.mark.parametrize("make_layer, name", [
    (lambda: bp.BatchNorm(momentum="0.1"), "momentum"), (lambda: bp.BatchNorm(affine=1), "affine"),
    (lambda: bp.LayerNorm(elementwise_affine="yes"), "elementwise_affine"), (lambda: bp.LayerNorm(eps=None), "eps"),
])
def test_bad_types(make_layer, name):
    with pytest.raises(TypeError, match=f"^{name}: expected"):
        make_layer()


@pytest.mark.parametrize("layers, message", [
    ([bp.Dense(2), bp.BatchNorm()], "a Dense layer after the last BatchNorm"),
    ([bp.Dense(2), bp.BatchNorm(), bp.LayerNorm(), bp.Dense(1)], r"layers\[2\]: expected a Dense layer between two"),
    ([bp.Dense(2), bp.Dropout(0.5), bp.BatchNorm(), bp.Dense(1)], r"layers\[2\]: expected the BatchNorm before"),
])
def test_bad_placement(layers, message):
    with pytest.raises(ValueError, match=message):
        bp.Sequential(layers, input_dim=3)


def test_the_core_checks_its_own_specs():
    spec = bp._core.DenseSpec(units=2, norm=bp._core.NormSpec(kind="batch", eps=0.0, index=0))
    with pytest.raises(ValueError, match="eps of BatchNorm layer 0: expected a finite number > 0"):
        bp._core.NetworkF64(3, [spec], 0)
    spec = bp._core.DenseSpec(units=2, norm=bp._core.NormSpec(kind="batch", momentum=2.0, index=0))
    with pytest.raises(ValueError, match="momentum of BatchNorm layer 0"):
        bp._core.NetworkF64(3, [spec], 0)
    with pytest.raises(ValueError, match="norm kind: expected one of none, batch, layer"):
        bp._core.NormSpec(kind="group")


@pytest.mark.parametrize("kind", NORMS)
def test_explain_shows_the_normalisation(kind):
    """The Trace's μ, σ², x̂ and chain-rule values equal the reference's, step by step."""
    from pybackprop.reference import functional as F

    m = make(kind, "float64", act="tanh", first=True)
    X, Y = data(n=3 if kind == "batch" else 1)
    ref = Network.from_config(m.get_config(), m.get_weights())
    trace = m.explain(X, Y, lr=0.1)
    rtrace = ref.forward_trace(X, training=True)
    _, rgrads = Network.from_config(m.get_config(), m.get_weights()).loss_and_gradients(X, Y, training=True)
    norm_positions = [i for i, layer in enumerate(m.layers) if isinstance(layer, bp.layers.Normalization)]
    entries = [layer["norm"] for layer in trace.layers if "norm" in layer]
    assert len(entries) == len(norm_positions) == 3
    for i, entry in zip(norm_positions, entries):
        for key in ("mean", "var", "inv_std", "x_hat"):
            assert_close(f"layer {i} {key}", entry[key], rtrace[i][key], 1e-12, 1e-12)
        assert_close(f"layer {i} output", entry["output"], rtrace[i]["a"], 1e-12, 1e-12)
        assert_close(f"layer {i} dgamma", entry["dgamma"], rgrads[i]["weight"], 1e-12, 1e-12)
        assert_close(f"layer {i} gamma_new", entry["gamma_new"], entry["gamma"] - 0.1 * rgrads[i]["weight"], 1e-12,
                     1e-12)
        backward = F.batchnorm_backward if kind == "batch" else F.layernorm_backward
        cache = {k: rtrace[i][k] for k in ("mean", "var", "inv_std", "x_hat")}
        want = backward(entry["dL_dout"], cache, entry["gamma"])[0]
        assert_close(f"layer {i} dL/d input", entry["dL_din"], want, 1e-12, 1e-12)
    text = str(trace)
    for token in ("μ1", "σ²1", "x̂1", "dL/dγ2", "dL/dx̂2", "γ2 new"):
        assert token in text, token
    assert trace.to_dict()["layers"][0]["norm"]["kind"] == kind
    page = trace.to_html()
    assert "pb-note" in page and ("batchnorm" if kind == "batch" else "layernorm") in page
    if kind == "batch":
        with pytest.raises(ValueError, match="x: expected a batch of at least two samples"):
            m.explain(X[:1], Y[:1])


@pytest.mark.parametrize("training", [False, True])
def test_gradient_check_covers_gamma_and_beta(training):
    m = make("batch", "float32", first=True, dropout=True)
    X, Y = data(n=12, dtype="float32")
    if not training:
        m.fit(X, Y, batch_size=6, epochs=1, verbose=0)
    report = bp.gradient_check(m, X, Y, training=training)
    assert report["max_rel_error"] < 1e-3, report  # relative: an entry near 0 gets ~1e-4 from rounding
    assert [sorted(k for k in layer if k != "checked") for layer in report["layers"]] == \
        [["W", "b", "beta", "gamma"]] * 3


def test_bitwise_the_same_for_any_thread_count(restore_num_threads):
    weights = []
    for threads in (1, 2):
        bp.set_num_threads(threads)
        m = make("batch", "float32", first=True, dropout=True, optimizer=bp.Adam(lr=0.01))
        X, Y = data(n=64, dtype="float32")
        m.fit(X, Y, batch_size=16, epochs=2, verbose=0)
        weights.append(m.get_weights())
    for a, b in zip(*weights):
        assert np.array_equal(a, b)


def _diverging_batchnorm_model() -> bp.Sequential:
    m = bp.Sequential([bp.Dense(4, activation="relu"), bp.BatchNorm(), bp.Dense(4, activation="relu"), bp.BatchNorm(),
                       bp.Dense(1)], input_dim=3, seed=0)
    m.compile("mse", bp.SGD(lr=1e30))
    return m


def test_a_refused_step_leaves_the_running_statistics_too():
    """A divergence keeps the last finite step's model, BatchNorm's running estimates included
    (they move in the forward pass, before the step is known to be finite)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    m = _diverging_batchnorm_model()
    seen = []

    class Stop(bp.Callback):
        def on_divergence(self, epoch, step, loss):
            seen.append((epoch, step))
            return True

    m.fit(X, y, epochs=5, batch_size=10, shuffle=False, verbose=0, callbacks=[Stop()])
    (epoch, step), = seen
    twin = _diverging_batchnorm_model()  # the same model, trained on the finite steps only
    for s in range(2 * epoch + step):
        twin.train_step(X[10 * (s % 2):10 * (s % 2 + 1)], y[10 * (s % 2):10 * (s % 2 + 1)])
    for got, want in zip(m.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert all(np.isfinite(w).all() for w in m.get_weights())  # the running variance was inf before the fix

    before = [w.copy() for w in m.get_weights()]
    m.compile("mse", bp.SGD(lr=1e15))
    with pytest.raises(bp.DivergenceError):
        m.train_step(X[:10], y[:10])  # refused: inf on the way
    for got, want in zip(m.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def _packed_moments(x: np.ndarray) -> np.ndarray:
    """[n, mean, M2] of x's rows, as one rank hands them to the others (two passes)."""
    mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1])
    return np.concatenate([[len(x)], mean, ((x - mean) ** 2).sum(axis=0)])


@pytest.mark.parametrize("this", [0, 1, 3])
def test_distributed_batchnorm_combines_the_ranks_moments_in_rank_order(this):
    """The core's side of distributed BatchNorm, without MPI: a stand-in gather gives it the moments of
    4 "ranks" (one without rows); the statistics are the global batch's, with a large mean over a small
    spread (where Σx² − N·μ² would lose every digit; the combined moments keep 7), the running
    estimates use the global rows, and a BatchNorm of the network's input asks for no backward sum."""
    rng = np.random.default_rng(4)
    X = 1e6 + rng.normal(size=(29, 3)) * 1e-2
    Y = rng.normal(size=(29, 1))
    cuts = [0, 7, 7, 20, 29]
    shards = [slice(cuts[p], cuts[p + 1]) for p in range(4)]
    model = bp.Sequential([bp.BatchNorm(momentum=0.25), bp.Dense(2, activation="tanh"), bp.Dense(1)], input_dim=3,
                          dtype="float64", seed=0)
    model.compile(loss="mse", optimizer="sgd")
    net = model.engine.net
    sums = []

    def gather(local: np.ndarray, out: np.ndarray) -> None:
        assert local.shape == (7,) and out.shape == (4, 7) and not local.flags.writeable
        out[:] = [_packed_moments(X[s]) for s in shards]
        np.testing.assert_allclose(local, out[this], rtol=1e-15, atol=1e-12)  # this rank's own
        out[this] = local

    net.set_stat_sync(gather, sums.append, 29, 4)
    try:
        if this == 1:  # no rows in this batch
            net.stat_sync_idle()
        else:
            net.loss_and_gradients(X[shards[this]], Y[shards[this]], True)
            stats = net.norm_values(0)
            np.testing.assert_allclose(stats["mean"], X.mean(axis=0), rtol=1e-15)
            # the conditioning's limit: μ ≈ 1e6 rounds at 1e-10, so x − μ ≈ 1e-2 keeps ~1e-8 relative
            np.testing.assert_allclose(stats["var"], X.var(axis=0), rtol=1e-7)
    finally:
        net.set_stat_sync(None, None)
    assert sums == []  # the input's BatchNorm: no dL/dX, no backward collective
    np.testing.assert_allclose(net.running_mean(0), 0.25 * X.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(net.running_var(0) - 0.75, 0.25 * X.var(axis=0, ddof=1), rtol=1e-7)


def test_distributed_batchnorm_on_one_rank_is_bitwise_one_process():
    """With one rank the combined moments are the rank's own: bitwise the statistics, running estimates
    and gradients of plain training (BatchNorm in the middle: its backward sum is the only one)."""
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(17, 4)) * 3 + 2, rng.normal(size=(17, 2))
    for dtype in ("float32", "float64"):
        runs = []
        for synced in (False, True):
            model = bp.Sequential([bp.Dense(6, activation="relu"), bp.BatchNorm(), bp.Dense(2)], input_dim=4,
                                  dtype=dtype, seed=1)
            model.compile(loss="mse", optimizer="sgd")
            net, calls = model.engine.net, []
            if synced:
                net.set_stat_sync(lambda local, out: out.__setitem__(0, local), lambda v: calls.append(v.size),
                                  17, 1)
            net.loss_and_gradients(X.astype(dtype), Y.astype(dtype), True)
            runs.append([net.grads().copy(), net.running_mean(1).copy(), net.running_var(1).copy()])
            assert calls == ([2 * 6] if synced else [])
        for a, b in zip(*runs):
            assert a.tobytes() == b.tobytes()
