"""Benchmark: what storing the brief's shared results costs in a first ``run``, and its share of their CPU.

Usage (one process per tree; alternate the trees and take medians)::

    PYTHONPATH=<tree> python benchmarks/bench_store.py STUDY CACHE [--repeats 1]

``CACHE`` is a cleaned cache of ``STUDY`` (a ``run``'s ``--cache`` folder). Each
repeat copies it to a temporary folder without its stored results, opens the
study from the copy (the kernels' path: the tables read from Parquet) and
computes what notebook 06 asks for first, in its order: ``primary_analysis``,
``describe_careers``, ``describe_practices`` (the claims scorecard and its
development effects) and ``who_it_works_for``. Each result is stored as in a
``run`` (``cache.stored_result``). Reported: the CPU (user + system of this
process) of the whole sequence and of its three storage steps, pickling
(``_pickled``: the text columns coded, the large arrays set apart), writing
(``_write_result``) and reading back (``_read_result``); the bytes stored; and
the CPU of opening the study from the copy (``open_clean`` and its four main
analysis tables). Progress goes to stderr, a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import warnings
from pathlib import Path


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(spent: dict, key: str, func):
    def wrapper(*args, **kwargs):
        start = _cpu()
        try:
            return func(*args, **kwargs)
        finally:
            spent[key] += _cpu() - start
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("cache", type=Path)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import alignment_research as ar
    from alignment_research import cache as cache_module

    spent = {"pickling": 0.0, "writing": 0.0, "reading": 0.0}
    cache_module._pickled = _timed(spent, "pickling", cache_module._pickled)
    cache_module._write_result = _timed(spent, "writing", cache_module._write_result)
    cache_module._read_result = _timed(spent, "reading", cache_module._read_result)
    rows = []
    for repeat in range(args.repeats):
        spent.update(dict.fromkeys(spent, 0.0))
        with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
            copy = Path(tmp) / "cache"
            shutil.copytree(args.cache, copy, ignore=shutil.ignore_patterns(cache_module.RESULTS_FOLDER))
            start = _cpu()
            clean = ar.open_clean(args.study, cache_dir=copy)
            tables = clean.analysis
            _ = (tables.intervals, tables.careers, tables.survey_panel, tables.person)
            opened = _cpu() - start
            start = _cpu()
            ar.primary_analysis(clean, warn=False)
            ar.describe_careers(clean)
            ar.describe_practices(clean)
            ar.who_it_works_for(clean)
            total = _cpu() - start
            stored = sum(p.stat().st_size for p in (copy / cache_module.RESULTS_FOLDER).glob("*.pickle"))
        rows.append(dict(open=opened, total=total, **spent, gib=stored / 2**30))
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in rows[-1].items()), file=sys.stderr)
    print("| CPU seconds (median of %d) | open the study | the brief's shared results | pickling | writing | reading back "
          "| stored |" % len(rows))
    print("|---|--:|--:|--:|--:|--:|--:|")
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"| {Path(ar.__file__).parent.parent} | {med['open']:.2f} s | {med['total']:.1f} s | {med['pickling']:.2f} s "
          f"| {med['writing']:.2f} s | {med['reading']:.2f} s | {med['gib']:.2f} GiB |")


if __name__ == "__main__":
    main()
