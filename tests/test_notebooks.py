"""The committed notebooks follow the house rules (style.md B6); nbval checks their outputs."""

import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_data_quality", "02_alignment", "03_engagement", "04_retention", "05_leadership_program",
            "06_leadership_brief", "07_careers", "08_levers"]


def _code_cells(path):
    nb = nbformat.read(path, as_version=4)
    return nb, [c for c in nb.cells if c.cell_type == "code"]


def test_the_notebook_set_is_complete_and_well_named():
    names = [p.stem for p in NOTEBOOKS]
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+", n) for n in names), names
    assert names == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_title_and_one_parameters_cell(path):
    nb, cells = _code_cells(path)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters`"
    assert 'study_dir = "../data/sample"' in tagged[0].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_stays_thin(path):
    _, cells = _code_cells(path)
    for cell in cells:
        tree = ast.parse(cell.source)
        banned = [type(n).__name__ for n in ast.walk(tree)
                  if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.For, ast.While))]
        assert not banned, f"logic belongs in the package, found {banned} in:\n{cell.source}"
        assert "print_summary" not in cell.source and ".summary()" not in cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_executed_and_clean(path):
    nb, cells = _code_cells(path)
    assert all(c.execution_count is not None for c in cells if c.source.strip()), "execute with `make notebooks`"
    text = nbformat.writes(nb)
    assert "/work/" not in text and "/home/" not in text and "/tmp/" not in text, "absolute path in a notebook"
    for cell in cells:
        for out in cell.get("outputs", []):
            assert out.get("name") != "stderr", f"stderr output (warning or progress bar) in:\n{cell.source}"
            assert out.output_type != "error"
    assert "papermill" not in nb.metadata
