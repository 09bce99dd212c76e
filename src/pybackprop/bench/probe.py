"""The cost of ``import``: wall time and RSS of importing each module in a
fresh interpreter (one thread), the median of a few runs."""
from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
from typing import Any, Dict, Sequence

from .process import child_env

__all__ = ["IMPORT_PROBE", "measure_imports"]

IMPORT_PROBE = r"""
import json, sys, time
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
r0 = rss(); t0 = time.perf_counter()
__import__(sys.argv[1])
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "rss_mib": rss(), "delta_mib": rss() - r0}))
"""
"""The probe run as ``python -c IMPORT_PROBE module``: prints one JSON line."""


def measure_imports(modules: Sequence[str], runs: int = 3, timeout: float = 120) -> Dict[str, Any]:
    """``import`` wall time and RSS of each module, fresh interpreters, median of ``runs``.

    Parameters
    ----------
    modules : sequence of str
        Module names; one not installed is reported ``"skipped"``.
    runs : int
        Fresh interpreters per module.
    timeout : float
        Seconds per interpreter.

    Returns
    -------
    dict
        Per module: ``status`` and, when ``"ok"``, ``seconds``, ``rss_mib``
        (after the import) and ``delta_mib`` (added by it), medians over the runs.

    Examples
    --------
    >>> r = measure_imports(["json", "no_such_module_xyz"], runs=1)
    >>> r["json"]["status"], r["no_such_module_xyz"]
    ('ok', {'status': 'skipped', 'note': 'no_such_module_xyz is not installed'})
    """
    out: Dict[str, Any] = {}
    env = child_env(1)
    for mod in modules:
        if importlib.util.find_spec(mod) is None:
            out[mod] = {"status": "skipped", "note": f"{mod} is not installed"}
            continue
        recs = []
        for _ in range(runs):
            try:
                p = subprocess.run([sys.executable, "-c", IMPORT_PROBE, mod], env=env, capture_output=True,
                                   text=True, timeout=timeout)
                recs.append(json.loads(p.stdout.strip().splitlines()[-1]))
            except (subprocess.TimeoutExpired, IndexError, ValueError):
                pass
        if not recs:
            out[mod] = {"status": "error", "note": "import probe failed"}
            continue
        out[mod] = {"status": "ok", "seconds": statistics.median(r["seconds"] for r in recs),
                    "rss_mib": statistics.median(r["rss_mib"] for r in recs),
                    "delta_mib": statistics.median(r["delta_mib"] for r in recs)}
    return out
