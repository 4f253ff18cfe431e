"""Shared fixtures: Agg backend, closed figures, a fixed-seed rng, a tiny simulated study.

`make test` runs the suite under pytest-xdist (one process per core). Each worker
imports this file (so each sets the Agg backend) and gets its own session fixtures
and its own ``tmp_path_factory`` base folder, so the cache home, simulated studies
and notebook runs of two workers never share a folder. Tests write only below
``tmp_path``; hypothesis' example database (``.hypothesis/``, git-ignored) is safe
for several processes.
"""

import matplotlib

matplotlib.use("Agg")

from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


#: CPU seconds each long test file took in a whole run (2 xdist workers, measured with ``--durations`` and the
#: workers' CPU time): `pytest_collection_modifyitems` sends the longest files to the workers first.
FILE_CPU_SECONDS = {
    "test_recovery_programs.py": 250,
    "test_run.py": 200,
    "test_recovery_history.py": 130,
    "test_hostile.py": 120,
    "test_wildboot.py": 90,
    "test_privacy.py": 80,
    "test_small_groups.py": 80,
    "test_simulate_history.py": 70,
    "test_browser.py": 60,
    "test_recovery_retention.py": 60,
    "test_glmm.py": 50,
    "test_mixed_slopes.py": 50,
    "test_finegray.py": 40,
    "test_heterogeneity.py": 40,
    "test_recovery_engagement.py": 40,
    "test_brief.py": 40,
    "test_simulate.py": 40,
}
#: What a file holding a ``slow`` test and absent from the table above is counted as: it starts early, with the
#: measured ones, rather than last (a new recovery file is typically of this size).
UNMEASURED_SLOW_FILE_SECONDS = 60


def pytest_configure(config):
    """Keep the collection order for pytest-xdist's ``--dist loadfile``.

    xdist reorders the files by their number of tests (``--loadscope-reorder``, on by default), which sends the
    recovery files, few tests each and minutes of work, to the workers last: one worker then runs the last of
    them alone while the other is idle. The order set below (longest files first) balances the two workers.
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
