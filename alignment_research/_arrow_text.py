"""Arrow text of a table's text columns: how ``load`` hands it out, and how cleaning shares it between steps.

Load reads a CSV file with Arrow and hands each text column out as it was
read: an Arrow-backed pandas string column (:data:`TEXT_DTYPE`, missing =
NaN), so the Arrow text *is* the column and nothing is kept beside it.
Cleaning works on Python text (``object`` columns, as every clean table
holds) but reads most text columns in Arrow again (stripping, numbers,
references) or hashes them (duplicates), and converting a column to Arrow
costs about as much as reading it. So:

- :func:`as_objects` turns a table's Arrow-backed text columns into
  ``object`` columns; inside :func:`shared_text` it holds each column's Arrow
  text for the steps that follow, so a loaded column is never converted
  back to Arrow.
- inside :func:`shared_text` (the steps of one table), every object column is
  converted at most once (:func:`text_kind`) and hashed at most once
  (:func:`value_codes`), and the rows a quarantine keeps carry both along
  (:func:`keep_rows`), taken only when a later step reads them. What is held
  is keyed by the memory of the column and goes when that memory is freed,
  or when the block ends.
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "TEXT_DTYPE", "as_text_column", "is_text_column", "as_objects", "memory_key", "owner", "shared_text", "text_kind",
    "arrow_text", "remember", "value_codes", "distinct_texts", "first_positions", "has_codes", "is_held", "keep_rows", "duplicated_key",
]

#: The dtype of the raw text columns ``load`` hands out: Arrow-backed strings, missing = NaN (as in ``object``
#: columns; pandas 3 reads text as this dtype by default).
TEXT_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)
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


# --------------------------------------------------------------------------- text columns as load hands them out
def as_text_column(arrow) -> pd.api.extensions.ExtensionArray:
    """A text column of :data:`TEXT_DTYPE` over the Arrow text ``arrow`` (nulls are missing); the text is not copied.

    Parameters
    ----------
    arrow : pyarrow.Array or pyarrow.ChunkedArray
        Arrow text (``string`` or ``large_string``).

    Returns
    -------
    pandas.api.extensions.ExtensionArray
        Ready to be a table's column.

    Examples
    --------
    >>> import pyarrow as pa
    >>> column = as_text_column(pa.array(["a", None, ""]))
    >>> column.dtype == TEXT_DTYPE, column.tolist()
    (True, ['a', nan, ''])
    """
    return TEXT_DTYPE.__from_arrow__(arrow)


def is_text_column(column) -> bool:
    """Whether ``column`` (a Series, or a dtype) is Arrow-backed text, as ``load`` hands text out.

    Examples
    --------
    >>> import pandas as pd
    >>> is_text_column(pd.Series(["a"], dtype=TEXT_DTYPE)), is_text_column(pd.Series(["a"], dtype=object))
    (True, False)
    """
    dtype = getattr(column, "dtype", column)
    if isinstance(dtype, pd.StringDtype):
        return dtype.storage == "pyarrow"
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa  # deferred: pyarrow is slow to import; an Arrow dtype means it is loaded already

        return pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype)
    return False


#: A column is checked for order (:func:`_ordered_codes`) only when it has this many values, and only when its
#: first ``_ORDER_PROBE`` texts are in order ...
_ORDER_MIN, _ORDER_PROBE = 4096, 1024
#: ... and only when at least one in ``_ORDER_FEW`` of those first texts differs from the one before: fewer
#: distinct texts are cheaper to hash than to compare.
_ORDER_FEW = 16


def _ordered_codes(arrow) -> tuple[np.ndarray, object] | None:
    """``(codes, distinct texts)`` as :func:`pyarrow.compute.dictionary_encode` gives them (code ``i + 1`` for the
    ``i``-th distinct text in order of first appearance, 0 for missing), for a column whose texts are in order
    (each one ``>=`` the one before, missing cells aside), as exported ids often are; None for any other column.

    Equal texts of a column in order are next to each other, so a text's code is the number of its run of equal
    texts: two comparisons of neighbours instead of a hash of every text.
    """
    import pyarrow.compute as pc  # deferred: pyarrow is slow to import; only Arrow text needs it

    if len(arrow) < _ORDER_MIN:
        return None
    probe = arrow.slice(0, 4 * _ORDER_PROBE).drop_null()  # the first texts, before any copy of the whole column
    if len(probe) > 1 and not pc.all(pc.greater_equal(probe.slice(1), probe.slice(0, len(probe) - 1))).as_py():
        return None
    present = arrow.drop_null() if arrow.null_count else arrow
    n = len(present)
    starts = np.empty(n, dtype=bool)  # where a run of equal texts starts
    starts[0] = True
    # in pieces growing from the first texts: a column out of order is told early, and one of few distinct
    # texts (whose hash is cheap) after the first piece
    begin, size = 1, _ORDER_PROBE
    while begin < n:
        end = min(n, begin + size)
        after, before = present.slice(begin, end - begin), present.slice(begin - 1, end - begin)
        if not pc.all(pc.greater_equal(after, before)).as_py():
            return None
        starts[begin:end] = pc.not_equal(after, before).to_numpy(zero_copy_only=False)
        if begin == 1 and np.count_nonzero(starts[:end]) * _ORDER_FEW < end:
            return None
        begin, size = end, 16 * size
    run = np.cumsum(starts, dtype=np.int64)
    if arrow.null_count:
        codes = np.zeros(len(arrow), dtype=np.int64)
        codes[~arrow.is_null().to_numpy(zero_copy_only=False)] = run
    else:
        codes = run
    return codes, present.filter(starts)


def _object_values(arrow) -> tuple[np.ndarray, np.ndarray, int, object]:
    """Arrow text as a 1-D ``object`` array of Python text (NaN where missing), its :func:`value_codes`, and the
    distinct texts (Arrow) the codes stand for (code ``i + 1`` for text ``i``).

    The column is hashed once (in Arrow), or not at all when its texts are in order (:func:`_ordered_codes`):
    one Python text is made per distinct value and shared by its cells, and the codes are what
    :func:`value_codes` gives, for the steps that group by the column.
    """
    import pyarrow.compute as pc  # deferred: pyarrow is slow to import; only Arrow text needs it

    ordered = _ordered_codes(arrow)
    if ordered is not None:
        codes, dictionary = ordered
    else:
        encoded = pc.dictionary_encode(arrow)
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
        dictionary = encoded.dictionary
    texts = np.empty(len(dictionary) + 1, dtype=object)
    texts[0] = np.nan
    texts[1:] = dictionary.to_numpy(zero_copy_only=False)
    return texts[codes], codes, len(texts), dictionary


def as_objects(data: pd.DataFrame) -> pd.DataFrame:
    """``data`` with its Arrow-backed text columns (:func:`is_text_column`) as ``object`` columns, NaN missing.

    Inside :func:`shared_text`, each converted column's Arrow text and hash codes are held for the steps
    run there (:func:`text_kind`, :func:`value_codes`), so it is never converted back nor hashed again. Other columns are passed through; a table
    without Arrow-backed text is returned as it is.

    Parameters
    ----------
    data : DataFrame
        A table, e.g. one ``load_study`` returns.

    Returns
    -------
    DataFrame
        A new table (the input is not modified), or ``data`` itself.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"id": pd.Series(["a", None], dtype=TEXT_DTYPE), "n": [1, 2]})
    >>> with shared_text():
    ...     objects = as_objects(table)
    ...     kind, arrow = text_kind(objects["id"])  # held: not converted again
    >>> objects.dtypes.astype(str).tolist(), objects["id"].tolist(), kind, arrow.to_pylist()
    (['object', 'int64'], ['a', nan], 'string', ['a', None])
    """
    text = [i for i in range(data.shape[1]) if is_text_column(data.dtypes.iloc[i])]
    if not text:
        return data
    import pyarrow as pa  # deferred: pyarrow is slow to import; only Arrow text needs it

    out = data.copy(deep=False)
    known = {}
    for i in text:
        arrow = pa.chunked_array(data.iloc[:, i].array.__arrow_array__())
        arrow = arrow.chunk(0) if arrow.num_chunks == 1 else arrow.combine_chunks()
        values, codes, n_codes, dictionary = _object_values(arrow)
        out.isetitem(i, values)
        known[i] = arrow, codes, n_codes, dictionary
    if _SHARED.get() is not None:
        for i, (arrow, codes, n_codes, dictionary) in known.items():
            try:  # the steps read ``string`` text; more than 2 GiB of it is left to pandas
                arrow = arrow.cast(pa.string())
            except (pa.ArrowInvalid, pa.ArrowCapacityError):
                continue
            kind = "empty" if arrow.null_count == len(arrow) else "string"
            _hold(out.iloc[:, i].to_numpy(), kind, arrow, codes=codes, n_codes=n_codes,
                  dictionary=dictionary.cast(pa.string()))
    return out


# --------------------------------------------------------------------------- shared by the steps of one table
@dataclass
class _Known:
    """What is known of one object column inside :func:`shared_text`.

    ``kind`` is ``infer_dtype(skipna=True)`` of the column; ``arrow`` its values as Arrow text (missing -> null),
    present when every value is text or missing; ``codes`` (made on first use) a code per row, equal for equal
    values, 0 for missing, and ``n_codes`` their number; ``dictionary`` the distinct texts the codes stand for
    (code ``i + 1`` for text ``i``). With ``rows``, the column holds those rows (positions)
    of ``arrow`` and ``codes``, taken when first read. ``positions`` holds :func:`first_positions` of the column
    in other held columns: ``{memory of the other column: (weak reference to its owner, positions)}``.
    """

    owner: weakref.ref
    kind: str
    arrow: object
    rows: np.ndarray | None = None
    codes: np.ndarray | None = None
    n_codes: int = 0
    dictionary: object = None
    positions: dict = field(default_factory=dict)

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

    Columns made inside the block (among them those :func:`as_objects` makes) are trusted not to change in
    place until it ends; cleaning opens it around the steps of one table. Everything held is dropped
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


def _hold(values: np.ndarray, kind: str, arrow, rows=None, codes=None, n_codes=0, dictionary=None) -> None:
    held = _SHARED.get()
    if held is None:
        return
    key = memory_key(values)
    held[key] = _Known(weakref.ref(owner(values), lambda _, key=key: held.pop(key, None)), kind, arrow, rows, codes,
                       n_codes, dictionary)


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
    :func:`shared_text` a column is converted once, or never when :func:`as_objects` made it.

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
    kind, arrow = pd.api.types.infer_dtype(array, skipna=True), None
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
        found.dictionary = encoded.dictionary
    return found.codes, found.n_codes


def first_positions(values, ids) -> np.ndarray | None:
    """For each value, the position of the first row of ``ids`` equal to it; -1 when none, or missing.

    Hashed in Arrow (on the UTF-8 bytes); None unless both hold only text (or missing). Inside
    :func:`shared_text` the answer for a pair of held columns is kept, so the steps that ask for it
    (unknown parent goals, goal loops) hash the ids once.

    Parameters
    ----------
    values, ids : Series or Index
        ``object`` columns of text.

    Returns
    -------
    numpy.ndarray or None
        ``int64`` positions into ``ids``.

    Examples
    --------
    >>> import pandas as pd
    >>> ids, parents = pd.Series(["a", "b", "a"]), pd.Series(["b", None, "c"])
    >>> first_positions(parents, ids).tolist()
    [1, -1, -1]
    """
    text, id_text = arrow_text(values), arrow_text(ids)
    if text is None or id_text is None:
        return None
    array, id_array = _values(values), _values(ids)
    found = _held(array)
    other = _held(id_array) is not None
    key = memory_key(id_array)
    if found is not None and other:
        kept = found.positions.get(key)
        if kept is not None and kept[0]() is owner(id_array):
            return kept[1]
    import pyarrow.compute as pc  # deferred: pyarrow is slow to import; only Arrow text held here needs it

    if found is not None and found.codes is not None and found.dictionary is not None:
        # the values' distinct texts are hashed already: look the ids up among them (a small hash table),
        # and give each distinct text the first row of ids holding it
        where = pc.fill_null(pc.index_in(id_text, value_set=found.dictionary, skip_nulls=True), -1)
        where = where.to_numpy(zero_copy_only=False).astype(np.int64)
        rows = np.flatnonzero(where >= 0)
        first = np.full(found.n_codes, len(id_text), dtype=np.int64)
        np.minimum.at(first, where[rows] + 1, rows)
        first[first == len(id_text)] = -1
        first[0] = -1  # missing values refer to nothing
        positions = first[found.codes]
    else:
        positions = pc.fill_null(pc.index_in(text, value_set=id_text, skip_nulls=True), -1)
        positions = positions.to_numpy(zero_copy_only=False).astype(np.int64)
    if found is not None and other:
        found.positions[key] = (weakref.ref(owner(id_array)), positions)
    return positions


def distinct_texts(column, *, arrow: bool = False) -> tuple[np.ndarray, object] | None:
    """Inside :func:`shared_text`, a held text column as ``(codes, texts)``: row ``i`` holds ``texts[codes[i] - 1]``
    (missing where ``codes[i]`` is 0); None for a column not held, or not all text.

    ``texts`` (Python text, ``object``; Arrow text with ``arrow=True``) may hold texts no row holds any more
    (rows a quarantine took). A step that reads every distinct value once (dates, stripping) works on
    ``texts`` and spreads the answer with ``codes``.

    Examples
    --------
    >>> import pandas as pd
    >>> column = pd.Series(["b", None, "a", "b"], dtype=object)
    >>> with shared_text():
    ...     codes, texts = distinct_texts(column)
    >>> codes.tolist(), texts.tolist()
    ([1, 0, 2, 1], ['b', 'a'])
    """
    array = _values(column)
    if array is None or text_kind(array)[1] is None:
        return None
    found = _held(array)
    if found is None:
        return None
    codes, _ = value_codes(column)
    return codes, found.dictionary if arrow else found.dictionary.to_numpy(zero_copy_only=False)


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
        _hold(after, "string", found.arrow, rows, found.codes, found.n_codes, found.dictionary)
    return kept


def duplicated_key(data: pd.DataFrame, key, rows=None) -> np.ndarray:
    """Rows whose ``key`` values occur more than once: ``data.duplicated(subset=key, keep=False)``, as an array.

    Missing equals missing, as in pandas. Inside :func:`shared_text` text columns use their shared hash codes.
    With ``rows`` (positions), only those rows count, and the answer is for them: as
    ``duplicated_key(data.iloc[rows], key)``, without taking the rows of the table.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"id": ["a", "b", "a", None, None], "n": [1, 1, 1, 2, 2]})
    >>> duplicated_key(table, ["id", "n"]).tolist()
    [True, False, True, True, True]
    >>> duplicated_key(table, ["id", "n"], rows=[0, 1, 3]).tolist()
    [False, False, False]
    """
    key = list(key)
    if not key or not data.columns.is_unique or any(c not in data.columns for c in key):
        part = data if rows is None else data.iloc[rows]
        return part.duplicated(subset=key, keep=False).to_numpy()
    group, _ = value_codes(data[key[0]])
    if rows is not None:
        group = group[rows]
    for c in key[1:]:
        codes, n_codes = value_codes(data[c])
        group, _ = pd.factorize(group * n_codes + (codes if rows is None else codes[rows]))
    return np.bincount(group)[group] > 1
