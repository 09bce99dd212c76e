"""Loss names and what they require of the output layer.

>>> import pybackprop as bp
>>> bp.losses.LOSSES["categorical_crossentropy"]
'softmax'

``mse``, ``mae`` and ``huber`` (delta 1) work with any output activation;
``binary_crossentropy`` needs a sigmoid output and ``categorical_crossentropy``
a softmax output: both are fused with that activation in the core (gradient
σ(z) − y and softmax(z) − y), which is exact and cannot overflow.
"""
from __future__ import annotations

from typing import Dict, Optional

#: loss name -> the output activation it requires (None: any)
LOSSES: Dict[str, Optional[str]] = {
    "mse": None,
    "mae": None,
    "huber": None,
    "binary_crossentropy": "sigmoid",
    "categorical_crossentropy": "softmax",
}


def check_output_activation(loss: str, activation: str) -> None:
    """Raise ``ValueError`` when ``loss`` needs another output activation than ``activation``.

    The one statement of the pairing rule on the Python side (the core checks
    it again as an invariant of its fused gradients).

    >>> check_output_activation("mse", "tanh")
    >>> check_output_activation("binary_crossentropy", "softmax")
    Traceback (most recent call last):
    ...
    ValueError: loss: binary_crossentropy expected an output layer with activation 'sigmoid', got 'softmax'
    """
    required = LOSSES[loss]
    if required is not None and activation != required:
        raise ValueError(f"loss: {loss} expected an output layer with activation '{required}', got '{activation}'")
