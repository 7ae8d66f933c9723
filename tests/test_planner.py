"""The planner: one task per sub-job, variables rendered, settings normalised."""

from __future__ import annotations

from datetime import datetime

import pytest

from exchangis.engine.planner import plan_job
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
