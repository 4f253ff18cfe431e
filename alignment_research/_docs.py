"""Parameter descriptions written once and filled into docstrings by :func:`fill_doc`.

A docstring names a shared block with ``{key}`` on a line of its own, e.g.
``{alpha}`` under Parameters. :func:`fill_doc` replaces exactly the known keys
(``DOCS`` plus any given to it) and leaves every other brace alone, so a
docstring may show ``{"holm", "fdr_bh"}`` or a dict literal in an example
without escaping. A misspelt key is left in place and recorded; the docstring
test fails on it (``unfilled_keys``), so a typo never breaks ``import``.
"""

from __future__ import annotations

import re

__all__: list[str] = []

DOCS = dict(
    data="data : pandas.DataFrame\n        One of the analysis tables (``person``, ``intervals``, ``survey_panel``, ``cycles``).",
    formula=(
        "formula : str\n        Right-hand side in R/patsy syntax, e.g. ``\"alignment_cascade + C(job_level)\"``.\n"
        "        Categorical terms use treatment coding with the first sorted level as reference."
    ),
    alpha="alpha : float, default 0.05\n        Confidence intervals are at level ``1 - alpha``.",
    cluster=(
        "cluster : str, optional\n        Column whose values define clusters (usually ``\"manager_id\"``);\n"
        "        standard errors are then cluster-robust."
    ),
    event="event : str, default \"event\"\n        Column holding 1 for a voluntary exit and 0 otherwise.",
)

#: A placeholder: an identifier in single braces, not part of ``{{`` or ``}}``.
PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")

#: Placeholders that :func:`fill_doc` found but had no text for, by ``module.qualname``.
UNFILLED: dict[str, list[str]] = {}


def fill_docstring(doc: str, blocks: dict[str, str]) -> tuple[str, list[str]]:
    """Replace ``{key}`` for every key in ``blocks``; return the text and the placeholders left unfilled."""
    unknown: list[str] = []

    def replace(match: re.Match) -> str:
        key = match.group(1)
        if key in blocks:
            # blocks are written for a function's docstring (names at 4 spaces); a method's sit deeper
            column = match.start() - (doc.rfind("\n", 0, match.start()) + 1)
            return blocks[key].replace("\n", "\n" + " " * (column - 4)) if column > 4 else blocks[key]
        unknown.append(key)
        return match.group(0)

    return PLACEHOLDER.sub(replace, doc), unknown


def fill_doc(obj=None, /, **extra: str):
    """Fill the shared ``DOCS`` blocks (and ``extra`` ones) into a function's or class's docstring.

    Use as ``@fill_doc``, ``@fill_doc(example=TEXT)`` or ``fill_doc(fn, example=TEXT)``;
    the object is changed in place and returned.
    """

    def apply(target):
        if target.__doc__:
            blocks = {**DOCS, **extra}
            target.__doc__, unknown = fill_docstring(target.__doc__, blocks)
            name = f"{target.__module__}.{target.__qualname__}"
            if unknown:
                UNFILLED[name] = unknown
            else:
                UNFILLED.pop(name, None)
        return target

    return apply if obj is None else apply(obj)


def unfilled_keys(doc: str | None) -> list[str]:
    """Placeholders in ``doc`` that name a shared block (``DOCS``) but were never filled."""
    return [key for key in PLACEHOLDER.findall(doc or "") if key in DOCS]
