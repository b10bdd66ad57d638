"""Detection messages on the buffer queue: what the IoT rules and the webhook put there, validated.

Two shapes share one queue (and one processing path):

- **camera detection** (``smartzone/camera/{camera_id}/detections``, or the webhook): the rule adds
  ``camera_id`` from the topic (never the payload) and ``received_at``::

      {"camera_id", "ts", "type", "confidence": 0..1, "snapshot_url"?, "track_id"?, "received_at"}

- **drone change** (``smartzone/drone/{flight_id}/changes``, or the webhook): ``flight_id`` from the
  topic, a location (WGS-84), an optional outline ring, before/after image keys::

      {"flight_id", "ts", "type", "lon", "lat", "polygon"?, "before_image"?, "after_image"?,
       "confidence"?, "change_id"?, "received_at"}

Timestamps follow DESIGN's data conventions (ISO-8601 with offset or epoch ms; no offset: +08:00;
more than 5 minutes in the future: rejected). A bad message is rejected with a reason (never retried).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smartzone.domain.cameras import CAMERA_ID_RE
from smartzone.domain.detections import DetectionType
from smartzone.domain.timeutil import TimestampError, parse_ts_ms

FLIGHT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SNAPSHOTS_PREFIX = "snapshots/"
"""Snapshots and drone images are objects of the snapshots bucket under this prefix."""
_KEY_RE = re.compile(r"^snapshots/[A-Za-z0-9!_.*'()/-]{1,400}$")
MAX_POLYGON_POINTS = 500


class DetectionRejectReason(StrEnum):
    """Why a detection was acknowledged without being applied (a metric dimension: keep it small)."""

    MALFORMED_JSON = "malformed_json"
    MISSING_FIELD = "missing_field"
    INVALID_VALUE = "invalid_value"
    UNKNOWN_TYPE = "unknown_type"
    CONFIDENCE_OUT_OF_RANGE = "confidence_out_of_range"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    TOO_OLD = "too_old"
    INVALID_CAMERA_ID = "invalid_camera_id"
    UNKNOWN_CAMERA = "unknown_camera"
    CAMERA_INACTIVE = "camera_inactive"
    TYPE_NOT_ENABLED = "type_not_enabled"
    """The camera does not run this detection type."""
    INVALID_SNAPSHOT = "invalid_snapshot"
    VENDOR_MISMATCH = "vendor_mismatch"
    """Pushed to the webhook by a vendor that does not operate the camera."""


@dataclass(frozen=True, slots=True)
class DetectionRejection:
    reason: DetectionRejectReason
    detail: str
    source_id: str | None = None
    """The camera or flight the message named (when known)."""

    @property
    def device_id(self) -> str | None:  # the rejects-queue record names the source like a device
        return self.source_id


class _CameraMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    camera_id: str = Field(max_length=64)
    ts: int | float | str
    type: str = Field(max_length=64)
    confidence: float
    snapshot_url: str | None = Field(None, max_length=1024)
    track_id: str | int | None = None
    received_at: int | None = None
    vendor_id: str | None = Field(None, max_length=32)
    """Set by the webhook (the signing vendor); absent on MQTT (the camera is its own identity)."""


class _DroneMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    flight_id: str = Field(max_length=64)
    ts: int | float | str
    type: str = Field(max_length=64)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    polygon: list[list[float]] | None = Field(None, min_length=4, max_length=MAX_POLYGON_POINTS)
    before_image: str | None = Field(None, max_length=1024)
    after_image: str | None = Field(None, max_length=1024)
    confidence: float | None = None
    change_id: str | None = Field(None, max_length=64)
    received_at: int | None = None


@dataclass(frozen=True, slots=True, order=True)
class CameraDetection:
    """One valid camera detection (device time in UTC epoch ms). Sorting is deterministic."""

    camera_id: str
    type: DetectionType
    ts: int
    confidence: float
    track_id: str = ""
    snapshot: str = ""
    """An S3 key under ``snapshots/`` (empty: none)."""
    vendor_id: str = ""
    """The webhook vendor that pushed it (empty: MQTT)."""

    @property
    def fingerprint(self) -> str:
        """Identifies a re-delivered copy of this detection (same camera, type, time, track, image)."""
        raw = (
            f"{self.camera_id}|{self.type.value}|{self.ts}|{self.track_id}|{self.snapshot}|{self.confidence}"
        )
        return hashlib.blake2b(raw.encode(), digest_size=6).hexdigest()


@dataclass(frozen=True, slots=True)
class DroneChange:
    """One valid drone change detection."""

    flight_id: str
    type: DetectionType
    ts: int
    lon: float
    lat: float
    polygon: tuple[tuple[float, float], ...] | None = None
    before_image: str | None = None
    after_image: str | None = None
    confidence: float | None = None
    change_id: str | None = None


def snapshot_key(value: str | None) -> str | None:
    """The S3 key a ``snapshot_url`` names: a key under ``snapshots/`` or ``s3://<bucket>/snapshots/…``.

    Returns ``None`` for an empty value; raises ``ValueError`` for anything else (an https URL, a
    key outside the prefix): the platform stores only images uploaded to its own bucket.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.startswith("s3://"):
        _, _, rest = text[5:].partition("/")
        text = rest
    if ".." in text or not _KEY_RE.match(text):
        raise ValueError("must be a key under snapshots/ returned by POST /v1/detections/uploads")
    return text


def vendor_prefix(vendor_id: str) -> str:
    """Where a vendor's uploads live (``POST /v1/detections/uploads`` hands out keys under it)."""
    return f"{SNAPSHOTS_PREFIX}{vendor_id}/"


def outside_vendor_prefix(key: str | None, vendor_id: str) -> bool:
    """Whether an image key (already checked by :func:`snapshot_key`) is NOT one of ``vendor_id``'s
    own uploads: a vendor may reference only its own images, never another vendor's."""
    return bool(key) and not str(key).startswith(vendor_prefix(vendor_id))


def _from_validation(exc: ValidationError, source_id: str | None) -> DetectionRejection:
    error = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in error["loc"]) or "body"
    if error["type"] == "missing":
        return DetectionRejection(DetectionRejectReason.MISSING_FIELD, f"{field}: required", source_id)
    if error["type"] in {"json_invalid", "json_type", "model_type", "model_attributes_type"}:
        return DetectionRejection(
            DetectionRejectReason.MALFORMED_JSON, "body is not a JSON object", source_id
        )
    return DetectionRejection(DetectionRejectReason.INVALID_VALUE, f"{field}: {error['msg']}", source_id)


def _check_ts(raw: object, now_ms: int, max_future_skew_s: int, max_age_s: int, source: str) -> int:
    try:
        ts = parse_ts_ms(raw)
    except TimestampError as exc:
        raise _Rejected(
            DetectionRejection(DetectionRejectReason.BAD_TIMESTAMP, f"ts: {exc}", source)
        ) from None
    if ts > now_ms + max_future_skew_s * 1000:
        raise _Rejected(
            DetectionRejection(
                DetectionRejectReason.FUTURE_TIMESTAMP,
                f"ts is {(ts - now_ms) // 1000}s in the future (clock skew)",
                source,
            )
        )
    if ts < now_ms - max_age_s * 1000:
        raise _Rejected(
            DetectionRejection(DetectionRejectReason.TOO_OLD, f"ts is older than {max_age_s}s", source)
        )
    return ts


def _check_type(raw: str, source: str) -> DetectionType:
    try:
        return DetectionType(raw)
    except ValueError:
        known = ", ".join(t.value for t in DetectionType)
        raise _Rejected(
            DetectionRejection(
                DetectionRejectReason.UNKNOWN_TYPE, f"type {raw[:40]!r} is not one of: {known}", source
            )
        ) from None


def _check_confidence(value: float | None, source: str) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise _Rejected(
            DetectionRejection(
                DetectionRejectReason.CONFIDENCE_OUT_OF_RANGE, f"confidence {value} not in 0..1", source
            )
        )


class _Rejected(Exception):
    def __init__(self, rejection: DetectionRejection) -> None:
        super().__init__(rejection.detail)
        self.rejection = rejection


def parse_detection(
    body: str | dict[str, Any], *, now_ms: int, max_future_skew_s: int, max_age_s: int
) -> CameraDetection | DroneChange | DetectionRejection:
    """Validate one buffer message (a JSON string, or an already parsed object)."""
    if isinstance(body, str):
        try:
            data = json.loads(body)
        except ValueError:
            data = None
    else:
        data = body
    if not isinstance(data, dict):
        return DetectionRejection(DetectionRejectReason.MALFORMED_JSON, "body is not a JSON object")
    model: type[_CameraMessage] | type[_DroneMessage] = (
        _DroneMessage if "flight_id" in data else _CameraMessage
    )
    try:
        msg = model.model_validate(data)
    except ValidationError as exc:
        return _from_validation(exc, None)
    try:
        if isinstance(msg, _DroneMessage):
            return _drone(msg, now_ms, max_future_skew_s, max_age_s)
        return _camera(msg, now_ms, max_future_skew_s, max_age_s)
    except _Rejected as rejected:
        return rejected.rejection


def _camera(msg: _CameraMessage, now_ms: int, skew_s: int, max_age_s: int) -> CameraDetection:
    if not CAMERA_ID_RE.match(msg.camera_id):
        raise _Rejected(DetectionRejection(DetectionRejectReason.INVALID_CAMERA_ID, "camera id is not valid"))
    source = msg.camera_id
    type_ = _check_type(msg.type, source)
    _check_confidence(msg.confidence, source)
    ts = _check_ts(msg.ts, now_ms, skew_s, max_age_s, source)
    try:
        snapshot = snapshot_key(msg.snapshot_url) or ""
    except ValueError as exc:
        raise _Rejected(
            DetectionRejection(DetectionRejectReason.INVALID_SNAPSHOT, f"snapshot_url: {exc}", source)
        ) from None
    track = "" if msg.track_id is None else str(msg.track_id)[:64]
    return CameraDetection(source, type_, ts, float(msg.confidence), track, snapshot, msg.vendor_id or "")


def _drone(msg: _DroneMessage, now_ms: int, skew_s: int, max_age_s: int) -> DroneChange:
    if not FLIGHT_ID_RE.match(msg.flight_id):
        raise _Rejected(DetectionRejection(DetectionRejectReason.INVALID_VALUE, "flight_id is not valid"))
    source = msg.flight_id
    type_ = _check_type(msg.type, source)
    _check_confidence(msg.confidence, source)
    ts = _check_ts(msg.ts, now_ms, skew_s, max_age_s, source)
    ring: tuple[tuple[float, float], ...] | None = None
    if msg.polygon is not None:
        points = []
        for point in msg.polygon:
            if len(point) != 2 or not (-180 <= point[0] <= 180 and -90 <= point[1] <= 90):
                raise _Rejected(
                    DetectionRejection(
                        DetectionRejectReason.INVALID_VALUE,
                        "polygon: points are [lon, lat] in WGS-84",
                        source,
                    )
                )
            points.append((float(point[0]), float(point[1])))
        if points[0] != points[-1]:
            raise _Rejected(
                DetectionRejection(
                    DetectionRejectReason.INVALID_VALUE, "polygon: a closed ring (first point = last)", source
                )
            )
        ring = tuple(points)
    try:
        before, after = snapshot_key(msg.before_image), snapshot_key(msg.after_image)
    except ValueError as exc:
        raise _Rejected(
            DetectionRejection(DetectionRejectReason.INVALID_SNAPSHOT, f"before/after image: {exc}", source)
        ) from None
    return DroneChange(
        flight_id=source,
        type=type_,
        ts=ts,
        lon=msg.lon,
        lat=msg.lat,
        polygon=ring,
        before_image=before,
        after_image=after,
        confidence=msg.confidence,
        change_id=msg.change_id,
    )
