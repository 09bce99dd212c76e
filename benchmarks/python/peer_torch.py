"""PyTorch eager runner: ``nn.Sequential`` of ``nn.Linear`` and activations,
``torch.optim.SGD``, ``nn.MSELoss`` / ``nn.CrossEntropyLoss``, batches made
before timing with ``torch.from_numpy(...).split(B)``, the usual
``zero_grad / forward / backward / step`` loop. Defined in ``pybackprop.bench``
(``pybackprop bench`` needs it too)."""
from pybackprop.bench import setup_torch as setup

__all__ = ["setup"]
