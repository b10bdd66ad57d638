"""Builders for detection test input: cameras, IoT-rule detection messages, drone changes."""

from __future__ import annotations

import json
from typing import Any

from smartzone.domain.cameras import Camera, CameraKind, DetectionSetting
from smartzone.domain.detections import DetectionType
from smartzone.domain.timeutil import to_iso


def river_camera(
    camera_id: str = "CAM-01",
    grid_id: str = "G03",
    types: tuple[DetectionType, ...] = (DetectionType.ILLEGAL_DUMPING, DetectionType.RIVER_LOITERING),
    *,
    min_confidence: float | None = None,
    quiet_window_s: int | None = None,
) -> Camera:
    settings = []
    for type_ in types:
        default = DetectionSetting.default(type_)
        settings.append(
            DetectionSetting(
                type=type_,
                min_confidence=default.min_confidence if min_confidence is None else min_confidence,
                quiet_window_s=default.quiet_window_s if quiet_window_s is None else quiet_window_s,
            )
        )
    return Camera(
        camera_id=camera_id,
        name=f"长江岸线{camera_id[-2:]}号摄像头",
        kind=CameraKind.RIVER,
        lon=120.31,
        lat=31.49,
        grid_id=grid_id,
        river_segment="S2",
        vendor_id="hikvision",
        detections=settings,
    )


def detection_message(
    camera_id: str,
    ts_ms: int,
    type_: str = "illegal_dumping",
    confidence: float = 0.9,
    *,
    track_id: str | None = None,
    snapshot: str | None = None,
) -> str:
    """What the IoT rule puts on the buffer for one MQTT detection (camera id from the topic)."""
    body: dict[str, Any] = {
        "ts": to_iso(ts_ms),
        "type": type_,
        "confidence": confidence,
        "camera_id": camera_id,
        "received_at": ts_ms + 120,
    }
    if track_id is not None:
        body["track_id"] = track_id
    if snapshot is not None:
        body["snapshot_url"] = snapshot
    return json.dumps(body)


def drone_message(flight_id: str, ts_ms: int, lon: float, lat: float, type_: str = "illegal_dumping") -> str:
    return json.dumps(
        {
            "flight_id": flight_id,
            "ts": ts_ms,
            "type": type_,
            "lon": lon,
            "lat": lat,
            "before_image": f"snapshots/drone/{flight_id}/before.jpg",
            "after_image": f"snapshots/drone/{flight_id}/after.jpg",
            "received_at": ts_ms + 100,
        }
    )
