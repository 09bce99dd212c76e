"""pybackprop.reference runner (the pure-NumPy twin; small workloads only, it
is slow). Defined in ``pybackprop.bench`` (``pybackprop bench`` needs it too)."""
from pybackprop.bench import setup_reference as setup

__all__ = ["setup"]
