"""The command line: ``pybackprop bench`` (a subcommand of ``pybackprop``),
``python -m pybackprop.bench``, and the options benchmarks/python/run.py shares.

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_arguments(parser, PEERS)
>>> args = parser.parse_args(["--quick", "--peers", "pybackprop"])
>>> args.quick, args.peers, args.rounds
(True, ['pybackprop'], 1)
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence

from .harness import run_benchmarks
from .inference import BATCHES, INFERENCE_PEERS, INFERENCE_WORKLOADS, format_inference, run_inference
from .peers import PEERS, Peer
from .report import format_report
from .workloads import QUICK_WORKLOADS, WORKLOADS

__all__ = ["add_arguments", "add_parser", "run", "main"]


def add_arguments(parser: argparse.ArgumentParser, peers: Dict[str, Peer]) -> None:
    """The options shared by ``pybackprop bench`` and benchmarks/python/run.py.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        Receives the options.
    peers : dict of str to Peer
        The peers ``--peers`` may name.
    """
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), metavar="NAME",
                        help=f"workloads to run (default: all; --quick: {', '.join(QUICK_WORKLOADS)}); "
                             f"choices: {', '.join(WORKLOADS)}")
    parser.add_argument("--peers", nargs="+", choices=list(peers), metavar="PEER",
                        help=f"libraries to measure (default: all installed); choices: {', '.join(peers)}")
    parser.add_argument("--threads", nargs="+", type=int, metavar="N",
                        help="thread counts (default: 1 2; --quick: 1)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed epochs first (default 1)")
    parser.add_argument("--repeats", type=int, default=None, help="timed epochs (default 5; --quick: 3)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the peers of each workload in turn this many times, pooling each peer's "
                             "timed epochs, so a slow spell of a shared machine falls on all of them (default 1)")
    parser.add_argument("--quick", action="store_true",
                        help="a subset in under a minute: seed-sgd, seed-minibatch, small on a fifth of the "
                             "samples, one thread, 3 timed epochs")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--no-gemm", action="store_true", help="skip the NumPy/OpenBLAS GEMM rate")
    parser.add_argument("--no-imports", action="store_true", help="skip the import-cost measurement")
    parser.add_argument("--inference", choices=["yes", "no", "only"], default="yes",
                        help="also measure predict on the inference workloads against ONNX Runtime, PyTorch and "
                             "scikit-learn where installed (default yes; only: skip training)")
    parser.add_argument("--samples-scale", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=1800, help=argparse.SUPPRESS)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to ``pybackprop``'s subparsers.

    Parameters
    ----------
    subparsers
        What ``ArgumentParser.add_subparsers()`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The subcommand's parser; its ``func`` default is :func:`run`.
    """
    p = subparsers.add_parser("bench", help="training and inference speed against the NumPy reference, PyTorch "
                                            "and ONNX Runtime",
                              description="Samples/s of training on the workloads of WORKLOADS.md: pybackprop "
                                          "against its NumPy reference and PyTorch eager (where installed), "
                                          "each in its own process; then µs per predict call on the inference "
                                          "workloads against ONNX Runtime, PyTorch and scikit-learn. The "
                                          "repository's benchmarks/python/run.py adds JAX, NumPy by hand and "
                                          "scikit-learn to the training rows.")
    add_arguments(p, PEERS)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, peers: Optional[Dict[str, Peer]] = None, sys_path: Sequence[str] = (),
        imports: Sequence[str] = ("numpy", "pybackprop", "torch")) -> int:
    """Run ``pybackprop bench`` (or benchmarks/python/run.py with more peers).

    Applies the defaults (``--quick``: the quick workloads on a fifth of the
    samples, one thread, 3 timed epochs; else all workloads, 1 and 2 threads,
    5 timed epochs), runs :func:`~pybackprop.bench.harness.run_benchmarks`,
    prints :func:`~pybackprop.bench.report.format_report` and writes the JSON.

    Parameters
    ----------
    args : argparse.Namespace
        The options of :func:`add_arguments`.
    peers : dict of str to Peer, optional
        The peers to choose from (default :data:`~pybackprop.bench.peers.PEERS`).
    sys_path : sequence of str
        Directories the workers search first for the runners' modules.
    imports : sequence of str
        Modules whose import cost is measured (unless ``--no-imports``).

    Returns
    -------
    int
        The exit status: 0, 1 if a record is an error, 2 for bad options.
    """
    peers = PEERS if peers is None else peers
    quick = bool(getattr(args, "quick", False))
    workloads = args.workloads or (list(QUICK_WORKLOADS) if quick else list(WORKLOADS))
    chosen = [peers[p] for p in (args.peers or list(peers))]
    threads = args.threads or ([1] if quick else [1, 2])
    if any(t < 1 for t in threads):
        print("--threads: expected integers >= 1", file=sys.stderr)
        return 2
    warmup = 1 if args.warmup is None else args.warmup
    repeats = (3 if quick else 5) if args.repeats is None else args.repeats
    rounds = getattr(args, "rounds", 1)
    if warmup < 0 or repeats < 1 or rounds < 1:
        print("--warmup must be >= 0, --repeats and --rounds >= 1", file=sys.stderr)
        return 2
    scale = args.samples_scale if args.samples_scale is not None else (0.2 if quick else 1.0)
    inference = getattr(args, "inference", "yes")
    markdown = bool(getattr(args, "markdown", False))
    if inference == "only":
        result: Dict[str, Any] = {"records": []}
    else:
        result = run_benchmarks(workloads, chosen, threads, warmup, repeats, scale=scale, sys_path=sys_path,
                                timeout=args.timeout, gemm=not args.no_gemm,
                                imports=() if args.no_imports else imports, rounds=rounds)
        print(format_report(result, markdown=markdown))
    if inference != "no":
        # --quick: one float32 workload, batches of 1 and 256, a tenth of the calls
        infer_peers = [INFERENCE_PEERS[p] for p in INFERENCE_PEERS
                       if args.peers is None or p in args.peers or p == "pybackprop"]
        result["inference"] = run_inference(["infer-mlp"] if quick else list(INFERENCE_WORKLOADS), infer_peers,
                                            threads, batches=BATCHES[:2] if quick else BATCHES,
                                            calls_scale=0.1 if quick else 1.0, timeout=args.timeout)
        print("\n" + format_inference(result["inference"], markdown=markdown))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"\nresults written to {args.json}")
    bad = [r for r in result["records"] + result.get("inference", []) if r["status"] == "error"]
    return 1 if bad else 0


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m pybackprop.bench`` (the same options as ``pybackprop bench``).

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status of :func:`run`.
    """
    parser = argparse.ArgumentParser(prog="pybackprop bench")
    add_arguments(parser, PEERS)
    return run(parser.parse_args(argv))
