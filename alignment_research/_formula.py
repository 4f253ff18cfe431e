"""Formula handling shared by every model: checks first, then a design matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy

from .errors import ModelError


def formula_variables(formula: str) -> list[str]:
    """Return the data columns a right-hand-side (or full) formula refers to."""
    desc = patsy.ModelDesc.from_formula(formula)
    names: list[str] = []
    for term in desc.lhs_termlist + desc.rhs_termlist:
        for factor in term.factors:
            code = factor.code
            for name in _names_in(code):
                if name not in names:
                    names.append(name)
    return names


def _names_in(code: str) -> list[str]:
    import ast

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


def design_matrix(
    data: pd.DataFrame, formula: str, *, intercept: bool = True, what: str = "data"
) -> tuple[pd.DataFrame, pd.Index]:
    """Build the design matrix of a right-hand-side formula, R style.

    Categorical terms use treatment coding with the first sorted level as the
    reference unless the formula says otherwise (``C(x, Treatment('b'))``),
    as R does. Rows with a missing value in any used column are dropped.

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
    variables = formula_variables(formula)
    check_columns(data, variables, what=what)
    used = data[variables].dropna()
    if used.empty:
        raise ModelError(f"No complete rows for the variables {variables} in {what}.")
    try:
        X = patsy.dmatrix(formula, used, return_type="dataframe", NA_action="raise")
    except patsy.PatsyError as err:
        raise ModelError(f"Formula {formula!r} could not be built: {err}") from None
    # patsy groups categorical terms first; put columns back in formula order, as R does.
    info = X.design_info
    order = [t for t in patsy.ModelDesc.from_formula(formula).rhs_termlist if t in info.term_slices]
    columns = [c for t in order for c in info.column_names[info.term_slices[t]]]
    X = X[columns]
    if not intercept and "Intercept" in X.columns:
        X = X.drop(columns="Intercept")
    constant = [c for c in X.columns if c != "Intercept" and np.ptp(X[c].to_numpy()) == 0]
    if constant:
        raise ModelError(
            f"Covariate(s) {constant} do not vary in the {len(X)} rows used; a model cannot estimate their effect. "
            "Drop them from the formula or check the data."
        )
    return X, used.index
