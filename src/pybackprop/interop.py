"""PyTorch interop: a model as a ``torch.nn.Sequential`` with the same weights, and back.

:func:`to_torch` gives a ``torch.nn.Sequential`` of ``Linear`` layers (``weight`` is
pybackprop's ``W.T``, the dtype kept), activation modules with the same parameters
and ``Dropout``; :func:`from_torch` reads such a Sequential back into a
:class:`~pybackprop.Sequential`. A round trip keeps every weight bitwise and the outputs
equal (float64 to ~1e-12). The modules, both ways:

===============================  ====================================================
pybackprop                       torch.nn
===============================  ====================================================
``Dense(units, use_bias=b)``     ``Linear(fan_in, units, bias=b)``, ``weight = W.T``
identity                         nothing (``Identity`` is skipped when read)
relu                             ``ReLU``
leaky_relu(alpha)                ``LeakyReLU(negative_slope=alpha)``
noisy_relu(sigma)                ``ReLU`` (its inference form; a UserWarning says the
                                 training noise is not carried)
sigmoid, tanh                    ``Sigmoid``, ``Tanh``
elu(alpha)                       ``ELU(alpha)``
softplus                         ``Softplus(beta=1, threshold=20)``
gelu (tanh form)                 ``GELU(approximate="tanh")``
softmax (output layer)           ``Softmax(dim=-1)``
``Dropout(keep_prob=p)``         ``Dropout(p=1 - p)`` (inverted scaling, as torch's)
``BatchNorm(momentum, eps,       ``BatchNorm1d(features, eps, momentum, affine)``, the
affine)``                        running statistics copied
``LayerNorm(eps,                 ``LayerNorm(features, eps, elementwise_affine)``
elementwise_affine)``
===============================  ====================================================

Classic-scaling Dropout (scaled by p at inference) has no torch module and is a
``ValueError``; a ``mask="per_batch"`` Dropout becomes torch's per-element one (the
same at inference) with a UserWarning. A Dropout with a keep-probability schedule
gets its current value.

Needs ``torch`` (importing this module without it raises an ``ImportError`` saying so).

Examples
--------
>>> import numpy as np, torch, pybackprop as bp
>>> model = bp.Sequential([bp.Dense(8, activation="gelu"), bp.Dropout(0.5), bp.Dense(2)],
...                       input_dim=3, dtype="float64", seed=0)
>>> net = bp.interop.to_torch(model)
>>> net
Sequential(
  (0): Linear(in_features=3, out_features=8, bias=True)
  (1): GELU(approximate='tanh')
  (2): Dropout(p=0.5, inplace=False)
  (3): Linear(in_features=8, out_features=2, bias=True)
)
>>> x = np.ones((4, 3))
>>> bool(np.allclose(net(torch.from_numpy(x)).detach().numpy(), model.predict(x), rtol=1e-12, atol=1e-12))
True
>>> back = bp.interop.from_torch(net, input_dim=3)
>>> all(np.array_equal(a, b) for a, b in zip(back.get_weights(), model.get_weights()))
True
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as _exc:  # the module is skipped by the doctest run without torch, as the message says
    raise ImportError("pybackprop.interop (to_torch, from_torch) needs PyTorch: pip install torch "
                      f"(see https://pytorch.org); the import failed with: {_exc}",
                      name=_exc.name or "torch") from _exc

from . import activations as _activations
from ._validation import check_int, fail
from .layers import BatchNorm, Dense, Dropout, Layer, LayerNorm

if TYPE_CHECKING:  # pragma: no cover
    from .model import Sequential

__all__ = ["from_torch", "to_torch"]

_TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_NUMPY_DTYPES = {torch.float32: "float32", torch.float64: "float64"}
#: the torch modules that are activations, by class, and the names from_torch expects
_ACTIVATION_MODULES = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.ELU, nn.Softplus, nn.GELU, nn.Softmax)
_SUPPORTED = "Linear, Dropout, BatchNorm1d, LayerNorm, Identity, ReLU, LeakyReLU, Sigmoid, Tanh, ELU, Softplus(beta=1, threshold=20), " \
             "GELU(approximate='tanh') or Softmax(dim=-1)"


def _torch_activation(act: _activations.Activation, where: str) -> Optional[nn.Module]:
    name, params = act.name, act.params()
    if name == "identity":
        return None
    if name == "noisy_relu":
        warnings.warn(f"to_torch: {where} has activation noisy_relu: torch has no noisy ReLU, so it becomes "
                      f"nn.ReLU (its inference form; the training noise of sigma={params['sigma']} is not carried)",
                      UserWarning, stacklevel=3)
        return nn.ReLU()
    simple = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    if name in simple:
        return simple[name]()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope=params["alpha"])
    if name == "elu":
        return nn.ELU(alpha=params["alpha"])
    if name == "softplus":
        return nn.Softplus(beta=1.0, threshold=20.0)
    if name == "gelu":
        return nn.GELU(approximate="tanh")
    if name == "softmax":
        return nn.Softmax(dim=-1)
    raise ValueError(f"to_torch: {where} has activation {name!r}, which has no torch module")  # all have (tested)


def _torch_norm(layer: Any, features: int, dtype: Any) -> nn.Module:
    """``nn.BatchNorm1d`` (running statistics copied) or ``nn.LayerNorm`` with ``layer``'s parameters."""
    module: nn.Module
    if isinstance(layer, BatchNorm):
        bn = nn.BatchNorm1d(features, eps=layer.eps, momentum=layer.momentum, affine=layer.affine, dtype=dtype)
        assert bn.running_mean is not None and bn.running_var is not None  # track_running_stats=True
        with torch.no_grad():
            bn.running_mean.copy_(torch.from_numpy(np.array(layer.running_mean)))
            bn.running_var.copy_(torch.from_numpy(np.array(layer.running_var)))
        module = bn
    else:
        module = nn.LayerNorm(features, eps=layer.eps, elementwise_affine=layer.elementwise_affine, dtype=dtype)
    if layer.affine:
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(np.array(layer.weight)))
            module.bias.copy_(torch.from_numpy(np.array(layer.bias)))
    return module


def to_torch(model: "Sequential") -> nn.Sequential:
    """A ``torch.nn.Sequential`` computing what ``model.predict`` computes, with copies of its weights.

    Parameters
    ----------
    model : Sequential
        A built model, float32 or float64 (the modules get that dtype).

    Returns
    -------
    torch.nn.Sequential
        In evaluation mode (``.train()`` turns its Dropout on); its parameters
        are copies (training one does not change the other).

    Raises
    ------
    ValueError
        ``model`` is not built, or has a classic-scaling Dropout (torch's
        Dropout scales by 1/(1-p) while training and does nothing at
        inference; classic scales by the keep probability at inference).
    TypeError
        ``model`` is not a Sequential.

    Examples
    --------
    >>> import pybackprop as bp
    >>> m = bp.Sequential([bp.Dense(2, activation=bp.activations.LeakyReLU(alpha=0.2))], input_dim=3)
    >>> net = bp.interop.to_torch(m)
    >>> net[1], net[0].weight.dtype, tuple(net[0].weight.shape)
    (LeakyReLU(negative_slope=0.2), torch.float32, (2, 3))
    """
    from .model import Sequential

    if not isinstance(model, Sequential):
        fail("model", "a pybackprop.Sequential", model, TypeError)
    if not model.built:
        raise ValueError("model: expected a built model (give input_dim to Sequential, or call build(input_dim), "
                         "fit or predict first), got an unbuilt Sequential")
    engine = model.engine
    dtype = _TORCH_DTYPES[engine.dtype]
    keep_probs = iter(engine.keep_probs())
    modules: List[nn.Module] = []
    fan_in = int(engine.input_dim or 0)
    for i, layer in enumerate(model.layers):
        where = f"model.layers[{i}]"
        if isinstance(layer, Dropout):
            p = next(keep_probs)
            if layer.scaling == "classic":
                raise ValueError(f"to_torch: {where} is Dropout(scaling='classic'), which torch.nn.Dropout cannot "
                                 "express (torch scales kept units by 1/keep_prob while training and does nothing "
                                 "at inference; classic scaling multiplies by keep_prob at inference): use "
                                 "scaling='inverted' (the same expected output) or pybackprop.export.to_onnx")
            if layer.mask == "per_batch":
                warnings.warn(f"to_torch: {where} is Dropout(mask='per_batch'): torch.nn.Dropout draws a mask per "
                              "element (the same at inference, not while training)", UserWarning, stacklevel=2)
            modules.append(nn.Dropout(p=1.0 - p))
            continue
        if isinstance(layer, (BatchNorm, LayerNorm)):
            modules.append(_torch_norm(layer, fan_in, dtype))
            continue
        if not isinstance(layer, Dense):
            raise ValueError(f"to_torch: {where} ({type(layer).__name__}) has no torch module")
        linear = nn.Linear(fan_in, layer.units, bias=layer.use_bias, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.W.T)))
            if layer.b is not None:
                linear.bias.copy_(torch.from_numpy(np.array(layer.b)))
        modules.append(linear)
        act = _torch_activation(layer.activation, where)
        if act is not None:
            modules.append(act)
        fan_in = layer.units
    return nn.Sequential(*modules).eval()


def _activation_of(module: nn.Module, where: str, last: bool) -> _activations.Activation:
    """The pybackprop activation of a torch activation module (ValueError for a form pybackprop lacks)."""
    if isinstance(module, nn.ReLU):
        return _activations.ReLU()
    if isinstance(module, nn.Sigmoid):
        return _activations.Sigmoid()
    if isinstance(module, nn.Tanh):
        return _activations.Tanh()
    if isinstance(module, nn.LeakyReLU):
        if not module.negative_slope >= 0:
            raise ValueError(f"from_torch: {where} (LeakyReLU) has negative_slope={module.negative_slope}: "
                             "pybackprop's leaky_relu expects an alpha >= 0")
        return _activations.LeakyReLU(alpha=float(module.negative_slope))
    if isinstance(module, nn.ELU):
        if not module.alpha >= 0:
            raise ValueError(f"from_torch: {where} (ELU) has alpha={module.alpha}: pybackprop's elu expects alpha >= 0")
        return _activations.ELU(alpha=float(module.alpha))
    if isinstance(module, nn.Softplus):
        if module.beta != 1 or module.threshold != 20:
            raise ValueError(f"from_torch: {where} is Softplus(beta={module.beta}, threshold={module.threshold}): "
                             "pybackprop's softplus is Softplus(beta=1, threshold=20)")
        return _activations.Softplus()
    if isinstance(module, nn.GELU):
        if module.approximate != "tanh":
            raise ValueError(f"from_torch: {where} is GELU(approximate={module.approximate!r}), the erf form: "
                             "pybackprop's gelu is the tanh form, GELU(approximate='tanh')")
        return _activations.GELU()
    if isinstance(module, nn.Softmax):
        if module.dim not in (-1, 1):
            raise ValueError(f"from_torch: {where} is Softmax(dim={module.dim}): pybackprop's softmax is over the "
                             "features, Softmax(dim=-1) (or dim=1)")
        if not last:
            raise ValueError(f"from_torch: {where} (Softmax) is not the last module: pybackprop's softmax is "
                             "for the output layer only")
        return _activations.Softmax()
    raise AssertionError(type(module))  # only _ACTIVATION_MODULES come here


def _check_dtype(t: Any, where: str, dtype: Any) -> Any:
    """The model's dtype so far, checked against tensor ``t``'s."""
    if t.dtype not in _NUMPY_DTYPES:
        raise ValueError(f"from_torch: {where} has parameters of dtype {t.dtype}: expected torch.float32 or "
                         "torch.float64")
    if dtype is not None and t.dtype != dtype:
        raise ValueError(f"from_torch: {where} has parameters of dtype {t.dtype}, the modules before it {dtype}: "
                         "expected one dtype throughout")
    return t.dtype


def _norm_of(m: Any, where: str, width: int) -> Tuple[Layer, List[Any]]:
    """The pybackprop layer of an ``nn.BatchNorm1d`` / ``nn.LayerNorm`` and its arrays in get_weights order."""
    if isinstance(m, nn.BatchNorm1d):
        if m.num_features != width:
            raise ValueError(f"from_torch: {where} has num_features={m.num_features}, expected {width} (the width "
                             "before it)")
        if not m.track_running_stats or m.running_mean is None:
            raise ValueError(f"from_torch: {where} has track_running_stats=False (batch statistics at inference): "
                             "pybackprop's BatchNorm uses running statistics at inference")
        if m.momentum is None:
            raise ValueError(f"from_torch: {where} has momentum=None (a cumulative average): pybackprop's BatchNorm "
                             "takes a momentum in [0, 1]")
        if m.affine and m.bias is None:
            raise ValueError(f"from_torch: {where} has affine=True and bias=False: pybackprop's BatchNorm has "
                             "both γ and β or neither")
        layer: Layer = BatchNorm(momentum=float(m.momentum), eps=float(m.eps), affine=m.affine)
        arrays = ([m.weight, m.bias] if m.affine else []) + [m.running_mean, m.running_var]
        return layer, arrays
    if tuple(m.normalized_shape) != (width,):
        raise ValueError(f"from_torch: {where} has normalized_shape={tuple(m.normalized_shape)}, expected ({width},) "
                         "(pybackprop's LayerNorm normalises the features)")
    if m.elementwise_affine and m.bias is None:
        raise ValueError(f"from_torch: {where} has elementwise_affine=True and bias=False: pybackprop's LayerNorm "
                         "has both γ and β or neither")
    return LayerNorm(eps=float(m.eps), elementwise_affine=m.elementwise_affine), \
        ([m.weight, m.bias] if m.elementwise_affine else [])


def from_torch(module: Any, input_dim: int, *, seed: Optional[int] = None) -> "Sequential":
    """A :class:`~pybackprop.Sequential` with the layers and weights of a ``torch.nn.Sequential``.

    Parameters
    ----------
    module : torch.nn.Sequential
        Of ``Linear`` layers, each followed by at most one activation (``ReLU``,
        ``LeakyReLU``, ``Sigmoid``, ``Tanh``, ``ELU``, ``Softplus(beta=1,
        threshold=20)``, ``GELU(approximate="tanh")``, ``Softmax(dim=-1)`` last),
        ``BatchNorm1d`` (with running statistics and a momentum) or ``LayerNorm``
        over the features, then ``Dropout`` (not two in a row, not last; a
        normalisation comes before a Dropout) and ``Identity`` (skipped).
        Every parameter float32 or float64, all the same: the model's dtype.
    input_dim : int
        The number of input features (the first Linear's ``in_features``).
    seed : int, optional
        The new model's seed (its dropout masks and shuffling when trained).

    Returns
    -------
    Sequential
        Built, not compiled; ``W = weight.T`` and ``b = bias`` bitwise.

    Raises
    ------
    ValueError
        Naming the first module pybackprop cannot express, by its index and type
        (e.g. ``module[2] (BatchNorm1d)``), a Linear whose ``in_features`` is not
        the width before it, or parameters of another dtype.
    TypeError
        ``module`` is not a ``torch.nn.Sequential``.

    Examples
    --------
    >>> import torch, pybackprop as bp
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Dropout(0.2),
    ...                           torch.nn.Linear(8, 3), torch.nn.Softmax(dim=-1))
    >>> model = bp.interop.from_torch(net, input_dim=4, seed=0)
    >>> [(type(layer).__name__, getattr(layer, "units", None)) for layer in model.layers]
    [('Dense', 8), ('Dropout', None), ('Dense', 3)]
    >>> model.layers[1].keep_prob, model.layers[2].activation
    (0.8, Softmax())
    >>> bp.interop.from_torch(torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.SiLU()), input_dim=4)
    Traceback (most recent call last):
    ...
    ValueError: from_torch: module[1] (SiLU) is not supported: expected Linear, Dropout, BatchNorm1d, LayerNorm, Identity, ReLU, LeakyReLU, Sigmoid, Tanh, ELU, Softplus(beta=1, threshold=20), GELU(approximate='tanh') or Softmax(dim=-1)
    """
    from .model import Sequential

    if not isinstance(module, nn.Sequential):
        fail("module", "a torch.nn.Sequential", module, TypeError)
    input_dim = check_int("input_dim", input_dim, minimum=1)
    children = list(module)
    last_index = max((k for k, m in enumerate(children) if not isinstance(m, nn.Identity)), default=-1)
    entries: List[Any] = []  # per pybackprop layer: a Dense's spec (a dict) or a Dropout
    weights: List[np.ndarray] = []
    dtype: Optional[torch.dtype] = None
    width = input_dim
    open_dense: Optional[Dict[str, Any]] = None  # the Dense layer's spec an activation may still join
    pending_dropout = pending_norm = False  # a Dropout / normalisation waiting for its Linear
    for k, m in enumerate(children):
        where = f"module[{k}] ({type(m).__name__})"
        if isinstance(m, nn.Identity):
            continue
        if isinstance(m, nn.Linear):
            if m.in_features != width:
                raise ValueError(f"from_torch: {where} has in_features={m.in_features}, expected {width} (the "
                                 f"{'input_dim' if not weights else 'out_features of the Linear before it'})")
            for p in [m.weight] + ([m.bias] if m.bias is not None else []):
                dtype = _check_dtype(p, where, dtype)
            weights.append(m.weight.detach().cpu().numpy().T)
            if m.bias is not None:
                weights.append(m.bias.detach().cpu().numpy())
            open_dense = {"units": m.out_features, "use_bias": m.bias is not None, "activation": None}
            entries.append(open_dense)
            width, pending_dropout, pending_norm = m.out_features, False, False
            continue
        if isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)):
            if pending_norm:
                raise ValueError(f"from_torch: {where} follows another normalisation: pybackprop needs a Linear "
                                 "between two")
            if pending_dropout:
                raise ValueError(f"from_torch: {where} follows a Dropout: pybackprop normalises before a Dropout "
                                 "(Linear, activation, norm, Dropout, Linear)")
            if k == last_index:
                raise ValueError(f"from_torch: {where} is the last module: pybackprop's output is a Dense layer")
            layer, arrays = _norm_of(m, where, width)
            for t in arrays:
                dtype = _check_dtype(t, where, dtype)
            weights.extend(t.detach().cpu().numpy() for t in arrays)
            entries.append(layer)
            open_dense, pending_norm = None, True
            continue
        if isinstance(m, _ACTIVATION_MODULES):
            if open_dense is None or open_dense["activation"] is not None:
                follows = "another activation" if open_dense is not None else \
                    "a Dropout" if pending_dropout else "a normalisation" if pending_norm else "no Linear"
                raise ValueError(f"from_torch: {where} follows {follows}: pybackprop's activations belong to a "
                                 "Dense layer, so each must come right after a Linear")
            open_dense["activation"] = _activation_of(m, where, last=k == last_index)
            continue
        if isinstance(m, nn.Dropout) and type(m) is nn.Dropout:
            if pending_dropout:
                raise ValueError(f"from_torch: {where} follows another Dropout: pybackprop needs a Linear between "
                                 "two Dropout layers")
            if k == last_index:
                raise ValueError(f"from_torch: {where} is the last module: pybackprop's output is a Dense layer "
                                 "(drop the final Dropout: it does nothing at inference)")
            if not 0.0 <= m.p < 1.0:
                raise ValueError(f"from_torch: {where} has p={m.p}: expected a drop probability in [0, 1)")
            entries.append(Dropout(rate=float(m.p)))
            pending_norm = False
            open_dense, pending_dropout = None, True
            continue
        raise ValueError(f"from_torch: {where} is not supported: expected {_SUPPORTED}")
    if not weights:
        raise ValueError("from_torch: module has no Linear layer: expected a Sequential of Linear layers and "
                         "activations")
    layers: List[Layer] = [e if isinstance(e, Layer) else
                           Dense(e["units"], activation=e["activation"] or "identity", use_bias=e["use_bias"],
                                 init="zeros")  # the weights are set below, bitwise
                           for e in entries]
    assert dtype is not None
    model = Sequential(layers, input_dim=input_dim, dtype=_NUMPY_DTYPES[dtype], seed=seed)
    model.set_weights(weights)
    return model
