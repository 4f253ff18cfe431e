"""Errors and warnings raised by alignment-research."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where a problem table is built, so the CLI starts fast
    import pandas as pd

__all__ = [
    "AlignmentResearchError",
    "ConfigError",
    "DataContractError",
    "ModelError",
    "PrivacyError",
    "StatisticalWarning",
    "PROBLEM_COLUMNS",
]

#: Columns of every problem table: where (file, row, column), which rule, which value.
PROBLEM_COLUMNS = ["file", "row", "column", "rule", "value"]


class AlignmentResearchError(Exception):
    """Base class of every error the toolkit raises on purpose.

    The command line catches this class, prints the message and exits 1, so a
    user never sees a traceback from inside pandas.
    """


class ConfigError(AlignmentResearchError, ValueError):
    """A ``study.yaml`` (or a truth file) is missing, misspelt or has a wrong value."""


class ModelError(AlignmentResearchError, ValueError):
    """A model cannot be fitted as asked (unknown column, no events, no variance, ...)."""


class PrivacyError(AlignmentResearchError):
    """A privacy rule cannot be honoured (e.g. pseudonymisation on, but no key)."""


class DataContractError(AlignmentResearchError, ValueError):
    """Input breaks the study-folder data contract.

    Parameters
    ----------
    message : str
        What is wrong, in one sentence.
    problems : pandas.DataFrame, optional
        One row per problem with columns ``file, row, column, rule, value``.
        The message lists the first ten and the total.
    """

    def __init__(self, message: str, problems: pd.DataFrame | None = None):
        if problems is None:
            import pandas as pd  # deferred: heavy, and only needed when an error is raised

            problems = pd.DataFrame(columns=PROBLEM_COLUMNS)
        self.problems = problems.reset_index(drop=True)
        text = message
        if len(self.problems):
            shown = self.problems.head(10)
            lines = [
                f"  {r.file}, row {r.row}, column {r.column!s}: {r.rule} (value: {r.value!r})"
                for r in shown.itertuples(index=False)
            ]
            more = len(self.problems) - len(shown)
            text += "\n" + "\n".join(lines)
            text += f"\n  ... and {more} more ({len(self.problems)} in all)" if more else ""
        super().__init__(text)


class StatisticalWarning(RuntimeWarning):
    """A statistical caveat: non-proportional hazards, separation, few clusters, ...

    Each such warning also appears as a row in the result's ``glance()`` or in a
    diagnostics table, so that it reaches the report.
    """
