"""Benchmark: the CPU of the brief's shared results in a first ``run``, and the share of it that storing them takes.

Usage::

    .venv/bin/python benchmarks/bench_store.py [N_EMPLOYEES] [REPEATS] [--quick] [--cache DIR --study DIR]

By default a study of ``N_EMPLOYEES`` (20,000; ``--quick``: 2,000) is simulated
(seed 1), written and cleaned into a cache, as ``run`` does, outside the
timing; ``--study DIR --cache DIR`` takes a study folder and a ``run``'s
``--cache`` folder instead (one process per tree, alternating, compares two
trees: ``PYTHONPATH=<tree>``). Each of ``REPEATS`` runs (default 3) copies the
cache without its stored results, opens the study from the copy (the kernels'
path: the tables read from Parquet) and computes what notebook 06 asks for
first, in its order: ``primary_analysis``, ``describe_careers``,
``describe_practices`` (the claims scorecard and its development effects) and
``who_it_works_for``, each stored as in a ``run`` (``cache.stored_result``).

Reported, as medians: the process CPU of opening the study and of the whole
sequence, and of its three storage steps, pickling (``_pickled``: text columns
coded, large arrays set apart), writing (``_write_result``) and reading back
(``_read_result``), with their share of the sequence (the reference, measured in
the same run); and the bytes stored. Progress goes to stderr, one markdown
section to stdout.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import alignment_research as ar
from alignment_research import cache as cache_module

from _common import fmt_runs, folder_options, log, rss_peak_mib, section, size_arguments

STEPS = {"pickling": "_pickled", "writing": "_write_result", "reading back": "_read_result"}


def count_cpu(spent: dict, step: str) -> None:
    """Add the CPU of every call of the storage step ``step`` to ``spent[step]``."""
    func = getattr(cache_module, STEPS[step])

    def counted(*args, **kwargs):
        start = time.process_time()
        try:
            return func(*args, **kwargs)
        finally:
            spent[step] += time.process_time() - start

    setattr(cache_module, STEPS[step], counted)


def one_run(study: Path, cache: Path, spent: dict) -> dict:
    """CPU seconds of opening the study and of the brief's shared results, from a copy of ``cache``; bytes stored."""
    spent.update(dict.fromkeys(spent, 0.0))
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        copy = Path(tmp) / "cache"
        shutil.copytree(cache, copy, ignore=shutil.ignore_patterns(cache_module.RESULTS_FOLDER))
        start = time.process_time()
        clean = ar.open_clean(study, cache_dir=copy)
        tables = clean.analysis
        _ = (tables.intervals, tables.careers, tables.survey_panel, tables.person)
        opened = time.process_time() - start
        start = time.process_time()
        ar.primary_analysis(clean, warn=False)
        ar.describe_careers(clean)
        ar.describe_practices(clean)
        ar.who_it_works_for(clean)
        total = time.process_time() - start
        stored = sum(p.stat().st_size for p in (copy / cache_module.RESULTS_FOLDER).glob("*.pickle"))
    return dict(opening=opened, total=total, **spent, gib=stored / 2**30)


def main(argv=None) -> None:
    argv, given = folder_options(list(sys.argv[1:] if argv is None else argv), "--study", "--cache")
    if len(given) == 1:
        raise SystemExit("bench_store: give --study and --cache together, or neither")
    n_employees, repeats = size_arguments(__doc__, argv, quick=2_000, full=20_000)
    warnings.simplefilter("ignore")  # the models' caveats (few clusters, ...) are not what is measured
    load_start = os.getloadavg()
    spent = dict.fromkeys(STEPS, 0.0)
    for step in STEPS:
        count_cpu(spent, step)
    with tempfile.TemporaryDirectory(prefix="bench-store-study-") as tmp:
        if given:
            study, cache = given["study"], given["cache"]
            if not cache_module.cache_is_current(cache, cache_module.study_fingerprint(study)):
                raise SystemExit(f"bench_store: {cache} is not a current cache of {study} (run the study first)")
            made = f"the study {study} and its cache {cache}"
        else:
            log(f"bench_store: simulate, write and clean {n_employees:,} employees")
            study = ar.write_simulated_study(ar.simulate_study(n_employees=n_employees, seed=1), Path(tmp) / "study")
            cache = Path(tmp) / "cache"
            ar.open_clean(study, cache_dir=cache)
            made = f"a simulated study of {n_employees:,} employees (seed 1), cleaned into a cache outside the timing"
        runs = []
        for i in range(repeats):
            runs.append(one_run(study, cache, spent))
            log(f"bench_store: run {i + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in runs[-1].items()))
    med = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    table = [["open the study from the cache", f"{med['opening']:.2f}", fmt_runs(r["opening"] for r in runs), ""],
             ["**the brief's shared results** (the reference)", f"{med['total']:.1f}",
              fmt_runs(r["total"] for r in runs), "100%"]]
    table += [[f"of which {step} (`{STEPS[step]}`)", f"{med[step]:.2f}", fmt_runs(r[step] for r in runs),
               f"{100 * med[step] / med['total']:.1f}%"] for step in STEPS]
    section(
        "The brief's shared results and storing them",
        f"From {made}: `primary_analysis`, `describe_careers`, `describe_practices` and `who_it_works_for` computed "
        f"and stored into a copy of the cache without stored results, median of {repeats} runs, process CPU seconds "
        f"(`time.process_time`). Stored: {med['gib']:.2f} GiB of results.",
        ["what", "CPU median (s)", "runs (s)", "share of the shared results"],
        table,
        memory=[f"process peak RSS {rss_peak_mib():,.0f} MiB"],
        notes=[f"Load average (1 min) {load_start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end, on "
               f"{os.cpu_count()} cores."],
    )


if __name__ == "__main__":
    main()
