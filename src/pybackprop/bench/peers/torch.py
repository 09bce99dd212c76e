"""PyTorch eager's runner: ``nn.Sequential`` of ``nn.Linear`` and activations,
``torch.optim.SGD``, ``nn.MSELoss`` / ``nn.CrossEntropyLoss``, batches made
before timing with ``torch.from_numpy(...).split(B)``, the usual
``zero_grad / forward / backward / step`` loop. Skipped with a note when torch
is not installed."""
from __future__ import annotations

from typing import Any, List

from . import Context, PeerUnavailable, Runner

__all__ = ["setup"]


def setup(ctx: Context) -> Runner:
    """PyTorch eager: nn.Sequential, torch.optim.SGD, the usual loop."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - checked by skip_reason
        raise PeerUnavailable(f"torch: {exc}") from exc
    from torch import nn

    torch.set_num_threads(ctx.threads)
    wl = ctx.workload
    tdtype = getattr(torch, wl.dtype)
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity}
    mods: List[Any] = []
    for k, ((fan_in, fan_out), (W, b), (_, act)) in enumerate(zip(wl.shapes, ctx.init, wl.layers)):
        lin = nn.Linear(fan_in, fan_out, bias=wl.bias, dtype=tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T))
            if b is not None:
                lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if act != "identity":
            mods.append(acts[act]())
        if wl.keep_prob is not None and k < len(wl.layers) - 1:
            mods.append(nn.Dropout(p=1.0 - wl.keep_prob))
    model = nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=wl.lr, momentum=wl.momentum)
    lossf = nn.MSELoss() if wl.loss == "mse" else nn.CrossEntropyLoss()
    X, Y = torch.from_numpy(ctx.X), torch.from_numpy(ctx.Y)
    batches = list(zip(X[:ctx.n_epoch].split(wl.batch), Y[:ctx.n_epoch].split(wl.batch)))

    def epoch() -> None:
        model.train()
        for xb, yb in batches:
            opt.zero_grad()
            loss = lossf(model(xb), yb)
            loss.backward()
            opt.step()

    def full_loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(lossf(model(X), Y))

    return Runner(epoch, full_loss, version=f"torch {torch.__version__}")
