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
