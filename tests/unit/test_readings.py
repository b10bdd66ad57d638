"""Validation of telemetry messages: every bad input gets a reason, nothing raises."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartzone.domain.readings import Reading, Rejection, RejectReason, parse_reading
from smartzone.domain.timeutil import parse_ts_ms, to_iso

NOW = 1_795_960_000_000  # 2026-11-29T...Z


def parse(body: object) -> Reading | Rejection:
    text = body if isinstance(body, str) else json.dumps(body)
    return parse_reading(text, now_ms=NOW, max_future_skew_s=300, max_age_s=7 * 86400)


def good(**over: object) -> dict[str, object]:
    return {"device_id": "MH-0178", "ts": to_iso(NOW - 1000), "tilt_deg": 3.2, "battery_pct": 88, **over}


def test_given_a_valid_message_when_parsed_then_a_reading_in_utc_ms() -> None:
    reading = parse(good(seq=7))
    assert isinstance(reading, Reading)
    assert (
        reading.ts == NOW - 1000
        and reading.tilt_deg == 3.2
        and reading.battery_pct == 88
        and reading.seq == 7
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", RejectReason.MALFORMED_JSON),
        ("[1, 2]", RejectReason.MALFORMED_JSON),
        ('{"device_id": "MH-0178", "ts": 1795959999000, "tilt_deg": NaN}', RejectReason.INVALID_VALUE),
        ('{"device_id": "MH-0178", "ts": 1795959999000, "tilt_deg": Infinity}', RejectReason.INVALID_VALUE),
        (good(tilt_deg="steep"), RejectReason.INVALID_VALUE),
        ({"device_id": "MH-0178", "ts": NOW}, RejectReason.MISSING_FIELD),
        (good(tilt_deg=181), RejectReason.TILT_OUT_OF_RANGE),
        (good(tilt_deg=-0.5), RejectReason.TILT_OUT_OF_RANGE),
        (good(battery_pct=101), RejectReason.BATTERY_OUT_OF_RANGE),
        (good(ts=NOW + 301_000), RejectReason.FUTURE_TIMESTAMP),
        (good(ts=NOW - 8 * 86_400_000), RejectReason.TOO_OLD),
        (good(ts="yesterday"), RejectReason.BAD_TIMESTAMP),
        (good(ts=12345), RejectReason.BAD_TIMESTAMP),
        (good(device_id="../../etc"), RejectReason.INVALID_DEVICE_ID),
    ],
)
def test_given_a_bad_message_when_parsed_then_rejected_with_its_reason(
    body: object, reason: RejectReason
) -> None:
    result = parse(body)
    assert isinstance(result, Rejection)
    assert result.reason is reason
    assert result.detail


def test_given_a_timestamp_without_offset_when_parsed_then_read_as_shanghai_time() -> None:
    assert parse_ts_ms("2026-11-29T14:00:00") == parse_ts_ms("2026-11-29T06:00:00Z")
    assert parse_ts_ms("2026-11-29T14:00:00+08:00") == parse_ts_ms("2026-11-29T06:00:00+00:00")


def test_given_epoch_ms_or_iso_when_parsed_then_same_instant() -> None:
    assert parse_ts_ms(1_795_960_000_000) == parse_ts_ms(to_iso(1_795_960_000_000))
    assert parse_ts_ms("1795960000000") == 1_795_960_000_000


def test_given_a_skew_just_inside_five_minutes_when_parsed_then_accepted() -> None:
    assert isinstance(parse(good(ts=NOW + 299_000)), Reading)


@given(st.text(max_size=200))
def test_given_any_text_when_parsed_then_a_reading_or_a_rejection_never_an_exception(text: str) -> None:
    assert isinstance(parse(text), Reading | Rejection)


@given(
    st.dictionaries(
        st.sampled_from(["device_id", "ts", "tilt_deg", "battery_pct", "seq", "received_at", "x"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30)),
    )
)
def test_given_any_json_object_when_parsed_then_never_an_exception(body: dict[str, object]) -> None:
    assert isinstance(parse(json.dumps(body)), Reading | Rejection)
