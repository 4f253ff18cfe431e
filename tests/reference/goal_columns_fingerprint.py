"""Fingerprints of what cleaning and the analysis tables give on data/sample without the optional goal columns.

``python tests/reference/goal_columns_fingerprint.py OUT.csv [PICKLE]`` writes one row per frame (the format of
``no_history_fingerprint.py``, whose functions it uses): the clean tables, quarantine, report, counts and the
analysis tables person, intervals, survey_panel, cycles and careers. With PICKLE (as pickled by the code under
comparison) it fingerprints those frames; without, it cleans data/sample, minus any optional goal column
(difficulty, target, baseline, set_with, revised_date), with the code on the path.
tests/test_goal_contract.py compares the stored goal_columns_fingerprint.csv (made by the code before the goal
columns and feedback_kinds existed) with the code of today.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ANALYSIS = ("person", "intervals", "survey_panel", "cycles", "careers")
#: The optional goals columns of issue 15, dropped from the sample before cleaning.
GOAL_COLUMNS = ("difficulty", "target", "baseline", "set_with", "revised_date")

_spec = importlib.util.spec_from_file_location("no_history_fingerprint", HERE / "no_history_fingerprint.py")
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


def parts_of(clean) -> dict:
    return {"tables": clean.tables, "quarantine": clean.quarantine, "report": clean.report, "counts": clean.counts,
            "analysis": {n: getattr(clean.analysis, n) for n in ANALYSIS}}


def without_goal_columns(study):
    """The study with the optional goal columns dropped from its goals table (in memory)."""
    from alignment_research.study import Study

    tables = dict(study.tables)
    if "goals" in tables:
        tables["goals"] = tables["goals"].drop(columns=[c for c in GOAL_COLUMNS if c in tables["goals"]])
    return Study(tables=tables, config=study.config, path=study.path, sources=study.sources)


def fingerprints(parts: dict):
    return _base.fingerprints(parts)


if __name__ == "__main__":
    if len(sys.argv) > 2:
        with open(sys.argv[2], "rb") as f:
            parts = pickle.load(f)
    else:
        import alignment_research as ar

        sample = HERE.parents[1] / "data" / "sample"
        parts = parts_of(ar.clean_study(without_goal_columns(ar.load_study(sample)), progress=False))
    fingerprints(parts).to_csv(sys.argv[1], index=False)
