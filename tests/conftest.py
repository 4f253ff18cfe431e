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

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


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
