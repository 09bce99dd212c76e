"""ONNX export: onnx.checker passes and ONNX Runtime's outputs equal predict's for every layer,
activation and dtype (float32 <= 1e-5, float64 <= 1e-12); the errors of to_onnx."""
from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import pytest

import pybackprop as bp
from pybackprop import activations as A
from conftest import ACTIVATIONS, HIDDEN_ACTIVATIONS, assert_close, tolerance

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import pybackprop.export  # noqa: E402  (after the skips: it needs onnx)

#: every activation, and those with parameters at other values than their defaults
WITH_PARAMS = [*HIDDEN_ACTIVATIONS, A.LeakyReLU(alpha=0.2), A.LeakyReLU(alpha=0.0), A.ELU(alpha=0.3),
               A.ELU(alpha=2.5), A.NoisyReLU(sigma=0.5)]
IDS = [a if isinstance(a, str) else repr(a) for a in WITH_PARAMS]


def session(proto):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run(proto, X):
    return session(proto).run(None, {"input": X})[0]


def check_parity(model, X, name="output"):
    proto = bp.export.to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    want = model.predict(X)
    got = run(proto, X)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert_close(name, got, want, *tolerance(model.dtype, want))
    return proto


def data(rows, cols, dtype, seed=0, scale=3.0):
    return (np.random.default_rng(seed).normal(size=(rows, cols)) * scale).astype(dtype)


# ---------------------------------------------------------------------- parity
@pytest.mark.parametrize("rows", [1, 257])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", WITH_PARAMS, ids=IDS)
def test_every_activation_with_every_layer_equals_predict(act, dtype, rows):
    model = bp.Sequential([
        bp.Dropout(keep_prob=0.8, scaling="classic"),
        bp.Dense(12, activation=act, init="random_normal"),
        bp.Dropout(rate=0.3),  # inverted: nothing at inference
        bp.Dense(7, activation=act, use_bias=False, init="he_uniform"),
        bp.Dropout(keep_prob=0.6, scaling="classic", mask="per_batch"),
        bp.Dense(4, activation=act),
    ], input_dim=5, dtype=dtype, seed=11)
    check_parity(model, data(rows, 5, dtype, seed=rows))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("out", ["softmax", "sigmoid", "identity"])
def test_output_activations_equal_predict(out, dtype):
    model = bp.Sequential([bp.Dense(9, activation="gelu"), bp.Dense(5, activation=out)],
                          input_dim=3, dtype=dtype, seed=2)
    X = data(257, 3, dtype)
    check_parity(model, X)
    if out == "softmax":
        assert_close("row sums", run(bp.export.to_onnx(model), X).sum(axis=1), np.ones(257), 1e-5, 1e-5)


#: z over the whole range: overflow of exp, softplus' linear part above 20, tiny and signed zeros
EDGES = np.concatenate([[-800.0, -745.2, -709.0, -100.0, -37.5, -20.5, -1e-5, -1e-8, -1e-30, -1e-300, -0.0, 0.0,
                         1e-300, 1e-30, 1e-8, 1e-5, 19.999, 20.0, 20.001, 25.0, 88.0, 700.0, 800.0],
                        np.linspace(-40, 40, 801)])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", WITH_PARAMS, ids=IDS)
def test_each_activation_over_the_whole_range_of_z(act, dtype):
    # One unit with W = 1 and no bias: the output is f(z) at exactly these z, nothing summed. float64:
    # each value to a few ulps of its own (relative, no tensor-wide atol) except where ONNX Runtime's
    # Tanh rounds 1 - tiny to 1 (gelu near -7, tanh itself): there, 1e-14 absolute.
    model = bp.Sequential([bp.Dense(1, activation=act, init=[[1.0]], use_bias=False)], input_dim=1, dtype=dtype)
    X = EDGES.astype(dtype).reshape(-1, 1)
    proto = bp.export.to_onnx(model)
    got, want = run(proto, X), model.predict(X)
    assert not np.isnan(got).any()
    if dtype == "float64":
        assert_close(f"{act} at z", got, want, 1e-14, 1e-14)
    else:
        assert_close(f"{act} at z", got, want, *tolerance(dtype, want))


def test_float64_leaky_relu_alpha_beyond_float32_is_exact():
    # An ONNX attribute is a float32: alpha = 0.01 in float64 is written as a double constant instead.
    model = bp.Sequential([bp.Dense(1, activation=A.LeakyReLU(alpha=0.01), init=[[1.0]], use_bias=False)],
                          input_dim=1, dtype="float64")
    X = np.array([[-1e6], [-3.0], [2.0]])
    got = run(bp.export.to_onnx(model), X)
    assert np.array_equal(got, model.predict(X))
    ops32 = [n.op_type for n in bp.export.to_onnx(bp.Sequential([bp.Dense(1, activation="leaky_relu")],
                                                                 input_dim=1)).graph.node]
    assert "LeakyRelu" in ops32


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_trained_model_with_a_scheduled_classic_dropout(dtype):
    # Classic dropout's inference scale is the keep probability of the last training step.
    model = bp.Sequential([bp.Dense(16, activation="tanh"),
                           bp.Dropout(keep_prob=bp.schedules.Linear(1.0, 0.5, steps=20), scaling="classic"),
                           bp.Dense(3, activation="softmax")], input_dim=4, dtype=dtype, seed=5)
    model.compile(loss="categorical_crossentropy", optimizer=bp.Adam(lr=0.01))
    X = data(64, 4, dtype, scale=1.0)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    model.fit(X, y, epochs=3, batch_size=8, verbose=0)
    keep = model.engine.keep_probs()[0]
    assert keep < 1.0
    proto = check_parity(model, X)
    scales = [onnx.numpy_helper.to_array(t) for t in proto.graph.initializer if t.name.startswith("const_")]
    mul = [n for n in proto.graph.node if n.op_type == "Mul" and n.name.startswith("layers.1")]
    assert len(mul) == 1 and any(s.ndim == 0 and float(s) == np.asarray(keep, dtype) for s in scales)


def test_inverted_dropout_is_absent_and_classic_dropout_is_a_mul():
    model = bp.Sequential([bp.Dense(3), bp.Dropout(0.5), bp.Dense(3), bp.Dropout(0.5, scaling="classic"),
                           bp.Dense(2)], input_dim=2, seed=0)
    ops = [n.op_type for n in bp.export.to_onnx(model).graph.node]
    assert ops == ["Gemm", "Gemm", "Mul", "Gemm"]
    no_bias = bp.Sequential([bp.Dense(3, use_bias=False)], input_dim=2)
    assert [n.op_type for n in bp.export.to_onnx(no_bias).graph.node] == ["MatMul"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_batch_dimension_is_dynamic_and_types_are_the_models(dtype):
    model = bp.Sequential([bp.Dense(6, activation="elu"), bp.Dense(2)], input_dim=3, dtype=dtype, seed=1)
    proto = bp.export.to_onnx(model)
    elem = onnx.TensorProto.FLOAT if dtype == "float32" else onnx.TensorProto.DOUBLE
    for value, cols in ((proto.graph.input[0], 3), (proto.graph.output[0], 2)):
        tt = value.type.tensor_type
        assert tt.elem_type == elem
        assert [d.dim_param or d.dim_value for d in tt.shape.dim] == ["batch", cols]
    sess = session(proto)
    for rows in (1, 2, 257, 1000):
        X = data(rows, 3, dtype, seed=rows)
        want = model.predict(X)
        assert_close(f"{rows} rows", sess.run(None, {"input": X})[0], want, *tolerance(dtype, want))


@pytest.mark.parametrize("opset", [17, 18, 21])
def test_opsets(opset):
    model = bp.Sequential([bp.Dense(4, activation="softplus"), bp.Dense(2, activation="softmax")],
                          input_dim=3, dtype="float64", seed=0)
    proto = bp.export.to_onnx(model, opset=opset)
    assert proto.opset_import[0].version == opset
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(list(proto.opset_import))
    X = data(10, 3, "float64")
    assert_close("output", run(proto, X), model.predict(X), 1e-12, 1e-12)


def test_metadata_holds_the_config_and_the_producer():
    import json

    model = bp.Sequential([bp.Dense(2, activation=A.ELU(alpha=0.5))], input_dim=3, seed=4)
    proto = bp.export.to_onnx(model)
    assert proto.producer_name == "pybackprop" and proto.producer_version == bp.__version__
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["pybackprop_config"]) == json.loads(json.dumps(model.get_config()))


def test_initializers_are_the_weights_bitwise():
    model = bp.Sequential([bp.Dense(5, activation="relu"), bp.Dense(2)], input_dim=3, dtype="float64", seed=9)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in bp.export.to_onnx(model).graph.initializer}
    assert np.array_equal(inits["layers.0.W"], model.layers[0].W)
    assert np.array_equal(inits["layers.1.b"], model.layers[1].b)
    assert inits["layers.0.W"].dtype == np.float64


# ---------------------------------------------------------------------- files
def test_model_to_onnx_writes_the_proto(tmp_path):
    model = bp.Sequential([bp.Dense(3, activation="gelu"), bp.Dense(1)], input_dim=2, seed=0)
    path = tmp_path / "m.onnx"
    assert model.to_onnx(path) is None
    assert path.read_bytes() == bp.export.to_onnx(model).SerializeToString()
    proto = bp.export.to_onnx(model, str(tmp_path / "again.onnx"))
    assert (tmp_path / "again.onnx").read_bytes() == proto.SerializeToString()
    X = data(4, 2, "float32")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert_close("from the file", sess.run(None, {"input": X})[0], model.predict(X), 1e-5, 1e-5)
    assert sorted(os.listdir(tmp_path)) == ["again.onnx", "m.onnx"]  # no temporary file left


# ---------------------------------------------------------------------- errors
def test_an_unbuilt_model_is_a_value_error(tmp_path):
    model = bp.Sequential([bp.Dense(2)])
    with pytest.raises(ValueError, match=r"^model: expected a built model .* got an unbuilt Sequential"):
        bp.export.to_onnx(model)
    with pytest.raises(ValueError, match="built model"):
        model.to_onnx(tmp_path / "m.onnx")
    assert not os.listdir(tmp_path)


def test_bad_arguments():
    model = bp.Sequential([bp.Dense(2)], input_dim=2)
    with pytest.raises(TypeError, match="^model: expected a pybackprop.Sequential"):
        bp.export.to_onnx(object())
    with pytest.raises(ValueError, match="^opset: expected an integer >= 17"):
        bp.export.to_onnx(model, opset=16)
    with pytest.raises(ValueError, match=r"^opset: expected an opset in \[17, "):
        bp.export.to_onnx(model, opset=1000)
    with pytest.raises(TypeError, match="^path: expected a file path"):
        bp.export.to_onnx(model, 3.5)


def test_a_missing_directory_is_a_clear_error(tmp_path):
    model = bp.Sequential([bp.Dense(2)], input_dim=2)
    target = tmp_path / "no" / "such" / "m.onnx"
    with pytest.raises(ValueError, match=r"^path: expected a file path that can be written .*m\.onnx"):
        model.to_onnx(target)
    assert not os.listdir(tmp_path)


def test_a_directory_as_path_leaves_nothing_behind(tmp_path):
    model = bp.Sequential([bp.Dense(2)], input_dim=2)
    (tmp_path / "d.onnx").mkdir()
    with pytest.raises(ValueError, match="^path: expected a file path that can be written"):
        model.to_onnx(tmp_path / "d.onnx")
    assert os.listdir(tmp_path) == ["d.onnx"] and not os.listdir(tmp_path / "d.onnx")


def test_a_read_only_directory_is_a_clear_error(tmp_path):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    model = bp.Sequential([bp.Dense(2)], input_dim=2)
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="^path: expected a file path that can be written"):
            model.to_onnx(tmp_path / "m.onnx")
    finally:
        tmp_path.chmod(0o700)
    assert not os.listdir(tmp_path)


def test_a_failed_write_keeps_the_earlier_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    model = bp.Sequential([bp.Dense(2)], input_dim=2, seed=0)
    path = tmp_path / "m.onnx"
    model.to_onnx(path)
    before = path.read_bytes()

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    other = bp.Sequential([bp.Dense(2, activation="tanh")], input_dim=2, seed=1)
    with pytest.raises(OSError, match="to_onnx: cannot write the ONNX file .*No space left on device"):
        other.to_onnx(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.onnx"]


def test_without_onnx_the_import_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    monkeypatch.delitem(sys.modules, "pybackprop.export")
    model = bp.Sequential([bp.Dense(2)], input_dim=2)
    with pytest.raises(ImportError, match=r"pip install 'pybackprop\[onnx\]'") as info:
        model.to_onnx("never-written.onnx")
    assert info.value.name == "onnx"
    with pytest.raises(ImportError, match=r"pybackprop\[onnx\]"):
        importlib.import_module("pybackprop.export")
    assert not os.path.exists("never-written.onnx")


def test_every_activation_of_the_core_has_an_onnx_form():
    for name in ACTIVATIONS:
        model = bp.Sequential([bp.Dense(2, activation=name)], input_dim=2)
        onnx.checker.check_model(bp.export.to_onnx(model), full_check=True)


# ---------------------------------------------------------------------- BatchNorm, LayerNorm
def _norm_model(dtype, eps, affine, act="tanh"):
    return bp.Sequential([
        bp.BatchNorm(eps=eps, affine=affine),
        bp.Dense(16, activation=act),
        bp.BatchNorm(eps=eps, affine=affine, momentum=0.3),
        bp.Dropout(0.8, scaling="classic"),
        bp.Dense(8, activation="elu"),
        bp.LayerNorm(eps=eps, elementwise_affine=affine),
        bp.Dropout(rate=0.25),
        bp.Dense(6, activation="gelu"),
        bp.LayerNorm(eps=eps, elementwise_affine=not affine),
        bp.Dense(3, activation="softmax"),
    ], input_dim=5, dtype=dtype, seed=1)


def _trained(model, scale=4.0):
    # trained a few epochs: running statistics, γ and β away from their initial 0, 1
    rng = np.random.default_rng(3)
    X = (rng.normal(size=(256, model.input_dim)) * scale + 2).astype(model.dtype)
    model.compile(loss="categorical_crossentropy", optimizer=bp.Adam(lr=0.05))
    model.fit(X, rng.integers(0, 3, 256), epochs=3, batch_size=16, verbose=0)
    return X


@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("eps", [1e-5, 2.0 ** -10, 1e-3])  # 2**-10: exact in float32, the others not
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batchnorm_and_layernorm_in_inference_form_equal_predict(dtype, eps, affine, opset):
    model = _norm_model(dtype, eps, affine)
    X = _trained(model)
    assert not np.array_equal(model.layers[2].running_var, np.ones(16))
    proto = bp.export.to_onnx(model, opset=opset)
    onnx.checker.check_model(proto, full_check=True)
    for rows in (1, 257):
        Xr = np.resize(X, (rows, 5)).astype(dtype)
        want = model.predict(Xr)
        assert_close(f"{rows} rows", run(proto, Xr), want, *tolerance(dtype, want))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("BatchNormalization") == 2
    composed_ln = dtype == "float64" and eps != 2.0 ** -10
    assert ops.count("LayerNormalization") == (0 if composed_ln else 2)


@pytest.mark.parametrize("first", ["BatchNorm", "LayerNorm"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normalisation_of_small_variances(dtype, first):
    # Variances ~1e-8 next to eps = 1e-5: an eps rounded to float32 (ONNX's attribute) would be off by
    # ~2e-8 relative in float64; the export keeps the core's double eps.
    norm = bp.BatchNorm(momentum=1.0) if first == "BatchNorm" else bp.LayerNorm()
    model = bp.Sequential([norm, bp.Dense(2, init="random_uniform")], input_dim=3, dtype=dtype, seed=0)
    X = (np.random.default_rng(0).normal(size=(64, 3)) * 1e-4).astype(dtype)
    model.compile(loss="mse", optimizer=bp.SGD(lr=0.0))
    model.fit(X, np.zeros((64, 2)), epochs=1, batch_size=64, verbose=0)  # the batch's statistics; lr 0
    if first == "BatchNorm":
        assert float(norm.running_var.max()) < 1e-7
    want = model.predict(X)
    got = run(bp.export.to_onnx(model), X)
    if dtype == "float64":
        assert_close("small variances", got, want, 1e-12, 1e-12)
    else:
        assert_close("small variances", got, want, *tolerance(dtype, want))


def test_batchnorm_initialisers_are_the_running_statistics():
    model = _norm_model("float32", 1e-5, True)
    _trained(model)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in bp.export.to_onnx(model).graph.initializer}
    bn = model.layers[0]
    assert np.array_equal(inits["layers.0.running_mean"], bn.running_mean)
    assert np.array_equal(inits["layers.0.running_var"], bn.running_var)
    assert np.array_equal(inits["layers.0.weight"], bn.weight) and np.array_equal(inits["layers.0.bias"], bn.bias)
    d64 = _norm_model("float64", 1e-5, True)
    names = {t.name for t in bp.export.to_onnx(d64).graph.initializer}
    assert "layers.0.running_var_plus_eps" in names  # float64: var + eps in double, epsilon 0
