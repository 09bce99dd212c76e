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

from . import _core

#: loss name -> the output activation it requires (None: any); read from the core,
#: which states the pairing rule once (``check_loss_activation`` in losses/losses.hpp)
LOSSES: Dict[str, Optional[str]] = {name: _core.loss_required_activation(name) for name in _core.LOSSES}


def check_output_activation(loss: str, activation: str) -> None:
    """Raise ``ValueError`` when ``loss`` needs another output activation than ``activation``.

    The core's rule (the one ``Network.set_loss`` applies), checked before
    anything is configured.

    >>> check_output_activation("mse", "tanh")
    >>> check_output_activation("binary_crossentropy", "softmax")
    Traceback (most recent call last):
    ...
    ValueError: loss: binary_crossentropy expected an output layer with activation 'sigmoid', got 'softmax'
    """
    _core.check_loss_activation(loss, activation)
