"""Shared fixtures: Agg backend, closed figures, a fixed-seed rng, a tiny simulated study.

`make test` runs the suite under pytest-xdist (one process per core). Each worker
imports this file (so each sets the Agg backend) and gets its own session fixtures
and its own ``tmp_path_factory`` base folder, so the cache home, simulated studies
and notebook runs of two workers never share a folder. The workers take the longest
files first (`FILE_CPU_SECONDS`, measured). Tests write only below
``tmp_path``; hypothesis' example database (``.hypothesis/``, git-ignored) is safe
for several processes.
"""

import matplotlib

matplotlib.use("Agg")

from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


#: CPU seconds of the longest test files in a whole run (3 Dec 2026, session 25: `make test`'s pytest command on 2
#: xdist workers on the shared machine, load 4-5, 585 s of CPU in all, one run; every file of 7 s or more, and the
#: files with a slow test; each file's setup, tests and teardown, notebook kernels and process pools included;
#: `benchmarks/bench_tests.py --marker ""` measures them again). `pytest_collection_modifyitems` hands the workers
#: the longest files first.
#: Files not listed count as 0 s, or, with a ``slow`` test, as `UNMEASURED_SLOW_FILE_SECONDS`.
FILE_CPU_SECONDS = {
    "test_run.py": 122,
    "test_hostile.py": 88,
    "test_recovery_programs.py": 57,
    "test_wildboot.py": 40,
    "test_recovery_history.py": 30,
    "test_small_groups.py": 26,
    "test_cache_results.py": 18,
    "test_simulate_history.py": 16,
    "test_browser.py": 14,
    "test_scorecard.py": 11,
    "test_heterogeneity.py": 11,
    "test_recovery_retention.py": 10,
    "test_recovery_engagement.py": 10,
    "test_dashboard.py": 10,
    "test_brief.py": 10,
    "test_tables.py": 9,
    "test_executors.py": 9,
    "test_simulate.py": 7,
    "test_programs.py": 7,
    "test_cache.py": 6,
    "test_goal_contract.py": 6,
    "test_clean.py": 6,
    "test_frailty.py": 4,
    "test_mixed_slopes.py": 3,
    "test_glmm.py": 2,
    "test_finegray.py": 1,
}
#: What a file holding a ``slow`` test and absent from the table above is counted as: a new recovery file starts
#: early, among the long ones, rather than last, until its own figure is measured and listed.
UNMEASURED_SLOW_FILE_SECONDS = 60


def pytest_configure(config):
    """Keep the collection order for pytest-xdist's ``--dist loadfile``.

    xdist reorders the files by their number of tests (``--loadscope-reorder``, on by default), which sends the
    recovery files, few tests each and a minute or more of work, to the workers last, where the last of them
    can keep one worker busy alone while the other has nothing left. With the order set below (longest files
    first) what is left at the end is the shortest files.
    """
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def _file_cost(item) -> float:
    """The expected CPU seconds of the test file an item belongs to."""
    name = Path(item.path).name
    if name in FILE_CPU_SECONDS:
        return FILE_CPU_SECONDS[name]
    return UNMEASURED_SLOW_FILE_SECONDS if item.get_closest_marker("slow") else 0.0


def pytest_collection_modifyitems(session, config, items):
    """Run the longest test files first (each file's tests keep their order).

    Under ``--dist loadfile`` a worker takes a whole file at a time, in this order; when the long files start
    first, the short ones fill the gaps at the end and both workers finish together.
    """
    cost: dict[Path, float] = {}
    for item in items:
        cost[item.path] = max(cost.get(item.path, 0.0), _file_cost(item))
    first_seen = {path: i for i, path in reversed(list(enumerate(item.path for item in items)))}
    items.sort(key=lambda item: (-cost[item.path], first_seen[item.path]))


@pytest.fixture(autouse=True, scope="session")
def private_cache_home(tmp_path_factory):
    """`run` caches cleaned tables under $XDG_CACHE_HOME; tests never write into the user's home.

    One folder per pytest process: under xdist each worker has its own base temporary folder.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache-home")))
        yield


@pytest.fixture(autouse=True)
def close_figs():
    yield
    plt.close("all")


@pytest.fixture
def rng():
    return np.random.default_rng(20261129)


@pytest.fixture(scope="session")
def tiny_study():
    """A simulated study of 300 employees, seed 0 (raw, as loaded)."""
    import alignment_research as ar

    return ar.simulate_study(n_employees=300, seed=0)


@pytest.fixture(scope="session")
def tiny_clean(tiny_study):
    """The tiny study, cleaned."""
    import alignment_research as ar

    return ar.clean_study(tiny_study)
