"""Benchmark `alignment-research run` (the `make run` job) on the sample study and on a large simulated study.

Times `run_study` end to end (validate and clean, execute every notebook, render
HTML, privacy scan, index), excluding set-up (installing the environment, and
for the large study simulating and writing it). The sample is run ``--repeats``
times and the median reported; the large study once by default (it takes
minutes). A reference measured in the same session, the cost of executing a
one-cell notebook that imports the toolkit (kernel start and import, paid once
per notebook), turns the times into machine-independent ratios. Peak memory is
the resident set of this process and of the largest kernel.

Usage::

    python benchmarks/bench_run.py                       # sample x3, 20,000 employees x1
    python benchmarks/bench_run.py --employees 2000 --repeats 1   # a quick run
    python benchmarks/bench_run.py --quick                # sample x1, no large study
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

import alignment_research as ar
from alignment_research.notebooks import execute_notebook

from _common import fmt_runs, log, section

REPO = Path(__file__).resolve().parent.parent


def reference_seconds(tmp: Path, repeats: int) -> float:
    """Median time to execute a notebook that only imports the toolkit."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import alignment_research as ar")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp / "reference.ipynb"
    nbformat.write(nb, path)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        execute_notebook(path, output_path=tmp / "reference_out.ipynb")
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_run(study: Path, out: Path) -> tuple[float, "ar.run.RunResult"]:
    """One cold run: a fresh cache folder next to ``out``, so the cleaned tables of an earlier run are not reused."""
    t0 = time.perf_counter()
    result = ar.run_study(study, out, progress=False, cache_dir=out.parent / f"{out.name}_cache")
    return time.perf_counter() - t0, result


def peak_mb() -> tuple[float, float]:
    scale = 1024 if sys.platform != "darwin" else 1024 * 1024
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=None,
                        help="size of the large simulated study (0: skip; default 20000, 0 with --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="runs on the sample (median; default 3, 1 with --quick)")
    parser.add_argument("--large-repeats", type=int, default=1, help="runs on the large study")
    parser.add_argument("--sample", type=Path, default=REPO / "data" / "sample")
    parser.add_argument("--quick", action="store_true", help="one run on the sample, no large study")
    args = parser.parse_args(argv)
    if args.employees is None:
        args.employees = 0 if args.quick else 20000
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3

    with tempfile.TemporaryDirectory(prefix="ar-bench-run-") as tmp_name:
        tmp = Path(tmp_name)
        log("bench_run: reference notebook")
        ref_times = []
        for _ in range(3):
            ref_times.append(reference_seconds(tmp, repeats=1))
        ref = statistics.median(ref_times)
        rows = [["reference: execute a notebook that only imports the toolkit", f"{ref:.1f}", fmt_runs(ref_times),
                 "1.0", ""]]
        notes = []

        sample_times, result = [], None
        for i in range(args.repeats):
            log(f"bench_run: sample run {i + 1}")
            seconds, result = time_run(args.sample, tmp / f"sample_{i}")
            sample_times.append(seconds)
        med = statistics.median(sample_times)
        n_nb = len(result.reports)
        rows.append([f"**`run_study`** sample study ({args.sample.name}, {n_nb} notebooks)", f"{med:.1f}",
                     fmt_runs(sample_times), f"{med / ref:.1f}", f"{med / (ref * n_nb):.2f}"])
        notes.append(f"Stages of the last sample run (s):\n\n{_markdown(result.timings.round(1))}")

        if args.employees:
            log(f"bench_run: simulate {args.employees:,}")
            t0 = time.perf_counter()
            study = ar.write_simulated_study(ar.simulate_study(n_employees=args.employees, seed=20000), tmp / "large")
            setup = time.perf_counter() - t0
            large_times = []
            for i in range(args.large_repeats):
                log(f"bench_run: large run {i + 1}")
                seconds, result = time_run(study, tmp / f"large_{i}")
                large_times.append(seconds)
            med_large = statistics.median(large_times)
            rows.append([f"**`run_study`** {args.employees:,}-employee simulated study", f"{med_large:.1f}",
                         fmt_runs(large_times), f"{med_large / ref:.1f}",
                         f"{med_large / (ref * len(result.reports)):.2f}"])
            notes.append(f"The {args.employees:,}-employee study took {setup:.1f} s to simulate and write (not "
                         f"counted); it ran {med_large / med:.1f}x as long as the sample. Its stages (s):\n\n"
                         f"{_markdown(result.timings.round(1))}")
        else:
            notes.append("No large study in this run (`--employees 0` or `--quick`).")

        own, kernels = peak_mb()
        section(
            "`alignment-research run` (the `make run` job)",
            "`run_study` end to end (validate and clean, execute every notebook, render HTML, privacy scan, index), "
            "excluding set-up; each run is cold (a fresh cache folder, so no cleaned tables are reused). "
            "Reference in the same run: executing a one-cell notebook that imports the toolkit "
            "(kernel start and import, paid once per notebook), median of 3. 'per notebook' divides by the "
            "reference times the number of notebooks (1.0 would mean each notebook costs no more than a bare "
            "kernel).",
            ["what", "median (s)", "runs (s)", "x reference", "per notebook"],
            rows,
            memory=[f"this process {own:.0f} MB", f"largest kernel {kernels:.0f} MB (peak resident set)"],
            notes=notes,
        )
    return 0


def _markdown(frame) -> str:
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


if __name__ == "__main__":
    sys.exit(main())
