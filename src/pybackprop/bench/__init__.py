"""``pybackprop bench``: end-to-end training speed, and inference speed, against
the libraries a user would pick instead, on the workloads of the project's
WORKLOADS.md.

The package works from an installed pybackprop; each module holds one thing:

- :mod:`~pybackprop.bench.workloads`: the workload table (:data:`WORKLOADS`),
  the data and the initial weights exactly as WORKLOADS.md defines them
  (:func:`make_data`, :func:`init_weights`), the FLOP count of an epoch and
  the memory training needs;
- :mod:`~pybackprop.bench.peers`: the runner contract (:class:`Context` in,
  :class:`Runner` out, :class:`PeerUnavailable`), the :class:`Peer` record and
  the table of the peers the command line measures on its own (:data:`PEERS`),
  one module each: ``peers/pybackprop.py``, ``peers/reference.py`` (the NumPy
  reference, small workloads only: it is slow) and ``peers/torch.py`` (PyTorch
  eager, skipped with a note when not installed). The repository's
  ``benchmarks/python/`` adds JAX, NumPy by hand, scikit-learn and FANN, and
  imports everything else from here;
- :mod:`~pybackprop.bench.process`: a worker's environment (thread variables),
  its CPU affinity, its RSS and peak RSS, the load average, the machine;
- :mod:`~pybackprop.bench.worker`: one task in a fresh interpreter, both ends:
  ``spawn`` in the parent, and in the worker the timing of whole epochs, the
  sanity losses, the peak RSS of ``fit``, and the OpenBLAS GEMM rate;
- :mod:`~pybackprop.bench.probe`: the ``import`` costs;
- :mod:`~pybackprop.bench.harness`: the schedule, one fresh worker per
  (workload, peer, threads); with ``--rounds R`` the peers of a workload run
  in turn R times and each pools its rounds' epochs (:func:`merge_rounds`);
  the JSON record (:func:`run_benchmarks`);
- :mod:`~pybackprop.bench.report`: the report tables (:func:`format_report`);
- :mod:`~pybackprop.bench.inference`: ``predict`` on the inference workloads
  (:data:`INFERENCE_WORKLOADS`) against ONNX Runtime, PyTorch and scikit-learn
  (:data:`INFERENCE_PEERS`), one worker each (:func:`run_inference`), and its
  table (:func:`format_inference`);
- :mod:`~pybackprop.bench.cli`: the options, ``pybackprop bench`` and
  ``python -m pybackprop.bench``.

Every name of the single-module ``pybackprop.bench`` of earlier versions is
importable from here.

Command line::

    pybackprop bench --quick                  # seed-sgd, seed-minibatch, small; < 1 min
    pybackprop bench --workloads wide --threads 1 2 --repeats 5 --json out.json
    pybackprop bench --workloads seed-sgd --repeats 10 --rounds 3   # peers interleaved
    pybackprop bench --inference only --threads 1 2                  # predict only

A runner is ``setup(ctx) -> Runner``: ``ctx`` carries the workload, the data,
the initial weights and the thread count; the runner's ``epoch()`` trains one
epoch (all full batches, in order, blocking until done) and its ``loss()``
returns the full-data loss without dropout.

>>> from pybackprop.bench import WORKLOADS, PEERS
>>> WORKLOADS["wide"].flops_per_epoch / 1e9   # doctest: +ELLIPSIS
206.15...
>>> list(PEERS)
['pybackprop', 'reference', 'torch']
"""
from __future__ import annotations

from .cli import add_arguments, add_parser, main, run
from .harness import merge_rounds, run_benchmarks
from .inference import INFERENCE_PEERS, INFERENCE_WORKLOADS, InferencePeer, format_inference, run_inference
from .peers import PEERS, Context, Peer, PeerUnavailable, Runner, limit_blas_threads
from .peers.pybackprop import pybackprop_model
from .peers.pybackprop import setup as setup_pybackprop
from .peers.reference import setup as setup_reference
from .peers.torch import setup as setup_torch
from .probe import IMPORT_PROBE, measure_imports
from .process import machine_info, peak_rss_mib, reset_peak_rss, rss_mib, thread_env
from .report import format_report
from .workloads import GEMM_BOUND, QUICK_WORKLOADS, WORKLOADS, Workload, init_weights, make_data, memory_estimate

__all__ = [
    "WORKLOADS", "QUICK_WORKLOADS", "Workload", "Peer", "PEERS", "PeerUnavailable", "Context",
    "make_data", "init_weights", "add_parser", "add_arguments", "run", "run_benchmarks",
    "format_report",
]

# The other names above are importable as before, outside __all__ as before.
