"""Formulas are checked before fitting and coded as R codes them."""

import numpy as np
import pandas as pd
import pytest

import alignment_research as ar
from alignment_research._formula import design_matrix, formula_variables


@pytest.fixture
def data():
    return pd.DataFrame(
        {"y": [1.0, 2, 3, 4, 5, 6], "x": [0.1, 0.4, 0.2, 0.9, 0.5, 0.3], "level": [3, 1, 2, 1, 3, 2],
         "dept": ["b", "a", "c", "a", "b", "c"]},
        index=[2, 3, 4, 5, 6, 7],
    )


def test_treatment_coding_uses_the_first_sorted_level_as_reference(data):
    X, kept = design_matrix(data, "x + C(level) + dept", intercept=False)
    # R: model.matrix(~ x + factor(level) + dept)[, -1]
    assert list(X.columns) == ["x", "C(level)[T.2]", "C(level)[T.3]", "dept[T.b]", "dept[T.c]"]
    np.testing.assert_array_equal(X["C(level)[T.3]"], [1, 0, 0, 0, 1, 0])
    assert list(kept) == [2, 3, 4, 5, 6, 7]


def test_reference_level_can_be_named(data):
    X, _ = design_matrix(data, "C(dept, Treatment('c'))", intercept=True)
    assert list(X.columns) == ["Intercept", "C(dept, Treatment('c'))[T.a]", "C(dept, Treatment('c'))[T.b]"]


def test_rows_with_missing_values_are_dropped_and_reported_by_index(data):
    data.loc[4, "x"] = np.nan
    X, kept = design_matrix(data, "x")
    assert 4 not in kept and len(X) == 5


def test_unknown_column_is_named(data):
    with pytest.raises(ar.ModelError, match=r"no column\(s\) \['alignment'\]"):
        design_matrix(data, "x + alignment")


def test_constant_covariate_is_named(data):
    data["const"] = 1.0
    with pytest.raises(ar.ModelError, match=r"\['const'\] do not vary"):
        design_matrix(data, "x + const")


def test_a_full_formula_is_refused(data):
    with pytest.raises(ar.ModelError, match="right-hand side"):
        design_matrix(data, "y ~ x")


def test_variables_are_found_inside_functions():
    assert formula_variables("np.log(x) + C(level, Treatment(2)) + x:dept") == ["x", "level", "dept"]


def test_nullable_integer_columns_code_like_plain_ones(data):
    nullable = data.assign(level=data["level"].astype("Int64"))
    X1, _ = design_matrix(nullable, "x + C(level)")
    X2, _ = design_matrix(data, "x + C(level)")
    pd.testing.assert_frame_equal(X1, X2)


@pytest.mark.parametrize("formula, term", [("x +", "'+'"), ("x x", "'x x'"), ("C(dept", "'C(dept'"),
                                           ("x + undefined_fn(level)", "'undefined_fn(level)'")])
def test_malformed_formula_is_a_model_error_naming_the_term_and_columns(data, formula, term):
    import re

    with pytest.raises(ar.ModelError, match=f"could not be read at {re.escape(term)}.*"
                       r"Available columns: \['dept', 'level', 'x', 'y'\]"):
        design_matrix(data, formula)


def test_infinite_values_are_refused_with_column_and_count(data):
    data.loc[[3, 6], "x"] = [np.inf, -np.inf]
    with pytest.raises(ar.ModelError, match=r"column `x` has 2 infinite value\(s\) \(inf or -inf; first in row 3\)"):
        design_matrix(data, "x + dept")
    # a column the formula does not use is not checked
    assert len(design_matrix(data, "level")[0]) == 6


@pytest.mark.parametrize("term", ["C(level, Treatment(reference=2))", "C(level, Treatment(2))", "C(level, Treatment(-1))",
                                  "C(dept, Treatment(reference='c'))", "C(dept, Treatment('b')):x",
                                  "C(dept, Treatment)", "C(dept, Treatment(reference=None))"])
def test_treatment_against_a_reference_codes_as_patsy_does(data, term):
    """Categoricals keep their codes through ``C(x, Treatment(ref))`` (no row-by-row loop): patsy's exact design.

    The reference against patsy itself on the plain columns: ``patsy.dmatrix(f"x + {term}", data)``.
    """
    import patsy

    from alignment_research._formula import build_design, prepare_rows

    formula = f"x + {term}"
    sub, _ = prepare_rows(data, formula)
    column = "dept" if "dept" in term else "level"
    assert isinstance(sub[column].dtype, pd.CategoricalDtype)  # the fast path is the one under test
    X, info = build_design(sub, formula)
    expected = patsy.dmatrix(formula, data.reset_index(drop=True), return_type="dataframe")
    assert sorted(X.columns) == sorted(expected.columns)  # build_design puts them in the formula's term order
    np.testing.assert_array_equal(X.to_numpy(), expected[X.columns].to_numpy())
    # new rows (a prediction grid, plain values) are coded by the design as patsy codes them
    new = pd.DataFrame({"x": [0.5, 0.7], "level": [2, 3], "dept": ["c", "a"]})
    ours = patsy.build_design_matrices([info], new, return_type="dataframe")[0]
    theirs = patsy.build_design_matrices([expected.design_info], new, return_type="dataframe")[0]
    np.testing.assert_array_equal(ours[X.columns].to_numpy(), theirs[X.columns].to_numpy())


@pytest.mark.parametrize("formula", ["x + C(level, Treatment(reference=2)) + C(dept)",
                                     "C(dept) + C(dept):x + level",
                                     "x + level - 1"])
def test_build_design_without_patsy_rows_is_patsy_design(formula):
    """Categorical rows are coded without patsy, and patsy's ``DesignInfo`` is read from one of them.

    The reference is patsy itself on every row: ``patsy.dmatrix(formula, sub)``, reordered to the formula's terms.
    """
    import patsy

    from alignment_research._formula import _fast_C, build_design, prepare_rows

    rng = np.random.default_rng(4)
    n = 60
    data = pd.DataFrame({"x": rng.normal(size=n) - 0.2, "level": rng.integers(1, 4, n).astype("int64"),
                         "dept": pd.array(rng.choice(["b", "a", "c"], n), dtype="string")})
    sub, _ = prepare_rows(data, formula)
    X, info = build_design(sub, formula)
    env = patsy.EvalEnvironment([{"C": _fast_C}, {"np": np}])
    full = patsy.dmatrix(formula, sub, eval_env=env, return_type="dataframe")
    order = [c for t in patsy.ModelDesc.from_formula(formula).rhs_termlist if t in full.design_info.term_slices
             for c in full.design_info.column_names[full.design_info.term_slices[t]]]
    pd.testing.assert_frame_equal(X, full[order].reset_index(drop=True), check_exact=True)
    assert (np.signbit(X.to_numpy()) == np.signbit(full[order].to_numpy())).all()
    assert info.column_names == full.design_info.column_names
    assert repr(info.factor_infos) == repr(full.design_info.factor_infos)
    assert repr(info.term_codings) == repr(full.design_info.term_codings)
    new = pd.DataFrame({"x": [0.5, -0.7, 0.1], "level": [2, 3, 1], "dept": ["c", "a", "b"]})
    ours = patsy.build_design_matrices([info], new, return_type="dataframe")[0]
    theirs = patsy.build_design_matrices([full.design_info], new, return_type="dataframe")[0]
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
