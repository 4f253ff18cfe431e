"""Privacy: small-group suppression (primary and complementary), pseudonyms, leak scans.

The rendered reports of a whole run with tiny departments are checked in ``test_run.py`` (its full run).
"""

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alignment_research as ar
from alignment_research.privacy import suppress_small_groups


def _shown(out, col="n"):
    return out.loc[~out["suppressed"], col]


# --------------------------------------------------------------------------- primary suppression


def test_small_groups_are_suppressed_not_rounded():
    t = pd.DataFrame({"department": ["A", "B", "C"], "n": [12, 4, 9], "alignment": [0.5, 0.9, 0.4]})
    out = suppress_small_groups(t, group_cols=["department"], total=False)
    assert out["suppressed"].tolist() == [False, True, False]
    assert out.loc[1, ["n", "alignment"]].isna().all()  # hidden, not rounded to 5 or 0
    assert out.loc[[0, 2], "n"].tolist() == [12, 9]
    assert out.loc[[0, 2], "alignment"].tolist() == [0.5, 0.4]
    assert out["suppression"].tolist()[1] == "small group"
    # the input is left as it was
    assert t["n"].tolist() == [12, 4, 9]


def test_threshold_is_inclusive_at_min_size():
    t = pd.DataFrame({"g": ["A", "B"], "n": [5, 4], "x": [1.0, 2.0]})
    out = suppress_small_groups(t, min_group_size=5, total=False)
    assert out["suppressed"].tolist() == [False, True]


def test_nothing_changes_when_all_groups_are_large():
    t = pd.DataFrame({"g": ["A", "B", "C"], "n": [6, 50, 7], "x": [1.0, 2.0, 3.0]})
    out = suppress_small_groups(t)
    assert not out["suppressed"].any()
    pd.testing.assert_frame_equal(out[t.columns], t)


def test_missing_count_is_treated_as_small():
    t = pd.DataFrame({"g": ["A", "B", "C"], "n": [np.nan, 20, 30], "x": [1.0, 2.0, 3.0]})
    out = suppress_small_groups(t, total=False)
    assert out["suppressed"].tolist() == [True, False, False]


def test_value_cols_limits_what_is_hidden_and_count_must_exist():
    t = pd.DataFrame({"g": ["A", "B"], "n": [3, 30], "x": [1.0, 2.0], "label": ["a", "b"]})
    out = suppress_small_groups(t, group_cols=["g"], value_cols=["x"], total=False)
    assert out.loc[0, "label"] == "a" and pd.isna(out.loc[0, "x"])
    with pytest.raises(KeyError, match="headcount"):
        suppress_small_groups(t, count="headcount")


# --------------------------------------------------------------------------- complementary suppression


def test_a_single_hidden_group_is_protected_by_hiding_the_next_smallest_sibling():
    # total 40+3+12+30 = 85 is shown elsewhere: without the second cell, B = 85 - 40 - 12 - 30.
    t = pd.DataFrame({"department": ["A", "B", "C", "D"], "n": [40, 3, 12, 30], "x": [0.6, 0.2, 0.55, 0.7]})
    out = suppress_small_groups(t, group_cols=["department"])
    assert out["suppression"].fillna("").tolist() == ["", "small group", "complementary", ""]
    # what a reader can still compute: the hidden pair's sum, which is itself not small
    assert t["n"].sum() - _shown(out).sum() == 15


def test_two_tiny_hidden_groups_whose_sum_is_small_need_a_third():
    # B and C are both hidden, but 85 - shown = 3 people: the pair is itself a small group.
    t = pd.DataFrame({"g": list("ABCD"), "n": [40, 1, 2, 30], "x": [1.0, 2.0, 3.0, 4.0]})
    out = suppress_small_groups(t)
    assert out["suppressed"].tolist() == [False, True, True, True]
    assert out.loc[3, "suppression"] == "complementary"
    assert t["n"].sum() - _shown(out).sum() >= 5


def test_two_hidden_groups_reaching_the_threshold_need_nothing_more():
    t = pd.DataFrame({"g": list("ABCD"), "n": [40, 3, 4, 30], "x": [1.0, 2.0, 3.0, 4.0]})
    out = suppress_small_groups(t)
    assert out["suppressed"].tolist() == [False, True, True, False]
    assert (out["suppression"] == "complementary").sum() == 0


def test_no_complementary_suppression_when_no_total_is_published():
    t = pd.DataFrame({"g": list("ABCD"), "n": [40, 3, 12, 30], "x": [1.0, 2.0, 3.0, 4.0]})
    out = suppress_small_groups(t, total=False)
    assert out["suppressed"].tolist() == [False, True, False, False]


def test_complementary_suppression_stays_within_the_parent_group():
    # Department X has a small team; its sibling within X is hidden, not a team of Y.
    t = pd.DataFrame(
        {
            "department": ["X", "X", "X", "Y", "Y"],
            "team": ["x1", "x2", "x3", "y1", "y2"],
            "n": [2, 20, 8, 6, 9],
            "x": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    out = suppress_small_groups(t, group_cols=["department", "team"])
    assert out["suppressed"].tolist() == [True, False, True, False, False]
    assert out.loc[2, "suppression"] == "complementary"


def test_total_rows_marked_by_label_are_not_siblings_and_are_suppressed_when_small():
    t = pd.DataFrame(
        {
            "department": ["X", "X", "X", "Y", "Y", "Y"],
            "team": ["x1", "x2", "All", "y1", "y2", "All"],
            "n": [2, 20, 22, 1, 2, 3],
            "x": [1.0, 2.0, 1.9, 4.0, 5.0, 4.7],
        }
    )
    out = suppress_small_groups(t, group_cols=["department", "team"], total="All")
    # X: x1 small -> x2 is the only sibling left, hidden too; the X total (22) stays
    assert out["suppressed"].tolist() == [True, True, False, True, True, True]
    assert out.loc[2, "n"] == 22
    assert out.loc[5, "suppression"] == "small group"


def test_margins_protect_both_directions_of_a_cross_table():
    # rows = department, columns = level; a small cell needs partners in its row AND its column.
    t = pd.DataFrame(
        {
            "department": ["X", "X", "Y", "Y", "Z", "Z"],
            "level": [1, 2, 1, 2, 1, 2],
            "n": [3, 30, 25, 40, 20, 35],
        }
    )
    t["level"] = t["level"].astype(str)
    out = suppress_small_groups(t, group_cols=["department", "level"], margins=True)
    hidden = out.loc[out["suppressed"], ["department", "level"]].apply(tuple, axis=1).tolist()
    # the smallest partners: (X,2) in X's row, (Z,1) in level 1's column, then (Z,2) to close Z's row
    assert ("X", "1") in hidden and ("X", "2") in hidden and ("Z", "1") in hidden
    for key in ["department", "level"]:
        for _, grp in out.groupby(key):
            assert grp["suppressed"].sum() != 1, f"a lone hidden cell along {key} is recoverable"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=8),
    st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=8),
)
def test_no_hidden_group_can_be_recovered_by_subtraction(counts_x, counts_y):
    t = pd.DataFrame(
        {
            "department": ["X"] * len(counts_x) + ["Y"] * len(counts_y),
            "team": [f"t{i}" for i in range(len(counts_x) + len(counts_y))],
            "n": counts_x + counts_y,
        }
    )
    out = suppress_small_groups(t, group_cols=["department", "team"], min_group_size=5)
    assert (_shown(out) >= 5).all()
    for _, grp in out.groupby("department"):
        hidden = grp["suppressed"]
        if hidden.any() and not hidden.all():
            recoverable = t.loc[hidden[hidden].index, "n"].sum()
            assert hidden.sum() >= 2 and recoverable >= 5


# --------------------------------------------------------------------------- pseudonyms


def test_pseudonyms_are_keyed_stable_and_keep_joins(monkeypatch):
    monkeypatch.setenv("ALIGNMENT_RESEARCH_KEY", "k1")
    emp = pd.DataFrame({"employee_id": ["E000001", "E000002", "E000003"], "manager_id": [pd.NA, "E000001", "E000001"]})
    a = ar.pseudonymise_ids(emp, ["employee_id", "manager_id"])
    b = ar.pseudonymise_ids(emp, ["employee_id", "manager_id"])
    pd.testing.assert_frame_equal(a, b)
    assert a["manager_id"].isna().tolist() == [True, False, False]
    assert a.loc[1, "manager_id"] == a.loc[0, "employee_id"]
    assert a["employee_id"].str.fullmatch(r"P[0-9a-f]{12}").all()
    assert not a["employee_id"].isin(emp["employee_id"]).any()
    # the keyed hash, checked independently
    import hashlib
    import hmac

    assert a.loc[0, "employee_id"] == "P" + hmac.new(b"k1", b"E000001", hashlib.sha256).hexdigest()[:12]
    monkeypatch.setenv("ALIGNMENT_RESEARCH_KEY", "k2")
    c = ar.pseudonymise_ids(emp, ["employee_id"])
    assert (c["employee_id"] != a["employee_id"]).all()


@pytest.mark.parametrize("value", [None, ""])
def test_a_missing_key_is_a_clear_privacy_error(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("MY_KEY", raising=False)
    else:
        monkeypatch.setenv("MY_KEY", value)
    with pytest.raises(ar.PrivacyError, match="MY_KEY"):
        ar.pseudonymise_ids(pd.DataFrame({"employee_id": ["E1"]}), "employee_id", key_env="MY_KEY")


def test_pseudonymise_tables_covers_every_id_column(monkeypatch):
    monkeypatch.setenv("ALIGNMENT_RESEARCH_KEY", "k")
    tables = {
        "employees": pd.DataFrame({"employee_id": ["E1", "E2"], "manager_id": [pd.NA, "E1"]}),
        "feedback": pd.DataFrame({"employee_id": ["E2"], "giver_id": ["E1"], "kind": ["check_in"]}),
        "goals": pd.DataFrame({"goal_id": ["G1"], "owner_id": ["E1"]}),
    }
    out = ar.pseudonymise_tables(tables)
    p1 = out["employees"].loc[0, "employee_id"]
    assert out["feedback"].loc[0, "giver_id"] == p1 == out["goals"].loc[0, "owner_id"]
    assert out["goals"].loc[0, "goal_id"] == "G1"  # goal ids are not personal
    assert out["feedback"].loc[0, "kind"] == "check_in"


# --------------------------------------------------------------------------- scans


def test_find_identifiers_sees_visible_text_only():
    html = (
        "<style>.x{color:#E0E0E0}</style><script>var a='E999999';</script>"
        "<img src='data:image/png;base64,E1234567AAAA'>"
        "<p>E-value 2.1; 1.2E105; employee E000123 was hired.</p>"
        "<td>Jane Doe</td><td>1984-03-07</td>"
    )
    found = ar.privacy.find_identifiers(html, names=["Jane Doe"], birth_dates=["1984-03-07"])
    assert sorted(zip(found["kind"], found["match"])) == [
        ("birth_date", "1984-03-07"),
        ("employee_id", "E000123"),
        ("name", "Jane Doe"),
    ]


def test_find_identifiers_matches_known_ids_and_birth_date_headers():
    found = ar.privacy.find_identifiers("<th>date_of_birth</th><td>EMP-17</td><td>12</td>", ids=["EMP-17", "12"], pattern=None)
    assert sorted(found["match"]) == ["EMP-17", "date_of_birth"]


def test_find_small_groups_reads_every_table():
    html = pd.DataFrame({"team": ["a", "b"], "n": [3, 9]}).to_html(index=False)
    html += pd.DataFrame({"team": ["c"], "n": [np.nan], "rows_in": [2]}).to_html()  # with an index column
    html += suppress_small_groups(pd.DataFrame({"team": ["a", "b", "c"], "n": [3, 9, 7]})).to_html(index=False)
    found = ar.privacy.find_small_groups(html, min_group_size=5)
    assert found[["table", "column", "value"]].values.tolist() == [[0, "n", 3.0]]


# --------------------------------------------------------------------------- rendered reports of a study with tiny groups
# A whole run on a study with departments of 1 and 2 people is checked in tests/test_run.py (the full run there
# has them): no rendered table shows a group below the threshold, and no page an employee id.


def test_mask_small_counts_hides_small_counts_in_summaries_only():
    glance = pd.DataFrame({"n": [97], "n_treated": [3], "n_controls": [12], "events": [4], "aic": [1.5]})
    out = ar.mask_small_counts(glance, min_group_size=5)
    assert out["n"].tolist() == [97] and out["n_controls"].tolist() == [12]
    assert out[["n_treated", "events"]].isna().all().all()
    assert out["aic"].tolist() == [1.5]
    assert ar.privacy.find_small_groups(out.to_html(), min_group_size=5).empty
    assert not ar.privacy.find_small_groups(glance.to_html(), min_group_size=5).empty


def test_counts_of_things_and_empty_groups_are_not_findings():
    html = pd.DataFrame({"scale": ["a", "b"], "n_items": [3, 4], "n_unmatched": [0, 0], "n_people": [2, 40]}).to_html()
    found = ar.privacy.find_small_groups(html, min_group_size=5)
    assert found[["column", "value"]].values.tolist() == [["n_people", 2.0]]


_ID_TEXT_PARTS = ["E000007", "E000042", "10050", "10051", "1.", ",", ", ", " ", "x", "2", "12", ".5", "\u00e9", "_", "-",
                  "\u00a0", "\u2028", "E", "(", "10050,3", "3,10050", "E0000071", "<td>", "</td>"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_ID_TEXT_PARTS), max_size=25))
def test_ids_of_one_letter_digit_run_are_found_as_the_general_search_finds_them(parts):
    """Ids without punctuation (the usual case) are looked up run by run; every hit as the span search finds it."""
    from alignment_research.privacy import _IdIndex

    ids = ["E000007", "E000042", "10050", "10051"]
    fast, general = _IdIndex(ids), _IdIndex(ids)
    general.max_segments = 3  # the search over spans of segments, as for ids holding dots or @
    assert fast.max_segments == 1
    text = "".join(parts)
    assert fast.find(text) == general.find(text)
    # a digit id inside a larger number is not an id; beside a delimiter (a comma, a bracket) it is
    found = fast.find("p 3.10050 and 10050,3 but (10050) and 3,10050")
    assert [(h, start) for h, start, _ in found] == [("10050", 14), ("10050", 27), ("10050", 40)]


_NAMES = ["Ann", "Anna", "Ann Lee", "Ann-Marie Lee", "Lee", "José", "Zoë Ng", "Işık Öztürk", "O'Brien", "Νίκος",
          "Long " + "x" * 70, "Long", "Ng", "al",  # a name over 64 characters is searched apart from the others
          "ANN", "anna lee"]  # names that differ from others only in case
_BIRTH_DATES = ["1984-03-07", "1990-12-01", "not a date"]
_NAME_TEXT_PARTS = _NAMES + [n.upper() for n in _NAMES] + [n.lower() for n in _NAMES] + [
    "annabel", "ANNA", "Leeds", "-", " ", "_", ",", "(", "'", "1", "é", "\u0130", "\u0131", "1984-03-07", "07/03/1984",
    "03/07/1984", "07.03.1984", "12/01/1990", "01/12/1990", "1984-03-077", "21984-03-07", "1984/03/07", "0"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_NAME_TEXT_PARTS), max_size=30))
def test_names_and_birth_dates_are_found_where_one_search_per_name_and_per_form_finds_them(parts):
    """All names share one pattern and all dates one pass over a text; each finds what a search of its own finds."""
    text = "".join(parts)
    personal = ar.privacy.prepare_search(names=_NAMES, birth_dates=_BIRTH_DATES)
    by_start = {}  # every name's own search, as the scan did one name at a time ("al" is too short to search)
    for name in (n for n in _NAMES if len(n) > 2):
        for m in re.finditer(r"(?<!\w)" + re.escape(name) + r"(?!\w)", text, re.IGNORECASE):
            by_start.setdefault(m.start(), []).append(m.group(0))
    found = personal["names"].find(text)
    assert [start for _, start, _ in found] == sorted(by_start)  # every place a name starts, once
    assert all(match == max(by_start[start], key=len) and text[start:end] == match for match, start, end in found)
    forms = {"1984-03-07", "07/03/1984", "03/07/1984", "07.03.1984", "1990-12-01", "01/12/1990", "12/01/1990",
             "01.12.1990"}
    expected = sorted((m.start(), form) for form in forms for m in re.finditer(re.escape(form), text))
    assert sorted((start, match) for match, start, _ in personal["birth_dates"].find(text)) == expected


def test_a_scan_finds_a_few_names_and_birth_dates_among_thousands():
    """Thousands of names are one pattern: a page naming three people is found to name exactly those three."""
    rng = np.random.default_rng(3)
    syllables = np.array(["an", "be", "ko", "li", "ma", "ra", "to", "vi", "ze", "lo"])
    names = sorted({" ".join("".join(rng.choice(syllables, 3)).title() for _ in range(2)) for _ in range(5000)})
    births = pd.date_range("1950-01-01", periods=5000, freq="3D").strftime("%Y-%m-%d").tolist()
    shown = [names[10], names[2000].upper(), names[4000].lower()]
    html = f"<p>Met {shown[0]}, then {shown[1]} and {shown[2]}; born {births[7]} or {pd.Timestamp(births[9]):%d.%m.%Y}.</p>"
    found = ar.privacy.find_identifiers(html, names=names, birth_dates=births)
    assert sorted(found.loc[found["kind"] == "name", "match"]) == sorted(shown)
    assert sorted(found.loc[found["kind"] == "birth_date", "match"]) == sorted(
        [births[7], f"{pd.Timestamp(births[9]):%d.%m.%Y}"])
