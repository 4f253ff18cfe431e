"""Check that the analysis tables are bit-for-bit unchanged (a guard for speed work on tables.py / measures.py).

Usage::

    python benchmarks/check_tables_unchanged.py save DIR [--study KEPT]   # pickle the tables of the studies
    python benchmarks/check_tables_unchanged.py check DIR [--study KEPT]  # rebuild and compare, check_exact=True

The studies: the bundled sample (``data/sample``), ``simulate_study(n_employees=3000, seed=1)`` and
``simulate_study(n_employees=20000, seed=2)``; with ``--study KEPT`` also the cleaned study of a work folder
kept by ``bench_scale.py --keep KEPT`` (``KEPT/clean.pkl``, e.g. the 100,000 employees ``bench_tables.py
--study`` times). Save with the baseline tree on ``PYTHONPATH`` and check with the changed one. Not a benchmark (no markdown section); ``make bench`` skips it
because its name does not start with ``bench_``.
"""

from __future__ import annotations

import pickle
from dataclasses import fields
import sys
from pathlib import Path

import pandas as pd

import alignment_research as ar



def studies(kept: Path | None = None):
    root = Path(__file__).resolve().parents[1]
    yield "sample", ar.clean_study(ar.load_study(root / "data" / "sample"))
    yield "sim3000", ar.clean_study(ar.simulate_study(n_employees=3000, seed=1))
    yield "sim20000", ar.clean_study(ar.simulate_study(n_employees=20000, seed=2))
    if kept is not None:
        yield f"kept_{kept.name}", pickle.loads((kept / "clean.pkl").read_bytes())


def frames(tables) -> dict[str, pd.DataFrame]:
    return {f.name: getattr(tables, f.name) for f in fields(tables)}


def main(argv: list[str]) -> int:
    kept = None
    if "--study" in argv:
        i = argv.index("--study")
        kept, argv = Path(argv[i + 1]), argv[:i] + argv[i + 2:]
    mode, folder = argv[0], Path(argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name, clean in studies(kept):
        got = frames(ar.build_analysis_tables(clean))
        path = folder / f"{name}.pkl"
        if mode == "save":
            path.write_bytes(pickle.dumps(got))
            print(f"{name}: saved {', '.join(f'{k} {v.shape}' for k, v in got.items())}")
            continue
        want = pickle.loads(path.read_bytes())
        for table in sorted(set(want) | set(got)):
            try:
                pd.testing.assert_frame_equal(got[table], want[table], check_exact=True)
                print(f"{name}.{table}: identical {want[table].shape}")
            except (AssertionError, KeyError) as exc:
                failed += 1
                print(f"{name}.{table}: DIFFERS {str(exc)[:400]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
