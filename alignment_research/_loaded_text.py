"""The Arrow text ``load`` read each text column from, kept for ``clean`` so it need not convert the column again.

A CSV file is read with Arrow and then turned into Python text (``object``
columns, as every table the toolkit hands out). Cleaning reads most text
columns in Arrow again (stripping, numbers, references), and converting a
column back to Arrow costs about as much as reading it. So ``load`` keeps
the Arrow text of each column it returns (:func:`keep`), and cleaning asks
for it (:func:`find`).

The Arrow text is handed out only while the column still holds exactly the
values it was read with: each entry holds a copy of the column (the same
Python objects, so none of them can be freed and its address reused), and
:func:`find` compares the column's object addresses with the copy's. A cell
changed in place since loading (``table.loc[5, "employee_id"] = ...``) makes
the entry useless, and cleaning converts the column itself. An entry goes
when the array that owns the column's memory is freed.
"""

from __future__ import annotations

import weakref

import numpy as np

__all__ = ["keep", "find", "memory_key", "owner"]

#: ``{memory of a column: [weak reference to the array owning it, copy of the column, Arrow text]}``.
_KEPT: dict = {}


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
    >>> find(values).to_pylist()
    ['a', None]
    """
    if values.ndim != 1 or values.dtype != object or len(values) != len(arrow):
        return
    key = memory_key(values)
    _KEPT[key] = [weakref.ref(owner(values), lambda _, key=key: _KEPT.pop(key, None)), values.copy(), arrow]


def find(values: np.ndarray):
    """The Arrow text kept for ``values``, or None (none kept, or a cell changed since).

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
    # the same objects at the same places: the copy holds every object read, so an address is never reused
    if values.tobytes() != found[1].tobytes():
        del _KEPT[key]  # changed in place: of no more use
        return None
    return found[2]
