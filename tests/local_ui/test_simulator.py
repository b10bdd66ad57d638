"""The device simulator: deterministic fleet behaviour, published over real MQTT."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter, defaultdict

import pytest

from infra.local.broker import LocalBroker
from infra.local.simulator import (
    DeviceSimulator,
    MqttPublisher,
    SimMessage,
    SimulatorConfig,
    district_device_ids,
)
from smartzone.domain.timeutil import TimestampError, parse_ts_ms

from .conftest import Inbox

START = 1_764_396_300.0  # 2025-11-29 06:05 UTC
LIVELY = SimulatorConfig(
    rate=1000,
    seed=7,
    tilt_probability=0.02,
    low_battery_probability=0.01,
    silent_probability=0.005,
    silent_duration_s=(5.0, 20.0),
    duplicate_probability=0.05,
    malformed_probability=0.05,
    tilt_duration_s=(1.0, 3.0),
    low_battery_duration_s=(2.0, 5.0),
)


def _valid_reading(payload: bytes) -> dict | None:
    """The reading if it satisfies the telemetry contract, else None."""
    try:
        body = json.loads(payload)
        parse_ts_ms(body["ts"])
    except (ValueError, KeyError, TimestampError):
        return None
    tilt, battery = body.get("tilt_deg"), body.get("battery_pct")
    if not isinstance(tilt, int | float) or not 0 <= tilt <= 180:
        return None
    if battery is not None and not 0 <= battery <= 100:
        return None
    return body


def test_the_district_has_600_covers() -> None:
    ids = district_device_ids()
    assert len(ids) == 600 and len(set(ids)) == 600


def test_same_seed_same_sequence_other_seed_another() -> None:
    ids = district_device_ids()
    first = list(DeviceSimulator(ids, LIVELY).messages(START, 2000))
    again = list(DeviceSimulator(ids, LIVELY).messages(START, 2000))
    other = list(
        DeviceSimulator(ids, SimulatorConfig(**{**LIVELY.__dict__, "seed": 8})).messages(START, 2000)
    )
    assert first == again
    assert first != other


def test_default_pace_is_every_cover_once_a_minute() -> None:
    ids = district_device_ids()
    messages = [m for m in DeviceSimulator(ids).messages(START, 1200) if m.kind != "duplicate"]
    by_device: dict[str, list[SimMessage]] = defaultdict(list)
    for m in messages:
        by_device[m.topic].append(m)
    gaps = {round(b.at - a.at, 6) for ms in by_device.values() for a, b in itertools.pairwise(ms)}
    assert gaps == {60.0}
    assert messages[-1].at - START == pytest.approx(1199 / 10)


def test_every_kind_happens_and_the_payloads_say_what_they_are() -> None:
    ids = district_device_ids()[:50]
    episodes: Counter[str] = Counter()
    messages = list(
        DeviceSimulator(ids, LIVELY).messages(START, 20_000, lambda kind: episodes.update([kind]))
    )
    kinds = Counter(m.kind for m in messages)

    assert {"normal", "tilt", "low_battery", "duplicate", "malformed"} <= set(kinds)
    assert episodes["tilt_episodes"] > 0 and episodes["silent_episodes"] > 0 and episodes["silent"] > 0
    for m in messages:
        assert m.topic.startswith("smartzone/manhole/MH-") and m.topic.endswith("/telemetry")
        body = _valid_reading(m.payload)
        if m.kind == "malformed":
            assert body is None, m.payload
            continue
        assert body is not None, m.payload
        assert set(body) == {"ts", "tilt_deg", "battery_pct", "seq"}
        assert parse_ts_ms(body["ts"]) == int(m.at * 1000)
        if m.kind == "normal":
            assert body["tilt_deg"] < 10 and body["battery_pct"] >= 20
        elif m.kind == "low_battery":
            assert body["battery_pct"] < 20
    # both wire forms of time are in use
    assert {type(json.loads(m.payload)["ts"]) for m in messages if m.kind == "normal"} == {int, str}
    # a duplicate repeats the reading just before it exactly
    for before, m in itertools.pairwise(messages):
        if m.kind == "duplicate":
            assert m.payload == before.payload


def test_tilts_go_beyond_20_degrees_and_recover() -> None:
    ids = district_device_ids()[:20]
    config = SimulatorConfig(**{**LIVELY.__dict__, "silent_probability": 0.0, "malformed_probability": 0.0})
    readings: dict[str, list[float]] = defaultdict(list)
    for m in DeviceSimulator(ids, config).messages(START, 20_000):
        if m.kind != "duplicate":
            readings[m.topic].append(json.loads(m.payload)["tilt_deg"])
    alarmed = [t for t in readings.values() if max(t) > 20]
    assert alarmed, "no cover tilted beyond the 20° threshold"
    for tilts in alarmed:
        first_alarm = next(i for i, t in enumerate(tilts) if t > 20)
        assert any(t < 3 for t in tilts[first_alarm:]), "a tilted cover never lay level again"


def test_silent_covers_skip_readings() -> None:
    ids = ["MH-0001", "MH-0002"]
    config = SimulatorConfig(
        rate=1,
        seed=1,
        silent_probability=0.05,
        silent_duration_s=(30, 60),
        duplicate_probability=0,
        malformed_probability=0,
    )
    tally: Counter[str] = Counter()
    messages = list(DeviceSimulator(ids, config).messages(START, 1000, lambda kind: tally.update([kind])))
    assert tally["silent"] > 0
    assert len(messages) + tally["silent"] == 1000


def test_publishes_over_mqtt_and_counts_by_kind(broker: LocalBroker, inbox: Inbox) -> None:
    publisher = MqttPublisher(broker.host, broker.port)
    config = SimulatorConfig(**{**LIVELY.__dict__, "rate": 2000})
    sim = DeviceSimulator(district_device_ids(), config, publisher)
    started = time.perf_counter()
    counts = sim.run(readings=3000)
    publisher.close()
    elapsed = time.perf_counter() - started

    received = inbox.wait_for(counts["published"], timeout=20)
    print(f"\nsimulator: {counts['published']} messages in {elapsed:.2f} s; counts {counts}")
    assert len(received) == counts["published"]
    assert counts["published"] == sum(
        counts[k] for k in ("normal", "tilt", "low_battery", "duplicate", "malformed")
    )
    assert counts["published"] + counts["silent"] - counts["duplicate"] - counts["malformed"] == 3000
    assert counts["publish_errors"] == 0
    # exactly the deterministic sequence of that start time, in order
    assert sim.started_at is not None
    expected = DeviceSimulator(district_device_ids(), config).messages(sim.started_at, 3000)
    assert received == [(m.topic, m.payload) for m in expected]


def test_start_and_stop_in_the_background(broker: LocalBroker, inbox: Inbox) -> None:
    publisher = MqttPublisher(broker.host, broker.port)
    sim = DeviceSimulator(district_device_ids(), SimulatorConfig(rate=50), publisher).start()
    time.sleep(0.5)
    assert sim.running
    counts = sim.stop()
    publisher.close()
    assert not sim.running
    assert 10 <= counts["published"] <= 40  # paced at 50/s: about 25 in 0.5 s
    assert len(inbox.wait_for(counts["published"])) == counts["published"]


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        SimulatorConfig(rate=0)
    with pytest.raises(ValueError, match="duplicate_probability"):
        SimulatorConfig(duplicate_probability=1.5)
