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


def time_run(study: Path, out: Path) -> tuple[float, "ar.RunResult"]:
    t0 = time.perf_counter()
    result = ar.run_study(study, out, progress=False)
    return time.perf_counter() - t0, result


def peak_mb() -> tuple[float, float]:
    scale = 1024 if sys.platform != "darwin" else 1024 * 1024
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=20000, help="size of the large simulated study (0: skip)")
    parser.add_argument("--repeats", type=int, default=3, help="runs on the sample (median reported)")
    parser.add_argument("--large-repeats", type=int, default=1, help="runs on the large study")
    parser.add_argument("--sample", type=Path, default=REPO / "data" / "sample")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ar-bench-run-") as tmp_name:
        tmp = Path(tmp_name)
        ref = reference_seconds(tmp, repeats=3)
        print(f"reference: execute a notebook that imports the toolkit: {ref:.1f} s (median of 3)")

        rows = []
        sample_times, result = [], None
        for i in range(args.repeats):
            seconds, result = time_run(args.sample, tmp / f"sample_{i}")
            sample_times.append(seconds)
        med = statistics.median(sample_times)
        n_nb = len(result.reports)
        rows.append(("sample", med, len(sample_times)))
        print(f"\nsample study ({args.sample.name}): {med:.1f} s median of {len(sample_times)} "
              f"({', '.join(f'{t:.1f}' for t in sample_times)}); {n_nb} notebooks; "
              f"{med / ref:.1f}x reference ({med / (ref * n_nb):.2f}x the bare per-notebook cost)")
        print(result.timings.round(1).to_string(index=False))

        if args.employees:
            t0 = time.perf_counter()
            study = ar.write_simulated_study(ar.simulate_study(n_employees=args.employees, seed=20000), tmp / "large")
            setup = time.perf_counter() - t0
            large_times = []
            for i in range(args.large_repeats):
                seconds, result = time_run(study, tmp / f"large_{i}")
                large_times.append(seconds)
            med_large = statistics.median(large_times)
            rows.append((f"{args.employees} employees", med_large, len(large_times)))
            print(f"\n{args.employees:,}-employee study: {med_large:.1f} s (median of {len(large_times)}; "
                  f"simulating and writing it, not counted: {setup:.1f} s); {med_large / ref:.1f}x reference, "
                  f"{med_large / med:.1f}x the sample")
            print(result.timings.round(1).to_string(index=False))

        own, kernels = peak_mb()
        print(f"\npeak memory: this process {own:.0f} MB, largest kernel {kernels:.0f} MB")
        print("\nsummary")
        for name, seconds, n in rows:
            print(f"  {name:>20}: {seconds:7.1f} s  (median of {n})  {seconds / ref:6.1f}x reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
