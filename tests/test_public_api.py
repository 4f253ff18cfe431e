"""Conventions of the public API, enforced.

The rules, each checked below:

- ``import alignment_research as ar`` offers a curated list of the calls a
  researcher makes (``ar._EXPORTS``: name -> defining module). Each name is
  listed once, is in its module's ``__all__``, and is the module's own object.
  Everything else public stays reachable through its module (``ar.clean.strip_text``).
- Every public module (no leading underscore) starts with a one-line docstring
  ending in a full stop and lists its public names in ``__all__``.
- The minimum reporting group size has one parameter name everywhere:
  ``min_group_size`` (never ``min_size``).
- Model functions are ``fit_<model>(data, formula, *, <column roles>)``: data first,
  formula second, every other parameter keyword-only.
- Plot functions are ``plot_<what>(data, *, ..., ax=None)``; result ``plot`` methods
  take keywords only.
- Every fitted result offers ``tidy()``, ``glance()``, ``plot()`` and an HTML repr;
  ``tidy()`` has the columns ``term, estimate, std_error, statistic, p_value,
  conf_low, conf_high``.
"""

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import matplotlib as mpl
import pytest

import alignment_research as ar

PACKAGE_DIR = Path(ar.__file__).parent


def _public_modules() -> list[str]:
    """Every module and subpackage of the package whose dotted name has no ``_`` part."""
    found = []
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="alignment_research."):
        parts = info.name.split(".")[1:]
        if not any(part.startswith("_") for part in parts):
            found.append(info.name)
    return sorted(found)


MODULES = _public_modules()


def _public_objects() -> list[tuple[str, str, object]]:
    """``(module, name, object)`` for every name in every public module's ``__all__``."""
    out = []
    for module in MODULES:
        mod = importlib.import_module(module)
        out.extend((module, name, getattr(mod, name)) for name in getattr(mod, "__all__", []))
    return out


OBJECTS = _public_objects()
FUNCTIONS = {name: obj for _, name, obj in OBJECTS if inspect.isfunction(obj)}
CLASSES = {name: obj for _, name, obj in OBJECTS if inspect.isclass(obj)}
FITS = sorted(n for n in FUNCTIONS if n.startswith("fit_"))
PLOTS = sorted(n for n in FUNCTIONS if n.startswith("plot_"))
RESULT_CLASSES = [c for _, c in sorted(CLASSES.items()) if issubclass(c, importlib.import_module(
    "alignment_research.results").ModelResult)]


def _callables_with_signatures():
    """Public functions, and the public methods of public classes, as ``(label, callable)``."""
    for name, fn in sorted(FUNCTIONS.items()):
        yield name, fn
    for cls_name, cls in sorted(CLASSES.items()):
        for attr, member in vars(cls).items():
            if attr.startswith("_") and attr != "__init__":
                continue
            member = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
            if inspect.isfunction(member):
                yield f"{cls_name}.{attr}", member


def _export_keys_in_source() -> list[str]:
    """The keys of the ``_EXPORTS`` dict literal as written in ``__init__.py`` (repeats kept)."""
    tree = ast.parse((PACKAGE_DIR / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "_EXPORTS":
            assert isinstance(node.value, ast.Dict), "_EXPORTS must be a dict literal"
            return [ast.literal_eval(key) for key in node.value.keys]
    raise AssertionError("alignment_research/__init__.py has no _EXPORTS")


# --------------------------------------------------------------------------- the curated top level


def test_the_curated_list_names_each_export_once():
    keys = _export_keys_in_source()
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    assert not repeated, f"listed twice in _EXPORTS: {repeated}"
    assert ar.__all__ == keys


def test_the_curated_list_is_smaller_than_everything_public():
    everything = {name for _, name, _ in OBJECTS}
    assert set(ar.__all__) < everything


@pytest.mark.parametrize("name", ar.__all__)
def test_every_curated_name_resolves_to_its_modules_own_object(name):
    module = importlib.import_module(f"alignment_research.{ar._EXPORTS[name]}")
    assert name in module.__all__, f"{name} is not in {module.__name__}.__all__"
    assert getattr(ar, name) is getattr(module, name)


def test_cleaning_steps_and_constants_stay_in_their_modules():
    for name in ["strip_text", "quarantine_termination_before_hire", "flag_unknown_references", "cut_self_managed",
                 "EXCEL_EPOCH", "TIDY_COLUMNS", "RULES"]:
        assert name not in ar.__all__, name
    assert ar.clean.strip_text.__module__ == "alignment_research.clean"
    assert ar.results.TIDY_COLUMNS[0] == "term"
    with pytest.raises(AttributeError, match=r"no attribute 'strip_text'; it is ar\.clean\.strip_text"):
        ar.strip_text  # noqa: B018


def test_the_design_names_exist():
    for name in ["load_study", "validate_study", "clean_study", "simulate_study", "set_theme", "fit_cox", "run_study"]:
        assert name in ar.__all__, name


def test_a_name_in_two_modules_is_the_same_object():
    seen: dict[str, tuple[str, object]] = {}
    for module, name, obj in OBJECTS:
        if name in seen and not isinstance(obj, (str, int, float, tuple, list, dict, frozenset)):
            first, other = seen[name]
            assert obj is other, f"{name} is defined in both {first} and {module}"
        seen.setdefault(name, (module, obj))


# --------------------------------------------------------------------------- modules


@pytest.mark.parametrize("module", MODULES)
def test_every_public_module_has_a_one_line_docstring_and_all(module):
    mod = importlib.import_module(module)
    assert mod.__doc__, f"{module} has no docstring"
    assert mod.__doc__.strip().splitlines()[0].endswith("."), f"{module}: first docstring line must end with '.'"
    assert isinstance(getattr(mod, "__all__", None), list), f"{module} has no __all__ list"
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert not missing, f"{module}.__all__ lists undefined names {missing}"


# --------------------------------------------------------------------------- parameters


def test_no_public_function_takes_min_size():
    offenders = [label for label, fn in _callables_with_signatures()
                 if "min_size" in inspect.signature(fn).parameters]
    assert not offenders, f"use `min_group_size`, not `min_size`: {offenders}"


def test_the_min_size_check_sees_methods_and_functions():
    labels = dict(_callables_with_signatures())
    assert "fit_cox" in labels and "ModelResult.tidy" in labels
    assert "min_group_size" in inspect.signature(labels["plot_retention"]).parameters


@pytest.mark.parametrize("name", FITS)
def test_fit_functions_take_data_first_and_formula_second(name):
    params = list(inspect.signature(FUNCTIONS[name]).parameters.values())
    assert params[0].name == "data", f"{name}: first parameter must be `data`"
    if len(params) > 1 and params[1].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
        assert params[1].name == "formula", f"{name}: a second positional parameter must be `formula`"
    for p in params[2:]:
        assert p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD), f"{name}: `{p.name}` must be keyword-only"


@pytest.mark.parametrize("name", PLOTS)
def test_plot_functions_take_data_first_and_ax_by_keyword(name):
    params = inspect.signature(FUNCTIONS[name]).parameters
    first = next(iter(params.values()))
    assert first.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    if "ax" in params:
        assert params["ax"].kind is inspect.Parameter.KEYWORD_ONLY, f"{name}: ax must be keyword-only"
        assert params["ax"].default is None


# --------------------------------------------------------------------------- results


@pytest.mark.parametrize("cls", RESULT_CLASSES, ids=lambda c: c.__name__)
def test_result_plot_methods_are_keyword_only(cls):
    params = list(inspect.signature(cls.plot).parameters.values())[1:]
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params), cls.__name__


@pytest.mark.parametrize("cls", RESULT_CLASSES, ids=lambda c: c.__name__)
def test_results_have_tidy_glance_plot(cls):
    for method in ("tidy", "glance", "plot", "_repr_html_"):
        assert callable(getattr(cls, method)), f"{cls.__name__}.{method}"


def test_the_result_classes_are_found():
    assert {"CoxResult", "KMResult", "RegressionResult"} <= {c.__name__ for c in RESULT_CLASSES}


def test_tidy_columns_are_the_documented_ones():
    assert ar.results.TIDY_COLUMNS == ["term", "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]


def test_importing_does_not_change_the_plot_style():
    before = dict(mpl.rcParams)
    importlib.reload(importlib.import_module("alignment_research.plots"))
    assert dict(mpl.rcParams) == before
