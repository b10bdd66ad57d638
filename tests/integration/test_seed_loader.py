"""The seed loader against emulated AWS: batch loading, idempotent re-runs, worker subscriptions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.local.resources import LocalResources
from smartzone.domain import geo
from smartzone.domain.alarms import DeviceState
from smartzone.domain.registry import GridWorker
from smartzone.repositories import devices as devices_module
from smartzone.repositories import keys
from smartzone.repositories.cameras import CameraRepository
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item
from smartzone.repositories.devices import DeviceRepository
from smartzone.repositories.grid_areas import GridAreaRepository
from smartzone.repositories.subscriptions import subscribe_worker
from tools import seed
from tools.seed import SeedDataError, load_district
from tools.seed_data import DEFAULT_PATH


def seed_data() -> dict[str, Any]:
    return json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "district.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def index_count(table: str, partition: str) -> int:
    paginator = client("dynamodb").get_paginator("query")
    pages = paginator.paginate(
        TableName=table,
        IndexName=keys.GSI2,
        KeyConditionExpression="gsi2pk = :p",
        ExpressionAttributeValues={":p": {"S": partition}},
        Select="COUNT",
    )
    return sum(page["Count"] for page in pages)


def topic_subscriptions(topic_arn: str) -> list[dict[str, Any]]:
    sns = client("sns")
    result = []
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        for sub in page["Subscriptions"]:
            attributes = sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])["Attributes"]
            result.append({**sub, "FilterPolicy": json.loads(attributes.get("FilterPolicy") or "null")})
    return result


def worker_endpoints(data: dict[str, Any]) -> dict[str, str]:
    """Every worker e-mail in the seed file and the grid it belongs to."""
    return {w["email"]: g["grid_id"] for g in data["grids"] for w in g["workers"]}


# --- loading ------------------------------------------------------------------------------------


def test_given_an_empty_table_when_the_district_is_loaded_then_12_grids_and_600_devices_are_stored(
    resources: LocalResources,
) -> None:
    report = load_district(DEFAULT_PATH, resources.table_name)

    assert (report.grids, report.devices_created, report.devices_updated) == (12, 600, 0)
    assert report.cameras_in_file == 25
    assert (report.cameras_created, report.cameras_updated, report.cameras_unchanged) == (25, 0, 0)
    assert index_count(resources.table_name, "CAMERAS") == 25
    cameras = CameraRepository(resources.table_name).batch_get(["CAM-01", "CAM-S01", "CAM-E02"])
    assert cameras["CAM-01"].grid_id == "G01" and cameras["CAM-01"].vendor_id == "hikvision-demo"
    assert {s.type.value for s in cameras["CAM-S01"].detections} == {
        "construction_violation",
        "illegal_dumping",
    }
    assert [s.type.value for s in cameras["CAM-E02"].detections] == ["pollution_equipment_stopped"]
    assert [a.grid_id for a in GridAreaRepository(resources.table_name).all()] == [
        f"G{n:02d}" for n in range(1, 13)
    ]
    assert index_count(resources.table_name, "GRIDS") == 12
    assert index_count(resources.table_name, "DEVICES") == 600
    repo = DeviceRepository(resources.table_name)
    record = repo.get("MH-0178")
    assert record is not None
    assert (record.device.name, record.device.road, record.version) == ("高新大道178号井", "高新大道", 0)
    assert record.state == DeviceState()
    grid = repo.get_grid(record.device.grid_id)
    assert grid is not None and grid.workers
    item = client("dynamodb").get_item(
        TableName=resources.table_name, Key=to_item(keys.grid_key(grid.grid_id))
    )["Item"]
    boundary = json.loads(from_item(item)["boundary"])
    assert geo.contains(boundary, record.device.lon, record.device.lat)


def test_given_a_device_with_hot_state_when_the_district_is_reloaded_then_its_state_and_version_are_kept(
    resources: LocalResources,
) -> None:
    load_district(DEFAULT_PATH, resources.table_name)
    repo = DeviceRepository(resources.table_name)
    record = repo.get("MH-0178")
    assert record is not None
    hot = DeviceState(watermark=1_700_000_000_000, last_seen=1_700_000_000_000, last_tilt=25.3)
    repo.save_state(record, hot)

    report = load_district(DEFAULT_PATH, resources.table_name)

    assert (report.devices_created, report.devices_updated, report.devices_unchanged) == (0, 0, 600)
    assert (report.cameras_created, report.cameras_updated, report.cameras_unchanged) == (0, 0, 25)
    after = repo.get("MH-0178")
    assert after is not None
    assert (after.state, after.version) == (hot, 1)
    assert index_count(resources.table_name, "DEVICES") == 600


def test_given_a_changed_registry_record_when_reloaded_then_only_its_registry_attributes_change(
    resources: LocalResources, tmp_path: Path
) -> None:
    load_district(DEFAULT_PATH, resources.table_name)
    repo = DeviceRepository(resources.table_name)
    record = repo.get("MH-0178")
    assert record is not None
    hot = DeviceState(watermark=1_700_000_000_000, last_tilt=3.5)
    repo.save_state(record, hot)
    data = seed_data()
    data["devices"][177]["name"] = "高新大道178号井(东侧)"
    data["devices"][177]["profile"] = {"name": "heavy_traffic", "tilt_raise_deg": 15, "tilt_clear_deg": 8}

    report = load_district(write(tmp_path, data), resources.table_name)

    assert (report.devices_created, report.devices_updated, report.devices_unchanged) == (0, 1, 599)
    after = repo.get("MH-0178")
    assert after is not None
    assert after.device.name == "高新大道178号井(东侧)"
    assert after.device.profile.tilt_raise_deg == 15
    assert (after.state, after.version) == (hot, 1)


def test_given_dynamodb_leaves_items_unprocessed_when_loading_then_they_are_retried_until_all_land(
    resources: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = client("dynamodb")
    calls: list[int] = []

    class Throttled:
        """Processes only the first 10 items of every other BatchWriteItem call."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            calls.append(len(RequestItems[resources.table_name]))
            if len(calls) % 2:
                return real.batch_write_item(RequestItems=RequestItems)
            requests = RequestItems[resources.table_name]
            real.batch_write_item(RequestItems={resources.table_name: requests[:10]})
            return {"UnprocessedItems": {resources.table_name: requests[10:]} if requests[10:] else {}}

    monkeypatch.setattr(devices_module, "client", lambda service: Throttled())
    monkeypatch.setattr(devices_module.time, "sleep", lambda seconds: None)

    report = load_district(DEFAULT_PATH, resources.table_name)

    assert report.devices_created == 600
    assert index_count(resources.table_name, "DEVICES") == 600
    assert index_count(resources.table_name, "GRIDS") == 12
    assert max(calls) == 25
    assert len(calls) > 25  # 1 call for the grids, 24 for the devices, plus the retries


# --- validation ---------------------------------------------------------------------------------


def test_given_an_impossible_latitude_when_loading_then_the_error_names_the_record_and_nothing_is_written(
    resources: LocalResources, tmp_path: Path
) -> None:
    data = seed_data()
    data["devices"][177]["lat"] = 95.0

    with pytest.raises(SeedDataError) as caught:
        load_district(write(tmp_path, data), resources.table_name)

    message = str(caught.value)
    assert "devices[177] (MH-0178): lat: Input should be less than or equal to 90 (got 95.0)" in message
    assert "nothing was loaded" in message
    count = client("dynamodb").scan(TableName=resources.table_name, Select="COUNT")["Count"]
    assert count == 0


def test_given_inconsistent_records_when_validated_then_each_problem_is_listed(tmp_path: Path) -> None:
    data = seed_data()
    data["devices"][0]["grid_id"] = "G13"
    data["devices"][1]["lon"], data["devices"][1]["lat"] = 118.384, 31.301  # far from its grid G09
    data["devices"][2]["device_id"] = data["devices"][3]["device_id"]
    data["grids"][4]["workers"][0]["phone"] = "12345"
    data["boundaries"]["G02"] = {"type": "Polygon", "coordinates": [[[118.3, 31.3], [118.31, 31.3]]]}
    data["cameras"][4]["detections"][0]["type"] = "ufo_sighting"
    data["site_cameras"][1]["grid_id"] = "G09"  # it stands in G10
    data["site_cameras"][2]["camera_id"] = "CAM-S01"

    with pytest.raises(SeedDataError) as caught:
        seed.read_district(write(tmp_path, data))

    problems = caught.value.problems
    assert any(p.startswith("devices[0] (MH-0001): grid_id G13 is not a grid") for p in problems)
    assert any(p.startswith("devices[1] (MH-0002): position") and "outside grid" in p for p in problems)
    assert any(p.startswith("devices[3] (MH-0004): duplicate device_id MH-0004") for p in problems)
    assert any(p.startswith("grids[4] (G05): workers.0.phone: String should match pattern") for p in problems)
    assert "12345" not in str(caught.value)  # personal data is not echoed
    assert any(p.startswith("boundaries.G02: a ring needs at least four positions") for p in problems)
    assert any(p.startswith("cameras[4] (CAM-05): detections.0.type: Input should be") for p in problems)
    assert any(
        p.startswith("site_cameras[1] (CAM-S02): position") and "outside grid G09" in p for p in problems
    )
    assert any(p.startswith("site_cameras[2] (CAM-S01): duplicate camera_id") for p in problems)


def test_given_a_file_that_is_not_json_when_loading_then_the_error_says_so(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"grids": [', encoding="utf-8")
    with pytest.raises(SeedDataError, match="not valid JSON"):
        seed.read_district(path)


def test_given_a_bad_record_when_the_cli_runs_then_it_exits_non_zero_with_the_error_on_stderr(
    resources: LocalResources, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = seed_data()
    del data["grids"][2]["community"]

    code = seed.main(["--file", str(write(tmp_path, data))])

    assert code == 1
    assert "grids[2] (G03): community: Field required" in capsys.readouterr().err


# --- subscriptions ------------------------------------------------------------------------------


def test_given_the_cli_with_subscribe_when_run_twice_then_each_endpoint_has_one_grid_filtered_subscription(
    resources: LocalResources, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints = worker_endpoints(seed_data())

    assert seed.main(["--subscribe"]) == 0
    first = capsys.readouterr().err
    assert seed.main(["--subscribe"]) == 0
    second = capsys.readouterr().err

    subs = topic_subscriptions(resources.notifications_topic_arn)
    assert sorted(s["Endpoint"] for s in subs) == sorted(endpoints)
    for sub in subs:
        assert sub["Protocol"] == "email"
        assert sub["FilterPolicy"] == {"grid_id": [endpoints[sub["Endpoint"]]]}
    assert "writing devices: 600/600" in first
    assert f"{len(endpoints)} subscriptions ({len(endpoints)} created)" in first
    assert f"{len(endpoints)} subscriptions ({len(endpoints)} exists)" in second
    assert "0 created, 0 updated, 600 unchanged" in second


def test_given_subscribe_without_a_topic_when_the_cli_runs_then_it_refuses(
    resources: LocalResources, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NOTIFICATIONS_TOPIC_ARN", "")
    from smartzone.settings import get_settings

    get_settings.cache_clear()
    assert seed.main(["--subscribe"]) == 2
    assert "--subscribe needs" in capsys.readouterr().err


def test_given_a_worker_with_a_webhook_when_subscribed_twice_then_one_https_subscription_filters_on_the_grid(
    resources: LocalResources,
) -> None:
    worker = GridWorker(
        worker_id="G03-W9",
        name="王芳",
        phone="13900000000",
        email="g03.robot@example.org",
        webhook_url="https://hooks.example.org/wecom/g03",
    )
    topic = resources.notifications_topic_arn

    first = subscribe_worker(topic, worker, "G03", protocol="https")
    second = subscribe_worker(topic, worker, "G03")

    assert [(o.protocol, o.status) for o in first] == [("https", "created")]
    assert [(o.protocol, o.status) for o in second] == [("email", "created"), ("https", "exists")]
    subs = {s["Protocol"]: s for s in topic_subscriptions(topic)}
    assert subs["https"]["Endpoint"] == "https://hooks.example.org/wecom/g03"
    assert subs["https"]["FilterPolicy"] == {"grid_id": ["G03"]}
    assert len(subs) == 2


def test_given_an_endpoint_subscribed_for_one_grid_when_subscribed_for_another_then_its_policy_covers_both(
    resources: LocalResources,
) -> None:
    worker = GridWorker(worker_id="G01-W1", name="李娜", phone="13800000000", email="both@example.org")
    topic = resources.notifications_topic_arn

    subscribe_worker(topic, worker, "G02")
    outcomes = subscribe_worker(topic, worker, "G01")
    again = subscribe_worker(topic, worker, "G01")

    assert [o.status for o in outcomes] == ["updated"]
    assert [o.status for o in again] == ["exists"]
    (sub,) = topic_subscriptions(topic)
    assert sub["FilterPolicy"] == {"grid_id": ["G01", "G02"]}


def test_given_an_endpoint_without_its_protocol_when_subscribing_then_it_is_refused(
    resources: LocalResources,
) -> None:
    worker = GridWorker(worker_id="G01-W1", name="李娜", phone="13800000000")
    with pytest.raises(ValueError, match="protocol"):
        subscribe_worker(resources.notifications_topic_arn, worker, "G01", endpoint="https://x.example.org")
    with pytest.raises(ValueError, match="https://"):
        subscribe_worker(
            resources.notifications_topic_arn,
            worker,
            "G01",
            protocol="https",
            endpoint="http://x.example.org",
        )
    assert subscribe_worker(resources.notifications_topic_arn, worker, "G01") == []
