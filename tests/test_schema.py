"""The schemas: checks named by rule id, the data dictionary generated from them."""

import pandas as pd
import pandera.pandas as pa
import pytest

import alignment_research as ar
from alignment_research.config import TABLES
from alignment_research.schema import COLUMNS

CONFIG = ar.config_from_dict(
    {
        "window": {"start": "2021-01-01", "end": "2024-12-31"},
        "cycles": [{"name": "2021", "start": "2021-01-01", "end": "2021-12-31"}],
        "scales": {"engagement": {"items": ["engagement_1", "engagement_2"], "reverse": ["engagement_2"], "max": 7}},
    }
)


@pytest.mark.parametrize("table", TABLES)
def test_every_check_is_named_by_a_documented_rule(table):
    schema = ar.table_schema(table, CONFIG)
    names = [c.name for c in schema.checks] + [c.name for col in schema.columns.values() for c in col.checks]
    assert names, "each table has at least one check"
    for check in [*schema.checks, *(c for col in schema.columns.values() for c in col.checks)]:
        assert check.name in ar.schema.RULES
        assert check.description == ar.schema.RULES[check.name]
    for name, column in schema.columns.items():
        assert column.description, f"{table}.{name} needs a description"


def test_fatal_and_loader_rules_are_in_the_catalogue():
    from alignment_research.validate import FATAL_RULES

    assert set(FATAL_RULES) <= set(ar.schema.RULES)
    assert {"not_utf8", "missing_file", "malformed_csv", "duplicate_column"} <= set(ar.schema.RULES)


def test_rule_ids_are_snake_case_nouns_with_user_text():
    for rule, text in ar.schema.RULES.items():
        assert rule == rule.lower() and " " not in rule
        assert len(text) > 15


def test_employee_schema_catches_rows_that_break_the_contract():
    employees = pd.DataFrame(
        {
            "employee_id": ["E1", "E2", None],
            "hire_date": pd.to_datetime(["2021-01-01", "2021-01-01", "2021-01-01"]),
            "termination_date": pd.to_datetime(["2020-01-01", None, None]),
            "termination_type": ["voluntary", "fired", None],
            "job_level": pd.array([1, 6, None], dtype="Int64"),
        },
        index=[2, 3, 4],
    )
    with pytest.raises(pa.errors.SchemaErrors) as info:
        ar.table_schema("employees", CONFIG).validate(employees, lazy=True)
    cases = info.value.failure_cases
    got = sorted(set(zip(cases["check"], cases["index"])))
    assert got == [
        ("not_nullable", 4),
        ("out_of_range_job_level", 3),
        ("termination_before_hire", 2),
        ("unknown_category", 3),
    ]


def test_survey_items_follow_the_scale_range():
    schema = ar.table_schema("surveys", CONFIG)
    assert {"engagement_1", "engagement_2"} <= set(schema.columns)
    surveys = pd.DataFrame(
        {"employee_id": ["E1"], "survey_date": pd.to_datetime(["2022-01-01"]), "engagement_1": [7.0], "engagement_2": [8.0]}
    )
    with pytest.raises(pa.errors.SchemaErrors) as info:
        schema.validate(surveys, lazy=True)
    assert info.value.failure_cases[["column", "check"]].values.tolist() == [["engagement_2", "out_of_range_answer"]]


def test_data_dictionary_is_generated_from_the_schemas():
    dictionary = ar.data_dictionary(CONFIG)
    assert list(dictionary.columns) == ["table", "column", "dtype", "required", "description"]
    canonical = dictionary[dictionary["table"].isin(TABLES)]
    # + the two engagement items, job_history's derived spell, the five optional goal columns and goals' stretch
    assert len(canonical) == sum(len(v) for v in COLUMNS.values()) + 2 + 1 + 5 + 1
    required = canonical[canonical["required"]]
    assert required.groupby("table", sort=False)["column"].apply(list).to_dict() == {
        "employees": ["employee_id", "hire_date"],
        "goals": ["goal_id", "owner_id", "cycle"],
        "reviews": ["employee_id", "cycle"],
        "surveys": ["employee_id", "survey_date"],
        "programs": ["employee_id", "program", "start_date"],
        "feedback": ["employee_id", "date", "kind"],
        "job_history": ["employee_id", "effective_date"],
    }
    item = canonical.query("column == 'engagement_2'").iloc[0]
    assert item["description"] == "Item of the engagement scale, answers 1..7. Reverse-coded (stored as min + max - answer)."
    assert canonical["description"].str.len().min() > 5


def test_register_dictionary_adds_analysis_tables():
    ar.register_dictionary("test_extra", [{"column": "x", "dtype": "float64", "description": "An example."}])
    rows = ar.data_dictionary().query("table == 'test_extra'")
    assert rows[["column", "required"]].values.tolist() == [["x", False]]
    with pytest.raises(ValueError, match="description"):
        ar.register_dictionary("bad", [{"column": "x", "dtype": "float64"}])
