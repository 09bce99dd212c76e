"""The workloads of WORKLOADS.md, re-exported from the installed package.

The definitions (network, data, initial weights, FLOP count) live in
``pybackprop.bench`` so that ``pybackprop bench`` works without this folder;
this module only gathers them for the runners here.

    >>> from workloads import WORKLOADS, make_data, init_weights
    >>> WORKLOADS["wide"].flops_per_epoch / 1e9   # doctest: +ELLIPSIS
    206.15...
"""
from pybackprop.bench import (GEMM_BOUND, QUICK_WORKLOADS, WORKLOADS, Context, PeerUnavailable, Runner,
                              Workload, init_weights, limit_blas_threads, make_data, memory_estimate)

__all__ = ["GEMM_BOUND", "QUICK_WORKLOADS", "WORKLOADS", "Context", "PeerUnavailable", "Runner", "Workload",
           "init_weights", "limit_blas_threads", "make_data", "memory_estimate"]
