"""Shared output format of the benchmarks (one markdown section each) and the results header.

Every ``benchmarks/bench_*.py`` prints exactly one markdown section on stdout:
a ``## ...`` heading, what was measured, the command that reproduces it, a
table of medians with ratios against a reference measured in the same run,
and peak memory. Progress and diagnostics go to stderr. ``make bench``
concatenates the sections below the header printed by::

    python benchmarks/_common.py header [--quick]

and merges them into ``benchmarks/results.md`` with::

    python benchmarks/_common.py merge NEW RESULTS

which replaces each section of ``RESULTS`` by the new section of the same
title and keeps every other one (the sections written by hand: sizes run
separately, each session's figures), so a ``make bench`` adds to the record
rather than erasing it.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path


def log(message: str) -> None:
    """Progress line on stderr (stdout carries only the markdown section)."""
    print(message, file=sys.stderr, flush=True)


def size_arguments(doc: str, argv=None, *, quick: int = 10_000, full: int = 100_000) -> tuple[int, int]:
    """Parse ``[N_EMPLOYEES] [REPEATS] [--quick]``: the study size and the number of timed runs."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("n_employees", nargs="?", type=int, default=None)
    parser.add_argument("repeats", nargs="?", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help=f"{quick:,} employees")
    args = parser.parse_args(argv)
    return args.n_employees or (quick if args.quick else full), args.repeats


def folder_options(argv: list[str], *names: str) -> tuple[list[str], dict[str, Path]]:
    """``argv`` without the options ``names`` (``--study DIR`` ...) and their folders, by name without dashes."""
    rest, found = list(argv), {}
    for name in names:
        if name in rest:
            i = rest.index(name)
            found[name.lstrip("-")] = Path(rest[i + 1])
            del rest[i:i + 2]
    return rest, found


def timed(fn):
    """Seconds taken by ``fn()`` and its value."""
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def repeat(fn, repeats: int) -> tuple[list[float], object]:
    """Wall times of ``repeats`` calls of ``fn`` and the last value."""
    times, value = [], None
    for _ in range(repeats):
        seconds, value = timed(fn)
        times.append(seconds)
    return times, value


def traced_peak_mib(fn) -> float:
    """Peak of Python and NumPy allocations (tracemalloc) during one call of ``fn``, in MiB."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def rss_peak_mib(children: bool = False) -> float:
    """Peak resident set size of this process (or of its largest waited-for child), in MiB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(who).ru_maxrss / scale


def command_line() -> str:
    """The command that reproduces this benchmark (as run, relative to the repository)."""
    script = os.path.relpath(sys.argv[0], os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return " ".join([".venv/bin/python", script, *sys.argv[1:]])


def fmt_runs(times) -> str:
    return ", ".join(f"{t:.3g}" for t in times)


def section(title: str, measured: str, header: list[str], rows: list[list], *, memory: list[str],
            notes: list[str] | None = None) -> None:
    """Print one markdown section on stdout."""
    lines = [f"## {title}", "", measured.strip(), "", f"Command: `{command_line()}`", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" if i == 0 else "--:" for i in range(len(header))) + "|")
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    lines.append("")
    lines.append("Peak memory: " + "; ".join(memory) + ".")
    for note in notes or []:
        lines += ["", note]
    print("\n".join(lines) + "\n", flush=True)


def median(values) -> float:
    return statistics.median(values)


def _meminfo_gib() -> str:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def header(quick: bool) -> str:
    """Title block of ``benchmarks/results.md``: date, machine and toolkit version."""
    import numpy as np
    import pandas as pd

    import alignment_research as ar

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    mode = ("quick sizes (`make bench QUICK=1`): small inputs, for a smoke test of speed, not the documented sizes"
            if quick else "documented sizes (`make bench`)")
    return "\n".join([
        "# Benchmarks",
        "",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {os.cpu_count()} cores ({cpu}), {_meminfo_gib()} memory, "
        f"load average at start {load} (1, 5, 15 min); {platform.system()} {platform.release()}",
        f"- toolkit: alignment-research {getattr(ar, '__version__', 'unknown')}; Python {platform.python_version()}, "
        f"numpy {np.__version__}, pandas {pd.__version__}",
        f"- mode: {mode}",
        "- every time is the median of the runs listed; a ratio compares with a reference measured in the same "
        "run on the same machine, so it is less sensitive to the machine than the seconds are",
        "",
    ])


def _sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The text before the first ``## `` heading, and each section as ``(heading line, whole section)``."""
    preamble, sections = [], []
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            sections.append([line.rstrip("\n"), line])
        elif sections:
            sections[-1][1] += line
        else:
            preamble.append(line)
    return "".join(preamble), [(title, body) for title, body in sections]


def merge_results(new: str, old: str) -> str:
    r"""``old`` results with the header and the sections of ``new``: same title replaced in place, new ones last.

    Examples
    --------
    >>> old = "# Benchmarks\n- date: 1 Dec\n\n## Cox\nslow\n\n## Session 3\nby hand\n"
    >>> print(merge_results("# Benchmarks\n- date: 2 Dec\n\n## Cox\nfast\n\n## Start-up\n1 s\n", old), end="")
    # Benchmarks
    - date: 2 Dec
    <BLANKLINE>
    ## Cox
    fast
    <BLANKLINE>
    ## Session 3
    by hand
    <BLANKLINE>
    ## Start-up
    1 s
    """
    header_text, fresh = _sections(new)
    fresh_by_title = dict(fresh)
    _, kept = _sections(old)
    out = [fresh_by_title.pop(title, body) for title, body in kept]
    out += [body for title, body in fresh if title in fresh_by_title]
    out = [body if body.endswith("\n\n") else body.rstrip("\n") + "\n\n" for body in out]
    return header_text + "".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    if sys.argv[1:2] == ["header"]:
        print(header("--quick" in sys.argv[2:]))
    elif sys.argv[1:2] == ["merge"] and len(sys.argv) == 4:
        new_file, results = Path(sys.argv[2]), Path(sys.argv[3])
        old = results.read_text(encoding="utf-8") if results.exists() else ""
        results.write_text(merge_results(new_file.read_text(encoding="utf-8"), old), encoding="utf-8")
        new_file.unlink()
    else:
        sys.exit("usage: python benchmarks/_common.py header [--quick] | merge NEW RESULTS")
