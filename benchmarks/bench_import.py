"""Benchmark start-up: ``import alignment_research`` and ``alignment-research --help``.

Each command runs in a fresh interpreter ``--repeats`` times; the median wall
time is reported beside a reference measured in the same run: a bare
interpreter (``python -c pass``) and ``import pandas`` (the smallest thing any
analysis needs). Targets (issue 12): both commands at most 1.0 s here. Peak
memory is the largest resident set of the child processes.

Usage::

    python benchmarks/bench_import.py [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from _common import fmt_runs, log, median, rss_peak_mib, section

BIN = Path(sys.executable).parent

COMMANDS = {
    "`python -c pass` (reference)": [sys.executable, "-c", "pass"],
    "`import pandas` (reference)": [sys.executable, "-c", "import pandas"],
    "`import alignment_research`": [sys.executable, "-c", "import alignment_research"],
    "`alignment-research --help`": [sys.executable, "-m", "alignment_research.cli", "--help"],
    "`alignment-research --version`": [sys.executable, "-m", "alignment_research.cli", "--version"],
}


def wall_times(command: list[str], repeats: int) -> list[float] | None:
    """Wall time of each of ``repeats`` runs (None when the command fails, e.g. an option this version lacks)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            return None
    return times


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 runs per command")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    rows, notes = [], []
    base = None
    for name, cmd in COMMANDS.items():
        log(f"bench_import: {name}")
        times = wall_times(cmd, repeats)
        if times is None:
            notes.append(f"{name}: not measured, the command fails in this version.")
            continue
        med = median(times)
        base = base or med
        rows.append([name, f"{med:.3f}", f"{max(times) - min(times):.3f}", f"{med / base:.1f}x", fmt_runs(times)])
    section(
        f"Start-up (median of {repeats}, fresh interpreter each)",
        "Wall time of each command in a fresh interpreter (the CLI is run as `python -m alignment_research.cli`, "
        "which is what the `alignment-research` entry point executes). Reference: a bare interpreter, measured "
        "in the same run. Target (issue 12): import and `--help` at most 1.0 s.",
        ["command", "median (s)", "spread (s)", "vs bare python", "runs (s)"],
        rows,
        memory=[f"largest child process resident set {rss_peak_mib(children=True):.0f} MiB"],
        notes=notes,
    )


if __name__ == "__main__":
    main()
