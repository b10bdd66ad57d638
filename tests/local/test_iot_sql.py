"""The local IoT SQL evaluator: our real rule, AWS's semantics, and refused constructs."""

from __future__ import annotations

import json

import pytest

from infra.local.iot_sql import (
    IotSqlSyntaxError,
    UnsupportedSql,
    compile_rule,
    topic_matches,
)
from infra.local.template import TemplateDescription

TOPIC = "smartzone/manhole/MH-0178/telemetry"
NOW = 1_764_400_000_123


def only_rule_sql(description: TemplateDescription) -> str:
    """The telemetry rule's SQL (the template also has the camera and drone detection rules)."""
    (rule,) = [r for r in description.topic_rules.values() if "'smartzone/manhole/+/telemetry'" in r.sql]
    assert rule.sql_version == "2016-03-23"
    return rule.sql


def test_every_rule_of_the_template_compiles_and_takes_its_source_id_from_the_topic(
    description: TemplateDescription,
) -> None:
    """Telemetry, camera detections and drone changes: each compiles locally (the platform's broker
    serves every enabled rule) and takes the id from the topic, never from the payload."""
    samples = {
        "smartzone/manhole/+/telemetry": ("smartzone/manhole/MH-0178/telemetry", "device_id", "MH-0178"),
        "smartzone/camera/+/detections": ("smartzone/camera/CAM-01/detections", "camera_id", "CAM-01"),
        "smartzone/drone/+/changes": ("smartzone/drone/FL-7/changes", "flight_id", "FL-7"),
    }
    rules = [r for r in description.topic_rules.values() if r.enabled]
    compiled = {compile_rule(r.sql).topic_filter: compile_rule(r.sql) for r in rules}
    assert set(compiled) == set(samples)
    for topic_filter, (topic, id_field, expected) in samples.items():
        rule = compiled[topic_filter]
        payload = {"ts": "2025-11-29T07:10:00Z", id_field: "SPOOFED", "confidence": 0.9}
        out = rule.evaluate(topic, json.dumps(payload).encode(), NOW)
        assert out is not None and out[id_field] == expected and out["received_at"] == NOW
        others = [c for f, c in compiled.items() if f != topic_filter]
        assert not any(c.matches(topic) for c in others)


def test_given_our_rule_from_the_template_when_a_reading_arrives_then_fields_device_and_time_are_selected(
    description: TemplateDescription,
) -> None:
    rule = compile_rule(only_rule_sql(description))
    payload = {"ts": "2025-11-29T07:10:00Z", "tilt_deg": 25.3, "battery_pct": 88, "seq": 7, "extra": 1}
    assert rule.evaluate(TOPIC, json.dumps(payload).encode(), NOW) == {
        "ts": "2025-11-29T07:10:00Z",
        "tilt_deg": 25.3,
        "battery_pct": 88,
        "seq": 7,
        "device_id": "MH-0178",
        "received_at": NOW,
    }


def test_given_our_rule_when_fields_are_missing_then_they_are_omitted_not_null(
    description: TemplateDescription,
) -> None:
    rule = compile_rule(only_rule_sql(description))
    out = rule.evaluate(TOPIC, b'{"tilt_deg": 3.0, "battery_pct": null}', NOW)
    assert out == {"tilt_deg": 3.0, "battery_pct": None, "device_id": "MH-0178", "received_at": NOW}


@pytest.mark.parametrize("payload", [b"{not json", b"\xff\xfe", b"[1, 2]", b"42", b""])
def test_given_our_rule_when_the_payload_is_not_a_json_object_then_it_has_no_fields(
    description: TemplateDescription, payload: bytes
) -> None:
    rule = compile_rule(only_rule_sql(description))
    assert rule.evaluate(TOPIC, payload, NOW) == {"device_id": "MH-0178", "received_at": NOW}


@pytest.mark.parametrize(
    "topic",
    [
        "smartzone/manhole/MH-0178/status",
        "smartzone/manhole/MH-0178/telemetry/extra",
        "smartzone/camera/CAM-01/telemetry",
        "smartzone/manhole/telemetry",
    ],
)
def test_given_our_rule_when_the_topic_is_outside_its_filter_then_it_does_not_match(
    description: TemplateDescription, topic: str
) -> None:
    rule = compile_rule(only_rule_sql(description))
    assert not rule.matches(topic)
    assert rule.evaluate(topic, b'{"tilt_deg": 1}', NOW) is None


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/b/d", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("a/b", "a/b", True),
        ("a/b", "a/b/c", False),
        ("#", "$aws/things/x", False),
        ("+/x", "$SYS/x", False),
        ("+", "", True),
    ],
)
def test_topic_filters(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


def test_star_topic_and_levels() -> None:
    rule = compile_rule("SELECT *, topic() AS t, topic(1) AS first, topic(9) AS none FROM 'a/#'")
    assert rule.evaluate("a/b/c", b'{"x": {"y": 1}}', NOW) == {"x": {"y": 1}, "t": "a/b/c", "first": "a"}


def test_nested_fields_and_aliases() -> None:
    rule = compile_rule("SELECT state.reported.tilt AS tilt, state.reported.battery FROM 'd/+'")
    payload = b'{"state": {"reported": {"tilt": 4.5, "battery": 77}}}'
    assert rule.evaluate("d/1", payload, NOW) == {"tilt": 4.5, "battery": 77}
    assert rule.evaluate("d/1", b'{"state": {"reported": 3}}', NOW) == {}


def test_literals_need_an_alias_and_keep_their_type() -> None:
    rule = compile_rule("SELECT 'v1' AS schema, 2 AS n, 2.5 AS d, -3 AS neg, true AS flag FROM 't'")
    assert rule.evaluate("t", b"{}", NOW) == {"schema": "v1", "n": 2, "d": 2.5, "neg": -3, "flag": True}


@pytest.mark.parametrize(
    ("where", "payload", "fires"),
    [
        ("tilt_deg > 20", {"tilt_deg": 25.3}, True),
        ("tilt_deg > 20", {"tilt_deg": 20}, False),
        ("tilt_deg >= 20", {"tilt_deg": 20}, True),
        ("tilt_deg < 20", {"tilt_deg": "5"}, True),  # ordering converts strings to decimals
        ("tilt_deg < 20", {"tilt_deg": "flat"}, False),  # not a number: Undefined
        ("tilt_deg <= -1", {"tilt_deg": -1}, True),
        ("tilt_deg > 20", {}, False),  # absent: Undefined, the rule does not fire
        ("kind = 'alarm'", {"kind": "alarm"}, True),
        ("kind <> 'alarm'", {"kind": "status"}, True),
        ("kind != 'alarm'", {"kind": "alarm"}, False),
        ("kind <> 'alarm'", {}, False),
        ("n = 1", {"n": 1.0}, True),
        ("n = '1'", {"n": 1}, False),  # different types are not equal
        ("ok = true", {"ok": True}, True),
        ("NOT ok", {"ok": False}, True),
        ("NOT ok", {"ok": "FALSE"}, True),
        ("NOT ok", {"ok": 0}, False),
        ("a > 1 AND b > 1", {"a": 2, "b": 0}, False),
        ("a > 1 OR b > 1", {"a": 2, "b": 0}, True),
        ("a > 1 OR b > 1", {"a": 2}, False),  # Undefined operand: Undefined
        ("(a > 1 OR b > 1) AND NOT (c = 'x')", {"a": 0, "b": 2, "c": "y"}, True),
        ("a > 1 AND b > 1 OR c = 'x'", {"a": 0, "b": 0, "c": "x"}, True),  # AND binds tighter
        ("s.t.u = 'deep'", {"s": {"t": {"u": "deep"}}}, True),
        ("topic(2) = 'manhole'", {}, True),
        ("timestamp() > 0", {}, True),
    ],
)
def test_where(where: str, payload: dict[str, object], fires: bool) -> None:
    rule = compile_rule(f"SELECT * FROM 'smartzone/+/+/telemetry' WHERE {where}")
    out = rule.evaluate(TOPIC, json.dumps(payload).encode(), NOW)
    assert (out is not None) is fires


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT upper(device) AS d FROM 't'", "upper()"),
        ("SELECT clientid() AS c FROM 't'", "clientid()"),
        ("SELECT * FROM 't' WHERE abs(tilt) > 1", "abs()"),
        ("SELECT tilt + 1 AS t FROM 't'", "arithmetic ('+')"),
        ("SELECT tilt * 2 AS t FROM 't'", "arithmetic ('*')"),
        ("SELECT tilt - 1 AS t FROM 't'", "arithmetic ('-')"),
        ("SELECT tilt / 2 AS t FROM 't'", "arithmetic ('/')"),
        ("SELECT * FROM 't' WHERE a = (SELECT b FROM 'u')", "nested SELECT"),
        ("SELECT * FROM (SELECT * FROM 't')", "nested SELECT"),
        ("SELECT VALUE tilt FROM 't'", "SELECT VALUE"),
        ("SELECT CASE a WHEN 1 THEN 2 END AS c FROM 't'", "CASE"),
        ("SELECT * FROM 't' WHERE a IN (1, 2)", "IN operator"),
        ("SELECT * FROM 't' WHERE a IS NULL", "IS [NOT] NULL"),
        ("SELECT NULL AS n FROM 't'", "NULL literal"),
        ("SELECT a[0] AS first FROM 't'", "array indexing"),
        ("SELECT a || b AS ab FROM 't'", "concatenation"),
        ("SELECT * FROM 't' WHERE a = \"x\"", "double-quoted strings"),
        ("SELECT topic() FROM 't'", "needs an alias"),
        ("SELECT timestamp() FROM 't'", "needs an alias"),
        ("SELECT 1 FROM 't'", "needs an alias"),
        ("SELECT a.* FROM 't'", "'a.*'"),
        ("SELECT topic(0) AS t FROM 't'", "topic(0)"),
        ("SELECT * FROM 't'; DROP", "several statements"),
    ],
)
def test_refused_constructs_are_named(sql: str, named: str) -> None:
    with pytest.raises(UnsupportedSql) as refused:
        compile_rule(sql)
    assert named in str(refused.value)
    assert "not supported" in str(refused.value) or "alias" in str(refused.value)


def test_only_the_2016_sql_version_is_emulated() -> None:
    with pytest.raises(UnsupportedSql, match="2015-10-08"):
        compile_rule("SELECT * FROM 't'", version="2015-10-08")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT FROM 't'",
        "SELECT a",
        "SELECT a FROM t",
        "SELECT a FROM 't' WHERE",
        "SELECT a FROM 't' WHERE a > 1 > 0",
        "SELECT a FROM 'a/#/b'",
        "SELECT a FROM 'a/b+'",
        "SELECT a FROM 't' extra",
        "SELECT a FROM 'unterminated",
        "SELECT a AS FROM 't'",
    ],
)
def test_malformed_sql_is_a_syntax_error(sql: str) -> None:
    with pytest.raises(IotSqlSyntaxError):
        compile_rule(sql)


def test_keywords_and_function_names_are_case_insensitive() -> None:
    rule = compile_rule("select Topic(3) as device_id, TIMESTAMP() as at from 'a/b/+' where NOT false")
    assert rule.evaluate("a/b/c", b"{}", 5) == {"device_id": "c", "at": 5}
