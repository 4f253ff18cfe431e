"""pyproject.toml, requirements.lock and environment.yml declare the same packages."""

import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {canonicalize_name(r.name): r for r in map(Requirement, deps)}


def _environment():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        assert isinstance(dep, str), f"environment.yml: nested pip sections are not used, found {dep!r}"
        if dep.startswith("python="):
            continue
        r = Requirement(dep)
        out[canonicalize_name(r.name)] = r
    return out, env


def _lock():
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, version = line.partition("==")
        assert version, f"requirements.lock: {line!r} is not an exact pin (name==version)"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def test_environment_lists_the_same_packages_as_pyproject():
    env, _ = _environment()
    assert set(env) == set(_pyproject())


def test_environment_uses_the_same_version_ranges():
    env, _ = _environment()
    for name, req in _pyproject().items():
        assert env[name].specifier == req.specifier, name


def test_environment_pins_python_311():
    _, env = _environment()
    assert "python=3.11" in env["dependencies"]
    assert "conda-forge" in env["channels"]


def test_lock_pins_every_dependency_within_its_range():
    pins = _lock()
    for name, req in _pyproject().items():
        assert name in pins, f"{name} is declared in pyproject.toml but not pinned in requirements.lock"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} violates {req.specifier}"


def test_pandas_is_pinned_below_3_for_lifelines():
    assert _lock()["pandas"] < Version("3")


@pytest.mark.parametrize("name", ["lifelines", "statsmodels", "pandas", "nbval", "seaborn", "jupyterlab"])
def test_core_packages_are_declared(name):
    assert name in _pyproject()
