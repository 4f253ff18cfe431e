"""Pseudonymised studies analyse like plain ones; rendered and exported files are scanned for the study's own ids."""

from __future__ import annotations

import pandas as pd
import pytest

import alignment_research as ar
from alignment_research.privacy import pseudonymise_ids

KEY = "test-key-0123456789abcdef"

# --------------------------------------------------------------------------- pseudonymisation


def _pseudonymised(study):
    config = study.config.model_copy(update={"pseudonymise": True})
    return ar.Study(tables=study.tables, config=config, path=study.path, sources=study.sources)


def test_pseudonymised_analysis_tables_equal_the_plain_ones_up_to_the_ids(monkeypatch):
    # the class of bug: any step that treats pseudonymised ids differently (dtype, joins, rehires, history)
    monkeypatch.setenv("ALIGNMENT_RESEARCH_KEY", KEY)
    # seed 2 has a rehire inside the window (practices on, the default since issue 15; seeds 0-7 checked: 2, 3
    # and 5 have one; seed 1, used before, had one with the practices off)
    study = ar.simulate_study(n_employees=300, seed=2)
    plain = ar.clean_study(study).analysis
    hidden = ar.clean_study(_pseudonymised(study)).analysis
    assert plain.person["spell"].max() >= 2  # the study holds a rehire (several spells of one id)
    assert plain.careers["event"].sum() > 0  # and a job history with promotions
    for name in ["person", "intervals", "survey_panel", "cycles", "careers"]:
        expected, got = getattr(plain, name), getattr(hidden, name)
        ids = [c for c in expected.columns if c in {"employee_id", "manager_id"}]
        expected = pseudonymise_ids(expected, ids)
        order = list(expected.columns[:6])
        pd.testing.assert_frame_equal(
            got.sort_values(order, kind="stable").reset_index(drop=True),
            expected.sort_values(order, kind="stable").reset_index(drop=True),
            obj=name,
        )


@pytest.mark.parametrize("dtype", [object, "string"])
def test_pseudonymise_ids_keeps_the_columns_kind_of_text(dtype, monkeypatch):
    monkeypatch.setenv("ALIGNMENT_RESEARCH_KEY", KEY)
    df = pd.DataFrame({"employee_id": pd.Series(["E1", None, "E1"], dtype=dtype)})
    out = pseudonymise_ids(df, ["employee_id"])
    assert out["employee_id"].dtype == df["employee_id"].dtype
    assert out["employee_id"].isna().tolist() == [False, True, False]
    assert out["employee_id"][0] == out["employee_id"][2] != "E1"


# --------------------------------------------------------------------------- the study's own ids, whatever their shape

ODD_IDS = ["ann.lee@corp.example", "zoë-7", "王小明", "emp🙂42", "4711000", "00017", "X.Y.Z"]


@pytest.mark.parametrize("study_id", ODD_IDS)
@pytest.mark.parametrize("page", [
    "<p>Lowest score: {id}.</p>",
    "<td>{id}</td>",
    "<p>({id})</p>",
    '<img alt="portrait of {id}" src="data:image/png;base64,AAAA">',
    '<span title="{id}">x</span>',
    "<p>see {escaped}</p>",
])
def test_a_study_id_of_any_shape_is_found_wherever_it_shows(study_id, page):
    import html

    escaped = html.escape(study_id).replace("@", "&#64;").replace(".", "&period;").encode("ascii", "xmlcharrefreplace").decode()
    text = page.format(id=study_id, escaped=escaped)
    found = ar.privacy.find_identifiers(text, ids=ODD_IDS, pattern=None)
    assert found["match"].tolist() == [study_id], text


@pytest.mark.parametrize("text", [
    "<p>Founded 2012; 12 teams.</p>",  # "12" inside 2012, and a count
    "<p>joann.lee@corp.example wrote</p>",  # another address that ends like the id
    "<p>4711000.5 and 14711000</p>",  # the digits inside larger numbers
    "<p>zoë-77 and xzoë-7</p>",
])
def test_ids_are_not_found_inside_other_words_or_numbers(text):
    assert ar.privacy.find_identifiers(text, ids=[*ODD_IDS, "12"], pattern=None).empty


def test_short_numeric_ids_are_found_only_where_they_read_as_ids():
    ids = ["17", "4711"]
    page = ("<p>17 teams in 4711 places. Employee 17 left; ID: 4711 stayed.</p>"
            "<table><tr><th>employee_id</th><th>n</th></tr><tr><td>17</td><td>17</td></tr></table>")
    found = ar.privacy.find_identifiers(page, ids=ids, pattern=None)
    assert sorted(zip(found["match"], found["where"])) == [
        ("17", "table 0, column employee_id, row 0"), ("17", "visible text"), ("4711", "visible text")]
    assert "Employee ** left" in found["context"].tolist()[0]


def test_ids_in_scripts_are_found_but_not_the_pattern():
    page = '<script>var rows = [{"id": "ann.lee\\u0040corp.example"}, "E999999"];</script><p>ok</p>'
    found = ar.privacy.find_identifiers(page, ids=["ann.lee@corp.example"])
    assert found[["match", "where"]].values.tolist() == [["ann.lee@corp.example", "script or style"]]


def test_findings_never_show_an_id_in_full(tmp_path):
    page = tmp_path / "r.html"
    page.write_text("<p>ann.lee@corp.example and E000123 lead E000124.</p>", encoding="utf-8")
    found = ar.privacy.scan_report(page, ids=["ann.lee@corp.example", "E000123", "E000124"])
    assert sorted(found["found"]) == ["E*****3", "E*****4", "a******************e"]
    for cell in found.astype(str).to_numpy().ravel():
        assert "E000123" not in cell and "E000124" not in cell and "ann.lee" not in cell and "corp.example" not in cell


# --------------------------------------------------------------------------- people counts under any header


@pytest.mark.parametrize("header", ["Employees (n)", "Headcount", "People (N)", "n people", "Number of employees",
                                    "team size", "n_people", "N"])
def test_people_counts_below_the_threshold_are_found_under_any_header(header):
    page = pd.DataFrame({"team": ["A", "B"], header: ["3", "1,204"]}).to_html(index=False)
    found = ar.privacy.find_small_groups(page, min_group_size=5)
    assert found[["column", "row", "value"]].values.tolist() == [[header, 0, 3.0]]


@pytest.mark.parametrize("header", ["Items (n)", "n_items", "Cycles", "Year", "estimate"])
def test_counts_of_things_are_not_people(header):
    page = pd.DataFrame({"scale": ["A"], header: [3]}).to_html(index=False)
    assert ar.privacy.find_small_groups(page, min_group_size=5).empty


def test_a_count_with_a_share_beside_it_is_read():
    page = pd.DataFrame({"team": ["A"], "Employees (n)": ["3 (12%)"]}).to_html(index=False)
    assert ar.privacy.find_small_groups(page, min_group_size=5)["value"].tolist() == [3.0]


# --------------------------------------------------------------------------- every kind of exported file


def _write_exports(folder, leak):
    """One file of each kind the run may write; ``leak`` is an id hidden in each."""
    import matplotlib.pyplot as plt
    import openpyxl

    folder.mkdir()
    (folder / "results.csv").write_text(f"term,estimate\nalignment,0.3\n{leak},0.1\n", encoding="utf-8")
    book = openpyxl.Workbook()
    book.active.title = "summary"
    book.active.append(["term", "estimate"])
    other = book.create_sheet("detail")
    other.append(["note"])
    other.append([f"worst: {leak}"])
    book.save(folder / "results.xlsx")
    fig, ax = plt.subplots()
    ax.set_title(f"Team of {leak}")
    fig.savefig(folder / "brief.pdf")
    fig.savefig(folder / "figure.png", metadata={"Title": f"{leak} exits"})
    plt.close(fig)
    (folder / "figure_clean.png").write_bytes((folder / "figure.png").read_bytes())


@pytest.mark.parametrize("leak", ["E000123", "ann.lee@corp.example", "zoë-7"])
def test_every_exported_file_is_scanned(tmp_path, leak):
    _write_exports(tmp_path / "out", leak)
    found = ar.privacy.scan_outputs(tmp_path / "out", ids=[leak, "E000999"])
    by_file = dict(zip(found["file"], found["where"]))
    assert set(by_file) == {"results.csv", "results.xlsx", "brief.pdf", "figure.png", "figure_clean.png"}
    assert by_file["results.csv"] == "line 3"
    assert by_file["results.xlsx"] == "sheet 'detail' cell A2"
    assert by_file["figure.png"] == "PNG text 'Title'"
    assert (found["kind"] == "employee_id").all()


def test_clean_exports_have_no_findings(tmp_path):
    _write_exports(tmp_path / "out", "alignment")
    assert ar.privacy.scan_outputs(tmp_path / "out", ids=["E000123", "ann.lee@corp.example"]).empty


def test_small_counts_in_csv_and_xlsx_exports_are_found(tmp_path):
    import openpyxl

    (tmp_path / "t.csv").write_text("department,Employees (n)\nA,40\nB,2\n", encoding="utf-8")
    book = openpyxl.Workbook()
    book.active.append(["department", "Headcount"])
    book.active.append(["A", 3])
    book.save(tmp_path / "t.xlsx")
    found = ar.privacy.scan_outputs(tmp_path)
    assert found[["file", "kind", "found", "where"]].values.tolist() == [
        ["t.csv", "small_group", "2", "table 0, column Employees (n), row 1"],
        ["t.xlsx", "small_group", "3", "sheet 'Sheet', column Headcount, row 0"],
    ]


def test_pdf_text_is_read_from_uncompressed_and_inflated_streams(tmp_path):
    import zlib

    content = b"BT /F1 12 Tf 72 720 Td [(E0)-20(00123)] TJ ET"
    packed = zlib.compress(b"BT /F1 12 Tf (ann.lee@corp.example) Tj ET")
    pdf = (b"%PDF-1.4\n1 0 obj\n<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content
           + b"\nendstream\nendobj\n2 0 obj\n<< /Length " + str(len(packed)).encode() + b" /Filter /FlateDecode >>\n"
           + b"stream\n" + packed + b"\nendstream\nendobj\n%%EOF\n")
    (tmp_path / "b.pdf").write_bytes(pdf)
    found = ar.privacy.scan_outputs(tmp_path, ids=["E000123", "ann.lee@corp.example"])
    assert sorted(set(found["found"])) == ["E*****3", "a******************e"]


def test_pdf_text_is_read_through_escapes_and_a_fonts_two_byte_cmap(tmp_path):
    """An id set in a subset font (two-byte codes, hex string, ToUnicode CMap) and one written with octal escapes."""
    codes = {"E": b"0045", "0": b"0030", "1": b"0031", "2": b"0032", "3": b"0033"}
    cmap = (b"/CIDInit /ProcSet findresource begin begincmap\n5 beginbfchar\n"
            + b"".join(b"<" + code + b"> <" + code + b">\n" for code in codes.values()) + b"endbfchar\nendcmap end")
    shown = b"".join(codes[c] for c in "E000123")
    content = (b"BT /F1 12 Tf [<" + shown[:12] + b"> -20 <" + shown[12:] + b">] TJ ET\n"
               + b"BT (ann.lee\\100corp\\056example) Tj (\\(nested (parens)\\)) Tj ET")
    pdf = b"%PDF-1.4\n"
    for k, body in enumerate([content, cmap], start=1):
        pdf += b"%d 0 obj\n<< /Length %d >>\nstream\n" % (k, len(body)) + body + b"\nendstream\nendobj\n"
    (tmp_path / "b.pdf").write_bytes(pdf + b"%%EOF\n")
    found = ar.privacy.scan_outputs(tmp_path, ids=["E000123", "ann.lee@corp.example"])
    assert sorted(set(found["found"])) == ["E*****3", "a******************e"]
    assert sorted(set(found["where"])) == ["stream 1", "stream 1 (font map)"]


def test_a_file_that_cannot_be_read_is_a_finding(tmp_path):
    (tmp_path / "results.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    found = ar.privacy.scan_outputs(tmp_path, ids=["E000123"])
    assert found[["file", "kind", "where"]].values.tolist() == [["results.xlsx", "unreadable", "the whole file"]]


def test_ids_in_xlsx_number_cells_and_short_ids_in_id_columns_are_found(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "people"
    book.active.append(["Employee Number", "score"])
    book.active.append([17, 0.5])  # a weak id, but in a column headed like an id
    book.active.append([4711000, 17])  # a strong id stored as a number; 17 as a score is not an id
    book.save(tmp_path / "t.xlsx")
    found = ar.privacy.scan_outputs(tmp_path, ids=["17", "4711000"])
    assert sorted(zip(found["found"], found["where"])) == [
        ("**", "sheet 'people', column Employee Number, row 0"), ("4*****0", "sheet 'people' cell A3")]


def test_the_run_searches_for_the_pseudonyms_too(tiny_study, monkeypatch):
    from alignment_research.run import _personal_values

    monkeypatch.setenv("ALIGNMENT_RESEARCH_KEY", KEY)
    study = _pseudonymised(tiny_study)
    cleaned = ar.clean_study(study)
    ids = _personal_values(study, cleaned)["ids"]
    source = tiny_study.tables["employees"]["employee_id"].dropna().iloc[0]
    assert source in ids
    assert pseudonymise_ids(pd.DataFrame({"employee_id": [source]}), ["employee_id"]).iloc[0, 0] in ids


def test_every_employee_id_column_is_pseudonymised_even_in_unlisted_tables(monkeypatch):
    monkeypatch.setenv("ALIGNMENT_RESEARCH_KEY", KEY)
    tables = {"employees": pd.DataFrame({"employee_id": ["E1"], "manager_id": ["E2"]}),
              "job_history": pd.DataFrame({"employee_id": ["E1"], "manager_id": ["E2"], "reason": ["hire"]}),
              "awards": pd.DataFrame({"giver_id": ["E2"], "award": ["star"]})}
    out = ar.pseudonymise_tables(tables)
    assert out["job_history"]["employee_id"][0] == out["employees"]["employee_id"][0] != "E1"
    assert out["awards"]["giver_id"][0] == out["employees"]["manager_id"][0] != "E2"
    assert out["awards"]["award"][0] == "star"


def test_html_tables_are_read_as_a_reader_sees_them():
    """read_html_tables (lxml): header rows, cell text without comments, scripts or styles, entities, nested
    tables read on their own, an SVG with an XML declaration, and a page without tables."""
    page = """<!DOCTYPE html><html><body><p>intro</p>
    <table><thead><tr><th>team</th><th>n</th></tr><tr><th>name</th><th></th></tr></thead>
    <tbody><tr><th>A&amp;B</th><td> 3 <!-- hidden 99 --><script>var n = 1;</script><style>.x{}</style></td></tr>
    <tr><td>C<b>  D </b>E</td><td>12&nbsp;</td></tr></tbody></table>
    <table><tr><th>group</th><th>people (n)</th></tr><tr><td>x</td><td><table><tr><td>4</td></tr></table></td></tr>
    </table></body></html>"""
    first, second, inner = ar.privacy.read_html_tables(page)
    assert first.columns.tolist() == ["team", "n"]  # the first non-empty text of each header column
    assert first.values.tolist() == [["A&B", "3"], ["C D E", "12"]]
    # a first row of <th> names the columns; the nested table's cell and row also count in the table around it
    assert second.columns.tolist() == ["group", "people (n)", "column_2"]
    assert second.values.tolist() == [["x", "4", "4"], ["4", "", ""]]
    assert inner.values.tolist() == [["4"]] and inner.columns.tolist() == ["column_0"]
    svg = '<?xml version="1.0" encoding="utf-8"?><svg><foreignObject><table><tr><th>n</th></tr>' \
          '<tr><td>2</td></tr></table></foreignObject></svg>'
    assert ar.privacy.read_html_tables(svg)[0].values.tolist() == [["2"]]
    assert ar.privacy.read_html_tables("<p>no tables here</p>") == []
    assert ar.privacy.read_html_tables("") == []
