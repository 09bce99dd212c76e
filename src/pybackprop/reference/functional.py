"""One small function per concept: Dense, Dropout, BatchNorm and LayerNorm layers, activations, losses,
the optimisers (SGD, Adam, RMSprop, Adagrad, gradient clipping) and schedules.

Read it like micrograd: every forward sits next to its local derivative, and
the chain rule is the only thing that joins them (see ``network.py``).

Shapes: B = batch size, IN/OUT = fan-in/fan-out of a layer, K = output units.
All functions keep the dtype of their inputs (float32 stays float32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


def _exp(x: np.ndarray) -> np.ndarray:
    """``exp`` that flushes tiny results to 0 quietly (an underflow to 0 is the right answer).

    Callers never pass large positive arguments, so this cannot overflow.
    """
    with np.errstate(under="ignore"):
        return np.exp(x)


# --------------------------------------------------------------------------
# BatchNorm (torch.nn.BatchNorm1d) and LayerNorm (torch.nn.LayerNorm) over F features:
#   x_hat = (x - mu) / sqrt(var + eps),   y = gamma * x_hat + beta
# BatchNorm: mu, var (biased) per feature over the batch (axis 0) while training,
# the running estimates at inference. LayerNorm: per row over the features (axis 1).
# --------------------------------------------------------------------------

def batchnorm_forward(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None, eps: float,
                      mean: np.ndarray | None = None, var: np.ndarray | None = None
                      ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Normalise each feature over the batch (training) or with given ``mean``/``var`` (inference).

    Parameters
    ----------
    x : (B, F) array
    gamma, beta : (F,) arrays or None (no affine)
    mean, var : (F,) arrays or None
        The running estimates at inference; None: the batch's (training).

    Returns
    -------
    y : (B, F) array
    cache : dict
        ``"mean"``, ``"var"`` (F,), ``"inv_std"`` = 1/sqrt(var + eps) and ``"x_hat"`` (B, F).

    Examples
    --------
    >>> y, c = batchnorm_forward(np.array([[1.0], [3.0]]), None, None, 0.0)
    >>> y.ravel(), c["mean"], c["var"]
    (array([-1.,  1.]), array([2.]), array([1.]))
    """
    if mean is None or var is None:
        mean = x.mean(axis=0)                         # (F,)
        var = ((x - mean) ** 2).mean(axis=0)          # (F,) biased
    inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
    x_hat = (x - mean) * inv_std
    y = x_hat if gamma is None else gamma * x_hat + beta
    return y, {"mean": mean, "var": var, "inv_std": inv_std, "x_hat": x_hat}


def batchnorm_backward(dy: np.ndarray, cache: dict[str, np.ndarray], gamma: np.ndarray | None,
                       training: bool = True) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """dL/dx, dL/dgamma, dL/dbeta from dL/dy (B, F).

    With dx_hat = dy * gamma: ``dgamma = sum_rows(dy * x_hat)``, ``dbeta = sum_rows(dy)``, and
    ``dx = (dx_hat - mean_rows(dx_hat) - x_hat * mean_rows(dx_hat * x_hat)) * inv_std``
    (mu and var depend on every row of the batch); at inference (``training=False``)
    the statistics are constants: ``dx = dx_hat * inv_std``.

    Examples
    --------
    >>> y, c = batchnorm_forward(np.array([[1.0], [3.0]]), None, None, 0.0)
    >>> batchnorm_backward(np.ones((2, 1)), c, None)[0].ravel()   # a shift of y changes nothing
    array([0., 0.])
    """
    x_hat, inv_std = cache["x_hat"], cache["inv_std"]
    dgamma = None if gamma is None else (dy * x_hat).sum(axis=0)
    dbeta = None if gamma is None else dy.sum(axis=0)
    dx_hat = dy if gamma is None else dy * gamma
    if not training:
        return dx_hat * inv_std, dgamma, dbeta
    dx = (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0)) * inv_std
    return dx, dgamma, dbeta


def batchnorm_running(running_mean: np.ndarray, running_var: np.ndarray, cache: dict[str, np.ndarray],
                      rows: int, momentum: float) -> None:
    """The running estimates after a training batch, in place (torch's momentum: the new batch's weight).

    ``running_var`` moves towards the unbiased variance ``var * rows / (rows - 1)``.

    Examples
    --------
    >>> rm, rv = np.zeros(1), np.ones(1)
    >>> _, c = batchnorm_forward(np.array([[1.0], [3.0]]), None, None, 0.0)
    >>> batchnorm_running(rm, rv, c, 2, 0.1); rm, rv
    (array([0.2]), array([1.1]))
    """
    running_mean[...] = (1 - momentum) * running_mean + momentum * cache["mean"]
    running_var[...] = (1 - momentum) * running_var + momentum * (cache["var"] * (rows / (rows - 1)))


def layernorm_forward(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None, eps: float
                      ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Normalise each row over its F features; ``cache`` as batchnorm_forward's, with (B,) statistics.

    Examples
    --------
    >>> layernorm_forward(np.array([[1.0, 3.0]]), None, None, 0.0)[0]
    array([[-1.,  1.]])
    """
    mean = x.mean(axis=1)                                # (B,)
    var = ((x - mean[:, None]) ** 2).mean(axis=1)        # (B,) biased
    inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
    x_hat = (x - mean[:, None]) * inv_std[:, None]
    y = x_hat if gamma is None else gamma * x_hat + beta
    return y, {"mean": mean, "var": var, "inv_std": inv_std, "x_hat": x_hat}


def layernorm_backward(dy: np.ndarray, cache: dict[str, np.ndarray], gamma: np.ndarray | None
                       ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """dL/dx, dL/dgamma, dL/dbeta: batchnorm_backward's formula with the means over each row.

    Examples
    --------
    >>> y, c = layernorm_forward(np.array([[1.0, 3.0]]), None, None, 0.0)
    >>> layernorm_backward(np.ones((1, 2)), c, None)[0]
    array([[0., 0.]])
    """
    x_hat, inv_std = cache["x_hat"], cache["inv_std"][:, None]
    dgamma = None if gamma is None else (dy * x_hat).sum(axis=0)
    dbeta = None if gamma is None else dy.sum(axis=0)
    dx_hat = dy if gamma is None else dy * gamma
    dx = (dx_hat - dx_hat.mean(axis=1, keepdims=True)
          - x_hat * (dx_hat * x_hat).mean(axis=1, keepdims=True)) * inv_std
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------
# Dense layer:  z = a_prev @ W + b
# --------------------------------------------------------------------------

def dense_forward(a_prev: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Affine map of a Dense layer.

    Parameters
    ----------
    a_prev : (B, IN) array
        Activations of the previous layer (or the inputs X).
    W : (IN, OUT) array
    b : (OUT,) array or None
        None for a layer without bias.

    Returns
    -------
    z : (B, OUT) array

    Examples
    --------
    >>> dense_forward(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4)).shape
    (2, 4)
    """
    z = a_prev @ W  # (B, IN) @ (IN, OUT) -> (B, OUT)
    if b is not None:
        z = z + b  # (OUT,) broadcast over the B rows
    return z


def dense_backward(dz: np.ndarray, a_prev: np.ndarray, W: np.ndarray,
                   use_bias: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Local derivatives of ``z = a_prev @ W + b``, given ``dz = dL/dz``.

    Parameters
    ----------
    dz : (B, OUT) array
    a_prev : (B, IN) array
    W : (IN, OUT) array
    use_bias : bool

    Returns
    -------
    dW : (IN, OUT) array
        ``a_prev.T @ dz``: each weight sees its input times the error of its unit.
    db : (OUT,) array or None
        ``dz.sum(axis=0)``: a bias sees the error of its unit, summed over the batch.
    da_prev : (B, IN) array
        ``dz @ W.T``: the error sent back to the previous layer.

    Examples
    --------
    >>> dW, db, da = dense_backward(np.ones((2, 4)), np.ones((2, 3)), np.ones((3, 4)), True)
    >>> dW.shape, db.shape, da.shape
    ((3, 4), (4,), (2, 3))
    """
    dW = a_prev.T @ dz  # (IN, B) @ (B, OUT) -> (IN, OUT)
    db = dz.sum(axis=0) if use_bias else None  # (OUT,)
    da_prev = dz @ W.T  # (B, OUT) @ (OUT, IN) -> (B, IN)
    return dW, db, da_prev


# --------------------------------------------------------------------------
# Dropout with keep probability p:  d = a * mask * s
# --------------------------------------------------------------------------

def dropout_scales(keep_prob: float, scaling: str) -> tuple[float, float]:
    """The factors ``(s_train, s_inference)`` of a Dropout with keep probability p.

    ``"inverted"``: kept units are scaled by 1/p while training, nothing at
    inference. ``"classic"``: nothing while training, everything multiplied by p
    at inference. Either way the expected training output equals the inference
    output: E[mask * s_train] = p * s_train = s_inference.

    Examples
    --------
    >>> dropout_scales(0.5, "inverted"), dropout_scales(0.5, "classic")
    ((2.0, 1.0), (1.0, 0.5))
    """
    if scaling == "inverted":
        return 1.0 / keep_prob, 1.0
    return 1.0, keep_prob


def dropout_forward(a: np.ndarray, mask: np.ndarray | None, scale: float) -> np.ndarray:
    """``d = a * mask * scale`` (training), or ``d = a * scale`` (inference: mask None).

    Parameters
    ----------
    a : (B, F) array
        Activations of the previous layer (or the inputs X).
    mask : (B, F) array of 0 (dropped) and 1 (kept), or None
    scale : float
        ``s_train`` or ``s_inference`` of ``dropout_scales``.

    Examples
    --------
    >>> dropout_forward(np.array([[1.0, 2.0]]), np.array([[0.0, 1.0]]), 2.0).tolist()
    [[0.0, 4.0]]
    """
    return a * scale if mask is None else a * mask * scale


def dropout_backward(dd: np.ndarray, mask: np.ndarray | None, scale: float) -> np.ndarray:
    """``dL/da = dL/dd * mask * scale``: a dropped unit passes no error back.

    Examples
    --------
    >>> dropout_backward(np.array([[1.0, 1.0]]), np.array([[0.0, 1.0]]), 2.0).tolist()
    [[0.0, 2.0]]
    """
    return dd * scale if mask is None else dd * (mask * scale)


# --------------------------------------------------------------------------
# Activations: a = f(z), and dz = df(z, a, dA) = dA * f'(z)
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Activation:
    """An activation: forward ``f(z, **params)`` and backward ``df(z, a, dA, **params)``.

    ``df`` returns ``dL/dz`` given ``dA = dL/da`` (and ``a = f(z)``, which some
    derivatives reuse). ``params`` holds the parameters and their defaults.

    Examples
    --------
    >>> act = ACTIVATIONS["tanh"]
    >>> z = np.array([[0.0, 1.0]]); a = act.f(z)
    >>> act.df(z, a, np.ones_like(z)).round(4).tolist()
    [[1.0, 0.42]]
    """

    name: str
    f: Callable[..., np.ndarray]
    df: Callable[..., np.ndarray]
    params: dict[str, float] = field(default_factory=dict)


def identity(z, **_):
    """z (alias 'linear')."""
    return z


def identity_backward(z, a, dA, **_):
    """dz = dA (the slope is 1)."""
    return dA


def relu(z, **_):
    """max(z, 0)."""
    return np.maximum(z, 0)


def relu_backward(z, a, dA, **_):
    """dz = dA where z > 0, else 0."""
    return dA * (z > 0)  # relu'(0) = 0


def leaky_relu(z, alpha=0.01):
    """z if z > 0 else alpha z."""
    return np.where(z > 0, z, alpha * z)


def leaky_relu_backward(z, a, dA, alpha=0.01):
    """dz = dA if z > 0 else alpha dA."""
    return np.where(z > 0, dA, alpha * dA)  # slope alpha at 0


def noisy_relu(z, sigma=0.1):
    """relu of z (z already holds the noise while training)."""
    # The noise z <- z + sigma * N(0, 1) is added by the layer *before* this call
    # while training (it needs the model's RNG); here it is plain relu.
    return relu(z)


def noisy_relu_backward(z, a, dA, sigma=0.1):
    """relu' of the noisy z."""
    return relu_backward(z, a, dA)  # relu' of the (noisy) z


def sigmoid(z, **_):
    """1 / (1 + exp(-z)), computed without overflow."""
    # 1/(1+exp(-z)) for z >= 0 and exp(z)/(1+exp(z)) for z < 0: exp never sees a
    # positive argument, so it cannot overflow.
    e = _exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_backward(z, a, dA, **_):
    """dz = dA s (1 - s), with s = a."""
    return dA * a * (1 - a)  # s' = s (1 - s)


def tanh(z, **_):
    """tanh(z)."""
    return np.tanh(z)


def tanh_backward(z, a, dA, **_):
    """dz = dA (1 - t^2), with t = a."""
    return dA * (1 - a * a)  # tanh' = 1 - t^2


def elu(z, alpha=1.0):
    """z if z > 0 else alpha (exp(z) - 1), the latter as expm1 for accuracy near 0."""
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))


def elu_backward(z, a, dA, alpha=1.0):
    """dz = dA if z > 0 else dA alpha exp(z)."""
    return np.where(z > 0, dA, dA * (alpha * _exp(np.minimum(z, 0))))


SOFTPLUS_THRESHOLD = 20  # above it softplus(z) = z to working precision


def softplus(z, **_):
    """log(1 + exp(z)), and z itself above the threshold 20."""
    return np.where(z > SOFTPLUS_THRESHOLD, z,
                    np.log1p(_exp(np.minimum(z, SOFTPLUS_THRESHOLD))))


def softplus_backward(z, a, dA, **_):
    """dz = dA sigmoid(z), and dA above the threshold 20."""
    return np.where(z > SOFTPLUS_THRESHOLD, dA, dA * sigmoid(z))  # softplus' = sigmoid


GELU_C = math.sqrt(2 / math.pi)
GELU_K = 0.044715


def gelu(z, **_):
    """0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))."""
    # tanh form: 0.5 z (1 + tanh(u)), u = sqrt(2/pi) (z + 0.044715 z^3)
    t = np.tanh(GELU_C * (z + GELU_K * z ** 3))
    return 0.5 * z * (1 + t)


def gelu_backward(z, a, dA, **_):
    """dz = dA (0.5 (1 + t) + 0.5 z (1 - t^2) du/dz), t = tanh(u)."""
    t = np.tanh(GELU_C * (z + GELU_K * z ** 3))
    du_dz = GELU_C * (1 + 3 * GELU_K * z ** 2)
    return dA * (0.5 * (1 + t) + 0.5 * z * (1 - t * t) * du_dz)


def softmax(z, **_):
    """exp(z) / rowsum(exp(z)), row by row, the row max subtracted first."""
    e = _exp(z - z.max(axis=1, keepdims=True))  # (B, K); subtract the row max first
    return e / e.sum(axis=1, keepdims=True)


def softmax_backward(z, a, dA, **_):
    """dz = s * (dA - rowsum(dA * s)), with s = a."""
    # Each row s = softmax(z) has Jacobian diag(s) - s s^T, so
    # dz = (diag(s) - s s^T) dA = s * (dA - <dA, s>), row by row.
    return a * (dA - (dA * a).sum(axis=1, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {
    "identity": Activation("identity", identity, identity_backward),
    "relu": Activation("relu", relu, relu_backward),
    "leaky_relu": Activation("leaky_relu", leaky_relu, leaky_relu_backward, {"alpha": 0.01}),
    "noisy_relu": Activation("noisy_relu", noisy_relu, noisy_relu_backward, {"sigma": 0.1}),
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_backward),
    "tanh": Activation("tanh", tanh, tanh_backward),
    "elu": Activation("elu", elu, elu_backward, {"alpha": 1.0}),
    "softplus": Activation("softplus", softplus, softplus_backward),
    "gelu": Activation("gelu", gelu, gelu_backward),
    "softmax": Activation("softmax", softmax, softmax_backward),
}
ACTIVATIONS["linear"] = ACTIVATIONS["identity"]  # alias


# --------------------------------------------------------------------------
# Losses: L = loss(out, y) (mean over the batch), and grad(out, y) = dL/d(out)
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Loss:
    """A loss: ``loss(out, y)`` (a scalar) and ``grad(out, y)`` (same shape as ``out``).

    When ``fused_with`` names an activation ("sigmoid" or "softmax"), the output
    layer must use it and ``out`` is that layer's *logits* z: the loss includes
    the activation and ``grad`` is ``dL/dz`` directly, which is both simpler and
    numerically safer than going through ``dL/da`` and ``f'(z)``.

    Examples
    --------
    >>> mse = LOSSES["mse"]
    >>> float(mse.loss(np.array([[1.0, 3.0]]), np.array([[0.0, 0.0]])))
    5.0
    """

    name: str
    loss: Callable[[np.ndarray, np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray, np.ndarray], np.ndarray]
    fused_with: str | None = None


def mse_loss(y_hat, y):
    """mean over all N K elements of (y_hat - y)^2."""
    return np.mean((y_hat - y) ** 2)


def mse_grad(y_hat, y):
    """2 (y_hat - y) / (N K)."""
    return 2 * (y_hat - y) / y_hat.size  # (B, K); size = N K


def mae_loss(y_hat, y):
    """mean of |y_hat - y|."""
    return np.mean(np.abs(y_hat - y))


def mae_grad(y_hat, y):
    """sign(y_hat - y) / (N K)."""
    return np.sign(y_hat - y) / y_hat.size  # sign(0) = 0


def huber_loss(y_hat, y):
    """mean of 0.5 d^2 if |d| < 1 else |d| - 0.5, d = y_hat - y."""
    d = y_hat - y
    return np.mean(np.where(np.abs(d) < 1, 0.5 * d * d, np.abs(d) - 0.5))  # delta = 1


def huber_grad(y_hat, y):
    """clip(d, -1, 1) / (N K)."""
    return np.clip(y_hat - y, -1, 1) / y_hat.size


def bce_loss(z, y):
    """binary cross-entropy of sigmoid(z) against y, on the logits z."""
    # -[y log s(z) + (1-y) log(1-s(z))] rewritten on the logits so that no
    # exp or log can overflow: max(z, 0) - z y + log(1 + exp(-|z|)).
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(_exp(-np.abs(z))))


def bce_grad(z, y):
    """dL/dz = (sigmoid(z) - y) / (N K)."""
    return (sigmoid(z) - y) / z.size  # dL/dz, sigmoid folded in


def log_softmax(z):
    """z - max - log(rowsum(exp(z - max))), row by row."""
    shifted = z - z.max(axis=1, keepdims=True)  # (B, K)
    return shifted - np.log(_exp(shifted).sum(axis=1, keepdims=True))


def cce_loss(z, y):
    """mean over the N rows of -sum_k y_k log softmax(z)_k."""
    return np.mean(-(y * log_softmax(z)).sum(axis=1))  # mean over the B rows


def cce_grad(z, y):
    """dL/dz = (softmax(z) - y) / N."""
    # dL/dz of -sum_k y_k log softmax(z)_k is softmax(z) * sum_k y_k - y,
    # which is softmax(z) - y for targets whose rows sum to 1 (one-hot).
    return (softmax(z) - y) / z.shape[0]


LOSSES: dict[str, Loss] = {
    "mse": Loss("mse", mse_loss, mse_grad),
    "mae": Loss("mae", mae_loss, mae_grad),
    "huber": Loss("huber", huber_loss, huber_grad),
    "binary_crossentropy": Loss("binary_crossentropy", bce_loss, bce_grad, "sigmoid"),
    "categorical_crossentropy": Loss("categorical_crossentropy", cce_loss, cce_grad, "softmax"),
}


# --------------------------------------------------------------------------
# Optimisers, as torch.optim: each updates every parameter in place.
# params, grads and the state buffers are lists of arrays, in the same order;
# t is the optimiser's own step number (1 for its first update).
# --------------------------------------------------------------------------

def clip_grad_norm(grads: list[np.ndarray], max_norm: float) -> list[np.ndarray]:
    """Gradients scaled so that their global L2 norm is at most ``max_norm`` (new arrays).

    As ``torch.nn.utils.clip_grad_norm_``::

        total = sqrt(sum over every gradient element of g^2)     (in float64)
        coef = max_norm / (total + 1e-6)
        if coef < 1: every g = g * coef

    Examples
    --------
    >>> g = clip_grad_norm([np.array([3.0]), np.array([4.0])], max_norm=1.0)   # norm 5 -> 1
    >>> [round(float(x[0]), 6) for x in g]
    [0.6, 0.8]
    """
    total = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
    coef = max_norm / (total + 1e-6)
    if coef >= 1:
        return grads
    return [g * coef for g in grads]


def sgd_update(params: list[np.ndarray], grads: list[np.ndarray], bufs: list[np.ndarray],
               lr: float, momentum: float = 0.0, nesterov: bool = False,
               weight_decay: float = 0.0) -> None:
    """One SGD step over every parameter, in place (``params`` and ``bufs`` change).

    For each parameter p with gradient grad and momentum buffer buf (zeros at first)::

        g = grad + weight_decay * p
        buf = momentum * buf + g                      (if momentum != 0)
        g = g + momentum * buf if nesterov else buf   (if momentum != 0)
        p = p - lr * g

    Examples
    --------
    >>> p, b = [np.array([1.0])], [np.zeros(1)]
    >>> sgd_update(p, [np.array([0.5])], b, lr=0.1, momentum=0.9)
    >>> p[0].tolist(), b[0].tolist()
    ([0.95], [0.5])
    """
    for p, grad, buf in zip(params, grads, bufs):
        g = grad + weight_decay * p if weight_decay != 0 else grad
        if momentum != 0:
            buf *= momentum
            buf += g  # buf = momentum * buf + g
            g = g + momentum * buf if nesterov else buf
        p -= lr * g


def adam_update(params: list[np.ndarray], grads: list[np.ndarray], m: list[np.ndarray],
                v: list[np.ndarray], t: int, lr: float, beta1: float = 0.9, beta2: float = 0.999,
                eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False,
                v_max: list[np.ndarray] | None = None) -> None:
    """One Adam or AdamW step (torch.optim.Adam / AdamW), in place; ``t`` counts from 1.

    For each parameter p with first and second moments m, v (zeros at first)::

        Adam:   g = grad + weight_decay * p               (L2 decay in the gradient)
        AdamW:  p = p * (1 - lr * weight_decay); g = grad (decoupled decay, first)
        m = beta1 * m + (1 - beta1) * g                 (mean of g)
        v = beta2 * v + (1 - beta2) * g^2               (mean of g^2)
        amsgrad (v_max given): v_max = max(v_max, v), used in place of v below
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    The factors 1 - beta^t undo the bias of moments that start at zero.

    Examples
    --------
    >>> p, m, v = [np.array([1.0])], [np.zeros(1)], [np.zeros(1)]
    >>> adam_update(p, [np.array([0.5])], m, v, t=1, lr=0.1)
    >>> round(float(p[0][0]), 6)    # the first step moves by about lr
    0.9
    >>> p, m, v = [np.array([1.0])], [np.zeros(1)], [np.zeros(1)]
    >>> adam_update(p, [np.array([0.0])], m, v, t=1, lr=0.1, weight_decay=0.5, decoupled=True)
    >>> float(p[0][0])              # AdamW: a zero gradient still decays, by 1 - lr * wd
    0.95
    """
    step_size = lr / (1 - beta1 ** t)  # bias correction of m
    bc2_sqrt = math.sqrt(1 - beta2 ** t)  # bias correction of v, under the square root
    maxima = v_max if v_max is not None else [None] * len(params)
    for p, grad, m_, v_, vmax in zip(params, grads, m, v, maxima):
        if decoupled:
            p *= p.dtype.type(1 - lr * weight_decay)
            g = grad
        else:
            g = grad + weight_decay * p if weight_decay != 0 else grad
        m_ *= beta1
        m_ += (1 - beta1) * g
        v_ *= beta2
        v_ += (1 - beta2) * g * g
        second = v_
        if vmax is not None:
            np.maximum(vmax, v_, out=vmax)
            second = vmax
        p -= step_size * m_ / (np.sqrt(second) / bc2_sqrt + eps)


def rmsprop_update(params: list[np.ndarray], grads: list[np.ndarray], square_avg: list[np.ndarray],
                   bufs: list[np.ndarray], lr: float, alpha: float = 0.99, eps: float = 1e-8,
                   momentum: float = 0.0, weight_decay: float = 0.0) -> None:
    """One RMSprop step (torch.optim.RMSprop, centered off), in place.

    For each parameter p with running mean of squares s and momentum buffer buf
    (both zeros at first)::

        g = grad + weight_decay * p
        s = alpha * s + (1 - alpha) * g^2
        d = g / (sqrt(s) + eps)                          (g in units of its running RMS)
        momentum > 0:  buf = momentum * buf + d;  p = p - lr * buf
        else:          p = p - lr * d

    Examples
    --------
    >>> p, s, b = [np.array([1.0])], [np.zeros(1)], [np.zeros(1)]
    >>> rmsprop_update(p, [np.array([0.5])], s, b, lr=0.01, alpha=0.75)
    >>> round(float(p[0][0]), 6)    # d = 0.5 / sqrt(0.25 * 0.25) = 2
    0.98
    """
    for p, grad, s, buf in zip(params, grads, square_avg, bufs):
        g = grad + weight_decay * p if weight_decay != 0 else grad
        s *= alpha
        s += (1 - alpha) * g * g
        d = g / (np.sqrt(s) + eps)
        if momentum > 0:
            buf *= momentum
            buf += d
            p -= lr * buf
        else:
            p -= lr * d


def adagrad_update(params: list[np.ndarray], grads: list[np.ndarray], sums: list[np.ndarray],
                   t: int, lr: float, lr_decay: float = 0.0, eps: float = 1e-10,
                   weight_decay: float = 0.0) -> None:
    """One Adagrad step (torch.optim.Adagrad), in place; ``t`` counts from 1.

    For each parameter p with sum of squares ``sum`` (initial_accumulator_value at first)::

        g = grad + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        sum = sum + g^2
        p = p - clr * g / (sqrt(sum) + eps)

    Examples
    --------
    >>> p, s = [np.array([1.0])], [np.zeros(1)]
    >>> adagrad_update(p, [np.array([0.5])], s, t=1, lr=0.1)
    >>> round(float(p[0][0]), 6)    # g / sqrt(g^2) = 1 on the first step
    0.9
    """
    clr = lr / (1 + (t - 1) * lr_decay)
    for p, grad, s in zip(params, grads, sums):
        g = grad + weight_decay * p if weight_decay != 0 else grad
        s += g * g
        p -= clr * g / (np.sqrt(s) + eps)


# --------------------------------------------------------------------------
# Schedules: a value (lr) that changes with the training time t
# --------------------------------------------------------------------------

def schedule_value(spec: float | dict, t: int) -> float:
    """The value at time t of a number (constant) or of a schedule config dict.

    The dicts are those of ``pybackprop.schedules`` (``get_config()``), with the
    same formulas, so both engines compute the same floats:

    ===========  ==================================================
    Constant     value
    TimeBased    initial / (1 + decay t)
    Exponential  initial rate^t
    Step         initial factor^(t // every)
    Linear       start + (end - start) min(t, steps) / steps
    Cosine       torch's CosineAnnealingLR, stepped recursively from initial
                 (see ``cosine_value``)
    Warmup       base (start_factor + (1 - start_factor) t / steps) for t < steps,
                 base = schedule(0); then schedule(t - steps)
    OneCycle     torch's OneCycleLR (see ``one_cycle_value``)
    ===========  ==================================================

    What t counts (epochs or steps) is the dict's "unit"; the caller picks it
    (see ``Network._now``).

    Examples
    --------
    >>> schedule_value({"class_name": "TimeBased", "initial": 0.1, "decay": 1.0}, 1)
    0.05
    >>> schedule_value(0.01, 7)
    0.01
    """
    if not isinstance(spec, dict):
        return float(spec)
    kind = spec.get("class_name")
    if kind == "Constant":
        return spec["value"]
    if kind == "TimeBased":
        return spec["initial"] / (1.0 + spec["decay"] * t)
    if kind == "Exponential":
        return spec["initial"] * spec["rate"] ** t
    if kind == "Step":
        return spec["initial"] * spec["factor"] ** (t // spec["every"])
    if kind == "Linear":
        return spec["start"] + (spec["end"] - spec["start"]) * min(t, spec["steps"]) / spec["steps"]
    if kind == "Cosine":
        return cosine_value(spec["initial"], spec["T_max"], spec["eta_min"], t)
    if kind == "Warmup":
        steps, start = spec["steps"], spec["start_factor"]
        if t >= steps:
            return schedule_value(spec["schedule"], t - steps)
        return schedule_value(spec["schedule"], 0) * (start + (1.0 - start) * t / steps)
    if kind == "OneCycle":
        return one_cycle_value(spec, t)
    raise ValueError(f"schedule: expected a number or a config dict of Constant, TimeBased, "
                     f"Exponential, Step, Linear, Cosine, Warmup or OneCycle, got {spec!r}")


def cosine_value(initial: float, T_max: int, eta_min: float, t: int) -> float:
    """Cosine annealing at time t as torch's CosineAnnealingLR steps it: from lr_0 = initial,

        lr_k = (1 + cos(pi k / T)) / (1 + cos(pi (k - 1) / T)) (lr_{k-1} - eta_min) + eta_min

    (where that denominator is 0, k - 1 - T a multiple of 2T: lr_k = lr_{k-1} +
    (initial - eta_min)(1 - cos(pi / T)) / 2). In exact arithmetic this is the closed form
    eta_min + (initial - eta_min)(1 + cos(pi t / T)) / 2, a cosine of period 2T.

    Examples
    --------
    >>> cosine_value(1.0, 2, 0.0, 1), cosine_value(1.0, 2, 0.0, 2), cosine_value(1.0, 2, 0.0, 4)
    (0.5, 0.0, 1.0)
    """
    lr = initial
    for k in range(1, t + 1):
        if (k - 1 - T_max) % (2 * T_max) == 0:
            lr = lr + (initial - eta_min) * (1 - math.cos(math.pi / T_max)) / 2
        else:
            lr = (1 + math.cos(math.pi * k / T_max)) / (1 + math.cos(math.pi * (k - 1) / T_max)) \
                * (lr - eta_min) + eta_min
    return lr


def cycles_momentum(spec: Any) -> bool:
    """Whether a schedule (config dict or number) is a OneCycle that cycles the momentum
    (``cycle_momentum``, True by default as torch's).

    >>> cycles_momentum({"class_name": "OneCycle", "cycle_momentum": False}), cycles_momentum(0.1)
    (False, False)
    """
    return isinstance(spec, dict) and spec.get("class_name") == "OneCycle" and bool(spec.get("cycle_momentum", True))


def one_cycle_value(spec: dict, t: int) -> float:
    """torch's OneCycleLR at step t: phases (end step, from, to), each a half cosine
    ``to + (from - to) / 2 (1 + cos(pi pct))`` (or a line) over pct = (t - start) / (end - start).

    Examples
    --------
    >>> one_cycle_value({"max_lr": 1.0, "total_steps": 10, "pct_start": 0.3, "div_factor": 25.0,
    ...                  "final_div_factor": 1e4, "three_phase": False, "anneal_strategy": "cos"}, 2)
    1.0
    """
    return _one_cycle(spec, t, momentum=False)


def one_cycle_momentum(spec: dict, t: int) -> float:
    """torch's OneCycleLR's momentum (Adam's beta1) at step t: over the lr's phases, from
    max_momentum down to base_momentum while the lr rises and back up while it falls (three
    phases: down, up, then max_momentum throughout); the same half cosine (or line).

    Examples
    --------
    >>> one_cycle_momentum({"max_lr": 1.0, "total_steps": 10, "pct_start": 0.3, "div_factor": 25.0,
    ...                     "final_div_factor": 1e4, "three_phase": False, "anneal_strategy": "cos",
    ...                     "base_momentum": 0.85, "max_momentum": 0.95}, 2)
    0.85
    """
    return _one_cycle(spec, t, momentum=True)


def _one_cycle(spec: dict, t: int, momentum: bool) -> float:
    n, p, peak = spec["total_steps"], spec["pct_start"], spec["max_lr"]
    initial = peak / spec["div_factor"]
    low = initial / spec["final_div_factor"]
    if t > n:
        raise ValueError(f"OneCycle time: expected at most total_steps={n}, got {t}")
    if momentum:
        bottom, top = spec.get("base_momentum", 0.85), spec.get("max_momentum", 0.95)
        if spec["three_phase"]:
            phases = [(float(p * n) - 1, top, bottom), (float(2 * p * n) - 2, bottom, top), (n - 1, top, top)]
        else:
            phases = [(float(p * n) - 1, top, bottom), (n - 1, bottom, top)]
    elif spec["three_phase"]:
        phases = [(float(p * n) - 1, initial, peak), (float(2 * p * n) - 2, peak, initial), (n - 1, initial, low)]
    else:
        phases = [(float(p * n) - 1, initial, peak), (n - 1, peak, low)]
    start = 0.0
    for i, (end, high, to) in enumerate(phases):
        if t <= end or i == len(phases) - 1:
            pct = (t - start) / (end - start)
            if spec["anneal_strategy"] == "cos":
                return to + (high - to) / 2.0 * (math.cos(math.pi * pct) + 1)
            return (to - high) * pct + high
        start = end
    raise AssertionError("unreachable")
