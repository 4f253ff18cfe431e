"""Formula handling shared by every model: checks first, then a design matrix."""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from tokenize import TokenError

import numpy as np
import pandas as pd
import patsy
from patsy.builtins import C

from ._checks import check_finite
from .errors import ModelError


def _available(columns) -> str:
    return f" Available columns: {sorted(map(str, columns))}." if columns is not None else ""


def _formula_error(formula: str, err: Exception, columns=None, term: str | None = None) -> ModelError:
    """A ModelError naming the part of ``formula`` that patsy (or Python) could not read."""
    origin = getattr(err, "origin", None)
    message = str(getattr(err, "message", None) or err).splitlines()[0]
    if isinstance(err, SyntaxError):
        message = f"{err.msg} in Python code"
    where = f" at {term!r}" if term else ""
    if origin is not None and getattr(origin, "code", None) is not None:
        bad = origin.code[origin.start:origin.end].strip()
        where = f" at {bad!r}" if bad else f" after {origin.code[:origin.start].strip()!r}"
    return ModelError(
        f"The formula {formula!r} could not be read{where}: {message}. Write terms as column names joined by "
        "'+' (e.g. 'alignment_cascade + C(job_level)')." + _available(columns)
    )


def parse_formula(formula: str, columns=None):
    """Parse a formula with patsy; a malformed one raises ModelError naming the offending term."""
    if not isinstance(formula, str):
        raise ModelError(f"The formula must be a string such as 'alignment_cascade + engagement', not {formula!r}.")
    try:
        return patsy.ModelDesc.from_formula(formula)
    except (patsy.PatsyError, SyntaxError, TokenError) as err:
        raise _formula_error(formula, err, columns) from None


def columns_read(data: pd.DataFrame, formula: str, columns=()) -> pd.DataFrame:
    """The columns of ``data`` that ``formula`` and ``columns`` name (in the table's order), else all of ``data``.

    A fit that selects them first keeps its conversions and row selections from
    copying every other column of a wide table (the intervals have about 30).
    Names in ``columns`` that ``data`` lacks (or that are None) are passed over;
    a formula that cannot be read, or names a column ``data`` lacks, keeps every
    column, so the fit raises its usual error.
    """
    if not data.columns.is_unique:
        return data
    try:
        variables = formula_variables(formula, data.columns)
    except ModelError:
        return data
    if any(c not in data.columns for c in variables):
        return data
    wanted = {*variables, *(c for c in columns if isinstance(c, str))}
    used = [c for c in data.columns if c in wanted]
    return data if len(used) == data.shape[1] else data[used]


def formula_variables(formula: str, columns=None) -> list[str]:
    """Return the data columns a right-hand-side (or full) formula refers to.

    ``columns`` (the data's columns) is only quoted in the error a malformed
    formula raises. lme4 random-effect terms such as ``(1 + x | manager_id)``
    count too (see :func:`split_random_terms`): their effects and grouping column.
    """
    if isinstance(formula, str):
        try:
            return list(_variables_of(formula))
        except ModelError:
            pass  # read again below, for the error that quotes the columns
    return _read_variables(formula, columns)


@functools.lru_cache(maxsize=512)
def _variables_of(formula: str) -> tuple:
    """:func:`formula_variables` of a formula, kept: a fit reads the same formula several times (patsy is slow)."""
    return tuple(_read_variables(formula, None))


@functools.lru_cache(maxsize=512)
def _model_desc(formula: str):
    """patsy's reading of a formula, kept (read only: never change its term lists)."""
    return patsy.ModelDesc.from_formula(formula)


def _read_variables(formula: str, columns=None) -> list[str]:
    """The reading behind :func:`formula_variables`."""
    if isinstance(formula, str) and "|" in formula:
        fixed, terms = split_random_terms(formula)
        names = formula_variables(fixed, columns)
        for term in terms:
            for name in [*formula_variables(term.effects, columns), term.group]:
                if name not in names:
                    names.append(name)
        return names
    desc = parse_formula(formula, columns)
    names: list[str] = []
    for term in desc.lhs_termlist + desc.rhs_termlist:
        for factor in term.factors:
            code = factor.code
            try:
                found = names_in(code)
            except SyntaxError as err:
                raise _formula_error(formula, err, columns, term=code) from None
            for name in found:
                if name not in names:
                    names.append(name)
    return names


def names_in(code: str) -> list[str]:
    """Return the variable names a patsy factor's code reads (``C(dept, Treatment('b'))`` -> ``['dept']``).

    Names of called functions, of objects whose attributes are read (``np``)
    and patsy's contrast names are not variables.
    """
    tree = ast.parse(code, mode="eval")
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    attr_bases = {n.value.id for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
    return [
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and n.id not in called and n.id not in attr_bases and n.id not in {"Treatment", "T"}
    ]


def check_columns(data: pd.DataFrame, columns, *, what: str = "data") -> None:
    """Raise ModelError naming every column that ``data`` lacks."""
    missing = [c for c in columns if c is not None and c not in data.columns]
    if missing:
        raise ModelError(
            f"{what} has no column(s) {missing}. Available columns: {sorted(map(str, data.columns))}. "
            "Check the spelling, or build the analysis tables with ar.clean_study(study).analysis."
        )


def categorical_terms(rhs: str) -> set:
    """Return the variables patsy will treat as categorical: those wrapped in ``C(...)``."""
    out = set()
    desc = _model_desc(rhs)
    for term in desc.rhs_termlist:
        for factor in term.factors:
            if factor.code.startswith("C("):
                out.update(names_in(factor.code))
    return out

def _plain_dtypes(frame: pd.DataFrame, categorical=(), variables=None) -> pd.DataFrame:
    """Prepare complete rows for patsy.

    Pandas nullable dtypes (Int64, string, boolean) become numpy ones patsy
    understands, and categorical variables (text columns and those wrapped in
    ``C()``) become pandas Categoricals with sorted levels: the same treatment
    coding and labels, but patsy then reads codes instead of looping over
    every row in Python (seconds on a million rows).
    """
    out = frame.copy()
    for c in out.columns:
        dt = out[c].dtype
        if isinstance(dt, pd.CategoricalDtype):
            continue
        in_formula = variables is None or c in variables
        if in_formula and (c in categorical or pd.api.types.is_string_dtype(dt) or dt == object):
            if not pd.api.types.is_bool_dtype(dt):
                values = out[c].to_numpy()
                if isinstance(dt, pd.api.extensions.ExtensionDtype) and pd.api.types.is_integer_dtype(dt):
                    values = out[c].astype("int64").to_numpy()
                try:
                    out[c] = pd.Categorical(values)
                    continue
                except TypeError:  # unorderable mixed values: leave it to patsy
                    pass
        if isinstance(dt, pd.api.extensions.ExtensionDtype) and not isinstance(dt, pd.CategoricalDtype):
            if pd.api.types.is_bool_dtype(dt):
                out[c] = out[c].astype(bool)
            elif pd.api.types.is_integer_dtype(dt):
                out[c] = out[c].astype("int64")
            elif pd.api.types.is_float_dtype(dt):
                out[c] = out[c].astype("float64")
            elif pd.api.types.is_string_dtype(dt):
                out[c] = out[c].astype(object)
    return out

def _treatment_reference(contrast, categories: list):
    """Position of a ``Treatment(reference=...)`` contrast's reference among ``categories``, or None.

    patsy's rule: the reference is a level when it is one, else an integer is
    a position (negative from the end). None for any other contrast or a
    reference patsy would refuse (patsy then raises its own error).
    """
    if type(contrast) is not patsy.Treatment:
        return None
    reference = contrast.reference
    if reference is None:
        return 0
    if reference in categories:
        return categories.index(reference)
    if isinstance(reference, int) and -len(categories) <= reference < len(categories):
        return reference % len(categories)
    return None


def _fast_C(data, contrast=None, levels=None):
    """patsy's ``C()``, but ``C(x)`` and ``C(x, Treatment(ref))`` of a pandas Categorical stay Categoricals.

    patsy reads a bare Categorical through its codes, but unwraps ``C(x)`` row
    by row in Python (seconds on a million rows). Treatment coding against a
    reference level is treatment coding against the first level once the
    reference is moved first: the other levels keep their order, so the
    columns, their names (``C(x, Treatment(ref))[T.level]``) and every value
    are the ones patsy builds from ``C(x, Treatment(ref))``. New rows coded
    with the design (predictions) go through here too and get the same order.
    """
    if levels is None and isinstance(getattr(data, "dtype", None), pd.CategoricalDtype):
        if contrast is None:
            return data
        categories = list(data.cat.categories)
        first = _treatment_reference(contrast, categories)
        if first is not None:
            return data.cat.reorder_categories([categories[first], *categories[:first], *categories[first + 1:]])
    return C(data, contrast, levels)

def build_design(sub: pd.DataFrame, rhs: str, *, intercept: bool = True, columns=None):
    """Build the design matrix of complete, plain-dtype rows (see ``prepare_rows``).

    Columns follow the formula's term order, as R orders them; constant
    covariates are refused. Returns the matrix (0..n-1 index) and its patsy
    ``DesignInfo`` (to predict on new rows). ``columns`` (the data's
    columns) is quoted when the formula cannot be built.
    """
    env = patsy.EvalEnvironment([{"C": _fast_C}, {"np": np}])
    if _coded_by_categories(sub, rhs):
        fast = numeric_design(sub, rhs, intercept=intercept)
        if fast is not None:  # the coding: patsy's, read from one row (the Categoricals carry every level)
            desc = _model_desc(rhs)
            info = patsy.design_matrix_builders([list(desc.lhs_termlist), list(desc.rhs_termlist)],
                                                lambda: iter([sub.iloc[:1]]), env, NA_action="raise")[1]
            return fast[0].reset_index(drop=True), info
    try:
        X = patsy.dmatrix(rhs, sub, eval_env=env, return_type="dataframe", NA_action="raise")
    except patsy.PatsyError as err:
        raise _formula_error(rhs, err, sub.columns if columns is None else columns) from None
    info = X.design_info
    order = [t for t in _model_desc(rhs).rhs_termlist if t in info.term_slices]
    X = X[[c for t in order for c in info.column_names[info.term_slices[t]]]]
    if not intercept and "Intercept" in X.columns:
        X = X.drop(columns="Intercept")
    constant = [c for c in X.columns if c != "Intercept" and np.ptp(X[c].to_numpy()) == 0]
    if constant:
        raise ModelError(
            f"Covariate(s) {constant} do not vary in the {len(X)} rows used; a model cannot estimate their effect. "
            "Drop them from the formula or check the data."
        )
    return X.reset_index(drop=True), info


def _coded_by_categories(sub: pd.DataFrame, rhs: str) -> bool:
    """Whether :func:`numeric_design` builds ``rhs`` on ``sub`` with every categorical a pandas Categorical.

    Then patsy's coding of the formula depends on the categories, not on the
    rows, and one row gives the ``DesignInfo`` all rows give.
    """
    if len(sub) == 0:
        return False
    planned = _design_plan(sub, rhs)
    return planned is not None and all(isinstance(sub[f.column].dtype, pd.CategoricalDtype)
                                       for factors in planned[0] for f in factors if f.prefix is not None)


def prepare_rows(data: pd.DataFrame, rhs: str, extra=()) -> tuple[pd.DataFrame, pd.Index]:
    """Return the complete rows of the variables a formula uses, in plain dtypes, and their labels."""
    variables = formula_variables(rhs, data.columns)
    check_columns(data, [*extra, *variables])
    used = list(dict.fromkeys([*[c for c in extra if c is not None], *variables]))
    check_finite(data, used)
    complete = data[used].dropna()
    sub = _plain_dtypes(complete.reset_index(drop=True), categorical=categorical_terms(rhs),
                        variables=set(variables))
    return sub, complete.index


def design_matrix(
    data: pd.DataFrame, formula: str, *, intercept: bool = True, what: str = "data"
) -> tuple[pd.DataFrame, pd.Index]:
    """Build the design matrix of a right-hand-side formula, R style.

    Categorical terms use treatment coding with the first sorted level as the
    reference unless the formula says otherwise (``C(x, Treatment('b'))``),
    as R does. Rows with a missing value in any used column are dropped.
    Pandas nullable dtypes (``Int64``, ``string``) are accepted.

    Parameters
    ----------
    data : DataFrame
        The data.
    formula : str
        Right-hand side only, e.g. ``"alignment_cascade + C(job_level)"``.
    intercept : bool, default True
        Keep the intercept column (False for Cox models).
    what : str
        Name of the data in error messages.

    Returns
    -------
    X : DataFrame
        The design matrix, indexed like the rows of ``data`` it kept.
    kept : Index
        The index labels of the rows used.
    """
    if "~" in formula:
        raise ModelError(f"Give only the right-hand side of the formula (no '~'), got {formula!r}.")
    check_columns(data, formula_variables(formula, data.columns), what=what)
    fast = numeric_design(data, formula, intercept=intercept)
    if fast is not None:
        return fast
    sub, kept = prepare_rows(data, formula)
    if sub.empty:
        raise ModelError(f"No complete rows for the variables {formula_variables(formula)} in {what}.")
    X, _ = build_design(sub, formula, intercept=intercept, columns=data.columns)
    X.index = kept
    return X, kept


def numeric_design(data: pd.DataFrame, formula: str, *, intercept: bool = True):
    """``design_matrix(data, formula, intercept=intercept)`` for plain terms, built without patsy, else None.

    Handles formulas whose terms are numeric columns, text or categorical
    columns, ``C(column)`` and ``C(column, Treatment(reference))`` (treatment
    coding against the first sorted level, a Categorical's first category or
    the named reference, as :func:`_fast_C`; named ``column[T.level]`` /
    ``C(...)[T.level]`` as patsy names them), and the interaction of one
    such categorical with one numeric column (``C(g):x``, a slope of ``x``
    per level of ``g``, coded in full: ``C(g)[level]:x``) when no other term
    has ``x`` as its only numeric column (then patsy codes it in full too).
    The same columns, names, values (the products patsy forms, signed zeros
    included) and kept rows, built straight into one float array instead of
    patsy's frames (seconds and several copies of the design at a million
    rows). Anything else (other interactions, transformations, contrasts,
    bool or float columns in ``C()``, categorical terms in a formula without
    an intercept, a constant column, no complete row) returns None, and
    ``design_matrix`` builds it or raises its error.

    Parameters
    ----------
    data : DataFrame
        The rows and columns the formula names.
    formula : str
        Right-hand side only.
    intercept : bool, default True
        Keep the intercept column (first, as patsy puts it) when the formula has one.

    Returns
    -------
    tuple of (DataFrame, Index) or None
        The design matrix and the index labels of the complete rows it kept.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "g": ["b", "a", "a", "b"]})
    >>> X, kept = numeric_design(frame, "x + g")
    >>> X.columns.tolist(), kept.tolist()
    (['Intercept', 'x', 'g[T.b]'], [0, 1, 3])
    >>> numeric_design(frame, "g + g:x")[0].columns.tolist()
    ['Intercept', 'g[T.b]', 'g[a]:x', 'g[b]:x']
    """
    planned = _design_plan(data, formula)
    if planned is None:
        return None
    plan, has_intercept = planned
    numeric = list(dict.fromkeys(f.column for factors in plan for f in factors if f.prefix is None))
    check_finite(data, numeric)
    complete = np.ones(len(data), dtype=bool)
    for column in dict.fromkeys(f.column for factors in plan for f in factors):
        complete &= data[column].notna().to_numpy()
    n = int(complete.sum())
    if not n:
        return None
    every = bool(complete.all())

    def values(column):
        return data[column] if every else data[column][complete]

    numbers = {c: values(c).to_numpy(dtype=float) for c in numeric}
    coded = {}  # (column, reference): levels in patsy's order and each row's position among them
    for factors in plan:
        for f in factors:
            if f.prefix is not None and (f.column, f.reference) not in coded:
                coded[(f.column, f.reference)] = _levels_and_codes(values(f.column), f.reference)
                if coded[(f.column, f.reference)][0] is None:
                    return None
    with_intercept = intercept and has_intercept
    names, blocks = (["Intercept"] if with_intercept else []), []
    for factors in plan:
        slope = next((numbers[f.column] for f in factors if f.prefix is None), None)
        cat = next((f for f in factors if f.prefix is not None), None)
        if cat is None:
            names.append(factors[0].column)
            blocks.append((slope, None, 0))
            continue
        levels, codes = coded[(cat.column, cat.reference)]
        if len(factors) == 1:  # treatment coding: one column per level after the reference
            names += [f"{cat.prefix}[T.{_level_name(level)}]" for level in levels[1:]]
            blocks.append((None, codes, range(1, len(levels))))
            continue
        # C(g):x in full: one column per level, the factors named in the term's order
        names += [":".join(f"{f.prefix}[{_level_name(level)}]" if f.prefix is not None else f.column for f in factors)
                  for level in levels]
        blocks.append((slope, codes, range(len(levels))))
    # the layout of the matrix the earlier paths built (column means, hence every digit, depend on it):
    # patsy's and a complete numeric frame's are column-major, numeric rows selected from one are row-major
    numeric_only = all(f.prefix is None for factors in plan for f in factors)
    X = np.empty((n, len(names)), order="C" if numeric_only and not every else "F")
    k = 0
    if with_intercept:
        X[:, 0] = 1.0
        k = 1
    for slope, codes, levels in blocks:
        if codes is None:
            X[:, k] = slope
            k += 1
            continue
        for level in levels:
            np.equal(codes, level, out=X[:, k], casting="unsafe")
            if slope is not None:
                X[:, k] *= slope  # patsy's product: 1 * indicator * x (0 * a negative x is -0.0, as patsy's)
            k += 1
    if (np.ptp(X[:, int(with_intercept):], axis=0) == 0).any():
        return None
    kept = data.index if every else data.index[complete]
    return pd.DataFrame(X, columns=names, index=kept, copy=False), kept


def _design_plan(data: pd.DataFrame, formula: str):
    """How :func:`numeric_design` reads each factor of each term (intercept aside), and whether there is an intercept.

    None when the formula holds anything the fast design does not build.
    """
    if "~" in formula or not data.columns.is_unique:
        return None
    try:
        terms = _model_desc(formula).rhs_termlist
    except Exception:  # a malformed formula: design_matrix names the problem
        return None
    has_intercept = any(not term.factors for term in terms)
    plan = []
    for term in terms:
        if not term.factors:
            continue  # the intercept: added by the design when asked for
        if len(term.factors) > 2:
            return None
        factors = [_read_factor(factor, data) for factor in term.factors]
        if any(f is None for f in factors):
            return None
        plan.append(factors)
    if not plan or not _codings_known(plan, has_intercept):
        return None
    return plan, has_intercept


@dataclass(frozen=True)
class _Factor:
    """How the fast design reads one factor of a term."""

    column: str
    prefix: str | None  # the factor's name in column names for a categorical; None for a numeric column
    reference: object = None  # the level (or position) of ``Treatment(reference)``; None: the first level


def _read_factor(factor, data: pd.DataFrame) -> _Factor | None:
    """A patsy factor the fast design can build (a column, ``C(column)``, ``C(column, Treatment(ref))``), else None."""
    code = factor.code
    column, prefix, reference = code, None, None
    if code not in data.columns:
        parsed = _c_argument(code)
        if parsed is None or parsed[0] not in data.columns:
            return None
        (column, reference), prefix = parsed, factor.name()
    kind = _design_kind(data[column].dtype)
    if kind is None or (prefix is not None and kind == "numeric" and data[column].dtype.kind not in "iu"):
        return None  # a float in C() (level names) or a bool / other dtype: patsy's path
    if kind != "numeric":
        prefix = prefix or column
    return _Factor(column, prefix, reference)


def _codings_known(plan: list, has_intercept: bool) -> bool:
    """Whether patsy codes every categorical of ``plan`` as the fast design does.

    patsy codes the terms sharing the same numeric columns together: a
    categorical alone beside the intercept is coded against its reference,
    and ``C(g):x`` in full when no other term has ``x`` as its only numeric
    column. Any other mix (no intercept, two categoricals or two numeric
    columns in one term, ``x + C(g):x``) is left to patsy.
    """
    numeric_sets = [frozenset(f.column for f in factors if f.prefix is None) for factors in plan]
    for factors, numeric in zip(plan, numeric_sets):
        categorical = [f for f in factors if f.prefix is not None]
        if len(factors) == 2 and (len(categorical) != 1 or numeric_sets.count(numeric) != 1):
            return False
        if len(factors) == 1 and categorical and not has_intercept:
            return False  # full-rank coding of the first factor: patsy's path
    return True


def _c_argument(code: str):
    """``(column, reference)`` of ``C(column)`` or ``C(column, Treatment(reference))``, else None.

    The reference is None for the first level (``C(column)``, ``C(column,
    Treatment)``, ``Treatment(reference=None)``); levels, other contrasts or
    a reference that is not a literal return None.
    """
    try:
        node = ast.parse(code, mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "C"
            and 1 <= len(node.args) <= 2 and not node.keywords and isinstance(node.args[0], ast.Name)):
        return None
    column = node.args[0].id
    if len(node.args) == 1:
        return column, None
    contrast = node.args[1]
    if isinstance(contrast, ast.Name) and contrast.id == "Treatment":
        return column, None
    if not (isinstance(contrast, ast.Call) and isinstance(contrast.func, ast.Name) and contrast.func.id == "Treatment"
            and len(contrast.args) + len(contrast.keywords) <= 1):
        return None
    if contrast.keywords and contrast.keywords[0].arg != "reference":
        return None
    argument = contrast.args or [k.value for k in contrast.keywords]
    if not argument:
        return column, None
    try:
        reference = ast.literal_eval(argument[0])
    except (ValueError, SyntaxError, TypeError):
        return None
    try:
        hash(reference)
    except TypeError:
        return None
    return column, reference


def _design_kind(dtype) -> str | None:
    """How the fast design reads a column: "numeric", "categorical" (text or Categorical) or None (patsy's path)."""
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if isinstance(dtype, np.dtype):
        if dtype.kind in "iuf":
            return "numeric"
        if dtype.kind == "O":
            return "categorical"
    return None


def _levels_and_codes(values: pd.Series, reference=None):
    """Levels of a complete categorical column in patsy's order, and each row's level position.

    A Categorical keeps its categories (unused ones included, as patsy);
    integers and text get their sorted distinct values. A ``reference``
    (``Treatment(reference)``) moves that level first, the others keeping
    their order, as :func:`_fast_C`. Mixed or non-text objects, or a
    reference patsy would refuse, return ``(None, None)``.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels, codes = list(values.cat.categories), values.cat.codes.to_numpy()
    elif values.dtype.kind == "O" and pd.api.types.infer_dtype(values, skipna=False) != "string":
        return None, None
    else:
        codes, index = pd.factorize(values, sort=True)
        levels = list(index)
    if reference is None:
        return levels, codes
    first = _treatment_reference(patsy.Treatment(reference=reference), levels)
    if first is None:
        return None, None
    if first:
        order = [first, *range(first), *range(first + 1, len(levels))]
        position = np.empty(len(order), dtype=np.intp)
        position[order] = np.arange(len(order))
        levels, codes = [levels[i] for i in order], position[codes]
    return levels, codes


def _level_name(level) -> str:
    """A level as patsy writes it in a column name (text as is, anything else by ``repr``)."""
    return level if isinstance(level, str) else repr(level)


def formula_terms(rhs: str) -> list[str]:
    """Split a right-hand side into its ``+``-separated terms, leaving ``+`` inside brackets alone.

    Parameters
    ----------
    rhs : str
        The right-hand side of a formula, e.g. ``"x + I(a + b) + C(g)"``.

    Returns
    -------
    list of str
        The terms, stripped, empty ones dropped.

    Examples
    --------
    >>> formula_terms("x + I(a + b) + C(g)")
    ['x', 'I(a + b)', 'C(g)']
    """
    terms, depth, start = [], 0, 0
    for i, char in enumerate(rhs):
        depth += (char in "([{") - (char in ")]}")
        if char == "+" and depth == 0:
            terms.append(rhs[start:i].strip())
            start = i + 1
    terms.append(rhs[start:].strip())
    return [t for t in terms if t]


def split_formula(formula: str) -> tuple[str, str]:
    """Split ``"outcome ~ right-hand side"`` into the outcome column and the right-hand side.

    Raises ModelError when there is no ``~`` or the outcome is not a plain column name.
    """
    if not isinstance(formula, str) or "~" not in formula:
        raise ModelError(
            f"The formula must name the outcome, e.g. 'engagement ~ alignment_cascade + manager_program', "
            f"but {formula!r} was passed."
        )
    lhs, rhs = formula.split("~", 1)
    lhs, rhs = lhs.strip(), rhs.strip()
    if not lhs.isidentifier():
        raise ModelError(f"The outcome {lhs!r} must be a column name (no transformations); add it as a column first.")
    return lhs, rhs


# --------------------------------------------------------------------------- lme4 random-effect terms

#: The random-effect terms the mixed model reads, for error messages.
SUPPORTED_RANDOM_TERMS = "(1 | g), (1 + x | g), (x | g), (0 + x | g) and (1 + x || g)"


@dataclass(frozen=True)
class RandomTerm:
    """One lme4 random-effect term ``(effects | group)`` of a formula.

    Attributes
    ----------
    effects : str
        The left side of the bar as a patsy right-hand side, e.g. ``"1 + x"``
        or ``"0 + x"``; as in lme4 (and patsy) an intercept is implied unless
        removed with ``0 +`` or ``- 1``.
    group : str
        The grouping column (the right side of the bar).
    correlated : bool
        False for the double bar ``||``: the effects are independent (lme4
        splits ``(1 + x || g)`` into ``(1 | g) + (0 + x | g)``).
    text : str
        The term as written, with its parentheses.
    """

    effects: str
    group: str
    correlated: bool
    text: str


def _bar_at_depth_zero(code: str, *, any_depth: bool = False) -> int:
    """Index of the first ``|`` outside nested parentheses (or at ``any_depth``) and quotes of ``code``, or -1."""
    depth, quote = 0, None
    for i, ch in enumerate(code):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "|" and (depth == 0 or any_depth):
            return i
    return -1


def _parenthesised_spans(rhs: str, formula: str) -> list[tuple[int, int]]:
    """Start and end (exclusive) of every top-level ``( ... )`` group of ``rhs``."""
    spans, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(rhs):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            if depth == 0:
                start = i
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ModelError(f"The formula {formula!r} has a ')' without its '('.")
            if depth == 0:
                spans.append((start, i + 1))
    if depth != 0:
        raise ModelError(f"The formula {formula!r} has a '(' that is never closed.")
    return spans


def split_random_terms(formula: str) -> tuple[str, list[RandomTerm]]:
    """Split lme4 random-effect terms (bars) off a formula, before patsy reads it.

    patsy does not know lme4's bar notation (it fails with a "bitwise_or"
    error), so mixed models take the bars out first: each parenthesised term
    whose top level holds ``|`` or ``||`` is removed together with the ``+``
    that adds it, and what remains is the fixed-effects formula (``1`` when
    nothing remains, as lme4 keeps the fixed intercept).

    Parameters
    ----------
    formula : str
        A full formula (``"y ~ x + (1 + x | g)"``) or a right-hand side.

    Returns
    -------
    fixed : str
        The formula without its random-effect terms (with ``"y ~"`` if given).
    terms : list of RandomTerm
        The random-effect terms in the order written (empty when there are none).

    Raises
    ------
    ModelError
        A bar outside parentheses, a term not added with ``+``, an empty side
        of a bar, or a grouping that is not a single column name (``g1/g2``,
        ``g1:g2``). The message lists the supported forms.

    Examples
    --------
    >>> fixed, terms = split_random_terms("engagement ~ alignment + (1 + alignment || manager_id)")
    >>> fixed
    'engagement ~ alignment'
    >>> terms[0].effects, terms[0].group, terms[0].correlated
    ('1 + alignment', 'manager_id', False)
    """
    if not isinstance(formula, str):
        raise ModelError(f"The formula must be a string such as 'engagement ~ alignment', not {formula!r}.")
    lhs, tilde, rhs = formula.rpartition("~") if "~" in formula else ("", "", formula)
    if "~" in lhs:
        raise ModelError(f"The formula {formula!r} has more than one '~'.")
    supported = f" Supported random-effect terms: {SUPPORTED_RANDOM_TERMS}, all with one grouping column g."
    terms: list[RandomTerm] = []
    out, cursor, drop_plus = "", 0, False

    def added_with_plus(text):
        return ModelError(f"The random-effect term {text!r} of {formula!r} must be added with '+'.{supported}")

    def take(segment, text):
        """Append a fixed-effects segment; after a leading bar term, its '+' goes too."""
        nonlocal out, drop_plus
        if drop_plus and segment.strip():
            stripped = segment.lstrip()
            if not stripped.startswith("+"):
                raise added_with_plus(text)
            segment, drop_plus = stripped[1:], False
        out += segment

    previous = ""
    for start, end in _parenthesised_spans(rhs, formula):
        inner = rhs[start + 1:end - 1]
        bar = _bar_at_depth_zero(inner)
        if bar < 0:
            continue
        text = rhs[start:end]
        double = inner[bar + 1:bar + 2] == "|"
        effects, group = inner[:bar].strip(), inner[bar + (2 if double else 1):].strip()
        if not effects or not group or "|" in group:
            raise ModelError(f"The random-effect term {text!r} of {formula!r} cannot be read.{supported}")
        if not group.isidentifier():
            raise ModelError(
                f"The grouping {group!r} of the random-effect term {text!r} must be one column name; nested or "
                f"crossed groupings (g1/g2, g1:g2) are not supported (for nested random intercepts use "
                f"fit_mixed(..., groups=, vc=)).{supported}"
            )
        take(rhs[cursor:start], previous)
        if out.rstrip().endswith("+"):
            out = out.rstrip()[:-1]
        elif not out.strip():
            drop_plus = True
        else:
            raise added_with_plus(text)
        terms.append(RandomTerm(effects, group, not double, text))
        cursor, previous = end, text
    take(rhs[cursor:], previous)
    fixed = out.strip()
    if _bar_at_depth_zero(fixed, any_depth=True) >= 0:
        raise ModelError(
            f"The formula {formula!r} has a '|' outside parentheses; write random effects as "
            f"'(1 + x | g)'.{supported}"
        )
    fixed = fixed or "1"
    return (f"{lhs.strip()} ~ {fixed}" if tilde else fixed), terms
