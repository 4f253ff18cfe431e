"""Privacy: what may be shown to leadership (small-group suppression), pseudonyms, leak scans."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

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
}

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
    min_size: int = 5,
    group_cols=None,
    value_cols=None,
    total=None,
    margins: bool = False,
) -> pd.DataFrame:
    """Suppress every cell that describes a group smaller than ``min_size``.

    This is the one function that decides what may be shown to leadership.
    A group with fewer than ``min_size`` people has its count and every value
    cell set to missing (suppressed, never rounded). Suppression must not be
    undone by subtraction, so complementary suppression follows: within each
    set of siblings (rows that share the parent group, i.e. every group column
    but the last), if the suppressed cells could be recovered from a shown
    parent total and the shown siblings, the next smallest sibling is
    suppressed too, until at least two siblings are hidden *and* the hidden
    siblings together hold at least ``min_size`` people (otherwise their
    combined group, itself small, could be recovered).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per group: the group columns, a count column and value columns.
    count : str, default "n"
        Column holding the number of people in each group.
    min_size : int, default 5
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
    Primary suppression hides cells with ``n < min_size``; complementary
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
    small = ~(n >= min_size)  # NaN counts are treated as small: unknown size is not safe to show
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
                    if _complete_sibling_set(rows, n, hidden, reason, min_size):
                        changed = True

    out = table.copy()
    for c in [count, *value_cols]:
        if hidden.any() and (pd.api.types.is_integer_dtype(out[c]) or pd.api.types.is_bool_dtype(out[c])):
            out[c] = out[c].astype("Int64" if pd.api.types.is_integer_dtype(out[c]) else "boolean")  # counts stay whole
        out[c] = out[c].mask(hidden)  # missing of the column's own kind
    out["suppressed"] = hidden
    out["suppression"] = pd.array(reason, dtype="string")
    return out


def _complete_sibling_set(rows, n, hidden, reason, min_size) -> bool:
    """Hide more siblings until the hidden ones cannot be recovered; return whether any changed."""
    if len(rows) == 0:
        return False
    changed = False
    while True:
        h = rows[hidden[rows]]
        if len(h) == 0 or len(h) == len(rows):
            return changed
        hidden_total = np.nansum(n[h])
        if len(h) >= 2 and hidden_total >= min_size:
            return changed
        shown = rows[~hidden[rows]]
        nxt = shown[np.argsort(np.nan_to_num(n[shown], nan=-1), kind="stable")[0]]
        hidden[nxt] = True
        reason[nxt] = "complementary"
        changed = True


def mask_small_counts(table: pd.DataFrame, *, min_size: int = 5, columns=None) -> pd.DataFrame:
    """Hide counts below ``min_size`` in a summary or diagnostics table (``glance()``, balance, event study).

    For tables that are not one row per group of a whole (so no total can be
    subtracted), each count column is passed on its own through
    :func:`suppress_small_groups` without complementary suppression, and the
    cells of that column that count fewer than ``min_size`` people are hidden.
    Other columns are left as they are.

    Parameters
    ----------
    table : pandas.DataFrame
        The table to show.
    min_size : int, default 5
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
            count=c, min_size=min_size, group_cols=["_row"], value_cols=[], total=False,
        )
        out[c] = pd.Series(masked[c].array, index=out.index)
    return out


# --------------------------------------------------------------------------- group sizes and pooling


_NUMBER_WORDS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def _plural(column: str) -> str:
    """``"department"`` -> ``"departments"``, ``"job_level"`` -> ``"job levels"``."""
    words = str(column).replace("_", " ").strip()
    return words + ("es" if words.endswith(("s", "x", "ch", "sh")) else "s")


def pooled_label(column: str, *, min_size: int = 5) -> str:
    """Return the label of the level that pools a column's small levels.

    Parameters
    ----------
    column : str
        The categorical column, e.g. ``"department"``.
    min_size : int, default 5
        The study's minimum group size.

    Returns
    -------
    str
        E.g. ``"Other departments (each < 5 people)"``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.pooled_label("job_level", min_size=5)
    'Other job levels (each < 5 people)'
    """
    return f"Other {_plural(column)} (each < {min_size} people)"


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
    rows = data.dropna(subset=by)
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
    min_size: int = 5,
    person: str | None = "employee_id",
    total=None,
) -> pd.DataFrame:
    """Decide which groups of a table may be shown to leadership, counting distinct people.

    This is the single gate of every leadership-facing table, figure and
    sentence that describes groups: sizes come from :func:`group_sizes`
    (people, not rows) and the decision from :func:`suppress_small_groups`
    (groups below ``min_size``, then complementary suppression so that no
    hidden size can be recovered by subtraction from a shown total).

    Parameters
    ----------
    data : pandas.DataFrame
        The rows behind the groups (one or more per person).
    by : str or list of str
        The grouping column(s), outermost first.
    min_size : int, default 5
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
    >>> ar.size_gate(panel, "department")[["department", "n", "suppression"]]
      department     n    suppression
    0          A  <NA>  complementary
    1          B  <NA>    small group
    2          C    10           <NA>
    """
    by = [by] if isinstance(by, str) else list(by)
    sizes = group_sizes(data, by, person=person)
    return suppress_small_groups(sizes, count="n", min_size=min_size, group_cols=by, value_cols=["n_rows"],
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
    >>> ar.treatment_term("department", "Sales")
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
        import patsy

        from ._formula import _names_in

        desc = patsy.ModelDesc.from_formula(formula)
        rhs_terms, intercept = [], False
        for t in desc.rhs_termlist:
            if not t.factors:
                intercept = True
                continue
            codes, drop = [], False
            for factor in t.factors:
                names = _names_in(factor.code)
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
        labels[column] = text or pooled_label(column, min_size=min_group_size)
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
        characters of ``HMAC-SHA256(key, x)``; missing ids stay missing.

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
        out[c] = pd.array(
            [
                pd.NA if pd.isna(v) else "P" + hmac.new(key, str(v).encode("utf-8"), hashlib.sha256).hexdigest()[:_PSEUDONYM_HEX]
                for v in out[c]
            ],
            dtype="string",
        )
    return out


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
        New tables whose :data:`ID_COLUMNS` hold pseudonyms.

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
        name: pseudonymise_ids(table, ID_COLUMNS.get(name, []), key_env=key_env) for name, table in tables.items()
    }


# --------------------------------------------------------------------------- leak scans


def _html_text(html: str) -> str:
    """Return the visible text of an HTML page: drop scripts, styles, data URIs and tags."""
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    html = re.sub(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+", " ", html)
    html = re.sub(r"(?s)<[^>]+>", " ", html)
    import html as _html

    return _html.unescape(html)


def find_identifiers(
    text: str,
    *,
    ids: Iterable[str] | None = None,
    pattern: str | None = EMPLOYEE_ID_PATTERN,
    birth_dates: Iterable | None = None,
    names: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Find employee ids, names and birth dates in a text or an HTML page.

    Parameters
    ----------
    text : str
        Plain text or HTML (tags, scripts, styles and embedded images are
        ignored; only what a reader could see is searched).
    ids : iterable of str, optional
        The study's employee ids; each is searched as a whole word. Purely
        numeric ids shorter than 5 digits are skipped (they would match counts).
    pattern : str or None, default :data:`EMPLOYEE_ID_PATTERN`
        A regular expression for ids; ``None`` to search only ``ids``.
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
        ``"name"``), ``match`` and ``context`` (up to 40 characters around it).

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.find_identifiers("<td>E000123</td><td>E-value 2.1</td>")["match"].tolist()
    ['E000123']
    """
    visible = _html_text(text) if "<" in text else text
    found: list[tuple[str, str, int]] = []
    if pattern:
        found += [("employee_id", m.group(0), m.start()) for m in re.finditer(pattern, visible)]
    if ids is not None:
        wanted = {str(i) for i in ids if isinstance(i, str) and i and not (i.isdigit() and len(i) < 5)}
        if wanted:
            for m in re.finditer(r"[A-Za-z0-9_-]+", visible):
                if m.group(0) in wanted:
                    found.append(("employee_id", m.group(0), m.start()))
    if birth_dates is not None:
        forms = set()
        for d in pd.to_datetime(pd.Series(list(birth_dates)), errors="coerce").dropna():
            forms |= {d.strftime("%Y-%m-%d"), d.strftime("%d/%m/%Y"), d.strftime("%m/%d/%Y"), d.strftime("%d.%m.%Y")}
        for form in forms:
            found += [("birth_date", form, m.start()) for m in re.finditer(re.escape(form), visible)]
    found += [("birth_date", m.group(0), m.start()) for m in _BIRTH_DATE_HEADER.finditer(visible)]
    if names is not None:
        for name in {str(x).strip() for x in names if isinstance(x, str) and len(str(x).strip()) > 2}:
            found += [("name", m.group(0), m.start())
                      for m in re.finditer(r"\b" + re.escape(name) + r"\b", visible, re.IGNORECASE)]
    # de-duplicate (a pattern hit and an ids hit at the same place)
    seen, rows = set(), []
    for kind, match, pos in sorted(found, key=lambda r: r[2]):
        if (kind, pos) in seen:
            continue
        seen.add((kind, pos))
        rows.append({"kind": kind, "match": match, "context": visible[max(0, pos - 20): pos + len(match) + 20].strip()})
    return pd.DataFrame(rows, columns=["kind", "match", "context"])


def read_html_tables(html: str) -> list[pd.DataFrame]:
    """Read every ``<table>`` of an HTML page into a DataFrame of strings.

    A small stand-in for :func:`pandas.read_html` that needs no ``lxml`` or
    ``html5lib`` (it uses BeautifulSoup with Python's own parser, which
    nbconvert already requires). Header cells (``<thead>`` rows, or a first
    row of ``<th>``) name the columns: where pandas writes two header rows
    (column names, then the index name) the first non-empty text wins.
    Row-header cells (``<th>`` in the body, the index) become ordinary columns.

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
    >>> ar.read_html_tables(page)[0].columns.tolist()
    ['team', 'n']
    """
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    tables = []
    for table in soup.find_all("table"):
        head_rows = table.find("thead").find_all("tr") if table.find("thead") else []
        all_rows = table.find_all("tr")
        body_rows = [r for r in all_rows if r not in head_rows]
        if not head_rows and body_rows and body_rows[0].find_all("th") and not body_rows[0].find_all("td"):
            head_rows, body_rows = [body_rows[0]], body_rows[1:]
        cells = [[c.get_text(" ", strip=True) for c in r.find_all(["th", "td"])] for r in body_rows]
        width = max([len(r) for r in cells] + [len(r.find_all(["th", "td"])) for r in head_rows] + [0])
        names = [""] * width
        for r in head_rows:
            for i, c in enumerate(r.find_all(["th", "td"])[:width]):
                text = c.get_text(" ", strip=True)
                if not names[i] and text:
                    names[i] = text
        names = [n or f"column_{i}" for i, n in enumerate(names)]
        cells = [r + [""] * (width - len(r)) for r in cells]
        tables.append(pd.DataFrame(cells, columns=names))
    return tables


def find_small_groups(html: str, *, min_size: int = 5, count_pattern: str = COUNT_COLUMN_PATTERN) -> pd.DataFrame:
    """Find table cells that show a group smaller than ``min_size`` in an HTML page.

    Every ``<table>`` is read with :func:`read_html_tables`; a column whose
    header matches ``count_pattern`` (``n``, ``n_*``, ``count``,
    ``employees``, ``at_risk``, ...; not ``n_items``, ``n_groups`` and other
    counts of things) counts people, and any number in it from 1 to
    ``min_size - 1`` is a finding. Suppressed cells (missing, ``"suppressed"``)
    and empty groups (0) are fine.

    Parameters
    ----------
    html : str
        The page.
    min_size : int, default 5
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
    >>> page = "<table><tr><th>team</th><th>n</th></tr><tr><td>A</td><td>3</td></tr></table>"
    >>> ar.find_small_groups(page)[["column", "value"]].values.tolist()
    [['n', 3.0]]
    """
    rows = []
    tables = read_html_tables(html)
    regex = re.compile(count_pattern, re.IGNORECASE)
    for t_i, t in enumerate(tables):
        for col in t.columns:
            label = col[-1] if isinstance(col, tuple) else col
            if not regex.fullmatch(str(label).strip()):
                continue
            values = pd.to_numeric(t[col], errors="coerce")
            if isinstance(values, pd.DataFrame):  # duplicated header
                values = values.iloc[:, 0]
            for r_i, v in values.items():
                if pd.notna(v) and 0 < v < min_size:  # an empty group shows nobody
                    rows.append({"table": t_i, "column": str(label), "row": r_i, "value": float(v)})
    return pd.DataFrame(rows, columns=["table", "column", "row", "value"])


def scan_report(path, *, min_size: int = 5, ids=None, birth_dates=None, names=None) -> pd.DataFrame:
    """Scan one rendered HTML report for identifiers and groups below the threshold.

    Parameters
    ----------
    path : str or Path
        The HTML file.
    min_size : int, default 5
        The study's minimum group size.
    ids, birth_dates, names : iterable, optional
        Passed to :func:`find_identifiers`.

    Returns
    -------
    pandas.DataFrame
        One row per finding: ``file``, ``kind`` (``employee_id``,
        ``birth_date``, ``name`` or ``small_group``) and ``detail``.

    Examples
    --------
    >>> import tempfile, pathlib, alignment_research as ar
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.html"
    >>> _ = p.write_text("<p>Nothing personal here.</p>")
    >>> len(ar.scan_report(p))
    0
    """
    path = Path(path)
    html = path.read_text(encoding="utf-8")
    rows = [
        {"file": path.name, "kind": r.kind, "detail": f"{r.match!r} in '{r.context}'"}
        for r in find_identifiers(html, ids=ids, birth_dates=birth_dates, names=names).itertuples()
    ]
    rows += [
        {"file": path.name, "kind": "small_group", "detail": f"table {r.table}, column {r.column}, row {r.row}: {r.value:g}"}
        for r in find_small_groups(html, min_size=min_size).itertuples()
    ]
    return pd.DataFrame(rows, columns=["file", "kind", "detail"])
