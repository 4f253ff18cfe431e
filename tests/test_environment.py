"""The declared dependencies, the locks and the conda files agree, for runtime and dev separately.

- Runtime dependencies (``[project] dependencies``) are what the package imports
  when it runs, plus a few named tools the notebooks run in; test tools are the
  ``dev`` extra, never runtime.
- ``requirements.lock`` pins the runtime dependencies (and what they need);
  ``requirements-dev.lock`` includes it and pins the test tools on top. No
  package is pinned twice; every pin lies within its declared range.
- ``environment.yml`` lists the runtime packages and ``environment-dev.yml`` the
  test tools, with the same ranges as ``pyproject.toml``.
- ``make run`` installs the runtime lock only; the test targets add the dev lock.
"""

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
TEST_TOOLS = {"pytest", "nbval", "hypothesis", "numpydoc", "pytest-xdist"}
# Declared at runtime though the package does not import them, and why.
NOT_IMPORTED = {
    "jupyterlab": "where researchers open the notebooks (make lab)",
    "ipykernel": "the kernel `run` executes the notebooks in",
    "distributed": "provides `dask.distributed` (the Dask cluster backend of executors.py), imported under dask's name",
}


def _pyproject(group: str) -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] if group == "runtime" else project["optional-dependencies"][group]
    return {canonicalize_name(r.name): r for r in map(Requirement, deps)}


def _environment(file: str) -> tuple[dict[str, Requirement], dict]:
    env = yaml.safe_load((ROOT / file).read_text())
    out = {}
    for dep in env["dependencies"]:
        assert isinstance(dep, str), f"{file}: nested pip sections are not used, found {dep!r}"
        if dep.startswith("python="):
            continue
        r = Requirement(dep)
        out[canonicalize_name(r.name)] = r
    return out, env


def _lock(file: str) -> tuple[dict[str, Version], list[str]]:
    """Exact pins of a lock file, and the other lock files it includes with ``-r``."""
    pins, includes = {}, []
    for line in (ROOT / file).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            includes.append(line[3:].strip())
            continue
        name, _, version = line.partition("==")
        assert version, f"{file}: {line!r} is not an exact pin (name==version)"
        assert canonicalize_name(name) not in pins, f"{file}: {name} is pinned twice"
        pins[canonicalize_name(name)] = Version(version)
    return pins, includes


LOCKS = {"runtime": "requirements.lock", "dev": "requirements-dev.lock"}
ENVIRONMENTS = {"runtime": "environment.yml", "dev": "environment-dev.yml"}


# --------------------------------------------------------------------------- pyproject


def test_test_tools_are_the_dev_extra_and_not_runtime():
    assert set(_pyproject("dev")) == TEST_TOOLS
    assert not TEST_TOOLS & set(_pyproject("runtime"))


def _third_party_imports() -> set[str]:
    """Top-level names of every module the package imports, standard library and itself excluded."""
    names = set()
    for path in (ROOT / "alignment_research").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"alignment_research", "__future__"}


def test_every_package_the_code_imports_is_a_runtime_dependency():
    providers = importlib.metadata.packages_distributions()
    runtime = set(_pyproject("runtime"))
    missing = {}
    for name in sorted(_third_party_imports()):
        dists = {canonicalize_name(d) for d in providers.get(name, [name])}
        if not dists & runtime:
            missing[name] = sorted(dists)
    assert not missing, f"imported by alignment_research but not declared in [project] dependencies: {missing}"


def test_every_runtime_dependency_is_imported_or_has_a_stated_reason():
    providers = importlib.metadata.packages_distributions()
    imported = {canonicalize_name(d) for name in _third_party_imports() for d in providers.get(name, [name])}
    unused = set(_pyproject("runtime")) - imported
    assert unused <= set(NOT_IMPORTED), f"declared but never imported, with no reason given: {unused - set(NOT_IMPORTED)}"


@pytest.mark.parametrize("name", ["lifelines", "statsmodels", "pandas", "seaborn", "jupyterlab", "nbclient"])
def test_core_packages_are_runtime_dependencies(name):
    assert name in _pyproject("runtime")


# --------------------------------------------------------------------------- conda files


@pytest.mark.parametrize("group", ["runtime", "dev"])
def test_environment_lists_the_same_packages_and_ranges_as_pyproject(group):
    env, _ = _environment(ENVIRONMENTS[group])
    declared = _pyproject(group)
    assert set(env) == set(declared), f"{ENVIRONMENTS[group]} vs pyproject ({group})"
    for name, req in declared.items():
        assert env[name].specifier == req.specifier, name


@pytest.mark.parametrize("file", ENVIRONMENTS.values())
def test_environment_pins_python_311(file):
    _, env = _environment(file)
    assert "python=3.11" in env["dependencies"]
    assert env["channels"] == ["conda-forge"]
    assert env["name"] == "alignment-research"


# --------------------------------------------------------------------------- locks


@pytest.mark.parametrize("group", ["runtime", "dev"])
def test_lock_pins_every_dependency_within_its_range(group):
    pins, _ = _lock(LOCKS[group])
    for name, req in _pyproject(group).items():
        assert name in pins, f"{name} is declared ({group}) but not pinned in {LOCKS[group]}"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} violates {req.specifier}"


def test_dev_lock_builds_on_the_runtime_lock_and_pins_nothing_twice():
    runtime, runtime_includes = _lock(LOCKS["runtime"])
    dev, dev_includes = _lock(LOCKS["dev"])
    assert runtime_includes == [] and dev_includes == [LOCKS["runtime"]]
    assert not set(runtime) & set(dev), f"pinned in both locks: {sorted(set(runtime) & set(dev))}"


def test_runtime_lock_holds_no_test_tool():
    runtime, _ = _lock(LOCKS["runtime"])
    assert not TEST_TOOLS & set(runtime)
    assert not {"pluggy", "iniconfig", "sphinx", "coverage"} & set(runtime), "pulled in by test tools only"


def test_pandas_is_pinned_below_3_for_lifelines():
    assert _lock(LOCKS["runtime"])[0]["pandas"] < Version("3")


# --------------------------------------------------------------------------- make


def _prerequisites(makefile: str, target: str) -> list[str]:
    match = re.search(rf"^{re.escape(target)}:([^\n=]*)$", makefile, flags=re.MULTILINE)
    assert match, f"Makefile has no target {target}"
    return match.group(1).split()


def _recipe(makefile: str, target: str) -> str:
    match = re.search(rf"^{re.escape(target)}:[^\n]*\n((?:\t[^\n]*\n)+)", makefile, flags=re.MULTILINE)
    assert match, f"Makefile has no recipe for {target}"
    return match.group(1)


def test_make_run_installs_runtime_only_and_tests_add_dev():
    makefile = (ROOT / "Makefile").read_text()
    assert _prerequisites(makefile, "run") == ["$(STAMP)"]
    for target in ["test", "test-fast", "notebooks", "reference", "bench"]:
        assert "$(DEV_STAMP)" in _prerequisites(makefile, target), target
    runtime = _recipe(makefile, "$(STAMP)")
    assert "install,-r requirements.lock" in runtime and "requirements-dev.lock" not in runtime
    assert "$(PYTHON) -m venv $(VENV)" in runtime  # a fresh clone gets its .venv
    assert "$(STAMP)" in _prerequisites(makefile, "$(DEV_STAMP)")
    assert "install,-r requirements-dev.lock" in _recipe(makefile, "$(DEV_STAMP)")


def test_ci_runs_make_test():
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == "make test"
