"""The package's layers point one way: no import cycle, no reach into another module's private names.

Read from the source with ``ast`` (no module is imported), so imports inside
functions count as much as those at the top. Every module counts, those of
subpackages too (``simulate.engine``; a subpackage's ``__init__`` is the node
``simulate``): inside a subpackage ``from .x`` is a sibling and ``from ..x`` a
top-level module.

- the import graph between the package's modules has no cycle (the package
  ``__init__`` is not a node: it only re-exports). Imports under
  ``if TYPE_CHECKING:`` never run, so they are no edge of it;
- no module imports an underscore name from another module of the package, or
  reads ``<module>._name`` (imports under ``if TYPE_CHECKING:`` included);
  underscore *modules* (``_cox``, ``_formula``, ...) are fine to import, but
  only their plain names;
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

    module: str  # the importing module, dotted below the package (``clean``, ``simulate.engine``)
    line: int
    target: str | None  # the package module imported from or imported (None: outside the package, or its __init__)
    names: tuple[str, ...]  # names taken from ``target`` by ``from target import ...``
    in_function: bool
    type_checking: bool = False  # under ``if TYPE_CHECKING:``: never executed, so no edge of the import graph


@dataclass(frozen=True)
class Module:
    """One module of the package: where it is, and the package its relative imports start from."""

    path: Path
    package: tuple[str, ...]  # ``()`` for a top-level module, ``("simulate",)`` inside (or for) ``simulate``

    @property
    def shown(self) -> str:
        return self.path.relative_to(self.path.parents[len(self.package)]).as_posix()


def _modules(root: Path = ROOT) -> dict[str, Module]:
    """Every module of the package by dotted name; a subpackage's ``__init__`` is the node of its name.

    The package's own ``__init__`` is not a node: it only re-exports.
    """
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            if len(parts) == 1:
                continue
            parts = parts[:-1]
            out[".".join(parts)] = Module(path, parts)
        else:
            out[".".join(parts)] = Module(path, parts[:-1])
    return out


def _packages(modules) -> set[str]:
    """Dotted names of the package (``""``) and its subpackages."""
    return {""} | {name for name, m in modules.items() if m.path.name == "__init__.py"}


def _base(node: ast.ImportFrom, module: Module) -> tuple[str, ...] | None:
    """The dotted place (below the package) a ``from ... import`` reads from; None: outside the package."""
    dotted = tuple((node.module or "").split(".")) if node.module else ()
    if node.level == 0:
        if not dotted or dotted[0] != PACKAGE:
            return None
        return dotted[1:]
    up = node.level - 1  # level 1: the importing module's own package; level 2: the one above
    if up > len(module.package):
        raise AssertionError(f"{module.shown}:{node.lineno}: relative import above the package")
    return module.package[: len(module.package) - up] + dotted


def _node_of(parts: tuple[str, ...], modules) -> str | None:
    """The longest dotted prefix of ``parts`` that is a module of the package."""
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in modules:
            return ".".join(parts[:k])
    return None


def _resolve(node: ast.ImportFrom | ast.Import, module: Module, modules) -> list[tuple[str | None, tuple[str, ...]]]:
    """The package modules a statement imports: (module, names taken from it)."""
    out = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            parts = tuple(alias.name.split("."))
            if parts[0] == PACKAGE and (target := _node_of(parts[1:], modules)):
                out.append((target, ()))
        return out
    base = _base(node, module)
    if base is None:
        return out
    place = ".".join(base)
    if place in _packages(modules):  # from <package> import x: x is a module, or a name of the package __init__
        for alias in node.names:
            sub = ".".join(base + (alias.name,))
            if sub in modules:
                out.append((sub, ()))
            else:
                out.append((place or None, (alias.name,)))
        return out
    target = _node_of(base, modules)  # from .x import a, b
    if target is not None:
        out.append((target, tuple(a.name for a in node.names) if target == place else ()))
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, tree: ast.Module, modules) -> list[Import]:
    found = []
    module = modules[name]

    def visit(node, in_function, type_checking):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:  # only the body: an ``else`` runs
                    visit(ast.Module(body=[stmt], type_ignores=[]), in_function, True)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), in_function, type_checking)
                continue
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                resolved = _resolve(child, module, modules) or [(None, ())]
                for target, names in resolved:
                    found.append(Import(name, child.lineno, target, names, in_function, type_checking))
            visit(child, inside, type_checking)

    visit(tree, False, False)
    return found


def _comments(source: str) -> dict[int, str]:
    """Line number -> the comment on that line."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string
    return out


def _module_aliases(tree: ast.Module, module: Module, modules) -> set[str]:
    """Local names bound to a package module (``from . import _cox``, ``import alignment_research.clean as c``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _base(node, module)
            if base is None or ".".join(base) not in _packages(modules):
                continue
            for alias in node.names:
                if ".".join(base + (alias.name,)) in modules:
                    names.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == PACKAGE and ".".join(parts[1:]) in modules and alias.asname:
                    names.add(alias.asname)
    return names


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def read_package(root: Path = ROOT):
    """Every module's imports, private reach-ins and undocumented deferred imports."""
    modules = _modules(root)
    imports, reach_ins, undocumented = [], [], []
    for name, module in modules.items():
        source = module.path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(module.path))
        comments = _comments(source)
        found = _imports(name, tree, modules)
        imports += found
        for imp in found:
            for taken in imp.names:
                if imp.target is not None and imp.target != name and _private(taken):
                    reach_ins.append(f"{module.shown}:{imp.line}: imports {taken} from {imp.target}")
            if imp.in_function:
                comment = comments.get(imp.line, "")
                reason = comment[len(DEFERRED):].strip() if comment.startswith(DEFERRED) else ""
                if len(reason) < 10:
                    segment = ast.get_source_segment(source, _node_at(tree, imp.line)).splitlines()[0]
                    undocumented.append(f"{module.shown}:{imp.line}: {segment}")
        aliases = _module_aliases(tree, module, modules)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and _private(node.attr)):
                reach_ins.append(f"{module.shown}:{node.lineno}: reads {node.value.id}.{node.attr}")
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
    """Module -> the package modules it imports when it runs (``if TYPE_CHECKING:`` imports left out)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.module, set())
        if imp.target is not None and imp.target != imp.module and not imp.type_checking:
            graph[imp.module].add(imp.target)
    return graph


@pytest.fixture(scope="module")
def package():
    """The package read once, by the process that runs these tests: ``modules, imports, reach_ins, undocumented``
    (read at import, it was read by every pytest-xdist worker as it collected the suite, about 4 s CPU each)."""
    return read_package()


# ----------------------------------------------------------------------------- the rules
def test_the_import_graph_has_no_cycle(package):
    modules, imports, reach_ins, undocumented = package
    cycle = find_cycle(import_graph(imports))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_reaches_into_another_modules_private_names(package):
    modules, imports, reach_ins, undocumented = package
    assert reach_ins == [], "private names used across modules:\n" + "\n".join(reach_ins)


def test_every_import_inside_a_function_says_why_it_is_deferred(package):
    modules, imports, reach_ins, undocumented = package
    assert undocumented == [], (
        f"imports inside functions without a '{DEFERRED} <reason>' comment on their line:\n" + "\n".join(undocumented)
    )


def test_the_package_is_read_whole(package):
    modules, imports, reach_ins, undocumented = package
    # the checks above see every module, and imports inside functions too
    assert {"clean", "validate", "contract", "tables", "measures", "spells", "schema", "run"} <= set(modules)
    assert any(imp.in_function for imp in imports)
    assert ("validate", "contract") in {(i.module, i.target) for i in imports}


def test_the_subpackages_are_read_with_their_relative_imports(package):
    modules, imports, reach_ins, undocumented = package
    assert {"simulate", "simulate.engine", "simulate.days", "simulate.truth", "simulate.study"} <= set(modules)
    edges = {(i.module, i.target) for i in imports}
    assert ("simulate.engine", "simulate.days") in edges  # from .days import ...: a sibling
    assert ("simulate.study", "study") in edges  # from ..study import Study: a top-level module
    assert ("simulate", "simulate.study") in edges  # the subpackage's __init__ is a node
    assert ("cli", "simulate") in edges  # from .simulate import ...: the subpackage
    # engine imports derived to run; derived imports engine for annotations only: no cycle, but both are read
    graph = import_graph(imports)
    assert "simulate.derived" in graph["simulate.engine"] and "simulate.engine" not in graph["simulate.derived"]
    assert any(i.type_checking and (i.module, i.target) == ("simulate.derived", "simulate.engine") for i in imports)


def test_clean_and_validate_both_stand_on_the_contract_and_neither_imports_the_other(package):
    modules, imports, reach_ins, undocumented = package
    edges = {(i.module, i.target) for i in imports}
    assert {("clean", "contract"), ("validate", "contract")} <= edges
    assert not {("clean", "validate"), ("validate", "clean")} & edges


# ----------------------------------------------------------------------------- the checker itself
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    """A package of ``files`` (``"sub/x"`` makes a subpackage ``sub`` with its ``__init__``)."""
    root = tmp_path / PACKAGE
    root.mkdir()
    (root / "__init__.py").write_text("from .a import *  # the package __init__ is not a node\n")
    for name, text in files.items():
        path = root / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent != root and not (path.parent / "__init__.py").exists():
            (path.parent / "__init__.py").write_text("")
        path.write_text(text)
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


def test_a_subpackage_resolves_siblings_and_the_top_and_keeps_every_rule(tmp_path):
    root = _package(tmp_path, {
        "a": "from .sub import x  # the subpackage's __init__\n",
        "top": "_secret = 1\n",
        "sub/__init__": "from .y import thing as x\n",
        "sub/y": ("from typing import TYPE_CHECKING\n"
                  "from .z import _hidden\n"
                  "from ..top import _secret\n"
                  "from .. import top\n"
                  "n = top._secret\n"
                  "thing = 1\n"
                  "if TYPE_CHECKING:\n"
                  "    from .z import _Annotated\n"
                  "def f():\n"
                  "    import alignment_research.sub.z\n"),
        "sub/z": "from .y import thing\n_hidden = _Annotated = 1\n",
    })
    modules, imports, reach_ins, undocumented = read_package(root)
    assert set(modules) == {"a", "top", "sub", "sub.y", "sub.z"}
    assert reach_ins == [
        "sub/y.py:2: imports _hidden from sub.z",
        "sub/y.py:3: imports _secret from top",
        "sub/y.py:5: reads top._secret",
        "sub/y.py:8: imports _Annotated from sub.z",  # under TYPE_CHECKING: still a reach-in
    ]
    assert undocumented == ["sub/y.py:10: import alignment_research.sub.z"]
    assert import_graph(imports) == {"a": {"sub"}, "sub": {"sub.y"}, "sub.y": {"sub.z", "top"},
                                     "sub.z": {"sub.y"}}  # top imports nothing
    assert find_cycle(import_graph(imports)) == ["sub.y", "sub.z", "sub.y"]


def test_an_import_only_for_type_checking_makes_no_cycle(tmp_path):
    root = _package(tmp_path, {
        "a": "import os\n",
        "sub/engine": "from .stage import draw\n",
        "sub/stage": ("from __future__ import annotations\n"
                      "import typing\n"
                      "if typing.TYPE_CHECKING:\n"
                      "    from .engine import Engine\n"
                      "else:\n"
                      "    from ..a import os  # runs: an edge\n"
                      "def draw(engine: Engine): ...\n"),
    })
    _, imports, reach_ins, _ = read_package(root)
    assert find_cycle(import_graph(imports)) is None
    assert import_graph(imports)["sub.stage"] == {"a"}
    assert [(i.line, i.target, i.type_checking) for i in imports if i.module == "sub.stage" and i.target] == [
        (4, "sub.engine", True), (6, "a", False)]
    assert reach_ins == []


def test_a_relative_import_above_the_package_is_an_error(tmp_path):
    root = _package(tmp_path, {"sub/x": "from ... import a\n"})
    with pytest.raises(AssertionError, match=r"sub/x.py:1: relative import above the package"):
        read_package(root)
