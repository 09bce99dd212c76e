"""pybackprop runner: ``model.fit(X, Y, epochs=1, batch_size=B, shuffle=False)``
per timed epoch on the drop-last prefix (the Python boundary is crossed once per
epoch), weights set with ``set_weights`` from WORKLOADS' init,
``Dropout(keep_prob=0.8)`` on mnist-like. Defined in ``pybackprop.bench``
(``pybackprop bench`` needs it too)."""
from pybackprop.bench import setup_pybackprop as setup

__all__ = ["setup"]
