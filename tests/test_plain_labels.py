"""Leaders and analysts read words, not codes: no 0/1 legend, no raw column name, in any notebook (issue 14).

Two checks. The committed, executed notebooks are scanned for tables that show the privacy gate's
bookkeeping (``n_people``, ``suppressed: False``) instead of going through ``report.plain_table``.
Then every figure the committed notebooks display is read in words: ``ar.set_theme()`` makes a
figure's plain-text output list its titles, axis labels and legend entries (``plots.figure_text``),
so the words are stored with the notebook, nbval checks them when it re-executes it, and no test
executes a notebook a second time. Every one of them must be words.
"""

import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

import alignment_research as ar

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: The privacy gate's own columns: kept in the tidy tables, never shown in a report.
GATE_COLUMNS = {"n_people", "suppressed", "suppression"}


def _tables(path):
    """(cell source, header texts, cell texts) of every HTML table a notebook displays."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            html = out.get("data", {}).get("text/html", "")
            if "<table" in html:
                yield (cell.source, re.findall(r"<th[^>]*>([^<]*)</th>", html),
                       re.findall(r"<td[^>]*>([^<]*)</td>", html))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_table_shows_the_privacy_gate_bookkeeping(path):
    for source, headers, cells in _tables(path):
        raw = GATE_COLUMNS.intersection(h.strip() for h in headers)
        assert not raw, f"{path.stem}: a table shows {sorted(raw)}; pass it through ar.plain_table:\n{source}"


def test_the_scan_finds_a_raw_gate_table(tmp_path):
    table = pd.DataFrame({"department": ["A"], "n_people": [12], "mean": [0.5], "suppressed": [False]})
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("table")
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/html": table.to_html()}, execution_count=1)]
    nb.cells = [cell]
    nbformat.write(nb, tmp_path / "raw.ipynb")
    (_, headers, cells), = _tables(tmp_path / "raw.ipynb")
    assert GATE_COLUMNS.intersection(headers) == {"n_people", "suppressed"} and "False" in cells
    plain = ar.plain_table(table, index="department").to_html()
    assert not GATE_COLUMNS.intersection(re.findall(r"<th[^>]*>([^<]*)</th>", plain))


# ---------------------------------------------------------------- what the figures say

def unreadable(kind: str, text: str) -> str | None:
    """Why a figure text is not words a reader can use (None when it is)."""
    bare = text.strip()
    if re.fullmatch(r"[-+]?\d+(\.0+)?|True|False|nan|None", bare):
        return "a bare code"
    if re.search(r"[A-Za-z]_[A-Za-z]", bare):
        return "a raw column name"
    if kind == "legend" and re.fullmatch(r"\w+ = .+", bare):
        return "a column = value legend"
    return None


@pytest.mark.parametrize(("kind", "text", "bad"), [
    ("legend", "0", True), ("legend", "1.0", True), ("legend", "True", True),
    ("legend", "manager_program = 1", True), ("xlabel", "alignment_cascade", True),
    ("legend", "Manager in the programme", False), ("xlabel", "Tenure (months)", False),
    ("ylabel", "Exit rate ratio (95% CI, log scale)", False), ("legend", "Job level 2", False),
])
def test_unreadable_figure_texts_are_caught(kind, text, bad):
    assert (unreadable(kind, text) is not None) is bad


def _figure_words(path):
    """(kind, text) of every word of every figure a committed notebook displays, one list per figure."""
    figures = []
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data and str(data.get("text/plain", "")).startswith("<Figure"):
                lines = str(data["text/plain"]).splitlines()[1:]
                figures.append([tuple(line.split(": ", 1)) for line in lines])
    return figures


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_displayed_figure_reads_in_words(path):
    figures = _figure_words(path)
    assert figures, f"{path.stem}: no figure was displayed"
    assert any(figure for figure in figures), f"{path.stem}: no figure's words were stored (ar.set_theme() first)"
    bad = [(kind, text, why) for figure in figures for kind, text in figure
           if (why := unreadable(kind, text)) is not None]
    assert not bad, f"{path.stem}: figure texts that are not words: {bad}"


def test_a_displayed_figure_stores_its_words_in_its_text():
    fig = ar.plots.axes_for().figure
    fig.axes[0].plot([0, 1], [0, 1], label="manager_program = 1")
    fig.axes[0].legend()
    fig.axes[0].set_xlabel("Tenure (months)")
    lines = ar.plots.figure_text(fig).splitlines()
    assert lines[0].startswith("<Figure size") and lines[1:] == ["xlabel: Tenure (months)",
                                                                 "legend: manager_program = 1"]
    assert unreadable("legend", lines[2].split(": ", 1)[1]) is not None


# ---------------------------------------------------------------- the plot functions the notebooks use, drawn directly


def _words(ax):
    return ar.figure_labels(ax.figure)


def test_the_cleaning_summary_legend_names_each_action_in_words():
    report = pd.DataFrame({"table": ["employees", "employees", "surveys"], "rule": ["duplicate", "bad_date", "range"],
                           "action": ["dropped_duplicate", "set_missing", "set_missing"], "row": [1, 2, 3],
                           "column": ["employee_id", "hire_date", "engagement_1"], "value": ["E1", "x", "9"]})
    assert len(ar.cleaning_summary(report)) == 3
    words = _words(ar.plot_cleaning_summary(report))
    legend = words.loc[words["kind"] == "legend", "text"].tolist()
    assert sorted(legend) == ["Duplicate dropped", "Value set to missing"]
    assert words.loc[words["kind"] == "legend title", "text"].tolist() == ["What was done"]


def test_predicted_lines_take_worded_legend_labels():
    table = pd.DataFrame({"x": [0, 1, 0, 1], "manager_program": [0, 0, 1, 1], "estimate": [3.0, 3.4, 3.2, 3.7],
                          "conf_low": [2.9, 3.3, 3.1, 3.6], "conf_high": [3.1, 3.5, 3.3, 3.8]})
    labels = {0: "Manager not yet in the programme", 1: "Manager in the programme"}
    words = _words(ar.plot_predicted(table, by="manager_program", labels=labels, xlabel="Cascade alignment (0–1)"))
    assert words.loc[words["kind"] == "legend", "text"].tolist() == list(labels.values())
    raw = _words(ar.plot_predicted(table, by="manager_program"))
    assert raw.loc[raw["kind"] == "legend", "text"].tolist() == ["manager_program = 0", "manager_program = 1"]
    assert all(unreadable("legend", t) for t in raw.loc[raw["kind"] == "legend", "text"])
    assert unreadable("legend", "programme = 1") == "a column = value legend"


def test_the_schoenfeld_axis_names_the_term_in_words_with_its_scale():
    residuals = pd.DataFrame({"term": ["alignment_cascade"] * 4, "time_months": [1.0, 5.0, 9.0, 20.0],
                              "residual": [-0.5, -0.8, -0.6, -0.7], "estimate": [-0.7] * 4})
    words = _words(ar.plot_schoenfeld(residuals, term="alignment_cascade", label="cascade alignment", smooth=False))
    ylabel = words.loc[words["kind"] == "ylabel", "text"].item()
    assert ylabel == "Effect of cascade alignment over tenure\n(log hazard ratio, scaled Schoenfeld residual)"
    default = _words(ar.plot_schoenfeld(residuals, term="alignment_cascade", smooth=False))
    assert unreadable("ylabel", default.loc[default["kind"] == "ylabel", "text"].item()) is None
