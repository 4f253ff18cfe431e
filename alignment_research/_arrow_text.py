"""Arrow text of a table's object columns, made once and shared: kept by ``load``, read by cleaning and the schema.

Load reads a CSV file with Arrow and then makes Python text of it (``object``
columns, as every table the toolkit hands out). Cleaning reads most text
columns in Arrow again (stripping, numbers, references) or hashes them
(duplicates), and converting a column to Arrow costs about as much as reading
it. So:

- ``load`` keeps the Arrow text of each column it returns (:func:`keep`). It
  is handed out once (:func:`find`), and only while the column still holds
  exactly the values it was read with: each entry holds a copy of the column (the same
  Python objects, so none of them can be freed and its address reused), and
  :func:`find` compares the column's object addresses with the copy's. A cell
  changed in place since loading (``table.loc[5, "employee_id"] = ...``) makes
  the entry useless, and the column is converted anew.
- inside :func:`shared_text` (the steps of one table), every object column is
  converted at most once (:func:`text_kind`) and hashed at most once
  (:func:`value_codes`), and the rows a quarantine keeps carry both along
  (:func:`keep_rows`), taken only when a later step reads them.

An entry goes when the array that owns the column's memory is freed, and
everything held by :func:`shared_text` when its block ends.
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "keep", "find", "memory_key", "owner", "shared_text", "text_kind", "arrow_text", "remember", "value_codes",
    "has_codes", "is_held", "keep_rows", "duplicated_key",
]

#: ``{memory of a column: [weak reference to the array owning it, copy of the column, Arrow text]}``, from ``load``.
_KEPT: dict = {}
#: Inside :func:`shared_text`: ``{memory of an object column: _Known}``; None outside.
_SHARED: contextvars.ContextVar = contextvars.ContextVar("alignment_research_shared_text", default=None)


def memory_key(values: np.ndarray) -> tuple:
    """Where a 1-D array's cells live: two arrays with the same key hold the same cells.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array(["x", "y"], dtype=object)
    >>> memory_key(a) == memory_key(a[:]), memory_key(a) == memory_key(a.copy())
    (True, False)
    """
    return values.__array_interface__["data"][0], values.strides, values.shape


def owner(values: np.ndarray) -> np.ndarray:
    """The array that owns the memory of ``values`` (the memory lives as long as it does).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array(["x", "y"], dtype=object)
    >>> owner(a[1:]) is a
    True
    """
    while isinstance(values.base, np.ndarray):
        values = values.base
    return values


# --------------------------------------------------------------------------- kept by load
def keep(values: np.ndarray, arrow) -> None:
    """Keep ``arrow`` as the Arrow text of the object column ``values`` (missing values are nulls).

    Parameters
    ----------
    values : numpy.ndarray
        A 1-D ``object`` array of text and missing values, as a table hands it out.
    arrow : pyarrow.Array
        The same values as an Arrow string array.

    Examples
    --------
    >>> import numpy as np, pyarrow as pa
    >>> values = np.array(["a", np.nan], dtype=object)
    >>> keep(values, pa.array(["a", None]))
    >>> find(values).to_pylist(), find(values)
    (['a', None], None)
    """
    if values.ndim != 1 or values.dtype != object or len(values) != len(arrow):
        return
    key = memory_key(values)
    _KEPT[key] = [weakref.ref(owner(values), lambda _, key=key: _KEPT.pop(key, None)), values.copy(), arrow]


def find(values: np.ndarray):
    """The Arrow text kept for ``values``, or None (none kept, or a cell changed since); handed out once.

    Cleaning holds what it gets for the steps of one table (:func:`shared_text`), so the memory goes
    when the table is clean; a second cleaning of the same study converts the column itself.

    Parameters
    ----------
    values : numpy.ndarray
        A 1-D ``object`` array (a table's column, e.g. ``table["employee_id"].to_numpy()``).

    Returns
    -------
    pyarrow.Array or None

    Examples
    --------
    >>> import numpy as np, pyarrow as pa
    >>> values = np.array(["a", "b"], dtype=object)
    >>> keep(values, pa.array(["a", "b"]))
    >>> values[1] = "c"
    >>> find(values) is None
    True
    """
    key = memory_key(values)
    found = _KEPT.get(key)
    if found is None or found[0]() is not owner(values):
        return None
    del _KEPT[key]  # handed out once (cleaning holds it for the table's steps), or changed: of no more use
    # the same objects at the same places: the copy holds every object read, so an address is never reused
    if values.tobytes() != found[1].tobytes():
        return None
    return found[2]


# --------------------------------------------------------------------------- shared by the steps of one table
@dataclass
class _Known:
    """What is known of one object column inside :func:`shared_text`.

    ``kind`` is ``infer_dtype(skipna=True)`` of the column; ``arrow`` its values as Arrow text (missing -> null),
    present when every value is text or missing; ``codes`` (made on first use) a code per row, equal for equal
    values, 0 for missing, and ``n_codes`` their number. With ``rows``, the column holds those rows (positions)
    of ``arrow`` and ``codes``, taken when first read.
    """

    owner: weakref.ref
    kind: str
    arrow: object
    rows: np.ndarray | None = None
    codes: np.ndarray | None = None
    n_codes: int = 0

    def settle(self) -> _Known:
        """Take the rows this column holds, once."""
        if self.rows is not None:
            import pyarrow as pa  # deferred: pyarrow is slow to import; only Arrow text held here needs it

            self.arrow = self.arrow.take(pa.array(self.rows))
            self.kind = "empty" if self.arrow.null_count == len(self.arrow) else "string"
            if self.codes is not None:
                self.codes = self.codes[self.rows]
            self.rows = None
        return self


@contextlib.contextmanager
def shared_text():
    """Share the Arrow text (and hash codes) of object columns between the steps run inside the block.

    Columns made inside the block, and columns :func:`find` checks unchanged since load, are trusted not to
    change in place until it ends; cleaning opens it around the steps of one table. Everything held is dropped
    when the block ends. Blocks do not nest: an inner one shares the outer one's.

    Examples
    --------
    >>> import pandas as pd
    >>> column = pd.Series(["a", None, "a"], dtype=object)
    >>> with shared_text():
    ...     codes, n_codes = value_codes(column)
    ...     text_kind(column)[1] is text_kind(column)[1]  # converted once
    True
    >>> codes.tolist(), n_codes
    ([1, 0, 1], 2)
    """
    if _SHARED.get() is not None:
        yield
        return
    held = {}
    token = _SHARED.set(held)
    try:
        yield
    finally:
        _SHARED.reset(token)
        held.clear()  # frees the Arrow copies now (each entry's weak reference points back at ``held``)


def _values(values) -> np.ndarray | None:
    """The object array behind a Series, an Index or an array (no copy), or None for other dtypes."""
    if isinstance(values, (pd.Series, pd.Index)):
        if values.dtype != object:
            return None
        values = values.to_numpy()
    return values if isinstance(values, np.ndarray) and values.dtype == object and values.ndim == 1 else None


def _hold(values: np.ndarray, kind: str, arrow, rows=None, codes=None, n_codes=0) -> None:
    held = _SHARED.get()
    if held is None:
        return
    key = memory_key(values)
    held[key] = _Known(weakref.ref(owner(values), lambda _, key=key: held.pop(key, None)), kind, arrow, rows, codes,
                       n_codes)


def _held(values: np.ndarray) -> _Known | None:
    held = _SHARED.get()
    if held is None:
        return None
    found = held.get(memory_key(values))
    if found is None or found.owner() is not owner(values):
        return None
    return found


def remember(values, arrow) -> None:
    """Inside :func:`shared_text`, hold ``arrow`` as the Arrow text of the object column ``values``.

    For a column a step has just made (e.g. stripped), whose Arrow text it has made too.

    Examples
    --------
    >>> import pandas as pd, pyarrow as pa
    >>> column = pd.Series(["a"], dtype=object)
    >>> with shared_text():
    ...     remember(column, pa.array(["a"]))
    ...     kind, arrow = text_kind(column)
    >>> kind, arrow.to_pylist()
    ('string', ['a'])
    """
    values = _values(values)
    if values is not None:
        _hold(values, "empty" if arrow.null_count == len(arrow) else "string", arrow)


def text_kind(values) -> tuple[str | None, object]:
    """``(infer_dtype(values, skipna=True), Arrow text or None)`` of an object column; ``(None, None)`` otherwise.

    The Arrow text (missing -> null) is there when every value is text or missing. Inside
    :func:`shared_text` a column is converted once, or never when load kept its text.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> kind, arrow = text_kind(pd.Series(["a", np.nan], dtype=object))
    >>> kind, arrow.to_pylist()
    ('string', ['a', None])
    >>> text_kind(pd.Series(["a", 1], dtype=object))
    ('mixed-integer', None)
    """
    array = _values(values)
    if array is None:
        return None, None
    found = _held(array)
    if found is not None:
        found.settle()
        return found.kind, found.arrow
    arrow = find(array)
    if arrow is not None:  # a column as load read it: every value is text or missing
        kind = "empty" if arrow.null_count == len(arrow) else "string"
        _hold(array, kind, arrow)
        return kind, arrow
    kind = pd.api.types.infer_dtype(array, skipna=True)
    if kind in ("string", "empty"):
        import pyarrow as pa  # deferred: pyarrow is slow to import; only text read in Arrow needs it

        try:
            arrow = pa.array(array, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeError):
            arrow = None
        if isinstance(arrow, pa.ChunkedArray):  # more than 2 GiB of text: left to pandas
            arrow = None
    _hold(array, kind, arrow)
    return kind, arrow


def arrow_text(values):
    """Arrow text of an object column whose values are all text or missing (missing -> null), or None.

    Examples
    --------
    >>> import pandas as pd
    >>> arrow_text(pd.Series(["a", None], dtype=object)).to_pylist(), arrow_text(pd.Series([1.5]))
    (['a', None], None)
    """
    return text_kind(values)[1]


def value_codes(column: pd.Series) -> tuple[np.ndarray, int]:
    """A code per row, equal for equal values, 0 for every missing value; and the number of codes.

    Equality is ``pandas.factorize``'s. Inside :func:`shared_text` a text column is hashed once (in Arrow),
    for every step that asks.

    Examples
    --------
    >>> import pandas as pd
    >>> codes, n_codes = value_codes(pd.Series(["b", "a", None, "b"], dtype=object))
    >>> codes.tolist(), n_codes
    ([1, 2, 0, 1], 3)
    """
    array = _values(column)
    found = None
    if array is not None:
        text_kind(array)  # holds the column's Arrow text when it has one
        found = _held(array)
    if found is None or found.settle().arrow is None:
        codes, uniques = pd.factorize(column.to_numpy(), use_na_sentinel=True)
        return codes.astype(np.int64) + 1, len(uniques) + 1
    if found.codes is None:
        import pyarrow.compute as pc  # deferred: pyarrow is slow to import; only Arrow text held here needs it

        encoded = pc.dictionary_encode(found.arrow)
        found.codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
        found.n_codes = len(encoded.dictionary) + 1
    return found.codes, found.n_codes


def has_codes(column) -> bool:
    """Whether :func:`value_codes` of ``column`` is held already (inside :func:`shared_text`)."""
    array = _values(column)
    found = None if array is None else _held(array)
    return found is not None and found.codes is not None


def is_held(column) -> bool:
    """Whether ``column`` is a text column held inside :func:`shared_text` (its hash codes are cheap to share)."""
    array = _values(column)
    return array is not None and _held(array) is not None


def keep_rows(data: pd.DataFrame, keep) -> pd.DataFrame:
    """``data[keep]`` (a boolean mask); inside :func:`shared_text` the kept columns keep their Arrow text.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> table = pd.DataFrame({"x": ["a", "b", "c"]}, dtype=object)
    >>> with shared_text():
    ...     _ = text_kind(table["x"])
    ...     kept = keep_rows(table, np.array([True, False, True]))
    ...     text_kind(kept["x"])[1].to_pylist()
    ['a', 'c']
    """
    kept = data[keep]
    if _SHARED.get() is None or not len(kept.columns):
        return kept
    positions = None
    for i in range(data.shape[1]):
        before = _values(data.iloc[:, i])
        found = None if before is None else _held(before)
        after = _values(kept.iloc[:, i])
        if found is None or found.arrow is None or after is None:  # the kind of other columns may change with rows
            continue
        if positions is None:
            positions = np.flatnonzero(np.asarray(keep, dtype=bool))
        rows = positions if found.rows is None else found.rows[positions]
        _hold(after, "string", found.arrow, rows, found.codes, found.n_codes)
    return kept


def duplicated_key(data: pd.DataFrame, key) -> np.ndarray:
    """Rows whose ``key`` values occur more than once: ``data.duplicated(subset=key, keep=False)``, as an array.

    Missing equals missing, as in pandas. Inside :func:`shared_text` text columns use their shared hash codes.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"id": ["a", "b", "a", None, None], "n": [1, 1, 1, 2, 2]})
    >>> duplicated_key(table, ["id", "n"]).tolist()
    [True, False, True, True, True]
    """
    key = list(key)
    if not key or not data.columns.is_unique or any(c not in data.columns for c in key):
        return data.duplicated(subset=key, keep=False).to_numpy()
    group, _ = value_codes(data[key[0]])
    for c in key[1:]:
        codes, n_codes = value_codes(data[c])
        group, _ = pd.factorize(group * n_codes + codes)
    return np.bincount(group)[group] > 1
