"""Conventions of the public API, enforced (design.md "Results shape", style.md B4-B5)."""

import importlib
import inspect

import pytest

import alignment_research as ar

PUBLIC = sorted(ar.__all__)
FUNCTIONS = [n for n in PUBLIC if inspect.isfunction(getattr(ar, n))]
FITS = [n for n in FUNCTIONS if n.startswith("fit_")]
PLOTS = [n for n in FUNCTIONS if n.startswith("plot_")]
RESULT_CLASSES = [
    getattr(ar, n) for n in PUBLIC if inspect.isclass(getattr(ar, n)) and issubclass(getattr(ar, n), ar.ModelResult)
]


def test_every_public_name_resolves_and_is_unique():
    assert len(PUBLIC) == len(set(ar.__all__)), "a name is exported by two modules"
    for name in PUBLIC:
        assert getattr(ar, name) is not None


@pytest.mark.parametrize("module", ar._MODULES)
def test_every_module_has_a_one_line_docstring_and_all(module):
    mod = importlib.import_module(f"alignment_research.{module}")
    assert mod.__doc__ and mod.__doc__.strip().splitlines()[0].endswith(".")
    assert isinstance(mod.__all__, list)


def test_the_design_names_exist():
    for name in ["load_study", "validate_study", "clean_study", "simulate_study", "set_theme"]:
        assert name in PUBLIC, name


@pytest.mark.parametrize("name", FITS)
def test_fit_functions_take_data_first_and_formula_second(name):
    params = list(inspect.signature(getattr(ar, name)).parameters.values())
    assert params[0].name == "data", f"{name}: first parameter must be `data`"
    if len(params) > 1 and params[1].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
        assert params[1].name == "formula", f"{name}: a second positional parameter must be `formula`"
    for p in params[2:]:
        assert p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD), f"{name}: `{p.name}` must be keyword-only"


@pytest.mark.parametrize("name", PLOTS)
def test_plot_functions_take_data_first_and_ax_by_keyword(name):
    params = inspect.signature(getattr(ar, name)).parameters
    first = next(iter(params.values()))
    assert first.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    if "ax" in params:
        assert params["ax"].kind is inspect.Parameter.KEYWORD_ONLY, f"{name}: ax must be keyword-only"
        assert params["ax"].default is None


@pytest.mark.parametrize("cls", RESULT_CLASSES, ids=lambda c: c.__name__)
def test_result_plot_methods_are_keyword_only(cls):
    params = list(inspect.signature(cls.plot).parameters.values())[1:]
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params), cls.__name__


@pytest.mark.parametrize("cls", RESULT_CLASSES, ids=lambda c: c.__name__)
def test_results_have_tidy_glance_plot(cls):
    for method in ("tidy", "glance", "plot", "_repr_html_"):
        assert callable(getattr(cls, method)), f"{cls.__name__}.{method}"


def test_tidy_columns_are_the_documented_ones():
    assert ar.results.TIDY_COLUMNS == ["term", "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]


def test_importing_does_not_change_the_plot_style():
    import matplotlib as mpl

    before = dict(mpl.rcParams)
    importlib.reload(importlib.import_module("alignment_research.plots"))
    assert dict(mpl.rcParams) == before
