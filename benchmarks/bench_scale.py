"""Benchmark: the whole path at scale, stage by stage (issue 12: 1,000,000 employees on this 24 GB machine).

Usage: ``python benchmarks/bench_scale.py [--employees N] [--quick] [--keep DIR] [--stages S,...] [--limit-gib G]``
(default 1,000,000 employees; ``--quick``: 100,000, the smoke test ``make bench QUICK=1`` runs).
``--stages`` with ``--keep`` runs some stages again on a kept work folder (the others are read from its
``stages.json``); ``--limit-gib`` caps each stage's address space, so a stage that needs more memory than
the machine can spare fails alone (run the 1,000,000 stages one at a time under it).

Each stage runs in a fresh Python process (the package imported before its clock
starts), reads what the previous stage left in a work folder and writes what the
next one needs, so each stage's peak resident set size (RSS) is its own:

1. ``simulate``: ``simulate_study(n_employees=N, seed=1, messy=False)``;
2. ``write``: the same study written as CSV files (``write_simulated_study``);
3. ``clean``: ``load_study`` + validate + clean of that folder (``clean.validate_and_clean``);
4. ``tables``: ``build_analysis_tables`` of the cleaned study;
5. ``cox``: the primary retention model, time-varying Cox on ``intervals`` clustered by manager;
6. ``mixed``: the primary engagement model, random intercept per manager on the survey panel.

The model stages read only the columns they use from the hand-over parquet files, with the text
columns as (sorted) categories, as a script working at this scale would; each stage also reports its
peak projected to 1,000,000 employees (the RSS after imports as measured, the rest linear in employees).

Stages 1 and 2 share a process (the simulated study is not kept on disk in between);
hand-over files between stages (pickle, parquet) are written and read outside the clocks.
A bare ``pandas.read_csv`` of the study's CSV files is timed in its own process as the reference.
A stage that fails (e.g. killed for lack of memory) is reported as failed and the later stages still run
on whatever the earlier ones left.

Measured here (2026-12-02, shared 2-core, 24 GB machine), at 300,000 employees: before the issue-12 memory
work the largest stage was the Cox fit, 7.2 GiB peak RSS (about 24 GiB projected at 1,000,000 employees);
after it the Cox stage peaks at 2.9 GiB (9.4 GiB projected) and the largest stage is the analysis tables,
5.0 GiB (16.4 GiB projected: 2.0 GiB of it is the cleaned study it reads, and the intervals and careers
tables it returns are about 1 GiB each), then simulate + write (12.4 GiB projected) and clean (10.9 GiB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import log, section

#: This checkout: the package measured (children import it from here, wherever the script is run from).
HERE = Path(__file__).resolve().parents[1]

#: The primary models (as in the leadership brief notebook, without its small-group pooling).
COX_FORMULA = "alignment_cascade + engagement + manager_program + C(job_level) + C(department)"
MIXED_FORMULA = "engagement ~ alignment_cascade + manager_program + C(job_level)"

#: The columns each model stage reads from its hand-over file: the formula's, the survival and cluster columns.
COX_COLUMNS = ["employee_id", "spell", "manager_id", "start", "stop", "event", "alignment_cascade", "engagement",
               "manager_program", "job_level", "department"]
MIXED_COLUMNS = ["manager_id", "engagement", "alignment_cascade", "manager_program", "job_level"]

#: One stage in a fresh process; prints a JSON line: seconds per step, peak RSS (MiB) and sizes.
_CHILD = r"""
import json, pickle, resource, sys, time
from pathlib import Path
stage, work, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
out = {}
if stage == "reference":
    import pandas as pd
    t0 = time.perf_counter()
    frames = [pd.read_csv(p) for p in sorted((work / "study").glob("*.csv"))]
    out["read_csv"] = time.perf_counter() - t0
    out["rows"] = sum(len(f) for f in frames)
else:
    import alignment_research as ar
    from alignment_research import clean as clean_module
    import pandas as pd
out["rss_import_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # interpreter and imports
if stage == "simulate":
    copies = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    t0 = time.perf_counter()
    sim = ar.simulate_study(n_employees=n // copies, seed=1, messy=False)
    out["simulate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    folder = ar.write_simulated_study(sim, work / ("one" if copies > 1 else "study"))
    out["write"] = time.perf_counter() - t0
    if copies > 1:  # the organisation K times over, each copy's ids prefixed: K times the rows, the same shape
        import shutil
        import pandas as pd
        del sim
        t0 = time.perf_counter()
        target = work / "study"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        for path in sorted(folder.iterdir()):
            if path.suffix != ".csv":
                shutil.copy(path, target / path.name)
                continue
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            ids = [c for c in frame.columns if c.endswith("_id")]
            for k in range(copies):
                copy = frame.assign(**{c: frame[c].where(frame[c] == "", f"C{k}" + frame[c]) for c in ids})
                copy.to_csv(target / path.name, mode="a", header=k == 0, index=False)
        out["copy"] = time.perf_counter() - t0
        shutil.rmtree(folder)
        folder = target
    out["csv_mb"] = sum(p.stat().st_size for p in folder.glob("*.csv")) / 1e6
elif stage == "clean":
    t0 = time.perf_counter()
    study = ar.load_study(work / "study")
    out["load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    problems, cleaned = clean_module.validate_and_clean(study)
    out["validate_clean"] = time.perf_counter() - t0
    out["rows"] = {k: len(v) for k, v in cleaned.tables.items()}
    (work / "clean.pkl").write_bytes(pickle.dumps(cleaned, protocol=5))
elif stage == "tables":
    cleaned = pickle.loads((work / "clean.pkl").read_bytes())
    rss_in = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    timings = {}
    t0 = time.perf_counter()
    tables = ar.build_analysis_tables(cleaned, timings=timings)
    out["tables"] = time.perf_counter() - t0
    out["rss_before_mib"] = rss_in
    out["steps"] = timings
    out["rows"] = {k: len(getattr(tables, k)) for k in ("person", "intervals", "survey_panel", "cycles")}
    tables.intervals.to_parquet(work / "intervals.parquet", index=False)
    tables.survey_panel.to_parquet(work / "survey_panel.parquet", index=False)
elif stage in ("cox", "mixed"):
    import pandas as pd
    name = "intervals" if stage == "cox" else "survey_panel"
    # the columns the model reads (as a script at this scale would load them), not all of the table's, and
    # text as categories (sorted, so a C() term's reference level is the one of the text column)
    text = [c for c in sys.argv[5].split(",") if c in ("employee_id", "manager_id", "department")]
    data = pd.read_parquet(work / f"{name}.parquet", columns=sys.argv[5].split(","), read_dictionary=text)
    for c in text:
        data[c] = data[c].cat.set_categories(sorted(data[c].cat.categories))
    rss_in = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    if stage == "cox":
        fit = ar.fit_cox(data, sys.argv[4], start="start", stop="stop", event="event", cluster="manager_id")
    else:
        fit = ar.fit_mixed(data, sys.argv[4], groups="manager_id")
    out[stage] = time.perf_counter() - t0
    out["rss_before_mib"] = rss_in
    out["n"] = int(fit.glance()["n"].iloc[0]) if "n" in fit.glance() else len(data)
out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
print(json.dumps(out))
"""


def run_stage(stage: str, work: Path, n: int, *extra: str, limit_gib: float | None = None) -> dict:
    """Run one stage in a fresh process with this checkout first on the path; its JSON result.

    ``limit_gib``: the child's address-space limit (``RLIMIT_AS``), so that a stage which
    needs more memory fails on its own instead of pushing other work on the machine out.
    """
    log(f"bench_scale: {stage}")
    env = {**os.environ, "PYTHONPATH": str(HERE), "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}

    def limit():
        if limit_gib:
            size = int(limit_gib * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    done = subprocess.run([sys.executable, "-c", _CHILD, stage, str(work), str(n), *extra], env=env,
                          capture_output=True, text=True, preexec_fn=limit)
    if done.returncode != 0:
        return {"failed": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1][:300],
                "returncode": done.returncode}
    return json.loads(done.stdout.strip().splitlines()[-1])


#: The stages in order (``simulate`` also writes the CSV files; ``reference`` reads them).
STAGES = ("simulate", "reference", "clean", "tables", "cox", "mixed")


def _projected(r: dict, n: int, imports: float | None) -> str:
    """Peak RSS projected to 1,000,000 employees: the imports as measured, the rest linear in employees.

    ``imports``: the RSS of a process that only imports, for a stage that did not record its own.
    """
    base = r.get("rss_import_mib", imports)
    if n >= 1_000_000 or base is None:
        return ""
    return _gib(base + (r["rss_mib"] - base) * 1_000_000 / n)


def _gib(mib: float) -> str:
    return f"{mib / 1024:.2f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=None, help="study size (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="100,000 employees (smoke test)")
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    parser.add_argument("--stages", default=None,
                        help=f"comma-separated stages to run ({','.join(STAGES)}; default all); with --keep, the "
                             "others are taken from the folder's earlier run (its stages.json and hand-over files)")
    parser.add_argument("--copies", type=int, default=1,
                        help="make the study as this many copies of a simulated study of N / copies employees, each "
                             "copy's ids prefixed (C0..., C1...): the same shape, K times the rows, in a fraction of "
                             "the simulator's time and memory (the simulate stage is not part of the path measured)")
    parser.add_argument("--limit-gib", type=float, default=None,
                        help="address-space limit of each stage's process in GiB (a stage that needs more fails)")
    args = parser.parse_args(argv)
    n = args.employees or (100_000 if args.quick else 1_000_000)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    wanted = STAGES if args.stages is None else args.stages.split(",")
    if any(s not in STAGES for s in wanted):
        parser.error(f"--stages: choose from {', '.join(STAGES)}")
    saved = work / "stages.json"
    res = json.loads(saved.read_text()) if args.stages is not None and saved.exists() else {}
    extra = {"simulate": (str(args.copies),), "cox": (COX_FORMULA, ",".join(COX_COLUMNS)),
             "mixed": (MIXED_FORMULA, ",".join(MIXED_COLUMNS))}
    try:
        for stage in STAGES:
            if stage in wanted:
                res[stage] = run_stage(stage, work, n, *extra.get(stage, ()), limit_gib=args.limit_gib)
                saved.write_text(json.dumps(res))
            elif stage not in res:
                res[stage] = {"failed": "not run", "returncode": "-"}
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    res["imports"] = run_stage("imports", work, n)  # a process that only imports: the base of the projections
    imports = res["imports"].get("rss_mib")
    ref = res["reference"].get("read_csv")
    load = os.getloadavg()

    def row(label, stage, keys, what=""):
        r = res[stage]
        if r.get("failed") == "not run":
            return [label, "not run", "", "", "", "", ""]
        if "failed" in r:
            return [label, "failed", "", "", "", "", f"{r['failed']} (exit {r['returncode']})"]
        secs = sum(r[k] for k in keys)
        ratio = f"{secs / ref:.1f}" if ref else ""
        read = _gib(r["rss_before_mib"]) if "rss_before_mib" in r else ""
        return [label, f"{secs:.1f}", ratio, _gib(r["rss_mib"]), read, _projected(r, n, imports), what]

    sim = res["simulate"]
    rows = [
        row("reference: bare `pandas.read_csv` of the study's CSV files", "reference", ["read_csv"],
            f"{res['reference'].get('rows', 0):,} rows"),
        row("1. simulate (`simulate_study`)" + (f" of {n // args.copies:,} employees" if args.copies > 1 else ""),
            "simulate", ["simulate"], "peak RSS shared with 2."),
        row("2. write CSV (`write_simulated_study`)" + (f", then {args.copies} copies with prefixed ids"
                                                         if args.copies > 1 else ""),
            "simulate", ["write", "copy"] if args.copies > 1 else ["write"], f"{sim.get('csv_mb', 0):,.0f} MB"),
        row("3. load + validate + clean", "clean", ["load", "validate_clean"],
            ", ".join(f"{k} {v:,}" for k, v in res["clean"].get("rows", {}).items())),
        row("4. analysis tables (`build_analysis_tables`)", "tables", ["tables"],
            ", ".join(f"{k} {v:,}" for k, v in res["tables"].get("rows", {}).items())),
        row("5. primary retention model: `fit_cox` on intervals, clustered by manager", "cox", ["cox"],
            f"n {res['cox'].get('n', 0):,}"),
        row("6. primary engagement model: `fit_mixed`, random intercept per manager", "mixed", ["mixed"],
            f"n {res['mixed'].get('n', 0):,}"),
    ]
    done = {k: v for k, v in res.items() if "failed" not in v and k not in ("reference", "imports")}
    peak_stage = max(done, key=lambda k: done[k]["rss_mib"]) if done else None
    if peak_stage == "simulate":
        peak_stage = "simulate + write"
    slow = {"simulate": sim.get("simulate", 0), "write": sim.get("write", 0),
            "clean": res["clean"].get("load", 0) + res["clean"].get("validate_clean", 0),
            "tables": res["tables"].get("tables", 0), "cox": res["cox"].get("cox", 0), "mixed": res["mixed"].get("mixed", 0)}
    slow_stage = max(slow, key=slow.get)
    notes = [f"Load average at the end: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} (1, 5, 15 min) on "
             f"{os.cpu_count()} cores; times on a shared machine."]
    if peak_stage:
        peak = done["simulate" if peak_stage == "simulate + write" else peak_stage]["rss_mib"]
        projected = _projected(done["simulate" if peak_stage == "simulate + write" else peak_stage], n, imports)
        at_1m = f", projected {projected} GiB at 1,000,000 employees" if projected else ""
        notes.append(f"The stage that limits scale by memory: **{peak_stage}** (peak RSS {_gib(peak)} GiB"
                     f"{at_1m}); by time: **{slow_stage}** ({slow[slow_stage]:.0f} s).")
    if "steps" in res["tables"]:
        steps = sorted(res["tables"]["steps"].items(), key=lambda kv: -kv[1])[:4]
        notes.append("Slowest steps of the tables: " + ", ".join(f"`{k}` {v:.1f} s" for k, v in steps) + ".")
    failed = [k for k, v in res.items() if "failed" in v and v["failed"] != "not run" and k != "imports"]
    if failed:
        notes.append("Failed stages: " + ", ".join(failed) + ".")
    if args.stages is not None:
        earlier = [k for k in STAGES if k not in wanted and "failed" not in res[k]]
        if earlier:
            notes.append(f"Run in parts: this command ran {', '.join(wanted)}; {', '.join(earlier)} come from an "
                         f"earlier run on the same work folder (same size and seed).")
    if args.limit_gib:
        notes.append(f"Each stage ran under an address-space limit of {args.limit_gib:g} GiB (`--limit-gib`), so a "
                     "stage that needs more fails instead of taking memory from other work on the machine.")
    section(
        f"The whole path at scale ({n:,} employees)",
        "Each stage in a fresh process (package imported before its clock starts), handing its output to the next "
        "through files written and read outside the clocks. Peak memory is each process' peak RSS, the hand-over "
        "file it reads and its imports included. Ratios are to a bare `pandas.read_csv` of the same CSV files in the "
        "same run. One run per stage. 'input read' is the RSS after reading the hand-over file, before the clock "
        "starts; the model stages read only the columns their formula, survival times and clusters use, "
        "with the text columns (ids, department) as categories. 'projected at 1M' scales the peak above the "
        "process' RSS after its imports linearly in employees (from 100,000 to 300,000 employees every stage's "
        "peak grew a little less than linearly, so the projection errs high).",
        ["stage", "seconds", "x read_csv", "peak RSS (GiB)", "input read (GiB)", "projected at 1M (GiB)", "size"],
        rows,
        memory=[f"largest stage RSS {_gib(max(v['rss_mib'] for v in done.values()))} GiB" if done else "n/a"],
        notes=notes,
    )


if __name__ == "__main__":
    main()
