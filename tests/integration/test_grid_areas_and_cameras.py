"""Repositories of issue 5 against emulated DynamoDB: grid areas (one Query, cached for a TTL, broken
boundaries skipped) and the camera registry (batch reads, conditional changes that lose nothing)."""

from __future__ import annotations

from typing import Any

from infra.local.resources import LocalResources
from smartzone.domain.cameras import Camera, CameraKind, DetectionSetting
from smartzone.domain.detections import DetectionType
from smartzone.domain.registry import Grid
from smartzone.repositories import keys
from smartzone.repositories.cameras import CameraRepository
from smartzone.repositories.clients import client
from smartzone.repositories.codec import to_item
from smartzone.repositories.devices import DeviceRepository
from smartzone.repositories.grid_areas import GridAreaRepository
from tools.aws_calls import CallCounter

RING = [[118.30, 31.30], [118.31, 31.30], [118.31, 31.31], [118.30, 31.31], [118.30, 31.30]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_given_stored_boundaries_when_areas_are_read_then_one_query_cached_for_the_ttl(
    resources: LocalResources,
) -> None:
    """Given three grids (one without a boundary, one with a broken one), when the areas are read
    repeatedly, then one gsi2 Query serves them until the TTL ends or a boundary is written."""
    grids = [Grid(grid_id=g, name=g, community="滨江社区") for g in ("G01", "G02", "G03")]
    DeviceRepository(resources.table_name).put_many(
        [], grids, boundaries={"G01": {"type": "Polygon", "coordinates": [RING]}}
    )
    client("dynamodb").update_item(
        TableName=resources.table_name,
        Key=to_item(keys.grid_key("G02")),
        UpdateExpression="SET boundary = :b",
        ExpressionAttributeValues={":b": {"S": '{"type":"Polygon","coordinates":[[[1,2]]]}'}},
    )
    clock = Clock()
    repo = GridAreaRepository(resources.table_name, ttl_s=60, clock=clock)
    repo.invalidate()
    with CallCounter("dynamodb") as calls:
        assert [a.grid_id for a in repo.all()] == ["G01"]  # G02 broken, G03 without boundary
        clock.now += 59
        repo.all()
    assert dict(calls.counts) == {"Query": 1}

    shifted = [[lon + 0.01, lat] for lon, lat in RING]
    area = repo.get("G01")
    assert area is not None
    assert repo.put_boundary("G03", area.model_copy(update={"grid_id": "G03", "polygons": [[shifted]]}))
    assert not repo.put_boundary("G09", area)  # no such grid: nothing written
    with CallCounter("dynamodb") as calls:
        assert [a.grid_id for a in repo.all()] == ["G01", "G03"]  # the write invalidated the cache
        clock.now += 61
        repo.all()
    assert calls.counts["Query"] == 2 and "Scan" not in calls.counts
    assert (
        client("dynamodb")
        .get_item(TableName=resources.table_name, Key=to_item(keys.grid_key("G09")))
        .get("Item")
        is None
    )


def camera(camera_id: str, grid_id: str = "G01", **extra: Any) -> Camera:
    fields: dict[str, Any] = {"name": camera_id, "lon": 118.305, "lat": 31.305, **extra}
    return Camera(camera_id=camera_id, grid_id=grid_id, **fields)


def test_given_cameras_when_read_in_batches_and_changed_concurrently_then_no_change_is_lost(
    resources: LocalResources,
) -> None:
    """Given 120 cameras, when read by id, then two BatchGetItem calls; when two writers change the
    same camera from the same read, then the second re-reads and both changes are kept."""
    repo = CameraRepository(resources.table_name)
    outcome = repo.put_many([camera(f"CAM-{n:03d}", kind=CameraKind.RIVER) for n in range(120)])
    assert set(outcome.values()) == {"created"}
    assert set(repo.put_many([camera("CAM-000"), camera("CAM-001", name="改名")]).values()) == {
        "unchanged",
        "updated",
    }
    with CallCounter("dynamodb") as calls:
        found = repo.batch_get([f"CAM-{n:03d}" for n in range(125)])
    assert len(found) == 120 and calls.counts["BatchGetItem"] == 2

    interleaved = [True]

    def tune(current: Camera) -> Camera:
        if interleaved[0]:  # another admin deactivates the camera between our read and our write
            interleaved[0] = False
            other = repo.change("CAM-007", lambda c: c.model_copy(update={"active": False}))
            assert other is not None and other[1] == "updated"
        setting = DetectionSetting(type=DetectionType.STRAW_BURNING, min_confidence=0.9, quiet_window_s=60)
        return current.model_copy(update={"detections": [setting]})

    changed = repo.change("CAM-007", tune)
    assert changed is not None
    record, status = changed
    assert status == "updated" and record.version == 3
    stored = repo.get("CAM-007")
    assert (
        stored is not None
        and stored.camera.active is False
        and stored.camera.detections[0].min_confidence == 0.9
    )
    assert repo.change("CAM-999", tune) is None
    page = repo.query(kind=CameraKind.RIVER, limit=200)
    assert len(page.rows) == 120 and page.last_key is None
