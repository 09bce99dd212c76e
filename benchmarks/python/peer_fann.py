"""FANN runner: the per-sample training in C that WORKLOADS.md quotes for
``seed-sgd`` (Debian's ``libfann-dev`` 2.2, ``fann_train`` once per sample,
float32). A small C file is compiled against the installed library at setup;
an epoch is one call into it, so the Python boundary is crossed once per epoch,
as for pybackprop.

FANN cannot express the workload exactly (reported in the record's note): it
has no ReLU, so the first hidden layer is FANN's bounded linear
(``FANN_LINEAR_PIECE``, 0..1, whose derivative FANN takes as 1 even where the
output is clamped), and every layer has a bias (starting at 0 and training). Weights start from WORKLOADS' init; sigmoid steepness 0.5 is the
logistic function; the output is linear; SGD with lr 0.01 and no momentum.
FANN's error term is (y - ŷ) without the factor 2 of torch's MSELoss, so its
learning rate is doubled to take the same step size.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile

import numpy as np

from pybackprop.bench.peers import Context, PeerUnavailable, Runner

SOURCE = r"""
#include <floatfann.h>

/* 3 -> 4 -> 4 -> 1 with WORKLOADS' weights (W0 3x4, W1 4x4, W2 4x1, row-major,
   fan_in x fan_out); FANN numbers neurons layer by layer, each layer's bias last. */
void* net_create(const float* W0, const float* W1, const float* W2, float lr) {
    struct fann* ann = fann_create_standard(4, 3, 4, 4, 1);
    if (!ann) return 0;
    const float* W[3] = {W0, W1, W2};
    const unsigned in[3] = {3, 4, 4}, out[3] = {4, 4, 1};
    unsigned base = 0;
    for (int k = 0; k < 3; ++k) {
        const unsigned next = base + in[k] + 1;
        for (unsigned j = 0; j < out[k]; ++j) {
            for (unsigned i = 0; i < in[k]; ++i) fann_set_weight(ann, base + i, next + j, W[k][i * out[k] + j]);
            fann_set_weight(ann, base + in[k], next + j, 0.0f);
        }
        base = next;
    }
    fann_set_activation_function_layer(ann, FANN_LINEAR_PIECE, 1);
    fann_set_activation_function_layer(ann, FANN_SIGMOID, 2);
    fann_set_activation_function_layer(ann, FANN_LINEAR, 3);
    fann_set_activation_steepness_layer(ann, 1.0f, 1);  /* y = clamp(x, 0, 1) */
    fann_set_activation_steepness_layer(ann, 0.5f, 2);  /* 1 / (1 + e^(-2·0.5·x)) */
    fann_set_activation_steepness_layer(ann, 1.0f, 3);
    fann_set_training_algorithm(ann, FANN_TRAIN_INCREMENTAL);
    fann_set_train_error_function(ann, FANN_ERRORFUNC_LINEAR);
    fann_set_learning_momentum(ann, 0.0f);
    fann_set_learning_rate(ann, lr);
    return ann;
}

void net_epoch(void* ann, float* X, float* Y, int n) {
    for (int s = 0; s < n; ++s) fann_train((struct fann*)ann, X + 3 * s, Y + s);
}

double net_loss(void* ann, float* X, const float* Y, int n) {
    double total = 0;
    for (int s = 0; s < n; ++s) {
        const double d = (double)fann_run((struct fann*)ann, X + 3 * s)[0] - (double)Y[s];
        total += d * d;
    }
    return total / n;
}
"""


def _build() -> ctypes.CDLL:
    hint = "needs a C compiler and libfann-dev (apt-get install libfann-dev)"
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        raise PeerUnavailable(f"fann: no C compiler found; {hint}")
    with tempfile.TemporaryDirectory(prefix="pybackprop-fann-") as tmp:
        src, lib = os.path.join(tmp, "fann_peer.c"), os.path.join(tmp, "fann_peer.so")
        with open(src, "w") as f:
            f.write(SOURCE)
        p = subprocess.run([cc, "-O2", "-shared", "-fPIC", src, "-o", lib, "-lfloatfann"], capture_output=True,
                           text=True)
        if p.returncode != 0:
            raise PeerUnavailable(f"fann: building the runner failed ({hint}): "
                                  + (p.stderr.strip().splitlines() or ["no message"])[-1])
        try:
            dll = ctypes.CDLL(lib)  # stays mapped after the directory is removed
        except OSError as exc:
            raise PeerUnavailable(f"fann: loading the runner failed ({hint}): {exc}") from exc
    fp = ctypes.POINTER(ctypes.c_float)
    dll.net_create.restype = ctypes.c_void_p
    dll.net_create.argtypes = [fp, fp, fp, ctypes.c_float]
    dll.net_epoch.argtypes = [ctypes.c_void_p, fp, fp, ctypes.c_int]
    dll.net_loss.restype = ctypes.c_double
    dll.net_loss.argtypes = [ctypes.c_void_p, fp, fp, ctypes.c_int]
    return dll


def setup(ctx: Context) -> Runner:
    wl = ctx.workload
    if [u for u, _ in wl.layers] != [4, 4, 1] or wl.n_in != 3 or wl.batch != 1 or wl.momentum:
        raise PeerUnavailable(f"fann: only the per-sample 3 -> 4 -> 4 -> 1 network, not {wl.name}")
    dll = _build()
    ctx.notes.append("approximate: FANN has no ReLU (bounded linear 0..1 in hidden-1) and always has biases "
                     "(they start at 0 and train); float32")
    f32 = ctypes.POINTER(ctypes.c_float)
    keep = [np.ascontiguousarray(W, dtype=np.float32) for W, _ in ctx.init]
    ann = dll.net_create(*(w.ctypes.data_as(f32) for w in keep), ctypes.c_float(2.0 * wl.lr))
    if not ann:
        raise PeerUnavailable("fann: fann_create_standard failed")
    n = ctx.n_epoch
    X = np.ascontiguousarray(ctx.X, dtype=np.float32)
    Y = np.ascontiguousarray(ctx.Y, dtype=np.float32).reshape(len(X))
    xp, yp = X.ctypes.data_as(f32), Y.ctypes.data_as(f32)

    def epoch() -> None:
        dll.net_epoch(ann, xp, yp, n)

    def loss() -> float:
        return float(dll.net_loss(ann, xp, yp, len(X)))

    version = "fann 2.2 (libfann-dev)"
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libfann-dev"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout:
            version = f"fann {out.stdout} (libfann-dev)"
    except OSError:
        pass
    return Runner(epoch, loss, version=version)
