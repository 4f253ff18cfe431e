"""Importing the package and starting the command line stay cheap (issue 12).

Heavy libraries load on first use, never on ``import alignment_research``. The
checks read ``sys.modules`` in a fresh interpreter; they are not timings.
"""

import subprocess
import sys

import pytest

import alignment_research as ar

HEAVY = ["pandas", "numpy", "scipy", "matplotlib", "seaborn", "nbformat", "papermill", "pandera", "sqlalchemy",
         "statsmodels", "lifelines", "pyarrow"]


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_bare_import_loads_no_heavy_library():
    assert _loaded_after("import alignment_research") == []


def test_cli_help_loads_no_heavy_library():
    code = (
        "from typer.testing import CliRunner\n"
        "from alignment_research.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0 and 'validate' in r.output, r.output"
    )
    assert _loaded_after(code) == []


def test_first_use_imports_the_defining_module():
    loaded = _loaded_after("import alignment_research as ar\nar.ConfigError")
    assert loaded == [], "the errors module needs no heavy library"
    assert ar.fit_cox.__module__ == "alignment_research.retention"


def test_submodules_resolve_as_attributes():
    assert ar.retention.fit_cox is ar.fit_cox
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        ar.not_a_name  # noqa: B018


def test_version_flag():
    from typer.testing import CliRunner

    from alignment_research.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"alignment-research {ar.__version__}"


def test_data_dictionary_lists_the_analysis_tables_in_a_fresh_interpreter():
    """The analysis tables' columns are listed without their module being loaded first."""
    code = (
        "import alignment_research as ar\n"
        "d = ar.data_dictionary()\n"
        "print(sorted(set(d['table']) & {'person', 'intervals', 'survey_panel', 'cycles'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['cycles', 'intervals', 'person', 'survey_panel']"
