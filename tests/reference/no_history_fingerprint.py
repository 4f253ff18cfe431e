"""Fingerprints of what cleaning and the analysis tables give on data/sample (a study without job_history).

``python tests/reference/no_history_fingerprint.py OUT.csv [PICKLE]`` writes one row per frame:
``frame, rows, columns, dtypes, index, sha`` (sha: SHA-256 of pandas' row hashes, index included,
first 16 hex digits). With PICKLE (``{"tables", "quarantine", "report", "counts", "analysis"}`` as
pickled by the code under comparison) it fingerprints those frames; without, it cleans
data/sample with the code on the path. tests/test_history_contract.py compares the stored
no_history_fingerprint.csv (made from the code before job_history existed, commit 1bec06a) with
the code of today.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
from pathlib import Path

import pandas as pd

ANALYSIS = ("person", "intervals", "survey_panel", "cycles")


def fingerprint(name: str, frame: pd.DataFrame) -> dict:
    sha = hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()).hexdigest()[:16]
    return {"frame": name, "rows": len(frame), "columns": "|".join(map(str, frame.columns)),
            "dtypes": "|".join(map(str, frame.dtypes)), "index": str(frame.index.dtype), "sha": sha}


def fingerprints(parts: dict) -> pd.DataFrame:
    rows = [fingerprint(f"clean.{t}", f) for t, f in parts["tables"].items()]
    rows += [fingerprint(f"quarantine.{t}", f) for t, f in parts["quarantine"].items()]
    rows += [fingerprint("report", parts["report"]), fingerprint("counts", parts["counts"])]
    rows += [fingerprint(f"analysis.{t}", f) for t, f in parts["analysis"].items()]
    return pd.DataFrame(rows)


def parts_of(clean) -> dict:
    return {"tables": clean.tables, "quarantine": clean.quarantine, "report": clean.report, "counts": clean.counts,
            "analysis": {n: getattr(clean.analysis, n) for n in ANALYSIS}}


if __name__ == "__main__":
    if len(sys.argv) > 2:
        with open(sys.argv[2], "rb") as f:
            parts = pickle.load(f)
    else:
        import alignment_research as ar

        sample = Path(__file__).resolve().parents[2] / "data" / "sample"
        parts = parts_of(ar.clean_study(ar.load_study(sample), progress=False))
    fingerprints(parts).to_csv(sys.argv[1], index=False)
