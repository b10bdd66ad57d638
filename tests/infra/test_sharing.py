"""Department data sharing at the gateway (issue 8): data routes, usage plans, API keys."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constructs.sharing import DEFAULT_DEPARTMENTS, departments_of
from tests.infra.conftest import Synth


def _data_method(synth: Synth) -> dict[str, Any]:
    resources = synth.resources("AWS::ApiGateway::Resource")
    (data_id,) = [k for k, r in resources.items() if r["Properties"]["PathPart"] == "data"]
    (proxy_id,) = [
        k
        for k, r in resources.items()
        if r["Properties"]["PathPart"] == "{proxy+}" and r["Properties"]["ParentId"] == {"Ref": data_id}
    ]
    (method,) = [
        m
        for m in synth.resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["ResourceId"] == {"Ref": proxy_id} and m["Properties"]["HttpMethod"] != "OPTIONS"
    ]
    return method["Properties"]


def test_given_the_stack_then_the_data_routes_need_a_token_and_an_api_key(synth: Synth) -> None:
    method = _data_method(synth)
    assert method["HttpMethod"] == "ANY" and method["ApiKeyRequired"] is True
    expected = "COGNITO_USER_POOLS" if synth.region.startswith("ap-") else "CUSTOM"
    assert method["AuthorizationType"] == expected  # the identity provider authenticates, never the key
    assert "AuthorizerId" in method


def test_given_the_stack_then_each_department_has_its_own_usage_plan_and_key(synth: Synth) -> None:
    plans = {
        p["Properties"]["UsagePlanName"]["Fn::Join"][1][-1]
        if isinstance(p["Properties"]["UsagePlanName"], dict)
        else p["Properties"]["UsagePlanName"]: p
        for p in synth.resources("AWS::ApiGateway::UsagePlan").values()
    }
    data_plans = {name: plan for name, plan in plans.items() if "-data-" in name}
    assert {name.rsplit("-data-", 1)[1] for name in data_plans} == set(DEFAULT_DEPARTMENTS)
    for plan in data_plans.values():
        props = plan["Properties"]
        assert props["Throttle"] == {"RateLimit": 10, "BurstLimit": 20}
        assert props["Quota"] == {"Limit": 50000, "Period": "DAY"}
        assert len(props["ApiStages"]) == 1
    keys = synth.resources("AWS::ApiGateway::ApiKey")
    data_keys = {k for k, v in keys.items() if "Data sharing" in v["Properties"].get("Description", "")}
    assert len(data_keys) == len(DEFAULT_DEPARTMENTS)
    linked = [
        k["Properties"]["KeyId"]["Ref"]
        for k in synth.resources("AWS::ApiGateway::UsagePlanKey").values()
        if k["Properties"]["KeyId"]["Ref"] in data_keys
    ]
    assert sorted(linked) == sorted(data_keys)  # one plan per key, each key in exactly one plan


def test_given_the_stack_then_the_api_function_knows_which_key_is_whose(global_synth: Synth) -> None:
    _, function = global_synth.only("AWS::Lambda::Function", "ApiHandler")
    variables = function["Properties"]["Environment"]["Variables"]
    joined = json.dumps(variables["DEPARTMENT_API_KEYS"])
    for department in DEFAULT_DEPARTMENTS:
        assert f'\\"{department}\\"' in joined


def test_given_the_seed_then_the_default_departments_are_the_seeded_ones() -> None:
    from tools.catalogue_seed import DISTRICT_PATH

    district = json.loads(DISTRICT_PATH.read_text(encoding="utf-8"))
    assert tuple(d["department_id"] for d in district["departments"]) == DEFAULT_DEPARTMENTS


def test_given_context_values_then_limits_per_department_are_read_or_refused() -> None:
    limits = departments_of({"water": {"rate": 2, "quota_per_day": 10}, "health": {}}, 10.0, 20, 50_000)
    assert [(d.department_id, d.rate, d.burst, d.quota_per_day) for d in limits] == [
        ("water", 2.0, 20, 10),
        ("health", 10.0, 20, 50_000),
    ]
    assert [d.department_id for d in departments_of("water, health", 1, 1, 1)] == ["water", "health"]
    for bad in ({"Water Dept": {}}, {"water": {"rate": 0}}, {"water": {"speed": 1}}, "", 5):
        with pytest.raises(ValueError):
            departments_of(bad, 10.0, 20, 50_000)
