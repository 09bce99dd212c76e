"""A measured process and its machine: the environment and CPUs a worker
starts with, the memory it holds, the load around it, the machine it runs on.

Threads are fixed before any numerical library is imported: the worker's
environment sets OMP/MKL/OPENBLAS_NUM_THREADS (and, at one thread, XLA's
``--xla_cpu_multi_thread_eigen=false``), and its CPU affinity is set between
``fork`` and ``exec`` (:func:`pin`).

>>> env = thread_env(2)
>>> env["OMP_NUM_THREADS"], env["OPENBLAS_NUM_THREADS"]
('2', '2')
"""
from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

__all__ = ["thread_env", "child_env", "allowed_cpus", "pin", "rss_mib", "peak_rss_mib", "reset_peak_rss",
           "loadavg", "machine_info"]

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
"""The directory holding the ``pybackprop`` package, put on a worker's PYTHONPATH."""


def thread_env(threads: int) -> Dict[str, str]:
    """The environment of a worker at ``threads`` threads (WORKLOADS.md).

    Parameters
    ----------
    threads : int
        The thread count.

    Returns
    -------
    dict of str to str
        A copy of ``os.environ`` with OMP/MKL/OPENBLAS_NUM_THREADS set to
        ``threads``, and ``--xla_cpu_multi_thread_eigen=false`` in XLA_FLAGS at
        one thread (any earlier setting of that flag removed).

    Examples
    --------
    >>> "--xla_cpu_multi_thread_eigen=false" in thread_env(1)["XLA_FLAGS"]
    True
    >>> "xla_cpu_multi_thread_eigen" in thread_env(2).get("XLA_FLAGS", "")
    False
    """
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_cpu_multi_thread_eigen" not in f]
    if threads == 1:
        flags.append("--xla_cpu_multi_thread_eigen=false")
    if flags:
        env["XLA_FLAGS"] = " ".join(flags)
    else:
        env.pop("XLA_FLAGS", None)
    return env


def child_env(threads: int, sys_path: Sequence[str] = ()) -> Dict[str, str]:
    """:func:`thread_env`, with a PYTHONPATH on which the worker finds the
    runners' modules and this ``pybackprop``.

    Parameters
    ----------
    threads : int
        The thread count.
    sys_path : sequence of str
        Directories searched first (e.g. benchmarks/python for its ``peer_*``
        modules); then the PYTHONPATH of this process; then the directory
        holding this ``pybackprop`` package (:data:`PACKAGE_PARENT`).

    Returns
    -------
    dict of str to str
        The environment.

    Examples
    --------
    >>> child_env(1, ["/opt/peers"])["PYTHONPATH"].split(os.pathsep)[0]
    '/opt/peers'
    >>> child_env(1)["PYTHONPATH"].split(os.pathsep)[-1] == PACKAGE_PARENT
    True
    """
    env = thread_env(threads)
    inherited = env.get("PYTHONPATH", "").split(os.pathsep)
    env["PYTHONPATH"] = os.pathsep.join([p for p in [*sys_path, *inherited] if p] + [PACKAGE_PARENT])
    return env


def allowed_cpus() -> List[int]:
    """The CPUs this process may run on, in order."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return list(range(os.cpu_count() or 1))


def pin(threads: int) -> Callable[[], None]:
    """A ``preexec_fn`` that pins the child to the first ``threads`` allowed CPUs."""
    cpus = allowed_cpus()[:threads]

    def pin_child() -> None:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cpus)

    return pin_child


def _proc_status_mib(key: str) -> Optional[float]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def rss_mib() -> Optional[float]:
    """Resident set size of this process now, MiB (Linux; None elsewhere)."""
    return _proc_status_mib("VmRSS")


def peak_rss_mib() -> Optional[float]:
    """Peak RSS since the last :func:`reset_peak_rss` (or process start), MiB."""
    peak = _proc_status_mib("VmHWM")
    if peak is None:
        try:
            import resource

            kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peak = kb / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)
        except ImportError:  # pragma: no cover
            return None
    return peak


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0).

    Returns
    -------
    bool
        Whether the mark was reset (if not, :func:`peak_rss_mib` counts from
        the start of the process).
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def loadavg() -> Optional[float]:
    """The 1-minute load average (other processes competing for the CPUs)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover
        return None


def _cpuinfo_line(prefix: str) -> Optional[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(prefix):
                    return line
    except OSError:
        pass
    return None


def machine_info() -> Dict[str, Any]:
    """The machine of the record: CPU model and its AVX2/FMA/AVX-512 flags, the
    CPUs allowed, Python, platform, date, and the OpenBLAS variables that change
    its kernels.

    Examples
    --------
    >>> sorted(machine_info())[:4]
    ['cpu', 'cpus_allowed', 'date', 'env_openblas_coretype']
    """
    cpu = platform.processor()
    model = _cpuinfo_line("model name")
    if model is not None:
        cpu = model.split(":", 1)[1].strip()
    flags = ""
    line = _cpuinfo_line("flags")
    if line is not None:
        fl = line.split()
        flags = " ".join(x for x in ("avx2", "fma", "avx512f") if x in fl)
    return {"cpu": cpu, "isa_flags": flags, "cpus_allowed": len(allowed_cpus()), "python": platform.python_version(),
            "platform": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "env_openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
            "env_openblas_l2_size": os.environ.get("OPENBLAS_L2_SIZE")}
