"""The report: the benchmark record (the JSON of
:func:`~pybackprop.bench.harness.run_benchmarks`) as text or Markdown tables.

>>> si(1234567.0), si(512.0), si(None)
('1.23 M', '512', '—')
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

from .workloads import GEMM_BOUND

__all__ = ["format_report", "si"]


def si(x: Optional[float]) -> str:
    """``x`` to three significant digits with a k/M/G prefix; ``—`` for None or non-finite."""
    if x is None or not math.isfinite(x):
        return "—"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g}"


def _gemm_rate(result: Dict[str, Any], threads: int, dtype: str, who: str = "numpy") -> Optional[float]:
    g = result.get("gemm", {}).get(str(threads), {})
    r = g.get(f"{who}_{dtype}")
    return r["best"] if r else None


def format_report(result: Dict[str, Any], markdown: bool = False) -> str:
    """The tables: per workload, one row per (peer, threads).

    Parameters
    ----------
    result : dict
        The record of :func:`~pybackprop.bench.harness.run_benchmarks` (or
        its JSON, read back).
    markdown : bool
        Markdown tables (``###`` headings) instead of aligned text (``==``).

    Returns
    -------
    str
        The machine and settings lines, the versions, the GEMM rates, per
        workload its table, notes and memory lines, then the import costs.

    Examples
    --------
    >>> rec = {"workload": "seed-sgd", "peer": "pybackprop", "threads": 1, "status": "ok", "median": 2.5e6,
    ...        "min": 2.4e6, "max": 2.6e6, "gflops": 0.2, "loss_before": 0.5, "loss_after": 0.25}
    >>> result = {"workloads": {"seed-sgd": {"describe": "3 → 4 → 4 → 1", "dtype": "float32"}}, "records": [rec]}
    >>> for line in format_report(result, markdown=True).splitlines()[-3::2]:
    ...     print(line)
    | peer | thr | samples/s median (min–max) | pbp/peer | GFLOP/s | of BLAS gemm | loss_before → loss_after | peak RSS (MiB) | notes |
    | pybackprop | 1 | 2.5 M (2.4 M–2.6 M) | — | 0.20 | — | 0.5 → 0.25 | — |  |
    """
    lines: List[str] = []
    m = result.get("machine", {})
    s = result.get("settings", {})
    lines.append(f"machine: {m.get('cpu')} ({m.get('isa_flags')}), {m.get('cpus_allowed')} CPUs allowed, "
                 f"Python {m.get('python')}; {m.get('date')}")
    rounds = s.get("rounds", 1)
    per_round = f" in each of {rounds} rounds (the peers in turn, each round in fresh processes)" if rounds > 1 else ""
    lines.append(f"settings: warm-up {s.get('warmup')} epoch(s), {s.get('repeats')} timed epochs{per_round}, "
                 f"samples scale {s.get('samples_scale')}; samples/s = median (min–max) over the timed epochs;"
                 f" ratio = pybackprop / peer at the same threads")
    versions: Dict[str, Any] = {}
    for r in result.get("records", []):
        if r.get("status") == "ok" and r.get("version"):
            versions.setdefault(r["peer"], r["version"])
    if versions:
        lines.append("versions: " + "; ".join(f"{p}: {v}" for p, v in versions.items()))
    if markdown:
        lines.append("")
    for n_threads, g in sorted(result.get("gemm", {}).items()):
        if g.get("status") != "ok":
            lines.append(f"GEMM {n_threads} thread(s): {g.get('status')}: {g.get('note')}")
            continue
        txt = (f"GEMM 2048³ at {n_threads} thread(s), GFLOP/s best (median): NumPy "
               f"sgemm {g['numpy_float32']['best']:.1f} ({g['numpy_float32']['median']:.1f}), "
               f"dgemm {g['numpy_float64']['best']:.1f} ({g['numpy_float64']['median']:.1f})")
        if "pybackprop_float32" in g:
            f32, f64 = g["pybackprop_float32"], g["pybackprop_float64"]
            txt += (f"; pybackprop [{g.get('pybackprop_isa')}] float32 {f32['best']:.1f} ({f32['median']:.1f}) "
                    f"= {f32['best'] / g['numpy_float32']['best']:.0%}, float64 {f64['best']:.1f} "
                    f"({f64['median']:.1f}) = {f64['best'] / g['numpy_float64']['best']:.0%} of OpenBLAS")
        lines.append(txt + (f"; BLAS: {g['blas'][0]}" if g.get("blas") else ""))
        if markdown:
            lines.append("")
    records = result.get("records", [])
    cpus = m.get("cpus_allowed") or 1
    for name, wdesc in result.get("workloads", {}).items():
        lines.append("")
        lines.append(f"### {name}: {wdesc['describe']}" if markdown else f"== {name}: {wdesc['describe']}")
        head = ["peer", "thr", "samples/s median (min–max)", "pbp/peer", "GFLOP/s", "of BLAS gemm",
                "loss_before → loss_after", "peak RSS (MiB)", "notes"]
        rows: List[List[str]] = []
        recs = [r for r in records if r["workload"] == name]
        notes_out: List[str] = []
        for r in sorted(recs, key=lambda r: (r["threads"], 0 if r["peer"] == "pybackprop" else 1)):
            if r["status"] != "ok":
                notes_out.append(f"[{r['threads']} thr] {r.get('note')}" if r["status"] == "error"
                                 else f"{r.get('note')}")
                continue
            ours = next((o for o in recs if o["peer"] == "pybackprop" and o["threads"] == r["threads"]
                         and o["status"] == "ok"), None)
            ratio = "—" if ours is None or r["peer"] == "pybackprop" else f"{ours['median'] / r['median']:.2f}×"
            frac = "—"
            if name in GEMM_BOUND:
                rate = _gemm_rate(result, r["threads"], wdesc["dtype"])
                if rate:
                    frac = f"{r['gflops'] / rate:.0%}"
            note = r.get("note") or ""
            load = [x for x in (r.get("loadavg") or []) if x is not None]
            if load and max(load) > cpus + 0.5:
                note = (note + "; " if note else "") + f"busy machine: load {max(load):.1f} on {cpus} CPUs"
            if r.get("compile_s") is not None:
                note = (note + "; " if note else "") + f"compile {r['compile_s']:.2f} s"
            rows.append([r["peer"], str(r["threads"]), f"{si(r['median'])} ({si(r['min'])}–{si(r['max'])})",
                         ratio, f"{r['gflops']:.2f}", frac,
                         f"{r['loss_before']:.6g} → {r['loss_after']:.6g}",
                         "—" if r.get("peak_rss_mib") is None else f"{r['peak_rss_mib']:.0f}", note])
        lines.extend(_table(head, rows, markdown))
        for n in dict.fromkeys(notes_out):
            lines.append(f"{'- ' if markdown else '  '}{n}")
        mem = [r for r in recs if r["peer"] == "pybackprop" and r["status"] == "ok" and r.get("footprint_mib")]
        for r in mem:
            lines.append(f"{'- ' if markdown else '  '}memory, pybackprop [{r['threads']} thr]: peak RSS of fit "
                         f"{r['peak_rss_mib']:.1f} MiB = {r['rss_base_mib']:.1f} after imports + "
                         f"{r['footprint_mib']:.1f} (data, model, fit"
                         + (f", of which {r['peak_rss_mib'] - r['rss_pre_fit_mib']:.1f} added by fit itself"
                            if r.get("rss_pre_fit_mib") is not None else "")
                         + f"); needed (data + parameters + gradients + "
                         f"optimiser state + one batch of activations) {r['estimate_mib']:.2f} MiB; ratio "
                         f"{r['footprint_mib'] / r['estimate_mib']:.2f}"
                         + (" (a network this small is dwarfed by allocator, thread-stack and code pages)"
                            if r["estimate_mib"] < 8 else ""))
    imports = result.get("imports") or {}
    if imports:
        lines.append("")
        lines.append("### import cost (fresh interpreter, median of 3)" if markdown else "== import cost")
        rows = []
        for mod, r in imports.items():
            if r.get("status") != "ok":
                rows.append([mod, "—", "—", "—", r.get("note", "")])
            else:
                rows.append([mod, f"{r['seconds']:.2f}", f"{r['rss_mib']:.0f}", f"{r['delta_mib']:.0f}", ""])
        lines.extend(_table(["module", "import s", "RSS after (MiB)", "RSS added (MiB)", "notes"], rows, markdown))
    return "\n".join(lines)


def _table(head: List[str], rows: List[List[str]], markdown: bool) -> List[str]:
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        out += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
        return out
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [fmt(head)] + [fmt(r) for r in rows]
