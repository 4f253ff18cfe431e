"""alignment-research: do aligned goals and developed leaders raise engagement and retention?

Every public function is importable from here (``import alignment_research as ar``).
Each module lists its public names in ``__all__``; this file gathers them, so a
new module only needs its name added to ``_MODULES``.

Importing the package is cheap: no module is imported until one of its names is
first used (PEP 562 module ``__getattr__``). ``ar.fit_cox`` imports
``alignment_research.retention`` on first access; ``import alignment_research``
alone loads neither pandas' plotting stack nor nbformat, pandera or sqlalchemy,
so the command line and every notebook kernel start quickly.
"""

import ast as _ast
from importlib import import_module as _import_module
from importlib.metadata import PackageNotFoundError, version as _version
from pathlib import Path as _Path

try:
    __version__ = _version("alignment-research")
except PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0.0.0"

#: Modules whose ``__all__`` make up the public API, in data-flow order.
_MODULES = [
    "errors",
    "config",
    "study",
    "results",
    "plots",
    "simulate",
    "load",
    "schema",
    "validate",
    "clean",
    "cache",
    "privacy",
    "measures",
    "tables",
    "retention",
    "engagement",
    "postestimation",
    "programs",
    "power",
    "notebooks",
    "report",
    "run",
]

_EXPORTS: dict[str, str] | None = None


def _module_exports(name: str) -> list[str]:
    """Read a module's literal ``__all__`` from its source without importing it."""
    path = _Path(__file__).with_name(f"{name}.py")
    if not path.exists():  # a subpackage, e.g. ``simulate/``
        path = _Path(__file__).with_name(name) / "__init__.py"
    source = path.read_text(encoding="utf-8")
    for node in _ast.parse(source).body:
        targets = (
            node.targets if isinstance(node, _ast.Assign)
            else [node.target] if isinstance(node, _ast.AnnAssign) and node.value is not None
            else []
        )
        if any(isinstance(t, _ast.Name) and t.id == "__all__" for t in targets):
            return list(_ast.literal_eval(node.value))
    raise ImportError(f"alignment_research.{name} has no literal __all__")  # pragma: no cover


def _exports() -> dict[str, str]:
    """Map every public name to the module that defines it (computed once)."""
    global _EXPORTS
    if _EXPORTS is None:
        mapping: dict[str, str] = {}
        for module in _MODULES:
            for public in _module_exports(module):
                mapping.setdefault(public, module)
        _EXPORTS = mapping
    return _EXPORTS


def __getattr__(name: str):
    if name == "__all__":
        # every module's names in order, repeats kept so tests can catch a name exported twice
        return [public for module in _MODULES for public in _module_exports(module)]
    module = _exports().get(name)
    if module is None:
        here = _Path(__file__)
        if not name.startswith("__") and (here.with_name(f"{name}.py").exists()
                                          or (here.with_name(name) / "__init__.py").exists()):
            return _import_module(f".{name}", __name__)  # a submodule, e.g. ``ar.retention``
        raise AttributeError(f"module 'alignment_research' has no attribute {name!r}")
    value = getattr(_import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_exports()))
