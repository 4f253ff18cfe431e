"""Benchmark: the test suite run serially against the same suite on every core (pytest-xdist).

Usage::

    .venv/bin/python benchmarks/bench_tests.py [--repeats 2] [--workers auto]
        [--dist loadfile [loadscope ...]] [--marker "not slow"] [--quick] [--junit-dir DIR]

Runs ``python -m pytest tests -q -p no:cacheprovider -m MARKER`` in a subprocess,
once serially and once per ``--dist`` mode with ``-n WORKERS``, and repeats that
round ``--repeats`` times, interleaving the runs (serial, parallel, serial,
parallel, ...) so that a change in the load of a shared machine hits both sides
alike. The reference is the serial run of the same round. Reported: the median
wall time of each, the ratio serial / parallel (the speed-up), and the
outcome counts of every run read from its JUnit XML file, so a parallel run that
passes fewer tests than the serial one shows. ``--quick`` runs a few small
test files instead of the fast suite (a smoke test of the benchmark itself);
``--marker ""`` runs every test, the slow ones included, as ``make test`` does.

Every run also records the CPU seconds of each test file (the plugin
``benchmarks/_file_cpu.py``): the longest files are listed with the seconds
``tests/conftest.py`` expects of them (``FILE_CPU_SECONDS``, the order in which
the workers take the files). CPU, unlike wall time, hardly depends on what
else the machine runs, so it is the budget to keep each file within.

Progress goes to stderr; stdout is a markdown section (``make bench`` collects
it into ``benchmarks/results.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from _common import fmt_runs, log, median, rss_peak_mib, section

REPO = Path(__file__).resolve().parents[1]
#: Small test files for ``--quick``: quick to collect and run, no notebook execution.
QUICK_FILES = ["tests/test_config.py", "tests/test_schema.py", "tests/test_formula.py", "tests/test_scan.py"]


def _outcomes(junit: Path) -> dict[str, int]:
    """Counts of passed, failed, errors and skipped tests in a JUnit XML file."""
    root = ET.parse(junit).getroot()
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in root.iter("testsuite"):
        for key in counts:
            counts[key] += int(suite.get(key, 0))
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts


def _children_cpu() -> float:
    """CPU seconds (user + system) of every waited-for child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _file_cpu(prefix: Path) -> dict[str, float]:
    """CPU seconds of each test file, summed over the processes of one run (``benchmarks/_file_cpu.py``)."""
    cpu: dict[str, float] = {}
    for path in prefix.parent.glob(f"{prefix.name}.*.json"):
        for name, seconds in json.loads(path.read_text())["cpu"].items():
            cpu[name] = cpu.get(name, 0.0) + seconds
    return cpu


def _expected_cpu() -> dict[str, float]:
    """``FILE_CPU_SECONDS`` of tests/conftest.py: what the ordering of the files expects of each."""
    sys.path.insert(0, str(REPO / "tests"))
    try:
        import conftest  # the test suite's conftest, for its table only
    finally:
        sys.path.pop(0)
    return {f"tests/{name}": seconds for name, seconds in conftest.FILE_CPU_SECONDS.items()}


def _run(targets: list[str], marker: str, extra: list[str], junit: Path) -> tuple[float, float, int, dict]:
    """Wall seconds, CPU seconds, exit code and outcome counts of one pytest run in a subprocess.

    Each process of the run writes its files' CPU seconds beside the JUnit file (read by `_file_cpu`).
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "benchmarks")]),
               FILE_CPU_OUT=str(junit.with_suffix(".cpu")))
    command = [sys.executable, "-m", "pytest", *targets, "-q", "-p", "no:cacheprovider", "-p", "_file_cpu",
               "-m", marker, f"--junitxml={junit}", *extra]
    with open(junit.with_suffix(".log"), "w") as output:
        start, cpu = time.perf_counter(), _children_cpu()
        done = subprocess.run(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
        seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    counts = _outcomes(junit) if junit.exists() else {"passed": 0, "failures": 0, "errors": 0, "skipped": 0}
    return seconds, cpu, done.returncode, counts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="rounds of serial + parallel runs (default 2)")
    parser.add_argument("--workers", default="auto", help="pytest-xdist -n (default auto: one per core)")
    parser.add_argument("--dist", nargs="+", default=["loadfile"], help="pytest-xdist --dist modes to time")
    parser.add_argument("--marker", default="not slow", help='pytest -m expression (default "not slow")')
    parser.add_argument("--quick", action="store_true", help="a few small test files instead of the suite")
    parser.add_argument("--junit-dir", default=None, help="keep each run's JUnit XML file in this folder")
    parser.add_argument("--top", type=int, default=15, help="test files listed by CPU seconds (default 15)")
    args = parser.parse_args(argv)
    targets = QUICK_FILES if args.quick else ["tests"]

    variants = [("serial", [])] + [(f"-n {args.workers} --dist {mode}", ["-n", args.workers, "--dist", mode])
                                   for mode in args.dist]
    times = {name: [] for name, _ in variants}
    cpus = {name: [] for name, _ in variants}
    outcomes = {name: [] for name, _ in variants}
    file_cpu: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-tests-") as tmp:
        if args.junit_dir:
            tmp = args.junit_dir
            Path(tmp).mkdir(parents=True, exist_ok=True)
        for round_ in range(args.repeats):
            for name, extra in variants:
                junit = Path(tmp) / f"{round_}-{len(times[name])}-{name.split()[-1]}.xml"
                seconds, cpu, code, counts = _run(targets, args.marker, extra, junit)
                for file, file_seconds in _file_cpu(junit.with_suffix(".cpu")).items():
                    file_cpu.setdefault(file, []).append(file_seconds)
                log(f"round {round_ + 1}/{args.repeats} {name}: {seconds:.1f} s wall, {cpu:.1f} s CPU, "
                    f"exit {code}, {counts}")
                times[name].append(seconds)
                cpus[name].append(cpu)
                outcomes[name].append(f"{counts['passed']} passed, {counts['failures'] + counts['errors']} failed, "
                                      f"{counts['skipped']} skipped")

    reference = median(times["serial"])
    rows = []
    for name, _ in variants:
        mid = median(times[name])
        shown = "**serial** (reference)" if name == "serial" else f"`{name}`"
        rows.append([shown, f"{mid:.1f}", fmt_runs(times[name]), f"{reference / mid:.2f}",
                     f"{median(cpus[name]):.0f}", "; ".join(sorted(set(outcomes[name])))])
    what = "a few small test files (`--quick`)" if args.quick else f'the suite with `-m "{args.marker}"`'
    expected = _expected_cpu()
    longest = sorted(file_cpu, key=lambda f: -median(file_cpu[f]))[:args.top]
    files = ["| test file | CPU (s), median of every run | expected in tests/conftest.py (s) |", "|---|--:|--:|"]
    files += [f"| `{f}` | {median(file_cpu[f]):.0f} | {expected.get(f, '-')} |" for f in longest]
    total = sum(median(v) for v in file_cpu.values())
    section(
        "Test suite: serial against pytest-xdist",
        f"Wall time of {what} in a pytest subprocess, serially and on `{os.cpu_count()}` cores with "
        f"pytest-xdist (`-n {args.workers}`), median of {args.repeats} interleaved rounds (serial and parallel "
        "alternate, so a change in the load of a shared machine hits both). `serial / this` > 1 means the "
        "parallel run is that many times faster. Collection (about a minute: the package and test imports) "
        "is inside the times. CPU is the user + system time of pytest and every process it waited for "
        "(workers, notebook kernels), median: what the run costs whatever the load of the machine.",
        ["run", "median (s)", "runs (s)", "serial / this", "CPU (s)", "outcomes"],
        rows,
        memory=[f"largest single pytest process {rss_peak_mib(children=True):.0f} MiB (resident set)"],
        notes=[f"Load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min).",
               f"The {len(longest)} test files that took the most CPU (setup, tests and teardown, kernels and "
               f"process pools included; {total:.0f} s over all {len(file_cpu)} files). A file well above what "
               "tests/conftest.py expects should get its measured figure there, so the workers start it early:\n\n"
               + "\n".join(files)],
    )


if __name__ == "__main__":
    main()
