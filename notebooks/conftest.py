"""nbval's notebooks share one cleaned study, as they do under ``alignment-research run``.

``make test`` executes the committed notebooks with nbval and compares their
outputs. Left as committed (``clean_dir = None``), every notebook would load
and clean the sample study, build its analysis tables and fit the shared
results (the primary analysis, the programme's effects) again. Here each
notebook's ``parameters`` cell also gets ``clean_dir``: one cache folder for
the whole session, made empty at its start and removed at its end. The first
notebook to open it cleans the study and writes it; the others, in any
worker, wait for its lock (:func:`alignment_research.cache.cache_lock`) and
read it, with the results stored beside it. So nbval checks the path that
``run`` takes, and the outputs must still equal those committed, which were
made without a cache.
"""

from __future__ import annotations

import shutil
import tempfile

import pytest

#: Where the controller keeps the session's cache folder; xdist workers get it through their ``workerinput``.
_CLEAN_DIR = pytest.StashKey[str]()
_WORKER_KEY = "notebooks_clean_dir"


def pytest_configure(config: pytest.Config) -> None:
    worker = getattr(config, "workerinput", None)
    config.stash[_CLEAN_DIR] = (worker[_WORKER_KEY] if worker is not None
                                else tempfile.mkdtemp(prefix="alignment-research-nbval-"))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist: hand each worker the controller's folder."""
    node.workerinput[_WORKER_KEY] = node.config.stash[_CLEAN_DIR]


def pytest_unconfigure(config: pytest.Config) -> None:
    if getattr(config, "workerinput", None) is None:
        shutil.rmtree(config.stash[_CLEAN_DIR], ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    folder = config.stash[_CLEAN_DIR]
    for item in items:
        cell = getattr(item, "cell", None)  # nbval's cell items
        if cell is not None and "parameters" in cell.get("metadata", {}).get("tags", []):
            if "clean_dir" not in cell.source:
                raise pytest.UsageError(f"{item.nodeid}: the parameters cell declares no clean_dir (see {__file__})")
            cell.source = f"{cell.source}\nclean_dir = {folder!r}"
