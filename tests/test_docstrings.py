"""Every public object has a numpydoc docstring that passes the agreed checks.

"Public" means listed in the ``__all__`` of a public module, whether or not the
package's curated top level (``ar.__all__``) re-exports it. Shared parameter text
is filled in by one mechanism, ``alignment_research._docs.fill_doc``; its rules
are tested here too.
"""

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from numpydoc.validate import validate

import alignment_research as ar
from alignment_research import _docs
from alignment_research._docs import DOCS, fill_doc, fill_docstring, unfilled_keys

# Checks we enforce (numpydoc codes): docstring present, summary present and
# well-formed, every parameter documented and no phantom ones, a Returns section
# for functions that return, an Examples section for public functions.
ENFORCED = {"GL08", "SS01", "SS02", "SS03", "SS05", "PR01", "PR02", "RT01", "EX01"}
# Objects where an Examples section adds nothing (exceptions, constants' containers).
NO_EXAMPLES = {"AlignmentResearchError", "ConfigError", "DataContractError", "ModelError", "PrivacyError",
               "StatisticalWarning"}


def _public_objects() -> dict[str, object]:
    """Functions and classes in the ``__all__`` of every public module, keyed by their defining path."""
    found = {}
    for info in pkgutil.walk_packages([str(Path(ar.__file__).parent)], prefix="alignment_research."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return dict(sorted(found.items()))


OBJECTS = _public_objects()


def test_every_curated_export_is_checked():
    # by defining path, not object identity: another test in the same process may re-import a module
    for name in ar.__all__:
        obj = getattr(ar, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert f"{obj.__module__}.{obj.__qualname__}" in OBJECTS, name


@pytest.mark.parametrize("path", OBJECTS)
def test_numpydoc(path):
    obj = OBJECTS[path]
    result = validate(path)
    errors = [(code, msg) for code, msg in result["errors"] if code in ENFORCED]
    if inspect.isclass(obj):
        # Classes document their fields under Attributes (dataclasses, pydantic models).
        errors = [(c, m) for c, m in errors if c not in {"RT01", "EX01", "PR01", "PR02"}]
    if obj.__name__ in NO_EXAMPLES:
        errors = [(c, m) for c, m in errors if c != "EX01"]
    assert not errors, "\n".join(f"{code}: {msg}" for code, msg in errors)


# --------------------------------------------------------------------------- shared parameter text


def _at_column(block: str, column: int) -> str:
    """A shared block as filled in where its placeholder stands at ``column`` (blocks are written for column 4)."""
    return block.replace("\n", "\n" + " " * (column - 4))


def test_fill_doc_replaces_known_keys_and_leaves_other_braces():
    def f(alpha=0.05, method="holm"):
        """Do something.

        Parameters
        ----------
        {alpha}
        method : {"holm", "fdr_bh"}, default "holm"
            One of two.

        Examples
        --------
        >>> {"a": 1}["a"]
        1
        """

    fill_doc(f)
    assert _at_column(DOCS["alpha"], 8) in f.__doc__
    assert '{"holm", "fdr_bh"}' in f.__doc__ and '>>> {"a": 1}["a"]' in f.__doc__
    assert "{alpha}" not in f.__doc__


def test_fill_doc_takes_extra_blocks_as_decorator_or_call():
    @fill_doc(example="    >>> 1 + 1\n    2")
    def g():
        """Add.

        {event}
        {example}
        """

    assert _at_column(DOCS["event"], 8) in g.__doc__ and ">>> 1 + 1" in g.__doc__

    def h():
        """Only {clean_config} here."""

    assert fill_doc(h, clean_config="CLEAN") is h
    assert h.__doc__ == "Only CLEAN here."


def test_a_misspelt_key_is_left_in_place_and_recorded_not_raised():
    def k():
        """Typo {alpah} and a stray { brace."""

    fill_doc(k)  # no error at import time
    assert k.__doc__ == "Typo {alpah} and a stray { brace."
    assert _docs.UNFILLED[f"{k.__module__}.{k.__qualname__}"] == ["alpah"]
    del _docs.UNFILLED[f"{k.__module__}.{k.__qualname__}"]


def test_fill_docstring_reports_unknown_keys_and_ignores_doubled_braces():
    text, unknown = fill_docstring("{alpha} {nope} {{alpha}}", DOCS)
    assert text == DOCS["alpha"] + " {nope} {{alpha}}"
    assert unknown == ["nope"]


def test_no_package_docstring_has_an_unfilled_placeholder():
    # importing every public module above ran every fill_doc in the package
    assert _docs.UNFILLED == {}, f"fill_doc found no text for: {_docs.UNFILLED}"
    forgotten = {path: unfilled_keys(obj.__doc__) for path, obj in OBJECTS.items() if unfilled_keys(obj.__doc__)}
    assert not forgotten, f"docstrings name a shared block but were never passed to fill_doc: {forgotten}"


def test_the_shared_blocks_are_filled_where_used():
    assert DOCS["cluster"] in ar.fit_cox.__doc__
    assert DOCS["data"] in ar.fit_ols.__doc__ and ">>> import alignment_research as ar" in ar.fit_ols.__doc__
    assert "The cleaned study, or its clean tables" in ar.person_table.__doc__


def test_a_block_filled_into_a_method_docstring_is_indented_as_the_method_s_own_lines():
    class Thing:
        def go(self, alpha=0.05):
            """Go.

            Parameters
            ----------
            {alpha}
            """

    fill_doc(Thing.go)
    lines = Thing.go.__doc__.splitlines()
    name = next(i for i, line in enumerate(lines) if line.lstrip().startswith("alpha : float"))
    indent = len(lines[name]) - len(lines[name].lstrip())
    assert indent == 12  # a method of a class defined in a function: two levels deeper than a module's function
    assert lines[name + 1] == " " * (indent + 4) + DOCS["alpha"].split("\n")[1].lstrip()
