"""The formulas of the chain rule, written once: the text walk-through of
:mod:`pybackprop.explain` and the step picture of :mod:`pybackprop.visual`
both read these tables (the picture plugs the trace's numbers into them).

The math itself is the core's (and, readably, :mod:`pybackprop.reference.functional`);
these are only its words.

>>> LOSS_FORMULAS["mse"]
('mean((y_hat - y)^2)', '2 (y_hat - y) / N')
>>> DERIVATIVES["sigmoid"], FORWARD["sigmoid"], SYMBOLS["sigmoid"]
('a (1 - a)', '1 / (1 + e^-z)', 'σ')
>>> pretty("2 (y_hat - y) / N")
'2 (ŷ − y) / N'
"""
from __future__ import annotations

from typing import Dict, Tuple

#: loss -> (L as a formula, dL/dŷ or, for the fused losses, dL/dz); N = number of output elements
#: (the batch of a trace is one sample), except categorical cross-entropy, whose N counts rows
LOSS_FORMULAS: Dict[str, Tuple[str, str]] = {
    "mse": ("mean((y_hat - y)^2)", "2 (y_hat - y) / N"),
    "mae": ("mean(|y_hat - y|)", "sign(y_hat - y) / N"),
    "huber": ("mean(0.5 d^2 if |d| < 1 else |d| - 0.5), d = y_hat - y", "clip(y_hat - y, -1, 1) / N"),
    "binary_crossentropy": ("mean(-y log s - (1 - y) log(1 - s)), s = sigmoid(z)", "fused: dL/dz = (s - y) / N"),
    "categorical_crossentropy": ("-sum(y log softmax(z))", "fused: dL/dz = softmax(z) - y"),
}
#: the losses computed on the logits z together with their output activation
FUSED_LOSSES: Dict[str, str] = {"binary_crossentropy": "sigmoid", "categorical_crossentropy": "softmax"}

#: activation -> f'(z), in words
DERIVATIVES: Dict[str, str] = {
    "identity": "1", "relu": "1 if z > 0 else 0", "leaky_relu": "1 if z > 0 else alpha",
    "noisy_relu": "1 if z > 0 else 0 (z with its noise)", "sigmoid": "a (1 - a)", "tanh": "1 - a^2",
    "elu": "1 if z > 0 else alpha e^z", "softplus": "sigmoid(z)", "gelu": "d/dz [0.5 z (1 + tanh(u))]",
    "softmax": "Jacobian diag(a) - a a^T",
}
#: activation -> a = f(z), in words
FORWARD: Dict[str, str] = {
    "identity": "z", "relu": "max(0, z)", "leaky_relu": "z if z > 0 else alpha z",
    "noisy_relu": "max(0, z), z with its training noise", "sigmoid": "1 / (1 + e^-z)", "tanh": "tanh(z)",
    "elu": "z if z > 0 else alpha (e^z - 1)", "softplus": "log(1 + e^z)",
    "gelu": "0.5 z (1 + tanh(u)), u = sqrt(2/pi) (z + 0.044715 z^3)", "softmax": "e^z_k / sum_j e^z_j",
}
#: activation -> its short name on a drawing
SYMBOLS: Dict[str, str] = {
    "identity": "id", "relu": "ReLU", "leaky_relu": "LReLU", "noisy_relu": "NReLU", "sigmoid": "σ",
    "tanh": "tanh", "elu": "ELU", "softplus": "softplus", "gelu": "GELU", "softmax": "softmax",
}

_PRETTY = (("y_hat", "ŷ"), ("sigmoid", "σ"), (" - ", " − "), ("(-", "(−"), (", -", ", −"), ("^-z", "^−z"),
           ("^2", "²"), ("^3", "³"), ("^T", "ᵀ"), ("alpha", "α"), ("sqrt(2/pi)", "√(2/π)"), ("sum_j", "Σⱼ"),
           ("-sum", "−Σ"), ("sum", "Σ"), ("-y", "−y"))


def pretty(text: str) -> str:
    """A formula of these tables in typeset characters (ŷ, σ, −, ², α, Σ).

    >>> pretty("1 if z > 0 else alpha e^z")
    '1 if z > 0 else α e^z'
    """
    for plain, typeset in _PRETTY:
        text = text.replace(plain, typeset)
    return text
