"""Privacy: what may be shown to leadership (small-group suppression), pseudonyms, leak scans."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import PrivacyError

__all__ = [
    "suppress_small_groups",
    "mask_small_counts",
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
