"""Privacy: what may be shown to leadership (small-group suppression), pseudonyms, leak scans."""

from __future__ import annotations

import array
import bisect
import csv
import hashlib
import hmac
import html as _html
import io
import os
import re
import struct
import sys
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd

from .errors import PrivacyError

__all__ = [
    "suppress_small_groups",
    "mask_small_counts",
    "group_sizes",
    "size_gate",
    "pooled_label",
    "pool_small_levels",
    "PooledLevels",
    "treatment_term",
    "pseudonymise_ids",
    "pseudonymise_tables",
    "ID_COLUMNS",
    "EMPLOYEE_ID_PATTERN",
    "find_identifiers",
    "scan_outputs",
    "prepare_search",
    "WEAK_ID_DIGITS",
    "find_small_groups",
    "read_html_tables",
    "scan_report",
]

#: Columns holding employee ids, per canonical table (pseudonymised together so joins still work).
ID_COLUMNS = {
    "employees": ["employee_id", "manager_id"],
    "goals": ["owner_id"],
    "reviews": ["employee_id"],
    "surveys": ["employee_id"],
    "programs": ["employee_id"],
    "feedback": ["employee_id", "giver_id"],
    "job_history": ["employee_id", "manager_id"],
}

#: Columns that hold an employee id in any table, listed in :data:`ID_COLUMNS` or not.
_PERSON_ID_COLUMNS = ("employee_id", "manager_id", "owner_id", "giver_id")

#: Employee ids as the simulator writes them (``E000123``); studies may pass their own ids to the scans.
EMPLOYEE_ID_PATTERN = r"\bE\d{3,}\b"

#: Column headers that count people in a group; :func:`find_small_groups` checks these.
COUNT_COLUMN_PATTERN = (
    r"^(?!n_(items|groups|levels|terms|params|parameters|waves|cycles|scales|tables|rules|columns|iterations|iter)$)"
    r"(n|n_.*|.*_n|count|employees|headcount|respondents|at_risk|people|size)$"
)

#: Column headers that would hold a birth date.
_BIRTH_DATE_HEADER = re.compile(r"birth_?date|date_?of_?birth|\bdob\b", re.IGNORECASE)

#: Hex characters kept from the HMAC digest (48 bits: collisions are negligible below millions of ids).
_PSEUDONYM_HEX = 12


# --------------------------------------------------------------------------- suppression


def suppress_small_groups(
    table: pd.DataFrame,
    *,
    count: str = "n",
    min_group_size: int = 5,
    group_cols=None,
    value_cols=None,
    total=None,
    margins: bool = False,
) -> pd.DataFrame:
    """Suppress every cell that describes a group smaller than ``min_group_size``.

    This is the one function that decides what may be shown to leadership.
    A group with fewer than ``min_group_size`` people has its count and every value
    cell set to missing (suppressed, never rounded). Suppression must not be
    undone by subtraction, so complementary suppression follows: within each
    set of siblings (rows that share the parent group, i.e. every group column
    but the last), if the suppressed cells could be recovered from a shown
    parent total and the shown siblings, the next smallest sibling is
    suppressed too, until at least two siblings are hidden *and* the hidden
    siblings together hold at least ``min_group_size`` people (otherwise their
    combined group, itself small, could be recovered).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per group: the group columns, a count column and value columns.
    count : str, default "n"
        Column holding the number of people in each group.
    min_group_size : int, default 5
        Smallest group that may be shown (``StudyConfig.min_group_size``).
    group_cols : list of str, optional
        Columns that identify a group, from the outermost to the innermost
        (e.g. ``["department", "job_level"]``). Rows sharing all but the last
        are siblings. By default every non-numeric column.
    value_cols : list of str, optional
        Columns to suppress along with the count; by default every column that
        is neither a group column nor the count.
    total : None, False or str, default None
        Whether a total of the siblings is (or may be) shown somewhere.
        ``None`` assumes it is (the safe default) and applies complementary
        suppression; ``False`` says no total is ever published, so only the
        small groups themselves are suppressed; a string names the label that
        marks total rows in the last group column (e.g. ``"All"``): those rows
        are kept, suppressed themselves when small, and not counted as siblings.
    margins : bool, default False
        For a cross-table whose row *and* column totals are shown: siblings are
        then formed along every group column in turn (until nothing changes).

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with the count and value cells of suppressed rows
        set to missing (integer columns become nullable ``Int64``), plus ``suppressed`` (bool) and ``suppression``
        (``"small group"``, ``"complementary"`` or missing).

    Raises
    ------
    KeyError
        When ``count`` or a group column is not in ``table``.

    See Also
    --------
    find_small_groups : scan rendered tables for groups below the threshold.

    Notes
    -----
    Primary suppression hides cells with ``n < min_group_size``; complementary
    (secondary) suppression follows the usual statistical-disclosure-control
    rule that every sibling set has either no hidden cell or at least two whose
    combined size reaches the threshold (Hundepool et al., *Statistical
    Disclosure Control*, 2012, ch. 4). Groups of size 0 count as small.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> t = pd.DataFrame({"department": ["A", "B", "C", "D"], "n": [40, 3, 12, 30],
    ...                   "alignment": [0.61, 0.2, 0.55, 0.7]})
    >>> ar.suppress_small_groups(t, group_cols=["department"])[["department", "n", "suppression"]]
      department     n    suppression
    0          A    40           <NA>
    1          B  <NA>    small group
    2          C  <NA>  complementary
    3          D    30           <NA>
    """
    if count not in table.columns:
        raise KeyError(f"count column {count!r} not in the table; columns are {list(table.columns)}")
    if group_cols is None:
        group_cols = [
            c for c in table.columns if c != count and not pd.api.types.is_numeric_dtype(table[c])
        ]
    group_cols = list(group_cols)
    missing = [c for c in group_cols if c not in table.columns]
    if missing:
        raise KeyError(f"group column(s) {missing} not in the table; columns are {list(table.columns)}")
    if value_cols is None:
        value_cols = [c for c in table.columns if c not in group_cols and c != count]
    value_cols = [c for c in value_cols if c in table.columns]

    n = pd.to_numeric(table[count], errors="coerce").to_numpy(float)
    small = ~(n >= min_group_size)  # NaN counts are treated as small: unknown size is not safe to show
    reason = np.where(small, "small group", None).astype(object)
    hidden = small.copy()

    if total is not False and len(table) > 1:
        is_total = np.zeros(len(table), bool)
        if isinstance(total, str) and group_cols:
            is_total = (table[group_cols[-1]].astype(str) == total).to_numpy()
        axes = [len(group_cols) - 1] if not margins else list(range(len(group_cols)))
        if not group_cols:
            axes = [None]
        changed = True
        while changed:
            changed = False
            for axis in axes:
                if axis is None:
                    parents = [np.arange(len(table))]
                else:
                    others = [c for i, c in enumerate(group_cols) if i != axis]
                    keys = table[others].astype(str).agg("\x1f".join, axis=1) if others else pd.Series("", index=table.index)
                    parents = [np.flatnonzero((keys == k).to_numpy()) for k in pd.unique(keys)]
                for rows in parents:
                    rows = rows[~is_total[rows]]
                    if _complete_sibling_set(rows, n, hidden, reason, min_group_size):
                        changed = True

    out = table.copy()
    for c in [count, *value_cols]:
        if hidden.any() and (pd.api.types.is_integer_dtype(out[c]) or pd.api.types.is_bool_dtype(out[c])):
            out[c] = out[c].astype("Int64" if pd.api.types.is_integer_dtype(out[c]) else "boolean")  # counts stay whole
        out[c] = out[c].mask(hidden)  # missing of the column's own kind
    out["suppressed"] = hidden
    out["suppression"] = pd.array(reason, dtype="string")
    return out


def _complete_sibling_set(rows, n, hidden, reason, min_group_size) -> bool:
    """Hide more siblings until the hidden ones cannot be recovered; return whether any changed."""
    if len(rows) == 0:
        return False
    changed = False
    while True:
        h = rows[hidden[rows]]
        if len(h) == 0 or len(h) == len(rows):
            return changed
        hidden_total = np.nansum(n[h])
        if len(h) >= 2 and hidden_total >= min_group_size:
            return changed
        shown = rows[~hidden[rows]]
        nxt = shown[np.argsort(np.nan_to_num(n[shown], nan=-1), kind="stable")[0]]
        hidden[nxt] = True
        reason[nxt] = "complementary"
        changed = True


def mask_small_counts(table: pd.DataFrame, *, min_group_size: int = 5, columns=None) -> pd.DataFrame:
    """Hide counts below ``min_group_size`` in a summary or diagnostics table (``glance()``, balance, event study).

    For tables that are not one row per group of a whole (so no total can be
    subtracted), each count column is passed on its own through
    :func:`suppress_small_groups` without complementary suppression, and the
    cells of that column that count fewer than ``min_group_size`` people are hidden.
    Other columns are left as they are.

    Parameters
    ----------
    table : pandas.DataFrame
        The table to show.
    min_group_size : int, default 5
        The study's minimum group size.
    columns : list of str, optional
        Count columns; by default every column whose name looks like a count of
        people (``n``, ``n_*``, ``*_n``, ``count``, ``employees``, ``at_risk``, ...) and ``events``.

    Returns
    -------
    pandas.DataFrame
        A copy with small counts set to missing.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> g = pd.DataFrame({"n": [2065], "n_treated": [3], "events": [403], "aic": [1.5]})
    >>> ar.mask_small_counts(g)
          n  n_treated  events  aic
    0  2065       <NA>     403  1.5
    """
    regex = re.compile(COUNT_COLUMN_PATTERN, re.IGNORECASE)
    if columns is None:
        columns = [c for c in table.columns if regex.fullmatch(str(c)) or str(c) == "events"]
    out = table.copy()
    for c in columns:
        if c not in out.columns or not pd.api.types.is_numeric_dtype(out[c]):
            continue
        masked = suppress_small_groups(
            pd.DataFrame({"_row": np.arange(len(out)).astype(str), c: out[c].to_numpy()}),
            count=c, min_group_size=min_group_size, group_cols=["_row"], value_cols=[], total=False,
        )
        out[c] = pd.Series(masked[c].array, index=out.index)
    return out


# --------------------------------------------------------------------------- group sizes and pooling


_NUMBER_WORDS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def _plural(column: str) -> str:
    """``"department"`` -> ``"departments"``, ``"job_level"`` -> ``"job levels"``."""
    words = str(column).replace("_", " ").strip()
    return words + ("es" if words.endswith(("s", "x", "ch", "sh")) else "s")


def pooled_label(column: str, *, min_group_size: int = 5) -> str:
    """Return the label of the level that pools a column's small levels.

    Parameters
    ----------
    column : str
        The categorical column, e.g. ``"department"``.
    min_group_size : int, default 5
        The study's minimum group size.

    Returns
    -------
    str
        E.g. ``"Other departments (each < 5 people)"``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.privacy.pooled_label("job_level", min_group_size=5)
    'Other job levels (each < 5 people)'
    """
    return f"Other {_plural(column)} (each < {min_group_size} people)"


def group_sizes(data: pd.DataFrame, by, *, person: str | None = "employee_id") -> pd.DataFrame:
    """Count the distinct people in each group (never rows).

    Every size rule of the toolkit counts people through this function: a
    department of 3 people with 19 survey responses has size 3.

    Parameters
    ----------
    data : pandas.DataFrame
        Any table with one or more rows per person (survey panel, intervals,
        person table, cycles, ...).
    by : str or list of str
        The grouping column(s). Rows with a missing group are left out.
    person : str or None, default "employee_id"
        The column identifying a person. ``None`` declares that every row is a
        different person (use only for tables built that way).

    Returns
    -------
    pandas.DataFrame
        One row per group, sorted by the group columns: the group columns,
        ``n`` (distinct people) and ``n_rows`` (rows).

    Raises
    ------
    PrivacyError
        When ``person`` or a group column is not in ``data``: without it the
        size of a group in people cannot be known.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> panel = pd.DataFrame({"employee_id": ["a", "a", "a", "b", "c"], "department": ["X", "X", "X", "X", "Y"]})
    >>> ar.group_sizes(panel, "department")
      department  n  n_rows
    0          X  2       4
    1          Y  1       1
    """
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*by, person] if c is not None and c not in data.columns]
    if missing:
        raise PrivacyError(
            f"Cannot count the people in each group: the table has no column(s) {missing} "
            f"(columns: {sorted(map(str, data.columns))}). Group sizes count distinct people, never rows; "
            "pass `person=` naming the column that identifies a person."
        )
    rows = data[list(dict.fromkeys([*by, *([] if person is None else [person])]))].dropna(subset=by)  # no copy of the rest
    grouped = rows.groupby(by, observed=True, sort=True)
    out = grouped.size().rename("n_rows").reset_index()
    if person is None:
        out.insert(len(by), "n", out["n_rows"].to_numpy())
    else:
        people = grouped[person].nunique().rename("n").reset_index()
        out = people.merge(out, on=by, how="left")
    out["n"] = out["n"].astype("int64")
    out["n_rows"] = out["n_rows"].astype("int64")
    return out.reset_index(drop=True)


def size_gate(
    data: pd.DataFrame,
    by,
    *,
    min_group_size: int = 5,
    person: str | None = "employee_id",
    total=None,
) -> pd.DataFrame:
    """Decide which groups of a table may be shown to leadership, counting distinct people.

    This is the single gate of every leadership-facing table, figure and
    sentence that describes groups: sizes come from :func:`group_sizes`
    (people, not rows) and the decision from :func:`suppress_small_groups`
    (groups below ``min_group_size``, then complementary suppression so that no
    hidden size can be recovered by subtraction from a shown total).

    Parameters
    ----------
    data : pandas.DataFrame
        The rows behind the groups (one or more per person).
    by : str or list of str
        The grouping column(s), outermost first.
    min_group_size : int, default 5
        The study's minimum group size (``StudyConfig.min_group_size``).
    person : str or None, default "employee_id"
        The column identifying a person (see :func:`group_sizes`).
    total : None, False or str, default None
        Passed to :func:`suppress_small_groups`: ``None`` assumes a total of
        the groups is shown somewhere and applies complementary suppression.

    Returns
    -------
    pandas.DataFrame
        One row per group: the group columns, ``n`` (people; missing when
        hidden), ``n_rows`` (missing when hidden), ``suppressed`` (bool) and
        ``suppression`` (``"small group"``, ``"complementary"`` or missing).

    Raises
    ------
    PrivacyError
        When ``person`` or a group column is missing.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> panel = pd.DataFrame({"employee_id": [f"e{i}" for i in range(23)] + ["e0"] * 10,
    ...                       "department": ["A"] * 10 + ["B"] * 3 + ["C"] * 10 + ["B"] * 10})
    >>> ar.privacy.size_gate(panel, "department")[["department", "n", "suppression"]]
      department     n    suppression
    0          A  <NA>  complementary
    1          B  <NA>    small group
    2          C    10           <NA>
    """
    by = [by] if isinstance(by, str) else list(by)
    sizes = group_sizes(data, by, person=person)
    return suppress_small_groups(sizes, count="n", min_group_size=min_group_size, group_cols=by, value_cols=["n_rows"],
                                 total=total)


def treatment_term(column: str, reference) -> str:
    """Return the formula term of a categorical column with a given reference level.

    Parameters
    ----------
    column : str
        The column.
    reference : object
        The reference level (a string, or an integer for integer-coded columns).

    Returns
    -------
    str
        ``C(<column>, Treatment(reference=<reference>))``, which the formula
        engine codes as treatment contrasts against ``reference``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.privacy.treatment_term("department", "Sales")
    "C(department, Treatment(reference='Sales'))"
    """
    return f"C({column}, Treatment(reference={_python_value(reference)!r}))"


def _python_value(value):
    """A numpy scalar as the plain Python value (so ``repr`` gives ``1``, not ``np.int64(1)``)."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class PooledLevels:
    """Data whose small categorical levels are pooled, with the reference level of each column.

    Made by :func:`pool_small_levels`. Not for leadership itself: ``pooled``
    names the small levels.

    Attributes
    ----------
    data : pandas.DataFrame
        A copy of the data with small levels replaced by the pooled label (or
        by the reference level, see ``pooled``).
    references : dict
        Column -> reference level: the largest level in people; ``None`` when
        the column's term is dropped (fewer than two levels left).
    pooled : pandas.DataFrame
        One row per level that was moved: ``column, level, action``
        (``"pooled"`` into the pooled label, ``"merged into reference"``), and
        one row per dropped column (``level`` missing, ``action`` ``"term dropped"``).
    labels : dict
        Column -> the pooled label (e.g. ``"Other departments (each < 5 people)"``).
    min_group_size : int
        The threshold used.
    formula : str or None
        The formula rebuilt with :meth:`apply` (set by
        :func:`prepare_leadership_model`), else ``None``.
    """

    data: pd.DataFrame
    references: dict
    pooled: pd.DataFrame
    labels: dict
    min_group_size: int
    formula: str | None = None

    def term(self, column: str) -> str | None:
        """Return the formula term of ``column`` (``None`` when its term is dropped).

        Parameters
        ----------
        column : str
            A pooled column.

        Returns
        -------
        str or None
            ``C(<column>, Treatment(reference=<largest level>))``.
        """
        reference = self.references[column]
        return None if reference is None else treatment_term(column, reference)

    def apply(self, formula: str) -> str:
        """Rebuild a formula so that each pooled column uses its term (or is left out).

        Parameters
        ----------
        formula : str
            ``"y ~ a + C(department)"`` or a right-hand side only. Factors that
            are a pooled column alone (``department``, ``C(department)``, or
            ``C(department, Treatment(...))``: the largest level is the
            reference) are replaced; a term holding a dropped column is removed.

        Returns
        -------
        str
            The formula, rebuilt from its list of terms.
        """
        import patsy  # deferred: patsy is only needed to rebuild a formula

        from ._formula import names_in  # deferred: _formula loads patsy, needed only to rebuild a formula

        desc = patsy.ModelDesc.from_formula(formula)
        rhs_terms, intercept = [], False
        for t in desc.rhs_termlist:
            if not t.factors:
                intercept = True
                continue
            codes, drop = [], False
            for factor in t.factors:
                names = names_in(factor.code)
                column = names[0] if len(names) == 1 else None
                code = factor.code.replace(" ", "")
                if column in self.references and (code == column or code.startswith("C(")):
                    if self.references[column] is None:
                        drop = True
                        break
                    codes.append(self.term(column))
                else:
                    codes.append(factor.code)
            if not drop:
                rhs_terms.append(":".join(codes))
        rhs = " + ".join(rhs_terms) if rhs_terms else "1"
        if not intercept:
            rhs += " - 1"
        if desc.lhs_termlist:
            lhs = " + ".join(":".join(f.code for f in t.factors) for t in desc.lhs_termlist)
            return f"{lhs} ~ {rhs}"
        return rhs

    @property
    def caveats(self) -> str:
        """What was pooled, merged or left out, and which level is the reference, in sentences."""
        sentences = []
        m = self.min_group_size
        for column, reference in self.references.items():
            moved = self.pooled.loc[self.pooled["column"] == column]
            plural, singular = _plural(column), str(column).replace("_", " ")
            k = int(moved["level"].notna().sum())
            count = _NUMBER_WORDS[k] if k < len(_NUMBER_WORDS) else str(k)
            few = f"{count} {plural if k != 1 else singular} with fewer than {m} people" + (" each" if k != 1 else "")
            if (moved["action"] == "pooled").any():
                sentences.append(f"{few[:1].upper() + few[1:]} {'are' if k != 1 else 'is'} pooled into one group, "
                                 f"“{self.labels[column]}”.")
            if (moved["action"] == "merged into reference").any():
                why = ", too few even together to form a group of their own, are" if k != 1 else " is"
                sentences.append(f"{few[:1].upper() + few[1:]}{why} counted with {reference}, the reference {singular}.")
            if (moved["action"] == "term dropped").any():
                sentences.append(f"{singular[:1].upper() + singular[1:]} is left out of the model: fewer than two "
                                 f"{plural} have {m} or more people.")
            elif reference is not None:
                named = f"{singular} {reference}" if isinstance(reference, (int, float)) else str(reference)
                sentences.append(f"{plural[:1].upper() + plural[1:]} are compared with the largest, {named}.")
        return " ".join(sentences)


def pool_small_levels(
    data: pd.DataFrame,
    columns,
    *,
    min_group_size: int = 5,
    person: str | None = "employee_id",
    small_pool: str = "merge",
    label=None,
) -> PooledLevels:
    """Pool the levels of categorical columns that have fewer than ``min_group_size`` people.

    Before a model is shown to leadership, a level with a handful of people
    must not get its own estimate (with 3 people a hazard ratio can reach
    e^50) nor be the reference. Levels below the threshold (counted in
    distinct people by :func:`group_sizes`) are replaced by one pooled level,
    labelled like ``"Other departments (each < 5 people)"``, and the
    reference of each column becomes its largest level in people.

    Parameters
    ----------
    data : pandas.DataFrame
        The model's data (e.g. ``intervals`` or ``survey_panel``).
    columns : str or list of str
        The categorical columns to pool.
    min_group_size : int, default 5
        The study's minimum group size.
    person : str or None, default "employee_id"
        The column identifying a person.
    small_pool : {"merge", "keep"}, default "merge"
        What to do when the pooled level itself has fewer than
        ``min_group_size`` people: ``"merge"`` counts its rows with the
        reference level (for models); ``"keep"`` keeps the small pooled level,
        for tables that suppress it (:func:`size_gate`).
    label : dict or str, optional
        The pooled label per column (default :func:`pooled_label`).

    Returns
    -------
    PooledLevels
        ``data`` (pooled copy), ``references``, ``pooled`` (what moved),
        ``labels``, ``term(column)``, ``apply(formula)`` and ``caveats``.

    Raises
    ------
    PrivacyError
        When ``person`` or a column is missing.
    ValueError
        When ``small_pool`` is not ``"merge"`` or ``"keep"``.

    Notes
    -----
    A column whose values are all in one level after pooling cannot be
    estimated: its reference is ``None`` and ``apply`` leaves its term out.
    The pooled column holds text when a pooled label is added (integer levels
    become ``"1"``, ``"2"``, ...); otherwise its type is kept.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> d = pd.DataFrame({"employee_id": [f"e{i}" for i in range(27)],
    ...                   "department": ["Sales"] * 12 + ["HR"] * 8 + ["Legal"] * 3 + ["Audit"] * 4})
    >>> pooled = ar.pool_small_levels(d, "department")
    >>> sorted(pooled.data["department"].unique())
    ['HR', 'Other departments (each < 5 people)', 'Sales']
    >>> pooled.apply("engagement ~ alignment + C(department)")
    "engagement ~ alignment + C(department, Treatment(reference='Sales'))"
    """
    if small_pool not in ("merge", "keep"):
        raise ValueError(f"The value for `small_pool` must be 'merge' or 'keep', but {small_pool!r} was passed.")
    columns = [columns] if isinstance(columns, str) else list(columns)
    out = data.copy()
    references, labels, moved = {}, {}, []
    for column in columns:
        text = label.get(column) if isinstance(label, dict) else label
        labels[column] = text or pooled_label(column, min_group_size=min_group_size)
        sizes = group_sizes(out, column, person=person)
        small = sizes.loc[sizes["n"] < min_group_size, column].tolist()
        large = sizes.loc[sizes["n"] >= min_group_size].sort_values("n", ascending=False, kind="stable")
        if small:
            is_small = out[column].isin(small)
            n_pooled = int(is_small.sum()) if person is None else int(out.loc[is_small, person].nunique())
            if n_pooled >= min_group_size or small_pool == "keep" or large.empty:
                values = out[column].astype(object).where(out[column].isna(), out[column].astype(str))
                out[column] = values.mask(is_small, labels[column])
                moved += [{"column": column, "level": lvl, "action": "pooled"} for lvl in small]
            else:
                out[column] = out[column].mask(is_small, large[column].iloc[0])
                moved += [{"column": column, "level": lvl, "action": "merged into reference"} for lvl in small]
        sizes = group_sizes(out, column, person=person).sort_values("n", ascending=False, kind="stable")
        if len(sizes) < 2 or (small_pool == "merge" and sizes["n"].iloc[0] < min_group_size):
            references[column] = None
            moved.append({"column": column, "level": None, "action": "term dropped"})
        else:
            references[column] = _python_value(sizes[column].iloc[0])
    pooled = pd.DataFrame(moved, columns=["column", "level", "action"])
    return PooledLevels(data=out, references=references, pooled=pooled, labels=labels, min_group_size=min_group_size)


# --------------------------------------------------------------------------- pseudonyms


def _key(key_env: str) -> bytes:
    key = os.environ.get(key_env, "")
    if not key:
        raise PrivacyError(
            f"Pseudonymisation is switched on but the environment variable {key_env} is not set (or empty). "
            f"Set it to a secret key (e.g. `export {key_env}=$(openssl rand -hex 32)`) and keep it out of the "
            "repository; the same key gives the same pseudonyms, so keep it to link later extracts."
        )
    return key.encode("utf-8")


def pseudonymise_ids(df: pd.DataFrame, columns, *, key_env: str = "ALIGNMENT_RESEARCH_KEY") -> pd.DataFrame:
    """Replace ids with a keyed hash (HMAC-SHA256), so tables still join but ids do not show.

    Parameters
    ----------
    df : pandas.DataFrame
        A table holding ids.
    columns : str or list of str
        Id columns to replace; columns not in ``df`` are skipped.
    key_env : str, default "ALIGNMENT_RESEARCH_KEY"
        Environment variable holding the secret key. The key is read from the
        environment only and never written anywhere.

    Returns
    -------
    pandas.DataFrame
        A copy with each id ``x`` replaced by ``"P"`` + the first 12 hex
        characters of ``HMAC-SHA256(key, x)``; missing ids stay missing. Each
        column keeps its kind of text (``object`` or ``string``; other dtypes
        become ``object``), so tables join exactly as they did before.

    Raises
    ------
    PrivacyError
        When the environment variable is not set or empty.

    Notes
    -----
    The same id gives the same pseudonym in every table (and in every run
    with the same key), so ``manager_id`` still points at the manager's
    pseudonymised ``employee_id``. Without the key the mapping cannot be
    reversed or rebuilt by hashing guessed ids.

    Examples
    --------
    >>> import os, pandas as pd, alignment_research as ar
    >>> os.environ["ALIGNMENT_RESEARCH_KEY"] = "example-key"
    >>> ar.pseudonymise_ids(pd.DataFrame({"employee_id": ["E000001"]}), ["employee_id"]).iloc[0, 0]
    'Pdf4e362fe46e'
    """
    key = _key(key_env)
    if isinstance(columns, str):
        columns = [columns]
    out = df.copy()
    for c in columns:
        if c not in out.columns:
            continue
        hashed = [v if pd.isna(v) else _pseudonym(key, v) for v in out[c]]
        # keep the column's kind of text, so every join and merge_asof on ids behaves exactly as
        # without pseudonymisation (a "string" column beside object ids breaks merge_asof)
        dtype = out[c].dtype if isinstance(out[c].dtype, pd.StringDtype) else object
        out[c] = pd.Series(hashed, index=out.index, dtype=dtype)
    return out


def _pseudonym(key: bytes, value) -> str:
    """Return ``"P"`` + the first hex characters of ``HMAC-SHA256(key, str(value))``."""
    return "P" + hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()[:_PSEUDONYM_HEX]


def pseudonymise_tables(tables: dict, *, key_env: str = "ALIGNMENT_RESEARCH_KEY") -> dict:
    """Pseudonymise every employee-id column of a study's canonical tables.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        Canonical table name to table (``Study.tables`` or ``CleanStudy.tables``).
    key_env : str, default "ALIGNMENT_RESEARCH_KEY"
        Environment variable holding the secret key.

    Returns
    -------
    dict of str to pandas.DataFrame
        New tables whose :data:`ID_COLUMNS` hold pseudonyms; in a table not
        listed there (a newer table such as ``job_history``), every column
        named ``employee_id``, ``manager_id``, ``owner_id`` or ``giver_id`` does too.

    Raises
    ------
    PrivacyError
        When the key is missing.

    Examples
    --------
    >>> import os, pandas as pd, alignment_research as ar
    >>> os.environ["ALIGNMENT_RESEARCH_KEY"] = "example-key"
    >>> t = ar.pseudonymise_tables({"employees": pd.DataFrame({"employee_id": ["E1"], "manager_id": ["E1"]})})
    >>> bool(t["employees"].employee_id.eq(t["employees"].manager_id).all())
    True
    """
    _key(key_env)  # fail before touching anything
    return {
        name: pseudonymise_ids(table, _id_columns(name, table), key_env=key_env) for name, table in tables.items()
    }


def _id_columns(name: str, table: pd.DataFrame) -> list[str]:
    """The id columns of a table: :data:`ID_COLUMNS`, plus any column named like an employee id."""
    listed = ID_COLUMNS.get(name, [])
    return [*listed, *(c for c in _PERSON_ID_COLUMNS if c in table.columns and c not in listed)]


# --------------------------------------------------------------------------- leak scans

#: Characters that never belong to an id: they end a run of text in which ids are looked up.
_DELIMITERS = frozenset(" \t\r\n\f\v\u00a0<>\"'()[]{},;|=`")

#: Column headers of tables that hold ids (where short, number-like ids are also searched).
_ID_HEADER = re.compile(
    r"(?i)^(?:id|ids|#)$|(?:^|[\s_\-.])(?:employee|manager|owner|giver|person|staff|emp|respondent|participant|"
    r"personnel|supervisor)(?:[\s_\-.]?(?:id|no|nr|number|#|ref))?$"
)

#: Words that, right before a token, say the token is an id ("employee 1234", "ID: 17", "#17").
_ID_LABEL = re.compile(
    r"(?i)(?:\b(?:employee|manager|owner|giver|person|staff|emp|id)\b\s*(?:id\b|no\b\.?|number\b|#)?\s*[:#=]?"
    r"|#)\s*([^\s<>\"',;()\[\]{}]+)"
)

#: People-count headers beyond the count pattern: "Number of employees", "People count", "Team size".
_PEOPLE_HEADER = re.compile(
    r"^(?:(?:number|no|num|count|total)_(?:of_)?)?"
    r"(?:employees?|people|persons?|staff|respondents?|members?|participants?|leavers?|joiners?|hires|heads|"
    r"headcount|direct_reports|reports|team_size|group_size|employees_at_risk)"
    r"(?:_(?:count|n|number|total))?$"
)

#: Things that are counted but are not people ("Items (n)" is not a group of people).
_COUNTED_THINGS = re.compile(
    r"^(?:items|groups|levels|terms|params|parameters|waves|cycles|scales|tables|rules|columns|iterations|iter|"
    r"goals|rows|files|models|programs|programmes|categories|questions)$"
)

#: Numeric ids shorter than this many digits (and ids shorter than 3 characters) are "weak": they look
#: like counts, years or table numbers, so they are searched only where a reader would take them for an
#: id (a column headed like an id, or after "employee", "ID:", "#").
WEAK_ID_DIGITS = 5


def _html_text(html: str) -> str:
    """Return the visible text of an HTML page: drop scripts, styles, data URIs and tags."""
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    html = re.sub(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+", " ", html)
    html = re.sub(r"(?s)<!--.*?-->", " ", html)
    html = re.sub(r"(?s)<[^>]+>", " ", html)
    return _unescape_html(html)


def _unescape_html(text: str) -> str:
    return unicodedata.normalize("NFC", _html.unescape(text))


def _html_attributes(html: str) -> dict[str, str]:
    """Return the values of every tag attribute (``alt``, ``title``, ``href``, ...), joined per attribute name.

    Embedded data URIs are skipped; values are HTML-unescaped and URL-decoded.
    """
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    values: dict[str, list[str]] = {}
    for tag in re.finditer(r"(?s)<([A-Za-z][\w:-]*)\s([^<>]*)>", html):
        for m in re.finditer(r"""([\w:.-]+)\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+)""", tag.group(2)):
            value = m.group(2).strip("\"'")
            if value.startswith("data:") and ";base64," in value[:80]:
                continue
            value = _unescape_html(value)
            values.setdefault(f"{m.group(1).lower()} attribute of <{tag.group(1).lower()}>", []).append(
                unquote(value) if "%" in value else value)
    return {where: "\n".join(v) for where, v in values.items()}


def _html_scripts(html: str) -> str:
    """Return the content of scripts and styles (JSON payloads travel there), with ``\\uXXXX`` escapes decoded."""
    bodies = [m.group(2) for m in re.finditer(r"(?is)<(script|style)\b[^>]*>(.*?)</\1>", html)]
    text = "\n".join(bodies).replace("\\/", "/")
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    return _unescape_html(text)


def _mask(value) -> str:
    """Return ``value`` with all but its first and last character starred (short values fully starred)."""
    s = str(value)
    if len(s) <= 3:
        return "*" * len(s)
    return s[0] + "*" * (len(s) - 2) + s[-1]


def _is_weak_id(i: str) -> bool:
    return len(i) < 3 or (i.isdigit() and len(i) < WEAK_ID_DIGITS)


#: The characters that end a run of text (white space, brackets, quotes, ``<>,;|=```), as a regex class body.
_RUN_ENDS = r"\s<>\"'()\[\]{},;|=`\u00a0"
#: A run of text between delimiters, and one delimiter.
_RUN = re.compile(f"[^{_RUN_ENDS}]+")
_RUN_DELIMITER = re.compile(f"[{_RUN_ENDS}]")
#: A run of letters and digits (exactly the characters ``str.isalnum`` accepts: ``\w`` without the underscore).
_ALNUM_RUN = re.compile(r"[^\W_]+")
#: A run of letters and digits, or one other character.
_SEGMENT = re.compile(r"[^\W_]+|[\W_]")


def _segments(text: str) -> list[tuple[int, int]]:
    """Split a run of non-delimiter text into letter/digit segments and single other characters."""
    return [m.span() for m in _SEGMENT.finditer(text)]


class _IdIndex:
    """The study's ids, ready for exact token lookup in any text.

    An id is found where it stands as a whole token: the characters around it
    are not letters or digits (so ``12`` is not found in ``2012`` and
    ``ann@x.org`` not in ``joann@x.org``), whatever characters the id itself
    holds (dots, ``@``, hyphens, non-ASCII letters, emoji). Matching ignores
    case and Unicode normal form. Weak ids (see :data:`WEAK_ID_DIGITS`) are
    kept apart and looked up only in id contexts.
    """

    def __init__(self, ids: Iterable):
        self.strong: dict[str, str] = {}
        self.weak: dict[str, str] = {}
        self.odd: list[str] = []  # ids holding a delimiter (a space, a comma, ...): searched as substrings
        self.max_segments = 1
        for raw in ids:
            if raw is None or (not isinstance(raw, str) and pd.isna(raw)):
                continue
            if isinstance(raw, float) and raw.is_integer():
                raw = int(raw)
            i = unicodedata.normalize("NFC", str(raw).strip())
            if not i:
                continue
            if _is_weak_id(i):
                self.weak[i.lower()] = i
            elif any(c in _DELIMITERS for c in i):
                self.odd.append(i)
            else:
                self.strong[i.lower()] = i
                self.max_segments = max(self.max_segments, len(_segments(i)))

    def __bool__(self) -> bool:
        return bool(self.strong or self.weak or self.odd)

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """Return ``(id, start, end)`` of every strong id standing as a whole token in ``text``."""
        text = unicodedata.normalize("NFC", text)
        hits = []
        if self.strong and self.max_segments == 1:  # every id is one run of letters and digits: look each run up
            for run in _ALNUM_RUN.finditer(text):
                hit = self.strong.get(run.group(0).lower())
                if hit is not None and not (hit.isdigit() and _inside_number_in_text(text, *run.span())):
                    hits.append((hit, *run.span()))
        elif self.strong:
            for run in _RUN.finditer(text):
                word = run.group(0)
                segs = _segments(word)
                for a in range(len(segs)):
                    for b in range(a, min(len(segs), a + self.max_segments)):
                        start, end = segs[a][0], segs[b][1]
                        hit = self.strong.get(word[start:end].lower())
                        if hit is None:
                            continue
                        if hit.isdigit() and _inside_number(word, start, end):
                            continue
                        hits.append((hit, run.start() + start, run.start() + end))
        low = text.lower()
        for i in self.odd:
            start = low.find(i.lower())
            while start >= 0:
                end = start + len(i)
                if not (start > 0 and text[start - 1].isalnum()) and not (end < len(text) and text[end].isalnum()):
                    hits.append((i, start, end))
                start = low.find(i.lower(), start + 1)
        return hits

    def find_weak_after_labels(self, text: str) -> list[tuple[str, int, int]]:
        """Return weak ids written right after an id label ("employee 17", "ID: 17", "#17")."""
        if not self.weak:
            return []
        text = unicodedata.normalize("NFC", text)
        hits = []
        for m in _ID_LABEL.finditer(text):
            token = m.group(1).rstrip(".:!?")
            hit = self.weak.get(token.lower())
            if hit is not None:
                hits.append((hit, m.start(1), m.start(1) + len(token)))
        return hits

    def find_in_cell(self, cell: str, *, id_column: bool) -> list[str]:
        """Return the ids in one table cell (weak ids too when the column is headed like an id)."""
        found = [h for h, _, _ in self.find(cell)]
        if id_column and self.weak:
            hit = self.weak.get(unicodedata.normalize("NFC", cell.strip()).lower())
            if hit is not None:
                found.append(hit)
        return found


def _inside_number_in_text(text: str, start: int, end: int) -> bool:
    """:func:`_inside_number` of ``text[start:end]`` within its run of text between delimiters (see ``_IdIndex.find``)."""
    before, after = text[max(start - 2, 0):start], text[end:end + 2]
    before = before if len(before) == 2 and not _RUN_DELIMITER.search(before) else ""
    after = after if len(after) == 2 and not _RUN_DELIMITER.search(after) else ""
    return _inside_number(before + text[start:end] + after, len(before), len(before) + end - start)


def _inside_number(word: str, start: int, end: int) -> bool:
    """Whether digits ``word[start:end]`` are part of a larger number (``1.12345``, ``12345,6``)."""
    before = word[start - 2: start] if start >= 2 else ""
    after = word[end: end + 2]
    return (len(before) == 2 and before[1] in ".," and before[0].isdigit()) or (
        len(after) == 2 and after[0] in ".," and after[1].isdigit())


def _prepared(values, kind: type):
    """``values`` prepared for searching as ``kind`` (an index or finder built from them), kept when already one;
    None when there are none."""
    if values is None or isinstance(values, kind):
        return values
    return kind(values)


#: Names longer than this are searched one by one rather than in the shared pattern, whose nesting grows with
#: the length of names sharing a beginning.
_LONGEST_SHARED_NAME = 64


def _alternatives(words: Iterable[str]) -> str:
    """One expression matching ``words`` in any case (to compile with ``re.IGNORECASE``), as a tree of their beginnings.

    ``re`` tries the branches of one fork one after another, so a tree costs a
    few steps per character where a flat alternation of all words costs one
    step per word. Where one word ends and a longer one goes on, the longer is
    tried first, so the longest word found at a place is the one matched. Words
    share a branch whatever their case (each character is lowered alone, as
    ``re.IGNORECASE`` compares them), so a shorter word in another case does
    not come first.
    """
    tree: dict = {}
    for word in words:
        node = tree
        for char in word:
            lower = char.lower()
            node = node.setdefault(lower if len(lower) == 1 else char, {})
        node[""] = {}  # a word ends here
    built: dict[int, str] = {}
    stack = [(tree, False)]
    while stack:  # children before parents, without recursion
        node, ready = stack.pop()
        if not ready:
            stack.append((node, True))
            stack += [(child, False) for char, child in node.items() if char]
            continue
        branches = [re.escape(char) + built.pop(id(child)) for char, child in sorted(node.items()) if char]
        body = "(?:" + "|".join(branches) + ")" if len(branches) > 1 else "".join(branches)
        built[id(node)] = f"(?:{body})?" if "" in node and body else body
    return built[id(tree)]


class _NameFinder:
    """Person names, found as whole words in any case (``(?<!\\w)name(?!\\w)``, ignoring case).

    The names share one pattern, compiled once, that finds every place a name
    starts (overlapping names included), the longest name there if several
    start at the same place. One pattern per name, as before, cost a pass
    over every text per name: minutes for a few hundred names in one run.
    """

    def __init__(self, names: Iterable):
        names = {x.strip() for x in names if isinstance(x, str) and len(x.strip()) > 2}
        shared = sorted(n for n in names if len(n) <= _LONGEST_SHARED_NAME)
        self.patterns = [re.compile(r"(?<!\w)(?=(" + _alternatives(shared) + r")(?!\w))", re.IGNORECASE)] if shared else []
        self.patterns += [re.compile(r"(?<!\w)(?=(" + re.escape(n) + r")(?!\w))", re.IGNORECASE)
                          for n in sorted(names) if len(n) > _LONGEST_SHARED_NAME]

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """Return ``(name as written in text, start, end)`` of every place in ``text`` a name starts, in order."""
        hits = [(m.start(1), m.end(1)) for pattern in self.patterns for m in pattern.finditer(text)]
        if len(self.patterns) > 1:  # a long name may start where a shorter one does: the longest, once
            longest: dict[int, int] = {}
            for start, end in hits:
                longest[start] = max(end, longest.get(start, end))
            hits = sorted(longest.items())
        return [(text[start:end], start, end) for start, end in hits]


#: Where a date in one of :class:`_BirthDateFinder`'s forms may start: ``1990-01-31``, ``31/01/1990``, ``31.01.1990``.
_DATE_SHAPE = re.compile(r"(?=([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{2}[/.][0-9]{2}[/.][0-9]{4}))")


class _BirthDateFinder:
    """Birth dates, found as written in any of four forms: ISO, day/month/year, month/day/year, day.month.year.

    Every date-shaped run of a text is looked up in the set of all forms of all
    dates, one pass over the text for any number of dates.
    """

    def __init__(self, birth_dates: Iterable):
        self.forms: set[str] = set()
        for d in pd.to_datetime(pd.Series(list(birth_dates)), errors="coerce").dropna():
            self.forms |= {d.strftime("%Y-%m-%d"), d.strftime("%d/%m/%Y"), d.strftime("%m/%d/%Y"), d.strftime("%d.%m.%Y")}

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """Return ``(date as written, start, end)`` of every birth date in ``text``."""
        if not self.forms:
            return []
        return [(m.group(1), m.start(1), m.end(1)) for m in _DATE_SHAPE.finditer(text) if m.group(1) in self.forms]


def _context(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> str:
    """Up to 20 characters either side of ``text[start:end]``, with every found span in it masked."""
    a, b = max(0, start - 20), min(len(text), end + 20)
    pieces, pos = [], a
    for s, e in sorted(spans):
        if e <= pos or s >= b:
            continue
        pieces += [text[pos:max(s, pos)], _mask(text[s:e])]  # a span cut by the window is masked whole
        pos = e
    pieces.append(text[pos:b])
    return re.sub(r"\s+", " ", "".join(pieces)).strip()


def _text_parts(text: str) -> list[tuple[str, str, bool]]:
    """Split a page into ``(where, text, visible)`` parts: visible text, attribute values, scripts."""
    if "<" not in text or not re.search(r"<[A-Za-z!/]", text):
        return [("text", unicodedata.normalize("NFC", text), True)]
    parts = [("visible text", _html_text(text), True)]
    parts += [(where, value, True) for where, value in _html_attributes(text).items()]
    scripts = _html_scripts(text)
    if scripts.strip():
        parts.append(("script or style", scripts, False))
    return parts


def find_identifiers(
    text: str,
    *,
    ids: Iterable[str] | None = None,
    pattern: str | None = EMPLOYEE_ID_PATTERN,
    birth_dates: Iterable | None = None,
    names: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Find employee ids, names and birth dates in a text or an HTML page.

    The study's own ids are found whatever their shape (``E000123``,
    ``ann.lee@corp.example``, ``zoë-7``, ``4711``, emoji): each is looked up as
    a whole token, so ``12`` is not found inside ``2012`` and ``ann@x.org``
    not inside ``joann@x.org`` (but punctuation ends a token: ``ann@x.org.uk``
    counts as ``ann@x.org``, since a false alarm is safer than a missed id). In an HTML page the visible text, every tag
    attribute (``alt``, ``title``, ``href``, ...) and, for ids only, the
    content of scripts are searched, after HTML entities and URL escapes are
    decoded; embedded images are skipped.

    Parameters
    ----------
    text : str
        Plain text or HTML.
    ids : iterable of str, optional
        The study's employee ids. Weak ids (numbers of fewer than
        :data:`WEAK_ID_DIGITS` digits, ids of one or two characters) look like
        counts and years, so they are reported only where a reader would take
        them for an id: in a table column headed like an id (``employee_id``,
        ``Employee``, ``ID``) or right after an id label (``employee 17``,
        ``ID: 17``, ``#17``).
    pattern : str or None, default :data:`EMPLOYEE_ID_PATTERN`
        A regular expression for ids (searched in visible text and
        attributes); ``None`` to search only ``ids``.
    birth_dates : iterable of date-like, optional
        Birth dates to search in ISO, ``dd/mm/yyyy``, ``mm/dd/yyyy`` and
        ``dd.mm.yyyy`` forms. A table header that names a birth date is
        reported whether or not dates are given.
    names : iterable of str, optional
        Person names to search (case-insensitive, whole words).

    Returns
    -------
    pandas.DataFrame
        One row per finding: ``kind`` (``"employee_id"``, ``"birth_date"``,
        ``"name"``), ``match`` (the text found; mask it before showing it
        anywhere), ``context`` (up to 20 characters either side, every finding
        in it masked) and ``where`` (``"visible text"``, ``"alt attribute of
        <img>"``, ``"script or style"``, ``"table 0, column employee_id, row 3"``).

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.privacy.find_identifiers("<td>E000123</td><td>E-value 2.1</td>")["match"].tolist()
    ['E000123']
    >>> ar.privacy.find_identifiers("Sent to ann.lee@corp.example in 2012", ids=["ann.lee@corp.example", "12"],
    ...                     pattern=None)["context"].tolist()
    ['Sent to a******************e in 2012']
    """
    rows = _identifier_rows(text, index=_prepared(ids, _IdIndex), pattern=pattern, birth_dates=birth_dates, names=names)
    return pd.DataFrame(rows, columns=["kind", "match", "context", "where"])


def _identifier_rows(text: str, *, index, pattern, birth_dates, names, tables=None) -> list[dict]:
    """:func:`find_identifiers`' rows; ``tables`` (the page's, if already read) is read only when weak ids need it."""
    parts = _text_parts(text)
    rows = _find_personal(parts, index=index, pattern=pattern, birth_dates=birth_dates, names=names)
    if index is not None and index.weak and parts[0][0] == "visible text":
        rows += _weak_ids_in_tables(read_html_tables(text) if tables is None else tables, index)
    return rows


def _find_personal(parts, *, index, pattern, birth_dates, names, date_headers: bool = True) -> list[dict]:
    """Findings in ``(where, text, visible)`` parts: ``kind, match, context, where, start``."""
    found: list[tuple[str, str, int, int, str]] = []  # kind, match, start, end, where
    birth_dates, names = _prepared(birth_dates, _BirthDateFinder), _prepared(names, _NameFinder)
    for where, part, visible in parts:
        if pattern and visible:
            found += [("employee_id", m.group(0), m.start(), m.end(), where) for m in re.finditer(pattern, part)]
        if index:
            found += [("employee_id", i, s, e, where) for i, s, e in index.find(part)]
        if not visible:
            continue
        if index:
            found += [("employee_id", i, s, e, where) for i, s, e in index.find_weak_after_labels(part)]
        if birth_dates:
            found += [("birth_date", form, s, e, where) for form, s, e in birth_dates.find(part)]
        if date_headers:
            found += [("birth_date", m.group(0), m.start(), m.end(), where) for m in _BIRTH_DATE_HEADER.finditer(part)]
        if names:
            found += [("name", name, s, e, where) for name, s, e in names.find(part)]
    texts = {where: part for where, part, _ in parts}
    spans: dict[str, list[tuple[int, int]]] = {}
    for _, _, s, e, where in found:
        spans.setdefault(where, []).append((s, e))
    seen, rows = set(), []
    for kind, match, s, e, where in sorted(found, key=lambda r: (r[4] != "visible text", r[4], r[2])):
        if (kind, where, s) in seen:  # a pattern hit and an ids hit at the same place
            continue
        seen.add((kind, where, s))
        rows.append({"kind": kind, "match": match, "context": _context(texts[where], s, e, spans[where]),
                     "where": where, "start": s})
    return rows


def _table_label(table: pd.DataFrame, position: int, label: str) -> str:
    """``"table 0"``, or ``"sheet 'results'"`` for a workbook sheet (its name is the index name)."""
    return f"sheet {table.index.name!r}" if label == "sheet" and table.index.name else f"{label} {position}"


def _weak_ids_in_tables(tables: list[pd.DataFrame], index: _IdIndex, *, label: str = "table") -> list[dict]:
    """Weak ids in the cells of columns headed like an id."""
    rows = []
    for t_i, t in enumerate(tables):
        for c_i, col in enumerate(t.columns):
            if not _ID_HEADER.match(str(col).strip()):
                continue
            for r_i, cell in enumerate(t.iloc[:, c_i].astype(str)):
                hit = index.weak.get(unicodedata.normalize("NFC", cell.strip()).lower())
                if hit is not None:
                    rows.append({"kind": "employee_id", "match": hit, "context": f"{col}: {_mask(hit)}",
                                 "where": f"{_table_label(t, t_i, label)}, column {col}, row {r_i}"})
    return rows


def _cell_text(cell) -> str:
    """A cell's text as BeautifulSoup's ``get_text(" ", strip=True)`` gives it: each text piece stripped, empty
    ones dropped, joined by spaces; comments, scripts and styles left out."""
    parts = []

    def walk(element) -> None:
        if element.text:
            parts.append(element.text)
        for child in element:
            if isinstance(child.tag, str) and child.tag not in ("script", "style"):  # comments have no str tag
                walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(cell)
    return " ".join(text for text in (part.strip() for part in parts) if text)


def read_html_tables(html: str) -> list[pd.DataFrame]:
    """Read every ``<table>`` of an HTML page into a DataFrame of strings.

    A small stand-in for :func:`pandas.read_html` that keeps every cell as
    text and never guesses types. The page is parsed by lxml (libxml2's HTML
    parser: a 14 MB dashboard in about 0.2 s, ten times Python's own parser).
    Header cells (``<thead>`` rows, or a first row of ``<th>``) name the
    columns: where pandas writes two header rows (column names, then the index
    name) the first non-empty text wins. Row-header cells (``<th>`` in the
    body, the index) become ordinary columns. A nested table is read on its
    own too, and its cells also count in the table around it.

    Parameters
    ----------
    html : str
        The page.

    Returns
    -------
    list of pandas.DataFrame
        One table per ``<table>``, in page order, with every cell as text.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> page = pd.DataFrame({"team": ["a"], "n": [7]}).to_html(index=False)
    >>> ar.privacy.read_html_tables(page)[0].columns.tolist()
    ['team', 'n']
    """
    import lxml.html  # deferred: only reading tables from HTML needs it

    if "<table" not in html.lower():
        return []
    # bytes with the encoding named: a str with an XML encoding declaration (an SVG file) is refused by lxml;
    # huge_tree: a dashboard's data URIs exceed libxml2's default limit for one attribute
    parser = lxml.html.HTMLParser(encoding="utf-8", huge_tree=True)
    root = lxml.html.document_fromstring(html.encode("utf-8", errors="replace"), parser=parser)
    tables = []
    for table in root.iter("table"):
        thead = next(table.iter("thead"), None)
        head_rows = list(thead.iter("tr")) if thead is not None else []
        in_head = {id(r) for r in head_rows}
        body_rows = [r for r in table.iter("tr") if id(r) not in in_head]
        row_cells = {id(r): list(r.iter("th", "td")) for r in [*head_rows, *body_rows]}
        if (not head_rows and body_rows and row_cells[id(body_rows[0])]
                and all(c.tag == "th" for c in row_cells[id(body_rows[0])])):
            head_rows, body_rows = [body_rows[0]], body_rows[1:]
        cells = [[_cell_text(c) for c in row_cells[id(r)]] for r in body_rows]
        width = max([len(r) for r in cells] + [len(row_cells[id(r)]) for r in head_rows] + [0])
        names = [""] * width
        for r in head_rows:
            for i, c in enumerate(row_cells[id(r)][:width]):
                text = _cell_text(c)
                if not names[i] and text:
                    names[i] = text
        names = [n or f"column_{i}" for i, n in enumerate(names)]
        cells = [r + [""] * (width - len(r)) for r in cells]
        tables.append(pd.DataFrame(cells, columns=names))
    return tables


def _is_count_header(label, count_pattern: str = COUNT_COLUMN_PATTERN) -> bool:
    """Whether a column header counts people: ``n``, ``n_people``, ``Employees (n)``, ``People (N)``, ``Headcount``."""
    text = unicodedata.normalize("NFKC", str(label)).strip().lower()
    marked = bool(re.search(r"[(\[]\s*n\s*[)\]]|\bn\s*=\s*$", text))  # "Employees (n)", "People [N]"
    text = re.sub(r"[(\[][^)\]]*[)\]]", " ", text)
    key = re.sub(r"[^\w]+", "_", text).strip("_")
    if re.fullmatch(count_pattern, key, re.IGNORECASE) or _PEOPLE_HEADER.fullmatch(key):
        return True
    return marked and not _COUNTED_THINGS.fullmatch(key)


def _cell_number(cell) -> float | None:
    """The number a table cell shows (``"3"``, ``"3.0"``, ``"1,204"``, ``"3 (12%)"``); None for anything else."""
    text = str(cell).strip().replace("\u202f", "").replace("\u00a0", "")
    m = re.fullmatch(r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s*\([^)]*\))?", text)
    return float(m.group(1).replace(",", "")) if m else None


def _small_groups_in_tables(tables: list[pd.DataFrame], *, min_group_size: int, count_pattern: str) -> list[dict]:
    rows = []
    for t_i, t in enumerate(tables):
        for c_i, col in enumerate(t.columns):
            label = col[-1] if isinstance(col, tuple) else col
            if not _is_count_header(label, count_pattern):
                continue
            for r_i, cell in enumerate(t.iloc[:, c_i]):
                v = _cell_number(cell)
                if v is not None and 0 < v < min_group_size:  # an empty group shows nobody
                    rows.append({"table": t_i, "column": str(label), "row": r_i, "value": float(v)})
    return rows


def find_small_groups(html: str, *, min_group_size: int = 5, count_pattern: str = COUNT_COLUMN_PATTERN) -> pd.DataFrame:
    """Find table cells that show a group smaller than ``min_group_size`` in an HTML page.

    Every ``<table>`` is read with :func:`read_html_tables`; a column counts
    people when its header, lower-cased with brackets dropped and other
    characters turned into ``_``, matches ``count_pattern`` (``n``, ``n_*``,
    ``count``, ``employees``, ``headcount``, ``at_risk``, ...; not
    ``n_items``, ``n_groups`` and other counts of things), names a count of
    people (``Number of employees``, ``n people``, ``Team size``), or carries
    an ``(n)`` mark (``Employees (n)``, ``People (N)``; not ``Items (n)``).
    Any number in it from 1 to ``min_group_size - 1`` (also written ``1,204`` or
    ``3 (12%)``) is a finding. Suppressed cells (missing, ``"suppressed"``,
    ``"<5"``) and empty groups (0) are fine.

    Parameters
    ----------
    html : str
        The page.
    min_group_size : int, default 5
        The study's minimum group size.
    count_pattern : str
        Regular expression (case-insensitive, full match) for count headers.

    Returns
    -------
    pandas.DataFrame
        One row per finding: ``table`` (0-based position on the page), ``column``,
        ``row`` (0-based) and ``value``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> page = "<table><tr><th>team</th><th>Employees (n)</th></tr><tr><td>A</td><td>3</td></tr></table>"
    >>> ar.privacy.find_small_groups(page)[["column", "value"]].values.tolist()
    [['Employees (n)', 3.0]]
    """
    rows = _small_groups_in_tables(read_html_tables(html), min_group_size=min_group_size, count_pattern=count_pattern)
    return pd.DataFrame(rows, columns=["table", "column", "row", "value"])


# ---- reading written files: each reader returns (where, text) parts and the tables in the file


def _read_csv_file(path: Path) -> tuple[list[tuple[str, str]], list[pd.DataFrame]]:
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=sep))
    parts = [(f"line {i + 1}", sep.join(r)) for i, r in enumerate(rows)]
    tables = []
    if rows:
        width = max(len(r) for r in rows)
        header = rows[0] + [f"column_{i}" for i in range(len(rows[0]), width)]
        tables.append(pd.DataFrame([r + [""] * (width - len(r)) for r in rows[1:]], columns=header, dtype=object))
    return parts, tables


def _read_xlsx_file(path: Path) -> tuple[list[tuple[str, str]], list[pd.DataFrame]]:
    """Every sheet and cell (literal values and formula text), comments, sheet names and document properties."""
    import openpyxl  # deferred: openpyxl is slow to import; only scanning an Excel file needs it

    book = openpyxl.load_workbook(path, data_only=False)
    parts: list[tuple[str, str]] = []
    props = book.properties
    meta = [str(getattr(props, k)) for k in ("title", "subject", "creator", "keywords", "description",
                                                "lastModifiedBy", "category") if getattr(props, k, None)]
    if meta:
        parts.append(("document properties", "\n".join(meta)))
    tables = []
    for sheet in book.worksheets:
        parts.append(("sheet names", sheet.title))
        grid = []
        for row in sheet.iter_rows():
            values = []
            for cell in row:
                v = cell.value
                text = "" if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
                values.append(text)
                if text:
                    parts.append((f"sheet {sheet.title!r} cell {cell.coordinate}", text))
                if cell.comment is not None:
                    parts.append((f"sheet {sheet.title!r} comment on {cell.coordinate}", cell.comment.text))
            grid.append(values)
        grid = [r for r in grid if any(r)]
        if grid:
            width = max(len(r) for r in grid)
            header = [h or f"column_{i}" for i, h in enumerate(grid[0] + [""] * (width - len(grid[0])))]
            t = pd.DataFrame([r + [""] * (width - len(r)) for r in grid[1:]], columns=header, dtype=object)
            tables.append(t.rename_axis(sheet.title))
    return parts, tables


#: One escape of a PDF literal string: a named escape, an octal code, a line break after a backslash, any other byte.
_PDF_ESCAPE = re.compile(rb"\\([nrtbf]|[0-7]{1,3}|[\r\n]|[\s\S])")
_PDF_ESCAPED = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"\r": b"", b"\n": b""}


def _pdf_unescape(m: re.Match) -> bytes:
    code = m.group(1)
    if code in _PDF_ESCAPED:
        return _PDF_ESCAPED[code]
    if 0x30 <= code[0] <= 0x37:
        return bytes([int(code, 8) & 0xFF])
    return code


def _pdf_literal(raw: bytes) -> bytes:
    """Decode the escapes of a PDF literal string body (without its parentheses).

    ``\\n \\r \\t \\b \\f``, octal codes of one to three digits; a backslash
    and the line-break byte after it are dropped; a backslash before any other
    byte gives that byte; a lone backslash at the end stays.
    """
    if b"\\" not in raw:
        return raw
    return _PDF_ESCAPE.sub(_pdf_unescape, raw)


#: Where a PDF string may start: ``(`` or ``<``.
_PDF_STRING_START = re.compile(rb"[(<]")
#: Inside a literal string: an escaped byte (kept as it is) or a parenthesis (nesting).
_PDF_LITERAL_TOKEN = re.compile(rb"\\[\s\S]|[()]")


def _pdf_strings(data: bytes) -> list[bytes]:
    """Literal ``(...)`` and hex ``<...>`` strings of PDF content, in order (nested parentheses kept)."""
    out, i, n = [], 0, len(data)
    while i < n:
        start = _PDF_STRING_START.search(data, i)
        if start is None:
            break
        i = start.start()
        if data[i] == 0x28:  # (
            depth, end, j = 1, n, n  # unterminated: the rest of the data
            for token in _PDF_LITERAL_TOKEN.finditer(data, i + 1):
                if len(token.group()) == 2:
                    continue  # an escape: kept for _pdf_literal
                depth += 1 if token.group() == b"(" else -1
                if not depth:
                    end, j = token.start(), token.end()
                    break
            out.append(_pdf_literal(data[i + 1: end]))
            i = j
        elif i + 1 < n and data[i + 1] != 0x3C:  # < but not <<
            m = re.match(rb"<([0-9A-Fa-f\s]*)>", data[i: i + 65536])
            if m:
                hexed = re.sub(rb"\s", b"", m.group(1))
                out.append(bytes.fromhex((hexed + b"0" * (len(hexed) % 2)).decode()))
                i += m.end()
            else:
                i += 1
        else:
            i += 1
    return out


def _pdf_cmaps(streams: list[bytes]) -> list[dict[bytes, str]]:
    """Code-to-text maps of the fonts' ToUnicode CMaps (``bfchar`` and ``bfrange``)."""
    maps = []
    for s in streams:
        if b"begincmap" not in s:
            continue
        table: dict[bytes, str] = {}

        def text(h: bytes) -> str:
            return bytes.fromhex(h.decode()).decode("utf-16-be", errors="replace")

        for block in re.findall(rb"beginbfchar(.*?)endbfchar", s, re.S):
            for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]*)>", block):
                table[bytes.fromhex(src.decode())] = text(dst)
        for block in re.findall(rb"beginbfrange(.*?)endbfrange", s, re.S):
            for lo, hi, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*(<[0-9A-Fa-f]*>|\[[^\]]*\])", block):
                width, a, b = len(lo) // 2, int(lo, 16), int(hi, 16)
                if b - a > 65535:
                    continue
                if dst.startswith(b"["):
                    targets = [text(t) for t in re.findall(rb"<([0-9A-Fa-f]*)>", dst)]
                    for k, t in enumerate(targets[: b - a + 1]):
                        table[(a + k).to_bytes(width, "big")] = t
                else:
                    base = dst.strip(b"<>")
                    start = int(base, 16) if base else 0
                    for k in range(b - a + 1):
                        table[(a + k).to_bytes(width, "big")] = chr(start + k) if start + k < 0x110000 else ""
        if table:
            maps.append(table)
    return maps


def _pdf_decode(raw: bytes, cmap: dict[bytes, str] | None) -> str:
    if cmap is None:
        if raw.startswith(b"\xfe\xff"):
            return raw[2:].decode("utf-16-be", errors="replace")
        return raw.decode("latin-1")
    width = len(next(iter(cmap)))
    return "".join(cmap.get(raw[k: k + width], "") for k in range(0, len(raw), width))


def _pdf_decoder(cmap: dict[bytes, str] | None):
    """``_pdf_decode(raw, cmap)`` as a function of ``raw``: codes of one or two bytes looked up in a table.

    A CMap maps codes of its first key's width (one or two bytes in practice);
    decoding a string code by code through the dict cost seconds for a brief's
    PDF, whose image streams are read as text too. The table holds the codes
    of that width (a shorter key can only match the string's last, partial
    code, which is looked up in the CMap itself), so the text is the same.
    """
    if cmap is None:
        return lambda raw: _pdf_decode(raw, None)
    width = len(next(iter(cmap)))
    if width not in (1, 2):
        return lambda raw: _pdf_decode(raw, cmap)
    table = [""] * (1 << (8 * width))
    for code, text in cmap.items():
        if len(code) == width:
            table[int.from_bytes(code, "big")] = text
    lookup = table.__getitem__

    def decode(raw: bytes) -> str:
        full = len(raw) - len(raw) % width
        if width == 1:
            text = "".join(map(lookup, raw))
        else:
            codes = array.array("H", raw[:full])
            if sys.byteorder == "little":
                codes.byteswap()
            text = "".join(map(lookup, codes))
        return text + cmap.get(raw[full:], "") if full < len(raw) else text

    return decode


def _read_pdf_file(path: Path) -> tuple[list[tuple[str, str]], list[pd.DataFrame]]:
    """Best-effort PDF text without a PDF library (none is a dependency).

    Streams are inflated (``FlateDecode``) or taken as they are; the strings
    of the file and of every stream are decoded as PDF text (literal and hex
    strings; ``TJ`` arrays joined) and also through every ToUnicode CMap in
    the file, so text set in subset fonts is read too. Images and streams
    under other filters are skipped.
    """
    data = path.read_bytes()
    streams = []
    for m in re.finditer(rb"stream\r?\n", data):
        end = data.find(b"endstream", m.end())
        if end < 0:
            continue
        body, head = data[m.end(): end], data[max(0, m.start() - 512): m.start()]
        if b"/FlateDecode" in head.rsplit(b"obj", 1)[-1]:
            try:
                body = zlib.decompressobj().decompress(body)
            except zlib.error:
                continue
        elif re.search(rb"/Filter", head.rsplit(b"obj", 1)[-1]):
            continue  # images and other encodings
        streams.append(body)
    cmaps = _pdf_cmaps(streams)
    decoders = [_pdf_decoder(cmap) for cmap in [None, *cmaps]]
    outside = re.sub(rb"(?s)stream\r?\n.*?endstream", b" ", data)  # the document's own strings (/Title, ...)
    parts = []
    for k, chunk in enumerate([outside, *streams]):
        where = "file" if k == 0 else f"stream {k}"
        arrays = [_pdf_strings(a) for a in re.findall(rb"\[((?:[^\[\]]|\\[\[\]])*)\]\s*TJ", chunk)]
        strings = _pdf_strings(chunk)
        if not strings:
            continue
        for cmap, decode in zip([None, *cmaps], decoders):
            texts = [decode(s) for s in strings]
            texts += ["".join(decode(s) for s in arr) for arr in arrays]
            parts.append((where if cmap is None else f"{where} (font map)", "\n".join(texts)))
    return parts, []


def _read_png_file(path: Path) -> tuple[list[tuple[str, str]], list[pd.DataFrame]]:
    """The text chunks of a PNG image (``tEXt``, ``zTXt``, ``iTXt``, ``eXIf``): titles, descriptions, authors."""
    data = path.read_bytes()
    parts, pos = [], 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos: pos + 4])
        kind, body = data[pos + 4: pos + 8], data[pos + 8: pos + 8 + length]
        pos += 12 + length
        try:
            if kind == b"tEXt":
                key, _, value = body.partition(b"\0")
                parts.append((f"PNG text {key.decode('latin-1')!r}", value.decode("latin-1")))
            elif kind == b"zTXt":
                key, _, value = body.partition(b"\0")
                parts.append((f"PNG text {key.decode('latin-1')!r}", zlib.decompress(value[1:]).decode("latin-1")))
            elif kind == b"iTXt":
                key, _, rest = body.partition(b"\0")
                compressed, rest = rest[0], rest[2:]
                lang, _, rest = rest.partition(b"\0")
                translated, _, value = rest.partition(b"\0")
                value = zlib.decompress(value) if compressed else value
                parts.append((f"PNG text {key.decode('latin-1')!r}",
                              translated.decode("utf-8", "replace") + "\n" + value.decode("utf-8", "replace")))
            elif kind == b"eXIf":
                parts.append(("PNG EXIF", body.decode("latin-1")))
        except (zlib.error, IndexError):
            parts.append((f"PNG chunk {kind.decode('latin-1')!r} (unreadable)", body.decode("latin-1")))
        if kind == b"IEND":
            break
    return parts, []


def _read_other_file(path: Path) -> tuple[list[tuple[str, str]], list[pd.DataFrame]]:
    data = path.read_bytes()
    try:
        return [("file", data.decode("utf-8"))], []
    except UnicodeDecodeError:
        return [("raw bytes", data.decode("latin-1"))], []


_READERS = {".csv": _read_csv_file, ".tsv": _read_csv_file, ".xlsx": _read_xlsx_file, ".xlsm": _read_xlsx_file,
            ".pdf": _read_pdf_file, ".png": _read_png_file}


def _finding(file: str, kind: str, found: str, where: str, context: str = "") -> dict:
    detail = f"{found} in {where}" + (f": '{context}'" if context else "")
    return {"file": file, "kind": kind, "found": found, "where": where, "detail": detail}


def scan_report(path, *, min_group_size: int = 5, ids=None, birth_dates=None, names=None) -> pd.DataFrame:
    """Scan one written file for identifiers and groups below the threshold.

    HTML (``.html``, ``.htm``, ``.svg``) is searched with
    :func:`find_identifiers` (visible text, attributes such as ``alt`` and
    ``title``, scripts) and :func:`find_small_groups`. CSV and XLSX files are
    searched cell by cell (every sheet; formulas, comments and document
    properties too), and their count columns checked like HTML tables. PDF
    text is read without a PDF library (see Notes), PNG images through their
    text chunks; any other file as text (or raw bytes).

    Parameters
    ----------
    path : str or Path
        The file.
    min_group_size : int, default 5
        The study's minimum group size.
    ids, birth_dates, names : iterable, optional
        Passed to :func:`find_identifiers`.

    Returns
    -------
    pandas.DataFrame
        One row per finding: ``file``, ``kind`` (``employee_id``,
        ``birth_date``, ``name`` or ``small_group``), ``found`` (masked: the
        first and last character of an id, name or date, never the whole),
        ``where`` (e.g. ``"visible text"``, ``"sheet 'results' cell B7"``,
        ``"table 0, column n, row 2"``) and ``detail`` (the two, with masked context).

    Notes
    -----
    No PDF text extractor is a dependency, so PDF text is recovered from the
    file itself: streams are inflated (``FlateDecode``) and every literal and
    hex string is decoded as PDF text and through each ToUnicode font map.
    That reads PDFs from matplotlib, browsers and most writers; text drawn as
    outlines, or under other stream filters, is not read.

    Examples
    --------
    >>> import tempfile, pathlib, alignment_research as ar
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.html"
    >>> _ = p.write_text("<p>Nothing personal here.</p>")
    >>> len(ar.privacy.scan_report(p))
    0
    """
    path = Path(path)
    personal = prepare_search(ids=ids, birth_dates=birth_dates, names=names)
    index, birth_dates, names = personal["ids"], personal["birth_dates"], personal["names"]
    rows = []
    if path.suffix.lower() in {".html", ".htm", ".svg", ".xhtml"}:
        html = path.read_text(encoding="utf-8", errors="replace")
        tables = read_html_tables(html)  # once, for both searches
        rows += [_finding(path.name, r["kind"], _mask(r["match"]), r["where"], r["context"])
                 for r in _identifier_rows(html, index=index, pattern=EMPLOYEE_ID_PATTERN, birth_dates=birth_dates,
                                           names=names, tables=tables)]
        rows += [_finding(path.name, "small_group", f"{r['value']:g}",
                          f"table {r['table']}, column {r['column']}, row {r['row']}")
                 for r in _small_groups_in_tables(tables, min_group_size=min_group_size,
                                                  count_pattern=COUNT_COLUMN_PATTERN)]
        return pd.DataFrame(rows, columns=["file", "kind", "found", "where", "detail"])
    reader = _READERS.get(path.suffix.lower(), _read_other_file)
    parts, tables = reader(path)
    # one pass over all parts joined (a finding's offset names its part), not one per cell or line
    offsets, pos = [], 0
    for _, text in parts:
        offsets.append(pos)
        pos += len(text) + 1
    joined = "\n".join(text for _, text in parts)
    textual = reader in (_read_csv_file, _read_xlsx_file) or (reader is _read_other_file and parts[0][0] == "file")
    found = _find_personal([("file", joined, True)], index=index, birth_dates=birth_dates, names=names,
                           pattern=EMPLOYEE_ID_PATTERN if textual else None, date_headers=bool(textual))
    # (the id pattern and the birth-date header are not looked for in the noise of binary files)
    rows += [_finding(path.name, r["kind"], _mask(r["match"]), parts[bisect.bisect_right(offsets, r["start"]) - 1][0],
                      r["context"]) for r in found]
    label = "sheet" if reader is _read_xlsx_file else "table"
    if index is not None:
        rows += [_finding(path.name, r["kind"], _mask(r["match"]), r["where"], r["context"])
                 for r in _weak_ids_in_tables(tables, index, label=label)]
    rows += [_finding(path.name, "small_group", f"{r['value']:g}",
                      f"{_table_label(tables[r['table']], r['table'], label)}, column {r['column']}, row {r['row']}")
             for r in _small_groups_in_tables(tables, min_group_size=min_group_size, count_pattern=COUNT_COLUMN_PATTERN)]
    out = pd.DataFrame(rows, columns=["file", "kind", "found", "where", "detail"])
    return out.drop_duplicates(["kind", "found", "where"], ignore_index=True)


def prepare_search(*, ids=None, birth_dates=None, names=None) -> dict:
    """Prepare the personal values to search for once, for any number of texts and files.

    :func:`find_identifiers`, :func:`scan_report` and :func:`scan_outputs`
    take what this returns in place of the values themselves: the ids indexed
    for token lookup, the birth dates as the set of their written forms, and
    the names as one compiled pattern. Preparing them costs about as much as
    one search, so a caller that scans many times (``run`` scans each
    notebook's files as they appear) prepares once.

    Parameters
    ----------
    ids, birth_dates, names : iterable, optional
        As for :func:`find_identifiers`; values prepared already are kept.

    Returns
    -------
    dict
        ``{"ids": ..., "birth_dates": ..., "names": ...}``, each ``None`` where
        nothing was given, to pass on as keyword arguments.

    Examples
    --------
    >>> import alignment_research as ar
    >>> personal = ar.privacy.prepare_search(ids=["E000123"], names=["Ann Lee"])
    >>> ar.privacy.find_identifiers("ann lee and E000123", pattern=None, **personal)["kind"].tolist()
    ['name', 'employee_id']
    """
    return {"ids": _prepared(ids, _IdIndex), "birth_dates": _prepared(birth_dates, _BirthDateFinder),
            "names": _prepared(names, _NameFinder)}


def scan_outputs(folder, *, min_group_size: int = 5, ids=None, birth_dates=None, names=None) -> pd.DataFrame:
    """Scan every file under a folder with :func:`scan_report` (HTML, CSV, XLSX, PDF, PNG and any other).

    Parameters
    ----------
    folder : str or Path
        The output folder (searched recursively).
    min_group_size : int, default 5
        The study's minimum group size.
    ids, birth_dates, names : iterable, optional
        Passed to :func:`find_identifiers`, and prepared once for all files
        (:func:`prepare_search`; values it prepared are used as they are).

    Returns
    -------
    pandas.DataFrame
        The findings of every file: ``file`` (path relative to ``folder``),
        ``kind``, ``found`` (masked), ``where`` and ``detail``. A file that
        cannot be read (a damaged workbook, say) is a finding of kind
        ``unreadable``: what cannot be read cannot be shown to be safe.

    Examples
    --------
    >>> import tempfile, pathlib, alignment_research as ar
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "t.csv").write_text("team,Headcount\\nA,3\\n")
    >>> ar.privacy.scan_outputs(d)[["file", "kind", "where"]].values.tolist()
    [['t.csv', 'small_group', 'table 0, column Headcount, row 0']]
    """
    folder = Path(folder)
    personal = prepare_search(ids=ids, birth_dates=birth_dates, names=names)
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            rows = scan_report(path, min_group_size=min_group_size, **personal)
        except Exception as err:  # a file that cannot be read cannot be shown to be safe
            rows = pd.DataFrame([_finding(path.name, "unreadable", type(err).__name__, "the whole file")])
        found.append(rows.assign(file=path.relative_to(folder).as_posix()))
    if not found:
        return pd.DataFrame(columns=["file", "kind", "found", "where", "detail"])
    return pd.concat(found, ignore_index=True)
