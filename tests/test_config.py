"""study.yaml is parsed into a validated configuration; mistakes give clear errors."""

import datetime as dt

import pytest

import alignment_research as ar

MINIMAL = {"window": {"start": "2021-01-01", "end": "2024-12-31"}}


def test_minimal_config_gets_the_documented_defaults():
    cfg = ar.config_from_dict(MINIMAL)
    assert cfg.window.start == dt.date(2021, 1, 1)
    assert cfg.min_group_size == 5
    assert cfg.event_types == ["voluntary"]
    assert cfg.termination_map["resignation"] == "voluntary"
    assert cfg.pseudonymise is False


def test_misspelt_key_is_named():
    with pytest.raises(ar.ConfigError, match=r"`min_grup_size`: unknown key"):
        ar.config_from_dict({**MINIMAL, "min_grup_size": 3})


def test_wrong_type_is_named_with_the_value():
    with pytest.raises(ar.ConfigError, match=r"`min_group_size`.*'five'"):
        ar.config_from_dict({**MINIMAL, "min_group_size": "five"})


def test_window_must_be_ordered():
    with pytest.raises(ar.ConfigError, match="window.end"):
        ar.config_from_dict({"window": {"start": "2024-01-01", "end": "2021-01-01"}})


def test_missing_window_is_named():
    with pytest.raises(ar.ConfigError, match=r"`window`: required but missing"):
        ar.config_from_dict({})


def test_reverse_items_must_belong_to_the_scale():
    bad = {**MINIMAL, "scales": {"engagement": {"items": ["engagement_1", "engagement_2"], "reverse": ["engagement_9"]}}}
    with pytest.raises(ar.ConfigError, match="engagement_9"):
        ar.config_from_dict(bad)


def test_unknown_table_in_column_maps_is_named():
    with pytest.raises(ar.ConfigError, match="employes"):
        ar.config_from_dict({**MINIMAL, "column_maps": {"employes": {"EmpID": "employee_id"}}})


def test_termination_map_keys_are_case_insensitive():
    cfg = ar.config_from_dict({**MINIMAL, "termination_map": {"Quit ": "voluntary"}})
    assert cfg.termination_map == {"quit": "voluntary"}


def test_event_types_are_restricted():
    with pytest.raises(ar.ConfigError, match="event_types"):
        ar.config_from_dict({**MINIMAL, "event_types": ["quit"]})


def test_cycles_must_be_in_time_order_and_unique():
    cycles = [{"name": 2022, "start": "2022-01-01", "end": "2022-12-31"},
              {"name": 2021, "start": "2021-01-01", "end": "2021-12-31"}]
    with pytest.raises(ar.ConfigError, match="time order"):
        ar.config_from_dict({**MINIMAL, "cycles": cycles})
    cfg = ar.config_from_dict({**MINIMAL, "cycles": cycles[::-1]})
    assert [c.name for c in cfg.cycles] == ["2021", "2022"]


def test_load_config_reads_a_folder(tmp_path):
    (tmp_path / "study.yaml").write_text("window: {start: 2021-01-01, end: 2024-12-31}\nname: demo\n")
    assert ar.load_config(tmp_path).name == "demo"


def test_load_config_names_a_missing_file(tmp_path):
    with pytest.raises(ar.ConfigError, match="no study.yaml"):
        ar.load_config(tmp_path)


def test_load_config_rejects_broken_yaml(tmp_path):
    (tmp_path / "study.yaml").write_text("window: [unclosed\n")
    with pytest.raises(ar.ConfigError, match="not readable as YAML"):
        ar.load_config(tmp_path)


def test_config_round_trips_through_yaml_dict():
    cfg = ar.config_from_dict({**MINIMAL, "scales": {"engagement": {"items": ["engagement_1", "engagement_2"]}}})
    assert ar.config_from_dict(cfg.to_yaml_dict()) == cfg


def test_data_contract_error_lists_first_ten_problems_and_total():
    import pandas as pd

    problems = pd.DataFrame({"file": ["e.csv"] * 12, "row": range(2, 14), "column": "hire_date",
                             "rule": "unparseable_date", "value": "31/02/2021"})
    err = ar.DataContractError("employees.csv breaks the contract", problems)
    text = str(err)
    assert text.count("unparseable_date") == 10
    assert "and 2 more (12 in all)" in text
    assert "e.csv, row 2, column hire_date" in text


def test_impossible_date_in_study_yaml_names_the_key_not_a_traceback(tmp_path):
    (tmp_path / "study.yaml").write_text("window: {start: 2021-01-01, end: 2024-12-31}\n"
                                         "cycles: [{name: 2021, start: 2021-02-30, end: 2021-12-31}]\n")
    with pytest.raises(ar.ConfigError, match=r"`cycles.0.start`: .*day value is outside expected range.*'2021-02-30'"):
        ar.load_config(tmp_path)


def test_dates_in_study_yaml_are_still_read_as_dates(tmp_path):
    (tmp_path / "study.yaml").write_text("window: {start: 2021-01-01, end: '2024-12-31'}\n"
                                         "earliest_plausible_date: 1960-06-30\n")
    cfg = ar.load_config(tmp_path)
    assert (cfg.window.start, cfg.window.end, cfg.earliest_plausible_date) == (
        dt.date(2021, 1, 1), dt.date(2024, 12, 31), dt.date(1960, 6, 30))


@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%d/%m/%Y", "%d.%m.%y", "%Y-%m-%d %H:%M:%S", "%d %B %Y", "%x"])
def test_usual_date_formats_are_accepted(fmt):
    assert ar.config_from_dict({**MINIMAL, "date_formats": [fmt]}).date_formats == [fmt]


@pytest.mark.parametrize("fmt, says", [("%Y-%m-%Q", "uses %Q"), ("YYYY-MM-DD", "no % directive"),
                                       ("%d/%m", "has no year"), ("%G-%m-%d", "cannot be used to read dates")])
def test_bad_date_formats_are_named(fmt, says):
    with pytest.raises(ar.ConfigError, match=r"`date_formats`") as info:
        ar.config_from_dict({**MINIMAL, "date_formats": [fmt]})
    assert says in str(info.value) and repr(fmt) in str(info.value)


def test_new_keys_have_safe_defaults():
    cfg = ar.config_from_dict(MINIMAL)
    assert cfg.allow_outside_paths is False and cfg.sheets == {}
    assert cfg.na_values == ar.config.NA_VALUES and {"NA", "-", "?", "#N/A", "nil"} <= set(cfg.na_values)


def test_na_values_written_as_yaml_null_or_numbers_become_text():
    cfg = ar.config_from_dict({**MINIMAL, "na_values": [None, -99, "n.v."]})
    assert cfg.na_values == ["null", "-99", "n.v."]


def test_sheets_name_known_tables_and_become_text():
    assert ar.config_from_dict({**MINIMAL, "sheets": {"employees": 2024}}).sheets == {"employees": "2024"}
    with pytest.raises(ar.ConfigError, match=r"`sheets`.*employes"):
        ar.config_from_dict({**MINIMAL, "sheets": {"employes": "Staff"}})


def test_files_must_be_a_readable_kind():
    with pytest.raises(ar.ConfigError, match=r"`files.employees` names 'staff.txt'.*\.csv"):
        ar.config_from_dict({**MINIMAL, "files": {"employees": "staff.txt"}})


def test_database_url_syntax_is_checked_and_passwords_never_shown():
    with pytest.raises(ar.ConfigError, match=r"`database.url`: .*not a SQLAlchemy URL.*'hris.db'"):
        ar.config_from_dict({**MINIMAL, "database": {"url": "hris.db", "tables": {"employees": "staff"}}})
    with pytest.raises(ar.ConfigError) as info:
        ar.config_from_dict({**MINIMAL, "database": {"url": "postgresql://me:s3cret@db:port/hris", "tables": {}}})
    assert "not a SQLAlchemy URL (invalid literal" in str(info.value)
    assert "s3cret" not in str(info.value) and "'postgresql://me:***@db:port/hris' was given" in str(info.value)
    assert ar.config.mask_password("see mysql+pymysql://a:b@c/d and sqlite:///x.db") == "see mysql+pymysql://a:***@c/d and sqlite:///x.db"
