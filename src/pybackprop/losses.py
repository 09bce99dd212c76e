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
