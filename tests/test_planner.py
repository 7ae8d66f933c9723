"""The planner: one task per sub-job, variables rendered, settings normalised."""

from __future__ import annotations

from datetime import datetime

import pytest

from exchangis.engine.planner import plan_job, plan_settings, setting_problem
from exchangis.errors import InvalidInputError

SUB = {
    "subJobName": "orders",
    "dataSources": {
        "source": {"type": "MYSQL", "id": 1, "table": "orders_${run_date}"},
        "sink": {"type": "FILE", "id": 2, "table": "out/${region}/${yyyyMMdd}.csv"},
    },
    "params": {
        "sources": [{"config_key": "where", "config_value": "day = '${run_today_std}'"}],
        "sinks": [],
    },
    "transforms": {
        "type": "MAPPING",
        "mapping": [{"source_field_name": "id", "sink_field_name": "order_id"}],
    },
    "settings": [
        {"config_key": "setting.speed.record", "config_value": 100},
        {"config_key": "setting.retry.times", "config_value": 2},
    ],
}


def test_variables_settings_and_mapping_are_rendered() -> None:
    (plan,) = plan_job([SUB], {"region": "eu"}, datetime(2026, 3, 1, 10, 0))
    assert plan.source["table"] == "orders_20260228"
    assert plan.sink["table"] == "out/eu/20260301.csv"
    assert plan.source["options"] == {"where": "day = '2026-03-01'"}
    assert plan.mapping == [["id", "order_id"]]
    assert plan.settings == {"retry_times": 2, "speed_record": 100}
    assert plan.source["datasource_id"] == 1


def test_unknown_variable_names_the_field() -> None:
    with pytest.raises(InvalidInputError, match=r"content\[0\].*\$\{region\}"):
        plan_job([SUB], {}, datetime(2026, 3, 1))


def test_one_plan_per_sub_job_in_order() -> None:
    second = {**SUB, "subJobName": "b"}
    plans = plan_job([SUB, second], {"region": "x"}, datetime(2026, 3, 1))
    assert [(p.name, p.position) for p in plans] == [("orders", 0), ("b", 1)]


def test_settings_sent_as_text_read_as_numbers() -> None:
    items = [
        {"config_key": "setting.speed.record", "config_value": " 1000 "},
        {"config_key": "setting.errorLimit.percentage", "config_value": "0.1"},
        {"config_key": "setting.speed.channel", "config_value": "2"},
    ]
    assert plan_settings(items, "content[0]") == {
        "speed_record": 1000,
        "error_limit_percentage": 0.1,
        "channel": 2,
    }


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("setting.speed.record", -1, "between 0 and"),
        ("setting.speed.record", 10**10, "between 0 and"),
        ("setting.speed.record", 1e300, "between 0 and"),
        ("setting.speed.record", 2.5, "integer"),
        ("setting.speed.record", "1k", "number"),
        ("setting.speed.record", True, "number"),
        ("setting.speed.record", None, "number"),
        ("setting.speed.record", [1000], "number"),
        ("setting.speed.record", float("nan"), "finite"),
        ("setting.speed.byte", float("inf"), "finite"),
        ("setting.speed.byte", -1024, "between 0 and"),
        ("setting.speed.byte", 10**13, "between 0 and"),
        ("setting.speed.byte", False, "number"),
        ("setting.speed.channel", 0, "between 1 and 64"),
        ("setting.speed.channel", 65, "between 1 and 64"),
        ("setting.speed.channel", 1.5, "integer"),
        ("setting.errorLimit.record", -1, "between 0 and"),
        ("setting.errorLimit.record", 0.5, "integer"),
        ("setting.errorLimit.percentage", -0.01, "between 0 and 1"),
        ("setting.errorLimit.percentage", 2, "between 0 and 1"),
        ("setting.errorLimit.percentage", float("nan"), "finite"),
        ("setting.errorLimit.percentage", "ten", "number"),
        ("setting.speed.channel", "1.5", "integer"),
        ("setting.bogus", 1, "not a known setting"),
    ],
)
def test_bad_setting_values_are_named(key: str, value: object, problem: str) -> None:
    assert problem in (setting_problem(key, value) or "")
    sub = {**SUB, "settings": [{"config_key": key, "config_value": value}]}
    with pytest.raises(InvalidInputError, match=r"content\[0\]\.settings\[0\]") as caught:
        plan_job([sub], {"region": "eu"}, datetime(2026, 3, 1))
    assert caught.value.errors == {
        "content[0].settings[0].config_value": [setting_problem(key, value)]
    }


def test_good_setting_values_are_planned_as_numbers() -> None:
    settings = [
        ("setting.speed.record", 0),
        ("setting.speed.byte", 1048576.0),
        ("setting.speed.channel", 64),
        ("setting.errorLimit.record", 0),
        ("setting.errorLimit.percentage", 0.025),
        ("setting.timeout.seconds", 0),
    ]
    for key, value in settings:
        assert setting_problem(key, value) is None, key
    sub = {**SUB, "settings": [{"config_key": k, "config_value": v} for k, v in settings]}
    (plan,) = plan_job([sub], {"region": "eu"}, datetime(2026, 3, 1))
    assert plan.settings == {
        "retry_times": 0,
        "speed_record": 0,
        "speed_byte": 1048576,
        "channel": 64,
        "error_limit_record": 0,
        "error_limit_percentage": 0.025,
        "timeout_seconds": 0,
    }
    assert isinstance(plan.settings["speed_byte"], int)
