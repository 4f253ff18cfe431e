"""Benchmark `alignment-research run` (the `make run` job) on the sample study, stage by stage, and on a large study.

Times `run_study` end to end (execute every notebook, render HTML, dashboard,
exports, privacy scan, index), excluding set-up (installing the environment,
and for the large study simulating and writing it): once cold (a fresh cache
folder, so the study is validated and cleaned) and ``--repeats`` times warm
(the cleaned tables reused, as a second ``make run`` does); medians reported.
The large study is run cold, then warm twice: once with the stored results
(``cache.stored_result``: the primary analysis and the scorecard) removed,
once with them.
A reference measured in the same session, a kernel started and
``import alignment_research`` executed in it (what every notebook paid before
kernels were reused), turns the times into machine-independent ratios.

The breakdown times each part on its own, ``--repeats`` times (median): a bare
kernel start, the import inside a kernel, the cached-table read in a kernel
(first and second in the same kernel), each notebook executed alone in a fresh
kernel (wall and CPU, minus the reference), and the parts ``run`` does in its
own process: the dashboard, the privacy scan, the workbook and the PDF. CPU is
user + system time of this process and of the waited-for kernels and browser;
the load average at the start and end is stated, since the machine may be
shared. Peak memory is the resident set of this process and of the largest
kernel.

Usage::

    python benchmarks/bench_run.py                       # sample: cold + 3 warm, breakdown x3, 20,000 employees x1
    python benchmarks/bench_run.py --quick                # sample: cold + 1 warm, breakdown x1, no large study
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import alignment_research as ar
from alignment_research.notebooks import execute_notebook, execute_notebooks, find_notebooks, nbformat, notebooks_dir

from _common import fmt_runs, log, section

REPO = Path(__file__).resolve().parent.parent


def cpu_seconds() -> float:
    """User + system CPU of this process and of every waited-for child (kernels, Chromium)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(fn, repeats: int) -> tuple[list[float], list[float], object]:
    """Wall and CPU seconds of ``repeats`` calls of ``fn``, and the last value."""
    walls, cpus, value = [], [], None
    for _ in range(repeats):
        c0, t0 = cpu_seconds(), time.perf_counter()
        value = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds() - c0)
    return walls, cpus, value


def one_cell_notebook(path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def time_run(study: Path, out: Path, cache: Path) -> tuple[float, float, "ar.run.RunResult"]:
    """One run into a fresh output folder; the cache folder is reused when it holds this study."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    result = ar.run_study(study, out, progress=False, cache_dir=cache)
    return time.perf_counter() - t0, cpu_seconds() - c0, result


def peak_mb() -> tuple[float, float]:
    scale = 1024 if sys.platform != "darwin" else 1024 * 1024
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale)


def row(what: str, walls: list[float], cpus: list[float] | None, ref: float, note: str = "") -> list[str]:
    med = statistics.median(walls)
    cpu = f"{statistics.median(cpus):.1f}" if cpus else ""
    return [what, f"{med:.2f}", fmt_runs(walls), cpu, f"{med / ref:.2f}", note]


def breakdown(tmp: Path, study: Path, cache: Path, out: Path, repeats: int, ref: float) -> list[list[str]]:
    """Each part of a run timed on its own (median of ``repeats``)."""
    rows = []
    bare = one_cell_notebook(tmp / "bare.ipynb", "pass")
    walls, cpus, _ = measure(lambda: execute_notebook(bare, output_path=tmp / "bare_out.ipynb"), repeats)
    rows.append(row("kernel start (a one-cell notebook: `pass`)", walls, cpus, ref, "once per kernel"))

    reads = one_cell_notebook(tmp / "reads.ipynb", "import alignment_research as ar\n"
                              f"ar.open_clean({str(study)!r}, cache_dir={str(cache)!r})")
    parameters = {reads: {}}
    log("bench_run: cached-table reads in one kernel")
    first, second = [], []
    copy = tmp / "reads2.ipynb"
    shutil.copy(reads, copy)
    for _ in range(repeats):
        times = execute_notebooks([reads, copy], parameters=parameters, output_dir=tmp / "reads_out", workers=1,
                                  cwd=notebooks_dir())
        first.append(times[reads])
        second.append(times[copy])
    rows.append(row("  cached tables read in a kernel (first notebook; import included)", first, None, ref))
    rows.append(row("  cached tables read again (next notebook in the same kernel)", second, None, ref,
                    "kernel reused: no start, no import"))

    params = {"study_dir": str(study), "clean_dir": str(cache)}
    for nb in find_notebooks():
        log(f"bench_run: {nb.stem} alone")
        declared = params if not nb.stem.startswith("01") else {"study_dir": str(study)}
        walls, cpus, _ = measure(lambda nb=nb, declared=declared: execute_notebook(
            nb, parameters=declared, output_path=tmp / f"alone_{nb.name}", cwd=notebooks_dir()), repeats)
        rows.append(row(f"notebook {nb.stem} alone (fresh kernel)", walls, cpus, ref,
                        f"cells ~{max(0.0, statistics.median(walls) - ref):.1f} s beyond kernel and import"))

    cleaned = ar.open_clean(study, cache_dir=cache)
    log("bench_run: dashboard, privacy scan, workbook, PDF")
    walls, cpus, _ = measure(lambda: ar.dashboard.write_dashboard(cleaned, tmp / "dashboard.html"), repeats)
    rows.append(row("dashboard (in run's process, drawn while the kernels work)", walls, cpus, ref))
    ids = set(cleaned.tables["employees"]["employee_id"])
    walls, cpus, _ = measure(lambda: ar.privacy.scan_outputs(out, min_group_size=cleaned.config.min_group_size,
                                                              ids=ids), repeats)
    rows.append(row("privacy scan of every file a run wrote", walls, cpus, ref))
    csvs = sorted((out / "tables").glob("*.csv"))

    def workbook():
        with pd.ExcelWriter(tmp / "results.xlsx", engine="openpyxl") as book:
            for i, csv in enumerate(csvs, start=1):
                pd.read_csv(csv, dtype=str, keep_default_na=False).to_excel(book, sheet_name=f"T{i:03d}", index=False)

    walls, cpus, _ = measure(workbook, repeats)
    rows.append(row(f"workbook ({len(csvs)} tables)", walls, cpus, ref))
    brief = next(out.glob("*brief*.html"), None)
    if brief is not None and ar.browser.find_chromium() is not None:
        walls, cpus, _ = measure(lambda: ar.browser.print_pdf(brief, tmp / "brief.pdf"), repeats)
        rows.append(row("PDF of the brief (headless Chromium; started as soon as the brief is rendered)",
                        walls, cpus, ref))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=None,
                        help="size of the large simulated study (0: skip; default 20000, 0 with --quick)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="warm runs on the sample and breakdown repeats (median; default 3, 1 with --quick)")
    parser.add_argument("--large-repeats", type=int, default=1, help="runs on the large study")
    parser.add_argument("--sample", type=Path, default=REPO / "data" / "sample")
    parser.add_argument("--quick", action="store_true", help="sample: cold + 1 warm run, breakdown once, no large study")
    args = parser.parse_args(argv)
    if args.employees is None:
        args.employees = 0 if args.quick else 20000
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="ar-bench-run-") as tmp_name:
        tmp = Path(tmp_name)
        log("bench_run: reference (kernel start and import alignment_research)")
        ref_nb = one_cell_notebook(tmp / "reference.ipynb", "import alignment_research as ar")
        ref_walls, ref_cpus, _ = measure(lambda: execute_notebook(ref_nb, output_path=tmp / "reference_out.ipynb"),
                                         3)
        ref = statistics.median(ref_walls)
        rows = [row("reference: kernel start + `import alignment_research`", ref_walls, ref_cpus, ref,
                    "paid by every notebook before kernels were reused")]
        notes = []

        cache = tmp / "sample_cache"
        log("bench_run: sample, cold run")
        cold_wall, cold_cpu, cold = time_run(args.sample, tmp / "sample_cold", cache)
        warm_walls, warm_cpus, warm = [], [], []
        for i in range(args.repeats):
            log(f"bench_run: sample, warm run {i + 1}")
            seconds, cpu, result = time_run(args.sample, tmp / f"sample_{i}", cache)
            warm_walls.append(seconds)
            warm_cpus.append(cpu)
            warm.append(result.timings)
        n_nb = len(result.reports)
        rows.append(row(f"**`run_study`** sample ({n_nb} notebooks), cold: validated and cleaned", [cold_wall],
                        [cold_cpu], ref))
        rows.append(row(f"**`run_study`** sample ({n_nb} notebooks), warm: cleaned tables reused (`make run` again)",
                        warm_walls, warm_cpus, ref, "target (issue 12): <= 30 s wall on 2 quiet cores"))
        stages = pd.concat(warm).groupby("stage", sort=False)["seconds"].median().round(1).reset_index()
        notes.append("Stages of the warm runs (median wall s; notebooks run two at a time, so they overlap each other and "
                     f"the dashboard; each notebook's time includes rendering its page):\n\n{_markdown(stages)}\n\n"
                     f"Stages of the cold run (wall s):\n\n{_markdown(cold.timings.round(1))}")
        rows += breakdown(tmp, args.sample, cache, tmp / "sample_0", args.repeats, ref)

        if args.employees:
            log(f"bench_run: simulate {args.employees:,}")
            t0 = time.perf_counter()
            study = ar.write_simulated_study(ar.simulate_study(n_employees=args.employees, seed=20000), tmp / "large")
            setup = time.perf_counter() - t0
            large_walls, large_cpus = [], []
            for i in range(args.large_repeats):
                log(f"bench_run: large run {i + 1}")
                seconds, cpu, large = time_run(study, tmp / f"large_{i}", tmp / f"large_cache_{i}")
                large_walls.append(seconds)
                large_cpus.append(cpu)
            rows.append(row(f"**`run_study`** {args.employees:,}-employee simulated study, cold", large_walls,
                            large_cpus, ref, "target (issue 12): <= 60 s"))
            # warm: the cleaned tables reused; first with the stored results (primary analysis, scorecard) removed,
            # as after a change of code, then with them, as a second run with nothing changed
            cache0 = tmp / "large_cache_0"
            for label, keep in (("warm, tables reused, results computed", False),
                                ("warm, tables and stored results reused", True)):
                if not keep:
                    shutil.rmtree(cache0 / ar.cache.RESULTS_FOLDER, ignore_errors=True)
                log(f"bench_run: large run, {label}")
                seconds, cpu, _ = time_run(study, tmp / f"large_{label[:4]}_{keep}", cache0)
                rows.append(row(f"**`run_study`** {args.employees:,}-employee simulated study, {label}", [seconds],
                                [cpu], ref))
            notes.append(f"The {args.employees:,}-employee study took {setup:.1f} s to simulate and write (not "
                         f"counted). Its stages (wall s):\n\n{_markdown(large.timings.round(1))}")
        else:
            notes.append("No large study in this run (`--employees 0` or `--quick`).")

        own, kernels = peak_mb()
        load_after = os.getloadavg()
        notes.append(f"Load average (1 min) {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end, on "
                     f"{os.cpu_count()} cores: wall times above the load of a quiet machine are stretched; CPU "
                     "seconds are not.")
        section(
            "`alignment-research run` (the `make run` job)",
            "`run_study` end to end (execute every notebook, render HTML, dashboard, exports, privacy scan, index), "
            "excluding set-up, then each part on its own. Two kernels execute the notebooks, each reused for the "
            "next notebook with a fresh namespace. Reference in the same run: a kernel started and "
            "`import alignment_research` executed in it, median of 3. CPU: this process, the kernels and the "
            "browser, user + system.",
            ["what", "median wall (s)", "runs (s)", "CPU (s)", "x reference", "note"],
            rows,
            memory=[f"this process {own:.0f} MB", f"largest kernel {kernels:.0f} MB (peak resident set)"],
            notes=notes,
        )
    return 0


def _markdown(frame) -> str:
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in r) + " |" for r in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


if __name__ == "__main__":
    sys.exit(main())
