"""PyTorch interop: to_torch keeps the weights (W.T) and the outputs, from_torch reads them back
bitwise, and an unsupported module is a ValueError naming its index and type."""
from __future__ import annotations

import importlib
import sys
import warnings

import numpy as np
import pytest

import pybackprop as bp
from pybackprop import activations as A
from conftest import HIDDEN_ACTIVATIONS, assert_close, tolerance

torch = pytest.importorskip("torch")
nn = torch.nn

import pybackprop.interop  # noqa: E402  (after the skip: it needs torch)

WITH_PARAMS = [*HIDDEN_ACTIVATIONS, A.LeakyReLU(alpha=0.2), A.ELU(alpha=0.3)]
IDS = [a if isinstance(a, str) else repr(a) for a in WITH_PARAMS]


def torch_out(net, X):
    with torch.no_grad():
        return net(torch.from_numpy(X)).numpy()


def data(rows, cols, dtype, seed=0):
    return (np.random.default_rng(seed).normal(size=(rows, cols)) * 3).astype(dtype)


def quiet_to_torch(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # noisy_relu's: tested on its own
        return bp.interop.to_torch(model)


@pytest.mark.parametrize("rows", [1, 257])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", WITH_PARAMS, ids=IDS)
def test_to_torch_outputs_equal_predict_and_the_round_trip_is_bitwise(act, dtype, rows):
    model = bp.Sequential([
        bp.Dropout(keep_prob=0.75),
        bp.Dense(12, activation=act, init="random_normal"),
        bp.Dropout(rate=0.5),
        bp.Dense(6, activation=act, use_bias=False),
        bp.Dense(3, activation="softmax"),
    ], input_dim=5, dtype=dtype, seed=7)
    net = quiet_to_torch(model)
    assert not net.training
    X = data(rows, 5, dtype, seed=rows)
    want = model.predict(X)
    got = torch_out(net, X)
    assert got.dtype == want.dtype
    assert_close("torch output", got, want, *tolerance(dtype, want))
    back = bp.interop.from_torch(net, input_dim=5, seed=7)
    assert back.dtype == dtype
    for a, b in zip(back.get_weights(), model.get_weights()):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.array_equal(back.predict(X), want)  # the same core, the same weights (noisy_relu: relu at inference)
    assert [type(layer).__name__ for layer in back.layers] == [type(layer).__name__ for layer in model.layers]
    for mine, theirs in zip(back.engine.dense, model.engine.dense):
        want_act = A.ReLU() if theirs.activation.name == "noisy_relu" else theirs.activation
        assert mine.activation == want_act
    assert back.engine.keep_probs() == model.engine.keep_probs()


def test_linear_weight_is_w_transposed_and_the_dtype_is_kept():
    model = bp.Sequential([bp.Dense(4, activation="tanh"), bp.Dense(2, use_bias=False)], input_dim=3,
                          dtype="float64", seed=1)
    net = bp.interop.to_torch(model)
    assert net[0].weight.dtype == torch.float64 and tuple(net[0].weight.shape) == (4, 3)
    assert np.array_equal(net[0].weight.detach().numpy(), model.layers[0].W.T)
    assert np.array_equal(net[0].bias.detach().numpy(), model.layers[0].b)
    assert net[2].bias is None
    with torch.no_grad():  # copies: changing one leaves the other
        net[0].weight.zero_()
    assert model.layers[0].W.any()


def test_activation_modules_have_the_same_parameters():
    model = bp.Sequential([bp.Dense(3, activation=A.LeakyReLU(alpha=0.3)), bp.Dense(3, activation=A.ELU(alpha=0.7)),
                           bp.Dense(3, activation="softplus"), bp.Dense(3, activation="gelu"),
                           bp.Dense(3, activation="softmax")], input_dim=2)
    acts = [m for m in bp.interop.to_torch(model) if not isinstance(m, nn.Linear)]
    assert isinstance(acts[0], nn.LeakyReLU) and acts[0].negative_slope == 0.3
    assert isinstance(acts[1], nn.ELU) and acts[1].alpha == 0.7
    assert isinstance(acts[2], nn.Softplus) and acts[2].beta == 1.0 and acts[2].threshold == 20.0
    assert isinstance(acts[3], nn.GELU) and acts[3].approximate == "tanh"
    assert isinstance(acts[4], nn.Softmax) and acts[4].dim == -1


def test_from_torch_of_a_trained_torch_net_predicts_what_torch_does():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 16), nn.GELU(approximate="tanh"),
                        nn.Identity(), nn.Linear(16, 4), nn.Softmax(dim=1)).double()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    X = torch.randn(64, 6, dtype=torch.float64)
    for _ in range(5):
        opt.zero_grad()
        net(X).square().sum().backward()
        opt.step()
    net.eval()
    model = bp.interop.from_torch(net, input_dim=6)
    Xn = X.numpy()
    assert_close("predict", model.predict(Xn), torch_out(net, Xn), 1e-12, 1e-12)
    again = bp.interop.to_torch(model)
    for p, q in zip(again.parameters(), net.parameters()):
        assert torch.equal(p, q)


def test_noisy_relu_and_per_batch_masks_warn():
    model = bp.Sequential([bp.Dense(3, activation=A.NoisyReLU(sigma=0.2)), bp.Dropout(0.5, mask="per_batch"),
                           bp.Dense(1)], input_dim=2)
    with pytest.warns(UserWarning, match="noisy_relu.*nn.ReLU"):
        with pytest.warns(UserWarning, match="per_batch"):
            net = bp.interop.to_torch(model)
    assert isinstance(net[1], nn.ReLU) and isinstance(net[2], nn.Dropout) and net[2].p == 0.5


def test_to_torch_refuses_classic_dropout_and_unbuilt_models():
    classic = bp.Sequential([bp.Dense(3), bp.Dropout(0.5, scaling="classic"), bp.Dense(1)], input_dim=2)
    with pytest.raises(ValueError, match=r"model.layers\[1\] is Dropout\(scaling='classic'\)"):
        bp.interop.to_torch(classic)
    with pytest.raises(ValueError, match="^model: expected a built model"):
        bp.interop.to_torch(bp.Sequential([bp.Dense(1)]))
    with pytest.raises(TypeError, match="^model: expected a pybackprop.Sequential"):
        bp.interop.to_torch(nn.Linear(2, 2))


UNSUPPORTED = [
    (lambda: [nn.Linear(4, 3), nn.Conv1d(1, 1, 1)], 1, r"is not supported: expected Linear, Dropout"),
    (lambda: [nn.Linear(4, 3), nn.SiLU(), nn.Conv1d(1, 1, 1), nn.Linear(3, 1)], 1, "SiLU.*is not supported"),
    (lambda: [nn.Linear(4, 3), nn.Sequential(nn.ReLU())], 1, r"module\[1\] \(Sequential\) is not supported"),
    (lambda: [nn.ReLU(), nn.Linear(4, 3)], 0, r"follows no Linear"),
    (lambda: [nn.Linear(4, 3), nn.ReLU(), nn.Tanh()], 2, "follows another activation"),
    (lambda: [nn.Linear(4, 3), nn.Dropout(0.2), nn.ReLU(), nn.Linear(3, 1)], 2, "follows a Dropout"),
    (lambda: [nn.Linear(4, 3), nn.Dropout(0.2), nn.Dropout(0.2), nn.Linear(3, 1)], 2, "follows another Dropout"),
    (lambda: [nn.Linear(4, 3), nn.Dropout(0.2)], 1, "is the last module"),
    (lambda: [nn.Linear(4, 3), nn.Linear(2, 1)], 1, "in_features=2, expected 3"),
    (lambda: [nn.Linear(5, 3)], 0, "in_features=5, expected 4 .the input_dim"),
    (lambda: [nn.Linear(4, 3), nn.GELU()], 1, "approximate='none'.*the erf form"),
    (lambda: [nn.Linear(4, 3), nn.Softplus(beta=2.0)], 1, r"Softplus\(beta=2.0, threshold=20"),
    (lambda: [nn.Linear(4, 3), nn.Softmax(dim=0)], 1, r"Softmax\(dim=0\)"),
    (lambda: [nn.Linear(4, 3), nn.Softmax(dim=-1), nn.Linear(3, 2)], 1, "not the last module"),
    (lambda: [nn.Linear(4, 3), nn.LeakyReLU(-0.1)], 1, "negative_slope=-0.1"),
    (lambda: [nn.Linear(4, 3).half()], 0, "dtype torch.float16"),
    (lambda: [nn.Linear(4, 3), nn.Linear(3, 2).double()], 1, "dtype torch.float64, the modules before it"),
    (lambda: [nn.Identity()], None, "no Linear layer"),
]


@pytest.mark.parametrize("make, index, message", UNSUPPORTED, ids=[str(i) for i in range(len(UNSUPPORTED))])
def test_from_torch_names_the_first_unsupported_module(make, index, message):
    mods = make()
    with pytest.raises(ValueError, match=message) as info:
        bp.interop.from_torch(nn.Sequential(*mods), input_dim=4)
    if index is not None:
        assert f"module[{index}] ({type(mods[index]).__name__})" in str(info.value)


def test_from_torch_argument_types():
    with pytest.raises(TypeError, match="^module: expected a torch.nn.Sequential"):
        bp.interop.from_torch(nn.Linear(2, 2), input_dim=2)
    with pytest.raises(ValueError, match="^input_dim"):
        bp.interop.from_torch(nn.Sequential(nn.Linear(2, 2)), input_dim=0)


def test_without_torch_the_import_error_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "pybackprop.interop")
    with pytest.raises(ImportError, match="pybackprop.interop .* needs PyTorch: pip install torch") as info:
        importlib.import_module("pybackprop.interop")
    assert info.value.name == "torch"


# ---------------------------------------------------------------------- BatchNorm, LayerNorm
def _norm_model(dtype):
    model = bp.Sequential([
        bp.BatchNorm(), bp.Dense(16, activation="tanh"), bp.BatchNorm(momentum=0.3, affine=False), bp.Dropout(0.8),
        bp.Dense(8, activation="elu"), bp.LayerNorm(eps=1e-3), bp.Dense(4, activation="gelu"),
        bp.LayerNorm(elementwise_affine=False), bp.Dense(3),
    ], input_dim=5, dtype=dtype, seed=1)
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(256, 5)) * 4 + 2).astype(dtype)
    model.compile(loss="mse", optimizer=bp.Adam(lr=0.05))
    model.fit(X, rng.normal(size=(256, 3)), epochs=3, batch_size=16, verbose=0)
    return model, X


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_norms_to_torch_and_back(dtype):
    model, X = _norm_model(dtype)
    net = bp.interop.to_torch(model)
    bn, bn2, ln, ln2 = (m for m in net if isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)))
    assert bn.momentum == 0.1 and bn.eps == 1e-5 and bn.affine and not bn2.affine and bn2.momentum == 0.3
    assert np.array_equal(bn.running_var.numpy(), model.layers[0].running_var)
    assert np.array_equal(bn.weight.detach().numpy(), model.layers[0].weight)
    assert ln.eps == 1e-3 and ln.elementwise_affine and not ln2.elementwise_affine
    want = model.predict(X)
    for rows in (1, 257):
        Xr = np.resize(X, (rows, 5)).astype(dtype)
        assert_close(f"torch {rows} rows", torch_out(net, Xr), model.predict(Xr), *tolerance(dtype, want))
    back = bp.interop.from_torch(net, input_dim=5)
    for a, b in zip(back.get_weights(), model.get_weights()):
        assert np.array_equal(a, b)
    assert [layer.get_config() for layer in back.layers] == [
        {**layer.get_config(), **({"init": "zeros"} if isinstance(layer, bp.Dense) else {})} for layer in model.layers]
    assert np.array_equal(back.predict(X), want)


def test_from_torch_of_torch_trained_norms_predicts_what_torch_does():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.BatchNorm1d(16), nn.Dropout(0.1), nn.Linear(16, 8),
                        nn.Tanh(), nn.LayerNorm(8), nn.Linear(8, 2)).double()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    X = torch.randn(128, 6, dtype=torch.float64) * 3
    for _ in range(5):
        opt.zero_grad()
        net(X).square().mean().backward()
        opt.step()
    net.eval()
    model = bp.interop.from_torch(net, input_dim=6)
    assert_close("predict", model.predict(X.numpy()), torch_out(net, X.numpy()), 1e-12, 1e-12)


NORM_UNSUPPORTED = [
    (lambda: [nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 1)], 2, "follows a normalisation"),
    (lambda: [nn.Linear(4, 3), nn.BatchNorm1d(3), nn.LayerNorm(3), nn.Linear(3, 1)], 2,
     "follows another normalisation"),
    (lambda: [nn.Linear(4, 3), nn.Dropout(0.1), nn.BatchNorm1d(3), nn.Linear(3, 1)], 2, "follows a Dropout"),
    (lambda: [nn.Linear(4, 3), nn.BatchNorm1d(3)], 1, "is the last module"),
    (lambda: [nn.Linear(4, 3), nn.BatchNorm1d(5), nn.Linear(3, 1)], 1, "num_features=5, expected 3"),
    (lambda: [nn.Linear(4, 3), nn.BatchNorm1d(3, track_running_stats=False), nn.Linear(3, 1)], 1,
     "track_running_stats=False"),
    (lambda: [nn.Linear(4, 3), nn.BatchNorm1d(3, momentum=None), nn.Linear(3, 1)], 1, "momentum=None"),
    (lambda: [nn.Linear(4, 3), nn.LayerNorm(5), nn.Linear(3, 1)], 1, r"normalized_shape=\(5,\), expected \(3,\)"),
    (lambda: [nn.Linear(4, 3), nn.LayerNorm(3, bias=False), nn.Linear(3, 1)], 1, "bias=False"),
    (lambda: [nn.Linear(4, 3), nn.BatchNorm1d(3).double(), nn.Linear(3, 1)], 1, "dtype torch.float64"),
    (lambda: [nn.Linear(4, 3), nn.BatchNorm2d(3), nn.Linear(3, 1)], 1, r"BatchNorm2d\) is not supported"),
]


@pytest.mark.parametrize("make, index, message", NORM_UNSUPPORTED, ids=[str(i) for i in range(len(NORM_UNSUPPORTED))])
def test_from_torch_norm_errors_name_the_module(make, index, message):
    mods = make()
    with pytest.raises(ValueError, match=message) as info:
        bp.interop.from_torch(nn.Sequential(*mods), input_dim=4)
    assert f"module[{index}] ({type(mods[index]).__name__})" in str(info.value)
