"""Every public object has a numpydoc docstring that passes the agreed checks."""

import inspect

import pytest
from numpydoc.validate import validate

import alignment_research as ar

# Checks we enforce (numpydoc codes): docstring present, summary present and
# well-formed, every parameter documented and no phantom ones, a Returns section
# for functions that return, an Examples section for public functions.
ENFORCED = {"GL08", "SS01", "SS02", "SS03", "SS05", "PR01", "PR02", "RT01", "EX01"}
# Objects where an Examples section adds nothing (exceptions, constants' containers).
NO_EXAMPLES = {"AlignmentResearchError", "ConfigError", "DataContractError", "ModelError", "PrivacyError",
               "StatisticalWarning"}

OBJECTS = [n for n in sorted(ar.__all__) if inspect.isfunction(getattr(ar, n)) or inspect.isclass(getattr(ar, n))]


@pytest.mark.parametrize("name", OBJECTS)
def test_numpydoc(name):
    obj = getattr(ar, name)
    result = validate(f"{obj.__module__}.{obj.__qualname__}")
    errors = [(code, msg) for code, msg in result["errors"] if code in ENFORCED]
    if inspect.isclass(obj):
        # Classes document their fields under Attributes (dataclasses, pydantic models).
        errors = [(c, m) for c, m in errors if c not in {"RT01", "EX01", "PR01", "PR02"}]
    if name in NO_EXAMPLES:
        errors = [(c, m) for c, m in errors if c != "EX01"]
    assert not errors, "\n".join(f"{code}: {msg}" for code, msg in errors)
