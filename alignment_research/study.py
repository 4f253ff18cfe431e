"""Containers that carry a study from one stage to the next."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from .config import StudyConfig

__all__ = ["Study", "CleanStudy", "ISSUE_COLUMNS", "ACTIONS"]

#: Columns of the cleaning report: one row per issue found.
ISSUE_COLUMNS = ["file", "table", "row", "column", "rule", "value", "action"]
#: The closed set of actions a cleaning step may take.
ACTIONS = ("fixed", "set_missing", "quarantined", "dropped_duplicate", "flagged")


@dataclass(frozen=True)
class Study:
    """A study as read: raw canonical tables plus its configuration.

    Attributes
    ----------
    tables : dict of str to DataFrame
        Canonical table name to table. Each table's index is the source row
        number a person would see in a spreadsheet (the header is row 1).
        ``load_study`` holds text as Arrow-backed strings (missing = NaN).
    config : StudyConfig
        The validated ``study.yaml``.
    path : Path or None
        The study folder, or None for a study built in memory.
    sources : dict of str to str
        Table name to the file (or ``db:<table>``) it came from, for messages.
    outside_sources : dict of str to str
        Table name to where it was read from, for every table read from outside
        the study folder: the resolved file path (``allow_outside_paths``) or
        the database URL with its password masked. Empty otherwise.
    """

    tables: dict[str, pd.DataFrame]
    config: StudyConfig
    path: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)
    outside_sources: dict[str, str] = field(default_factory=dict)

    def source(self, table: str) -> str:
        """Return the file a table came from (its table name for in-memory studies)."""
        return self.sources.get(table, f"{table}")


@dataclass(frozen=True)
class CleanStudy:
    """A cleaned study: clean tables, the cleaning report and the quarantine.

    Attributes
    ----------
    tables : dict of str to DataFrame
        Clean canonical tables (dates parsed, categories normalised).
    report : DataFrame
        One row per issue: ``file, table, row, column, rule, value, action``.
    quarantine : dict of str to DataFrame
        Per table, the rows set aside, with the source columns plus ``reason``.
    config : StudyConfig
        The study configuration.
    counts : DataFrame
        Per table: ``table, rows_in, rows_out, rows_quarantined``, plus
        ``rows_added`` when the study has job_history (hire rows made from
        employees; the clean job_history has rows_out + rows_added rows).
    analysis : AnalysisTables
        The analysis tables (``person``, ``intervals``, ``survey_panel``,
        ``cycles``), built on first access.
    """

    tables: dict[str, pd.DataFrame]
    report: pd.DataFrame
    quarantine: dict[str, pd.DataFrame]
    config: StudyConfig
    counts: pd.DataFrame
    path: Path | None = None

    @cached_property
    def analysis(self):
        from .tables import build_analysis_tables  # deferred: tables loads scipy and the measures; built on first access only

        return build_analysis_tables(self)
