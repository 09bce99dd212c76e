"""Export a model to ONNX, to run it with ONNX Runtime or any ONNX consumer.

:func:`to_onnx` writes the inference form of a built :class:`~pybackprop.Sequential`
as an ONNX graph (default opset 17): one ``Gemm`` (``MatMul`` without bias) per Dense
layer, its activation, Dropout at its inference scale (nothing for inverted
dropout, a ``Mul`` by the keep probability for classic dropout), BatchNorm as
``BatchNormalization`` with its running statistics and LayerNorm as
``LayerNormalization(axis=-1)`` (both with γ = 1, β = 0 without affine). Input ``"input"``
and output ``"output"`` have a dynamic batch dimension and the model's dtype
(``tensor(float)`` or ``tensor(double)``). Every activation's graph is pybackprop's
own formula (``docs/guide/export.md`` lists them):

==============  ==============================================================
identity        nothing
relu            ``Relu`` (noisy_relu too: its noise is a training-time thing)
leaky_relu      ``LeakyRelu(alpha)``; float64 with an alpha that float32 cannot hold
                exactly (an attribute is a float32): ``Where(z > 0, z, alpha·z)``
sigmoid         float32 ``Sigmoid``; float64 the core's stable form ``Where(z >= 0,
                1/(1 + e), e/(1 + e))``, e = exp(-|z|) (ONNX Runtime's double Sigmoid
                loses small outputs' relative precision)
tanh            ``Tanh``
elu             ``Where(z > 0, z, alpha·expm1(z))``, expm1 in Kahan's exact form (ONNX
                Runtime has no double ``Elu``; its float ``Elu`` is exp(z) - 1, 0 for tiny z)
softplus        float32 ``Softplus``; float64 (no double Softplus): ``Where(z > 20,
                z, log1p(exp(z)))``, log1p in Goldberg's exact form
gelu            the tanh form from primitives: ``½z·(1 + tanh(√(2/π)(z + 0.044715 z³)))``
softmax         ``Softmax(axis=-1)``
==============  ==============================================================

ONNX's ``epsilon`` is a float32 attribute: in float64 with an ε float32 cannot hold
(the default 1e-5), BatchNorm's variance input is ``running_var + ε`` computed in
double (initialiser ``layers.<i>.running_var_plus_eps``, epsilon 0), and LayerNorm is
written from ``ReduceMean``, ``Sub``, ``Mul``, ``Add``, ``Sqrt``, ``Div`` with a double ε.

The ``onnx`` package is needed (``pip install 'pybackprop[onnx]'``, which also
installs ``onnxruntime``); importing this module without it raises an
``ImportError`` saying so.

Examples
--------
>>> import numpy as np, onnx, pybackprop as bp
>>> model = bp.Sequential([bp.Dense(8, activation="gelu"), bp.Dropout(0.9),
...                        bp.Dense(3, activation="softmax")], input_dim=4, seed=0)
>>> proto = bp.export.to_onnx(model)
>>> onnx.checker.check_model(proto, full_check=True)
>>> [node.op_type for node in proto.graph.node][-2:]
['Gemm', 'Softmax']
>>> [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
['batch', 4]
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as _exc:  # the module is skipped by the doctest run without onnx, as the message says
    raise ImportError("pybackprop.export (to_onnx) needs the onnx package: pip install 'pybackprop[onnx]' "
                      f"(it installs onnx and onnxruntime); the import failed with: {_exc}",
                      name=_exc.name or "onnx") from _exc

from . import activations as _activations
from ._validation import check_int, fail
from .io import write_atomically
from .layers import BatchNorm, Dense, Dropout, LayerNorm

if TYPE_CHECKING:  # pragma: no cover
    from .model import Sequential

__all__ = ["DEFAULT_OPSET", "INPUT_NAME", "OUTPUT_NAME", "to_onnx"]

#: the opset written unless ``opset=`` says otherwise (LayerNormalization's first)
DEFAULT_OPSET = 17
#: the lowest opset accepted
MIN_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "output"

_ELEM = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}
_SQRT_2_OVER_PI = 0.7978845608028654  # the core's constants (activations.hpp)
_GELU_CUBIC = 0.044715
_SOFTPLUS_LINEAR = 20.0


class _Graph:
    """Nodes and initialisers of one graph, with fresh names and typed constants."""

    def __init__(self, dtype: str) -> None:
        self.dtype = np.dtype(dtype)
        self.nodes: List[Any] = []
        self.initializers: List[Any] = []
        self._names: Dict[str, int] = {}
        self._consts: Dict[Any, str] = {}

    def fresh(self, base: str) -> str:
        k = self._names.get(base, 0)
        self._names[base] = k + 1
        return base if k == 0 else f"{base}_{k}"

    def tensor(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.array(value, order="C"), name))  # 0-d stays 0-d
        return name

    def const(self, value: float) -> str:
        """A scalar of the model's dtype (shared by every node using the same value)."""
        key = (self.dtype.str, float(value))
        if key not in self._consts:
            self._consts[key] = self.tensor(self.fresh(f"const_{float(value)!r}"), np.array(value, self.dtype))
        return self._consts[key]

    def bool_const(self, value: bool) -> str:
        key = ("bool", value)
        if key not in self._consts:
            self._consts[key] = self.tensor(self.fresh(f"const_{value}"), np.array(value))
        return self._consts[key]

    def axes_last(self) -> str:
        """The int64 tensor [-1] (ReduceMean's axes input from opset 18)."""
        key = ("axes", -1)
        if key not in self._consts:
            self._consts[key] = self.tensor(self.fresh("axes_last"), np.array([-1], np.int64))
        return self._consts[key]

    def node(self, op: str, inputs: List[str], base: str, **attrs: Any) -> str:
        out = self.fresh(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _float32_exact(value: float) -> bool:
    return float(np.float32(value)) == value


def _expm1(g: _Graph, z: str, base: str) -> str:
    """expm1(z) to about an ulp (Kahan): u = e^z; z if u == 1, -1 if u - 1 == -1, else (u-1)·z/log u."""
    u = g.node("Exp", [z], f"{base}.exp")
    um1 = g.node("Sub", [u, g.const(1.0)], f"{base}.exp_minus_1")
    ratio = g.node("Div", [g.node("Mul", [um1, z], f"{base}.mul"), g.node("Log", [u], f"{base}.log")],
                   f"{base}.kahan")
    at_minus_1 = g.node("Where", [g.node("Equal", [um1, g.const(-1.0)], f"{base}.is_minus_1"), g.const(-1.0), ratio],
                        f"{base}.saturated")
    return g.node("Where", [g.node("Equal", [u, g.const(1.0)], f"{base}.is_one"), z, at_minus_1], f"{base}.expm1")


def _log1p(g: _Graph, x: str, base: str) -> str:
    """log1p(x) for x >= 0 to about an ulp (Goldberg): w = 1 + x; x if w == 1, else log(w)·x/(w - 1)."""
    w = g.node("Add", [x, g.const(1.0)], f"{base}.one_plus")
    wm1 = g.node("Sub", [w, g.const(1.0)], f"{base}.minus_1")
    exact = g.node("Mul", [g.node("Log", [w], f"{base}.log"), g.node("Div", [x, wm1], f"{base}.div")],
                   f"{base}.goldberg")
    return g.node("Where", [g.node("Equal", [w, g.const(1.0)], f"{base}.is_one"), x, exact], f"{base}.log1p")


def _activation(g: _Graph, act: _activations.Activation, z: str, base: str) -> str:
    """The nodes of ``act`` applied to ``z``; returns the output's name."""
    name, double = act.name, g.dtype == np.float64
    params = act.params()
    if name == "identity":
        return z
    if name in ("relu", "noisy_relu"):
        return g.node("Relu", [z], f"{base}.relu")
    if name == "sigmoid":
        if not double:
            return g.node("Sigmoid", [z], f"{base}.sigmoid")
        # the core's stable form: 1/(1 + e) for z >= 0, e/(1 + e) below, e = exp(-|z|) (ONNX Runtime's
        # double Sigmoid loses the relative precision of small outputs: 0 below z = -37)
        e = g.node("Exp", [g.node("Neg", [g.node("Abs", [z], f"{base}.abs")], f"{base}.neg")], f"{base}.exp")
        d = g.node("Add", [e, g.const(1.0)], f"{base}.one_plus")
        nonneg = g.node("GreaterOrEqual", [z, g.const(0.0)], f"{base}.nonneg")
        return g.node("Where", [nonneg, g.node("Div", [g.const(1.0), d], f"{base}.upper"),
                                g.node("Div", [e, d], f"{base}.lower")], f"{base}.sigmoid")
    if name == "tanh":
        return g.node("Tanh", [z], f"{base}.tanh")
    if name == "softmax":
        return g.node("Softmax", [z], f"{base}.softmax", axis=-1)
    if name == "leaky_relu":
        alpha = float(params["alpha"])
        if not double or _float32_exact(alpha):
            return g.node("LeakyRelu", [z], f"{base}.leaky_relu", alpha=alpha)
        positive = g.node("Greater", [z, g.const(0.0)], f"{base}.positive")
        return g.node("Where", [positive, z, g.node("Mul", [z, g.const(alpha)], f"{base}.alpha_z")],
                      f"{base}.leaky_relu")
    if name == "elu":
        alpha = float(params["alpha"])  # composed for both dtypes: Elu's exp(z) - 1 loses small z
        positive = g.node("Greater", [z, g.const(0.0)], f"{base}.positive")
        negative = g.node("Mul", [g.const(alpha), _expm1(g, z, f"{base}.elu")], f"{base}.alpha_expm1")
        return g.node("Where", [positive, z, negative], f"{base}.elu")
    if name == "softplus":
        if not double:  # above 20, float32's log(1 + e^z) is z already
            return g.node("Softplus", [z], f"{base}.softplus")
        linear = g.node("Greater", [z, g.const(_SOFTPLUS_LINEAR)], f"{base}.linear")
        soft = _log1p(g, g.node("Exp", [z], f"{base}.softplus.exp"), f"{base}.softplus")
        return g.node("Where", [linear, z, soft], f"{base}.softplus")
    if name == "gelu":  # the core's order of operations: 0.5·z·(1 + tanh(c·(z + k·z·z·z)))
        kz3 = g.node("Mul", [g.node("Mul", [g.node("Mul", [z, g.const(_GELU_CUBIC)], f"{base}.gelu.kz"), z],
                                    f"{base}.gelu.kz2"), z], f"{base}.gelu.kz3")
        u = g.node("Mul", [g.node("Add", [z, kz3], f"{base}.gelu.inner"), g.const(_SQRT_2_OVER_PI)], f"{base}.gelu.u")
        one_plus = g.node("Add", [g.node("Tanh", [u], f"{base}.gelu.tanh"), g.const(1.0)], f"{base}.gelu.one_plus")
        return g.node("Mul", [g.node("Mul", [z, g.const(0.5)], f"{base}.gelu.half_z"), one_plus], f"{base}.gelu")
    raise ValueError(f"to_onnx: activation {name!r} has no ONNX form")  # every activation has one (tested)


def _batchnorm(g: _Graph, layer: BatchNorm, x: str, base: str, width: int) -> str:
    """Inference: ``γ·(x − running_mean)/√(running_var + ε) + β`` as one ``BatchNormalization``.

    ONNX's epsilon is a float32 attribute: in float64 with an ε that float32 cannot hold
    exactly (the default 1e-5), the variance input is ``running_var + ε`` computed in
    double as the core computes it and epsilon is 0, so ``√(var + ε)`` is the core's.
    """
    dtype = g.dtype
    gamma = layer.weight if layer.weight is not None else np.ones(width, dtype)
    beta = layer.bias if layer.bias is not None else np.zeros(width, dtype)
    eps = float(layer.eps)
    var = np.array(layer.running_var)
    if dtype == np.float64 and not _float32_exact(eps):
        var_name, var, eps = f"{base}.running_var_plus_eps", var + dtype.type(eps), 0.0
    else:
        var_name = f"{base}.running_var"
    inputs = [x, g.tensor(f"{base}.weight", gamma), g.tensor(f"{base}.bias", beta),
              g.tensor(f"{base}.running_mean", layer.running_mean), g.tensor(var_name, var)]
    return g.node("BatchNormalization", inputs, f"{base}.batchnorm", epsilon=eps)


def _layernorm(g: _Graph, layer: LayerNorm, x: str, base: str, width: int, opset: int) -> str:
    """``γ·(x − μ)/√(σ² + ε) + β`` over each row: ``LayerNormalization(axis=-1)``; in float64 with
    an ε float32 cannot hold (ONNX's epsilon is a float32) from ReduceMean, Sub, Mul, Sqrt, Div."""
    dtype = g.dtype
    eps = float(layer.eps)
    if dtype != np.float64 or _float32_exact(eps):
        gamma = layer.weight if layer.weight is not None else np.ones(width, dtype)
        inputs = [x, g.tensor(f"{base}.weight", gamma)]
        if layer.bias is not None:
            inputs.append(g.tensor(f"{base}.bias", layer.bias))
        return g.node("LayerNormalization", inputs, f"{base}.layernorm", axis=-1, epsilon=eps)

    def mean(v: str, name: str) -> str:
        if opset >= 18:  # axes became an input
            return g.node("ReduceMean", [v, g.axes_last()], name, keepdims=1)
        return g.node("ReduceMean", [v], name, axes=[-1], keepdims=1)

    mu = mean(x, f"{base}.mean")
    centred = g.node("Sub", [x, mu], f"{base}.centred")
    var = mean(g.node("Mul", [centred, centred], f"{base}.squares"), f"{base}.var")
    inv_std = g.node("Div", [g.const(1.0), g.node("Sqrt", [g.node("Add", [var, g.const(eps)], f"{base}.var_eps")],
                                                  f"{base}.std")], f"{base}.inv_std")
    y = g.node("Mul", [centred, inv_std], f"{base}.xhat")
    weight, bias = layer.weight, layer.bias
    if weight is None or bias is None:
        return y
    y = g.node("Mul", [g.tensor(f"{base}.weight", weight), y], f"{base}.scaled")
    return g.node("Add", [y, g.tensor(f"{base}.bias", bias)], f"{base}.layernorm")


def _check_model(model: Any) -> "Sequential":
    from .model import Sequential

    if not isinstance(model, Sequential):
        fail("model", "a pybackprop.Sequential", model, TypeError)
    if not model.built:
        raise ValueError("model: expected a built model (give input_dim to Sequential, or call build(input_dim), "
                         "fit or predict first), got an unbuilt Sequential")
    return model  # type: ignore[no-any-return]


def _graph(model: "Sequential", opset: int) -> Any:
    engine = model.engine
    g = _Graph(engine.dtype)
    x = INPUT_NAME
    width = int(engine.input_dim or 0)
    keep_probs = iter(engine.keep_probs())  # the core's current ones (a schedule's last value)
    for i, layer in enumerate(model.layers):
        base = f"layers.{i}"
        if isinstance(layer, BatchNorm):
            x = _batchnorm(g, layer, x, base, width)
            continue
        if isinstance(layer, LayerNorm):
            x = _layernorm(g, layer, x, base, width, opset)
            continue
        if isinstance(layer, Dropout):
            p = next(keep_probs)
            if layer.scaling == "classic" and p != 1.0:  # the core multiplies the layer's input by p
                x = g.node("Mul", [x, g.const(p)], f"{base}.dropout")
            continue  # inverted dropout: nothing at inference
        if not isinstance(layer, Dense):
            raise ValueError(f"to_onnx: model.layers[{i}] ({type(layer).__name__}) has no ONNX form")
        W = g.tensor(f"{base}.W", layer.W)
        b = layer.b
        if b is None:
            z = g.node("MatMul", [x, W], f"{base}.z")
        else:
            z = g.node("Gemm", [x, W, g.tensor(f"{base}.b", b)], f"{base}.z")
        x = _activation(g, layer.activation, z, base)
        width = layer.units
    last = g.nodes[-1]  # the output is the last node's (every model ends with a Dense layer)
    assert last.output[0] == x
    last.output[0] = OUTPUT_NAME
    elem = _ELEM[engine.dtype]
    return helper.make_graph(
        g.nodes, "pybackprop.Sequential",
        [helper.make_tensor_value_info(INPUT_NAME, elem, ["batch", int(engine.input_dim or 0)])],
        [helper.make_tensor_value_info(OUTPUT_NAME, elem, ["batch", int(engine.output_dim)])],
        initializer=g.initializers)


def to_onnx(model: "Sequential", path: Any = None, *, opset: int = DEFAULT_OPSET) -> Any:
    """The ONNX model of ``model``'s inference: an ``onnx.ModelProto``, also written to ``path``.

    Parameters
    ----------
    model : Sequential
        A built model (float32 or float64).
    path : str or os.PathLike, optional
        Where to write the ``.onnx`` file: to a temporary file beside it, renamed
        over ``path`` once complete, so a failed write leaves nothing half-written
        (and an earlier file as it was).
    opset : int
        The ONNX opset (default 17, at least 17, at most the installed onnx's).

    Returns
    -------
    onnx.ModelProto
        Checked with ``onnx.checker.check_model(full_check=True)``; input
        ``"input"`` of shape ``(batch, input_dim)``, output ``"output"`` of shape
        ``(batch, n_outputs)``, both of the model's dtype; the model's
        ``get_config()`` as JSON in the metadata ``"pybackprop_config"``.

    Raises
    ------
    ValueError
        ``model`` is not built, ``opset`` is out of range, or ``path`` cannot
        be written (its directory missing, no permission, a directory); nothing
        is left behind.
    TypeError
        ``model`` is not a Sequential, or ``path`` not a path.
    OSError
        The write failed for another reason (e.g. a full disk): the message
        names the path; an earlier file there is kept, no temporary is left.

    Examples
    --------
    >>> import os, tempfile, onnx, pybackprop as bp
    >>> model = bp.Sequential([bp.Dense(4, activation="elu"), bp.Dense(1)], input_dim=2, dtype="float64")
    >>> proto = bp.export.to_onnx(model)
    >>> proto.opset_import[0].version, proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    (17, True)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.onnx")
    >>> _ = bp.export.to_onnx(model, path)
    >>> onnx.load(path).graph.input[0].name
    'input'
    """
    model = _check_model(model)
    opset = check_int("opset", opset, minimum=MIN_OPSET)
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        fail("opset", f"an opset in [{MIN_OPSET}, {newest}] (the installed onnx's newest is {newest})", opset)
    if path is not None and not isinstance(path, (str, bytes)) and not hasattr(path, "__fspath__"):
        fail("path", "a file path (str or os.PathLike)", path, TypeError)
    from . import __version__

    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(_graph(model, opset), opset_imports=opsets, producer_name="pybackprop",
                              producer_version=__version__, doc_string=f"pybackprop {model!r}",
                              ir_version=helper.find_min_ir_version_for(opsets))
    helper.set_model_props(proto, {"pybackprop_config": json.dumps(model.get_config())})
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        _write(proto, path)
    return proto


def _write(proto: Any, path: Any) -> None:
    data = proto.SerializeToString()
    try:
        write_atomically(path, lambda f: f.write(data))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as e:
        raise ValueError(f"path: expected a file path that can be written (in an existing, writable "
                         f"directory), got {path!s}: {e.strerror or e}") from e  # bad input: the path itself
    except OSError as e:  # the machine's trouble (a full disk): the path was fine
        raise type(e)(e.errno, f"to_onnx: cannot write the ONNX file {path!s}: {e.strerror or e}") from e

