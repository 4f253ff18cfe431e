"""The package's layers point one way: no import cycle, no reach into another module's private names.

Read from the source with ``ast`` (no module is imported), so imports inside
functions count as much as those at the top:

- the import graph between the package's modules has no cycle (the package
  ``__init__`` is not a node: it only re-exports);
- no module imports an underscore name from another module of the package, or
  reads ``<module>._name``; underscore *modules* (``_cox``, ``_formula``, ...)
  are fine to import, but only their plain names;
- an import inside a function says why it is there, on its (first) line:
  ``# deferred: <reason>`` (a heavy optional library, or lazy loading so the
  command line starts fast). Imports at the top of a module are not checked.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "alignment_research"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
DEFERRED = "# deferred:"


# ----------------------------------------------------------------------------- reading the source
@dataclass(frozen=True)
class Import:
    """One import statement of a package module, resolved."""

    module: str  # the importing module
    line: int
    target: str | None  # the package module imported from or imported (None: outside the package)
    names: tuple[str, ...]  # names taken from ``target`` by ``from target import ...``
    in_function: bool


def _modules(root: Path = ROOT) -> dict[str, Path]:
    return {p.stem: p for p in sorted(root.glob("*.py")) if p.stem != "__init__"}


def _resolve(node: ast.ImportFrom | ast.Import, modules) -> list[tuple[str | None, tuple[str, ...]]]:
    """The package modules a statement imports: (module, names taken from it)."""
    out = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == PACKAGE and len(parts) > 1 and parts[1] in modules:
                out.append((parts[1], ()))
        return out
    if node.level == 0 and not (node.module or "").startswith(PACKAGE):
        return out
    if node.level > 1:
        raise AssertionError(f"line {node.lineno}: relative import above the package")
    dotted = (node.module or "").removeprefix(PACKAGE).lstrip(".")
    if node.level == 0 and node.module == PACKAGE:
        dotted = ""
    if dotted:  # from .x import a, b
        head = dotted.split(".")[0]
        if head in modules:
            out.append((head, tuple(a.name for a in node.names)))
        return out
    for alias in node.names:  # from . import x: x is a module, or a name of the package __init__
        if alias.name in modules:
            out.append((alias.name, ()))
        else:
            out.append((None, (alias.name,)))
    return out


def _imports(name: str, tree: ast.Module, modules) -> list[Import]:
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                resolved = _resolve(child, modules) or [(None, ())]
                for target, names in resolved:
                    found.append(Import(name, child.lineno, target, names, in_function))
            visit(child, inside)

    visit(tree, False)
    return found


def _comments(source: str) -> dict[int, str]:
    """Line number -> the comment on that line."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string
    return out


def _module_aliases(tree: ast.Module, modules) -> set[str]:
    """Local names bound to a package module (``from . import _cox``, ``import alignment_research.clean as c``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                dotted = (node.module or "").removeprefix(PACKAGE).lstrip(".")
                if (node.level == 1 or node.module == PACKAGE) and not dotted and alias.name in modules:
                    names.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == PACKAGE and len(parts) > 1 and parts[1] in modules and alias.asname:
                    names.add(alias.asname)
    return names


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def read_package(root: Path = ROOT):
    """Every module's imports, private reach-ins and undocumented deferred imports."""
    modules = _modules(root)
    imports, reach_ins, undocumented = [], [], []
    for name, path in modules.items():
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
        comments = _comments(source)
        found = _imports(name, tree, modules)
        imports += found
        for imp in found:
            for taken in imp.names:
                if imp.target is not None and imp.target != name and _private(taken):
                    reach_ins.append(f"{name}.py:{imp.line}: imports {taken} from {imp.target}")
            if imp.in_function:
                comment = comments.get(imp.line, "")
                reason = comment[len(DEFERRED):].strip() if comment.startswith(DEFERRED) else ""
                if len(reason) < 10:
                    undocumented.append(f"{name}.py:{imp.line}: {ast.get_source_segment(source, _node_at(tree, imp.line)).splitlines()[0]}")
        aliases = _module_aliases(tree, modules)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and _private(node.attr)):
                reach_ins.append(f"{name}.py:{node.lineno}: reads {node.value.id}.{node.attr}")
    return modules, imports, _by_place(reach_ins), _by_place(undocumented)


def _by_place(findings) -> list[str]:
    """Findings ``<file>:<line>: ...`` once each, by file then line."""
    def place(text):
        file, line, rest = text.split(":", 2)
        return file, int(line), rest
    return sorted(set(findings), key=place)


def _node_at(tree: ast.Module, line: int):
    return next(n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and n.lineno == line)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of a directed graph as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def import_graph(imports) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.module, set())
        if imp.target is not None and imp.target != imp.module:
            graph[imp.module].add(imp.target)
    return graph


MODULES, IMPORTS, REACH_INS, UNDOCUMENTED = read_package()


# ----------------------------------------------------------------------------- the rules
def test_the_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph(IMPORTS))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_reaches_into_another_modules_private_names():
    assert REACH_INS == [], "private names used across modules:\n" + "\n".join(REACH_INS)


def test_every_import_inside_a_function_says_why_it_is_deferred():
    assert UNDOCUMENTED == [], (
        f"imports inside functions without a '{DEFERRED} <reason>' comment on their line:\n" + "\n".join(UNDOCUMENTED)
    )


def test_the_package_is_read_whole():
    # the checks above see every module, and imports inside functions too
    assert {"clean", "validate", "contract", "tables", "measures", "spells", "schema", "run"} <= set(MODULES)
    assert any(imp.in_function for imp in IMPORTS)
    assert ("validate", "contract") in {(i.module, i.target) for i in IMPORTS}


def test_clean_and_validate_both_stand_on_the_contract_and_neither_imports_the_other():
    edges = {(i.module, i.target) for i in IMPORTS}
    assert {("clean", "contract"), ("validate", "contract")} <= edges
    assert not {("clean", "validate"), ("validate", "clean")} & edges


# ----------------------------------------------------------------------------- the checker itself
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / PACKAGE
    root.mkdir()
    (root / "__init__.py").write_text("from .a import *  # the package __init__ is not a node\n")
    for name, text in files.items():
        (root / f"{name}.py").write_text(text)
    return root


def test_a_cycle_hidden_in_a_function_is_found(tmp_path):
    root = _package(tmp_path, {
        "a": "from .b import thing\n",
        "b": "def f():\n    from .c import other  # deferred: a cycle all the same\n",
        "c": "import alignment_research.a\n",
    })
    _, imports, _, _ = read_package(root)
    assert find_cycle(import_graph(imports)) == ["a", "b", "c", "a"]


def test_layers_pointing_one_way_have_no_cycle(tmp_path):
    root = _package(tmp_path, {"a": "from .b import thing\n", "b": "from .c import other\n", "c": "import os\n"})
    _, imports, _, _ = read_package(root)
    assert find_cycle(import_graph(imports)) is None


def test_private_reach_ins_are_found_but_underscore_modules_and_dunders_are_allowed(tmp_path):
    root = _package(tmp_path, {
        "a": ("from . import _m, __version__\n"
              "from ._m import plain\n"
              "from .b import _hidden, shown\n"
              "import alignment_research.b as bee\n"
              "x = _m._secret + _m.plain + bee._inner + bee.__name__\n"),
        "b": "_hidden = shown = _inner = 1\n",
        "_m": "plain = _secret = 1\n",
    })
    _, _, reach_ins, _ = read_package(root)
    assert reach_ins == [
        "a.py:3: imports _hidden from b",
        "a.py:5: reads _m._secret",
        "a.py:5: reads bee._inner",
    ]


def test_imports_inside_functions_need_a_deferred_reason(tmp_path):
    root = _package(tmp_path, {
        "a": ("import json\n"
              "def f():\n"
              "    import statsmodels.api as sm  # deferred: statsmodels takes seconds to import\n"
              "    from .b import (  # deferred: b loads pandas; the command line starts without it\n"
              "        g,\n"
              "    )\n"
              "    import re\n"
              "    from .b import h  # deferred:\n"
              "    class K:\n"
              "        def m(self):\n"
              "            import csv  # not a reason\n"),
        "b": "g = h = 1\n",
    })
    _, _, _, undocumented = read_package(root)
    assert undocumented == ["a.py:7: import re", "a.py:8: from .b import h", "a.py:11: import csv"]
