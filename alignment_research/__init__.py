"""alignment-research: do aligned goals and developed leaders raise engagement and retention?

Every public function is importable from here (``import alignment_research as ar``).
Each module lists its public names in ``__all__``; this file gathers them, so a
new module only needs its name added to ``_MODULES``.
"""

from importlib import import_module as _import_module
from importlib.metadata import PackageNotFoundError, version as _version

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
    "privacy",
    "measures",
    "tables",
    "retention",
    "engagement",
    "programs",
    "power",
    "notebooks",
    "report",
    "run",
]

__all__: list[str] = []
for _name in _MODULES:
    _module = _import_module(f".{_name}", __name__)
    for _public in _module.__all__:
        globals()[_public] = getattr(_module, _public)
        __all__.append(_public)
del _name, _module, _public
