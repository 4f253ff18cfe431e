"""Shared fixtures: Agg backend, closed figures, a fixed-seed rng, a tiny simulated study."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def private_cache_home(tmp_path_factory):
    """`run` caches cleaned tables under $XDG_CACHE_HOME; tests never write into the user's home."""
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
