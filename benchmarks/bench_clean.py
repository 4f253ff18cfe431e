"""Benchmark: load + validate + clean of a simulated study (default 100,000 employees).

Usage::

    python benchmarks/bench_clean.py [N_EMPLOYEES] [REPEATS] [--quick] [--study FOLDER] [--baseline TREE]

The study is simulated (messy, with injected problems) by the command line in
a separate process and written to a temporary folder as CSV (``--study``
reads that folder as it is instead). Each run then times, each in a fresh
process: the reference, ``pandas.read_csv`` of every table file as text (the
floor any loader pays); and ``load_study`` followed by ``validate_and_clean``
(validation and cleaning in one pass, as the ``validate``, ``clean`` and
``run`` commands do), with the package imported before the clock starts.
Medians of ``REPEATS`` runs are printed with their ratio to the reference's
median. Peak memory is each process' peak resident set size (its imports
included), i.e. of one load + validate + clean.

``--baseline TREE`` also times another checkout of the package (a folder
holding ``alignment_research/``, e.g. ``git archive <rev> | tar -x -C TREE``)
in the same runs, interleaved, so a before/after ratio shares the machine's
load. ``--quick`` (``make bench QUICK=1``): 10,000 employees, one run.

Progress goes to stderr; stdout is a markdown section (``make bench`` collects
it into ``benchmarks/results.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import log, median, section, timed

#: The issue-12 target: load + validate + clean within this many times the read_csv reference.
TARGET_RATIO = 3.0
#: This checkout: the package measured (children import it from here, wherever the script is run from).
HERE = Path(__file__).resolve().parents[1]

#: One timed pass in a fresh process; prints a JSON line (seconds, peak RSS in MiB, what cleaning found).
_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
mode, folder = sys.argv[1], Path(sys.argv[2])
out = {}
if mode == "reference":
    import pandas as pd
    files = sorted(folder.glob("*.csv"))
    c0, t0 = time.process_time(), time.perf_counter()
    frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in files]
    out.update(read_csv=time.perf_counter() - t0, cpu=time.process_time() - c0)
else:
    import alignment_research as ar
    from alignment_research import clean  # imported before the clock starts, as in a warm session
    c0, t0 = time.process_time(), time.perf_counter()
    study = ar.load_study(folder)
    t1 = time.perf_counter()
    if hasattr(clean, "validate_and_clean"):
        problems, cleaned = clean.validate_and_clean(study)
    else:  # releases without the one-pass function
        problems, cleaned = clean.validate_study(study), clean.clean_study(study)
    t2 = time.perf_counter()
    out.update(load=t1 - t0, clean=t2 - t1, cpu=time.process_time() - c0, problems=len(problems), fatal=int(problems["fatal"].sum()),
               report=len(cleaned.report), counts=cleaned.counts.values.tolist(), version=ar.__version__,
               package=str(Path(ar.__file__).parent))
out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
print(json.dumps(out))
"""


def _pass(mode: str, folder: Path, tree: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    # run in the tree: ``python -c`` puts the working directory before PYTHONPATH on sys.path, so a child
    # started from another checkout would import that checkout's package instead of ``tree``'s
    done = subprocess.run([sys.executable, "-c", _CHILD, mode, str(Path(folder).resolve())], env=env, check=True,
                          capture_output=True, text=True, cwd=tree)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if mode != "reference" and Path(out["package"]).resolve().parent != Path(tree).resolve():
        raise RuntimeError(f"the child imported {out['package']}, not the package in {tree}")
    return out


def _measure(folder: Path, n_employees: int, repeats: int, t_sim: float | None, baseline: Path | None) -> None:
    files = sorted(folder.glob("*.csv"))
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    trees = {"this tree": HERE, **({"baseline": baseline} if baseline is not None else {})}
    runs: dict[str, list[dict]] = {"reference": [], **{name: [] for name in trees}}
    for i in range(repeats):
        runs["reference"].append(_pass("reference", folder, HERE))
        for name, tree in trees.items():
            runs[name].append(_pass("clean", folder, tree))
        line = ", ".join(f"{name} {r[-1]['load'] + r[-1]['clean']:.1f} s (CPU {r[-1]['cpu']:.1f} s)"
                         for name, r in runs.items() if name != "reference")
        log(f"pass {i + 1}/{repeats}: read_csv {runs['reference'][-1]['read_csv']:.1f} s "
            f"(CPU {runs['reference'][-1]['cpu']:.1f} s), load + validate + clean: {line}")
    ref = median(r["read_csv"] for r in runs["reference"])
    steps = {
        "load": lambda r: r["load"],
        "validate + clean": lambda r: r["clean"],
        "load + validate + clean": lambda r: r["load"] + r["clean"],
        "load + validate + clean, CPU time": lambda r: r["cpu"],
    }
    header = ["step"] + [f"{name}: {unit}" for name in trees for unit in ("median (s)", "x read_csv")]
    ref_cpu = median(r["cpu"] for r in runs["reference"])
    rows = [["read_csv (reference)"] + [f"{ref:.2f}", "1.0"] * len(trees),
            ["read_csv (reference), CPU time"] + [f"{ref_cpu:.2f}", "1.0"] * len(trees)]
    for step, value in steps.items():
        row = [step]
        for name in trees:
            med = median(value(r) for r in runs[name])
            against = ref_cpu if step.endswith("CPU time") else ref
            row += [f"{med:.2f}", f"{med / against:.1f}"]
        rows.append(row)
    current = runs["this tree"][-1]
    total = {name: median(r["load"] + r["clean"] for r in runs[name]) for name in trees}
    verdict = "meets" if total["this tree"] <= TARGET_RATIO * ref else "misses"
    memory = [f"read_csv {median(r['rss_mib'] for r in runs['reference']):,.0f} MiB"]
    memory += [f"load + validate + clean ({name}) {median(r['rss_mib'] for r in runs[name]):,.0f} MiB" for name in trees]
    made = f"simulated in {t_sim:.0f} s, " if t_sim is not None else ""
    notes = [f"load + validate + clean takes {total['this tree'] / ref:.1f}x the read_csv reference ({verdict} the "
             f"{TARGET_RATIO:g}x target)"
             + (f"; the baseline ({baseline}, version {runs['baseline'][-1]['version']}) took "
                f"{total['baseline'] / ref:.1f}x in the same runs." if baseline is not None else ".")]
    notes.append(f"{current['problems']:,} problems ({current['fatal']} fatal); {current['report']:,} report rows.")
    # counts: table, rows in, rows out, rows quarantined (and rows added, when the study has job_history)
    added = any(len(row) > 4 for row in current["counts"])
    notes.append(
        "| table | rows in | rows out | rows quarantined |" + (" rows added |" if added else "")
        + "\n|---|--:|--:|--:|" + ("--:|" if added else "") + "\n"
        + "\n".join("| " + " | ".join([row[0], *(f"{n:,}" for n in row[1:])]) + " |" for row in current["counts"])
    )
    measured = (f"{n_employees:,} employees ({made}{len(files)} CSV files, {size_mb:.0f} MB); median of {repeats} "
                f"run(s), each step in a fresh process, on {os.cpu_count()} cores; version {current['version']}. "
                "Peak memory is each process' peak resident set size, imports included. CPU time (the process' "
                "own, compared with the reference's CPU time) is less disturbed than wall time by other work on "
                "a shared machine.")
    section("Load + validate + clean", measured, header, rows, memory=memory, notes=notes)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_employees", nargs="?", type=int, default=None)
    parser.add_argument("repeats", nargs="?", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="10,000 employees, one run")
    parser.add_argument("--study", type=Path, default=None, help="read this study folder instead of simulating one")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to time in the same runs")
    args = parser.parse_args(argv)
    n_employees = args.n_employees or (10_000 if args.quick else 100_000)
    repeats = args.repeats or (1 if args.quick else 3)
    if args.baseline is not None and not (args.baseline / "alignment_research").is_dir():
        parser.error(f"--baseline {args.baseline}: no alignment_research/ folder there")
    if args.study is not None:
        _measure(args.study, n_employees, repeats, None, args.baseline)
        return
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "study"
        command = [sys.executable, "-m", "alignment_research.cli", "simulate", "--employees", str(n_employees),
                   "--seed", "1", "--out", str(study)]
        env = {**os.environ, "PYTHONPATH": str(HERE)}
        log(f"simulating {n_employees:,} employees ...")
        t_sim, _ = timed(lambda: subprocess.run(command, check=True, capture_output=True, env=env))
        _measure(study, n_employees, repeats, t_sim, args.baseline)


if __name__ == "__main__":
    main()
