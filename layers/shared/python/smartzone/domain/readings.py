"""Telemetry readings: the message the IoT rule produces, its validation and rejection reasons."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smartzone.domain.registry import is_valid_device_id
from smartzone.domain.timeutil import TimestampError, parse_ts_ms


class RejectReason(StrEnum):
    """Why a record was acknowledged without being applied (a metric dimension: keep it small)."""

    MALFORMED_JSON = "malformed_json"
    MISSING_FIELD = "missing_field"
    INVALID_VALUE = "invalid_value"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    TOO_OLD = "too_old"
    TILT_OUT_OF_RANGE = "tilt_out_of_range"
    BATTERY_OUT_OF_RANGE = "battery_out_of_range"
    INVALID_DEVICE_ID = "invalid_device_id"
    UNKNOWN_DEVICE = "unknown_device"


class TelemetryMessage(BaseModel):
    """What the IoT rule puts on the buffer queue.

    ``SELECT ts, tilt_deg, battery_pct, seq, topic(3) AS device_id, timestamp() AS received_at
    FROM 'smartzone/manhole/+/telemetry'``: the device id comes from the topic, never the payload.
    """

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    device_id: str = Field(max_length=64)
    received_at: int | None = None
    ts: int | float | str
    tilt_deg: float
    battery_pct: float | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True, order=True)
class Reading:
    """One valid reading, in device time (UTC epoch ms). Sorting orders readings deterministically."""

    ts: int
    seq: int
    tilt_deg: float
    battery_pct: float
    device_id: str

    @property
    def has_battery(self) -> bool:
        return self.battery_pct >= 0


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectReason
    detail: str
    device_id: str | None = None


def _rejection_from_validation(exc: ValidationError, device_id: str | None) -> Rejection:
    error = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in error["loc"]) or "body"
    if error["type"] == "missing":
        return Rejection(RejectReason.MISSING_FIELD, f"{field}: required", device_id)
    if error["type"] in {"json_invalid", "model_type", "model_attributes_type"}:
        return Rejection(RejectReason.MALFORMED_JSON, "body is not a JSON object", device_id)
    return Rejection(RejectReason.INVALID_VALUE, f"{field}: {error['msg']}", device_id)


def parse_reading(body: str, *, now_ms: int, max_future_skew_s: int, max_age_s: int) -> Reading | Rejection:
    """Validate one IoT-rule message. Physically impossible values and bad clocks are rejected."""
    try:
        msg = TelemetryMessage.model_validate_json(body)
    except ValidationError as exc:
        return _rejection_from_validation(exc, None)
    if not is_valid_device_id(msg.device_id):
        return Rejection(RejectReason.INVALID_DEVICE_ID, "device id from the topic is not valid", None)
    try:
        ts = parse_ts_ms(msg.ts)
    except TimestampError as exc:
        return Rejection(RejectReason.BAD_TIMESTAMP, f"ts: {exc}", msg.device_id)
    if ts > now_ms + max_future_skew_s * 1000:
        return Rejection(
            RejectReason.FUTURE_TIMESTAMP,
            f"ts is {(ts - now_ms) // 1000}s in the future (device clock skew)",
            msg.device_id,
        )
    if ts < now_ms - max_age_s * 1000:
        return Rejection(RejectReason.TOO_OLD, f"ts is older than {max_age_s}s", msg.device_id)
    if not 0.0 <= msg.tilt_deg <= 180.0:
        return Rejection(
            RejectReason.TILT_OUT_OF_RANGE, f"tilt_deg {msg.tilt_deg} not in 0..180", msg.device_id
        )
    battery = -1.0
    if msg.battery_pct is not None:
        if not 0.0 <= msg.battery_pct <= 100.0:
            return Rejection(
                RejectReason.BATTERY_OUT_OF_RANGE,
                f"battery_pct {msg.battery_pct} not in 0..100",
                msg.device_id,
            )
        battery = float(msg.battery_pct)
    seq = msg.seq if msg.seq is not None else -1
    return Reading(ts=ts, seq=seq, tilt_deg=float(msg.tilt_deg), battery_pct=battery, device_id=msg.device_id)
