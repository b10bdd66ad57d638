"""Alarm evaluation per device and alarm type: raise/clear with hysteresis, in device-time order.

Pure logic. The telemetry pipeline calls :func:`evaluate` repeatedly: each call applies readings
newer than the state's watermark, in a deterministic order, and stops at the first alarm
transition (which must be persisted before the rest are applied) or at the end of the batch.

Maintenance windows (``silenced_at``): while a reading's device time is inside a window, no alarm
is RAISED; the state still advances and clears still happen. When the window ends and the
condition persists, the next reading raises.

``offline`` has no value rule: the sweeper raises it (:mod:`smartzone.domain.offline`), and any
applied reading clears an active ``offline`` track (the device is back).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from smartzone.domain.readings import Reading
from smartzone.domain.registry import AlarmProfile


class AlarmType(StrEnum):
    TILT = "tilt"
    BATTERY_LOW = "battery_low"
    OFFLINE = "offline"


_TYPE_CODE = {AlarmType.TILT: "T", AlarmType.BATTERY_LOW: "B", AlarmType.OFFLINE: "O"}


class TransitionKind(StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"


class AlarmTrack(BaseModel):
    """The state of one alarm type on one device (persisted inside the device item)."""

    active: bool = False
    alarm_id: str | None = None
    raised_at: int | None = None
    order_id: str | None = None
    """The order this type's alarms attach to while that order is open (kept after clearance)."""
    clear_since: int | None = None
    """Device time at which a running clear window started (values back to normal)."""
    worst: float | None = None
    """Worst value seen while the alarm is active (peak tilt, lowest battery)."""
    incident: bool = False
    """``offline`` only: ``order_id`` is a shared incident order (many devices of one grid)."""


class DeviceState(BaseModel):
    """Hot state of a device: watermark, last-seen heartbeat and alarm tracks."""

    watermark: int | None = None
    """Latest device time applied (UTC ms); older readings in later batches are dropped."""
    last_seen: int | None = None
    heartbeat_at: int | None = None
    """The ``last_seen`` value at the last write: heartbeats are written at most once per interval."""
    last_tilt: float | None = None
    last_battery: float | None = None
    alarms: dict[str, AlarmTrack] = Field(default_factory=dict)

    def track(self, alarm_type: AlarmType) -> AlarmTrack:
        return self.alarms.get(alarm_type.value) or AlarmTrack()

    def material(self) -> tuple[tuple[str, bool, str | None, str | None, int | None], ...]:
        """What must never be lost between writes (everything but heartbeat-level fields)."""
        return tuple(
            sorted((k, t.active, t.alarm_id, t.order_id, t.clear_since) for k, t in self.alarms.items())
        )


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    kind: TransitionKind
    alarm_type: AlarmType
    device_id: str
    alarm_id: str
    order_id: str
    attach: bool
    """For a raise: True when the alarm attaches to the type's still-open order."""
    at: int
    """Device time of the reading that caused the transition (UTC ms)."""
    value: float
    worst: float
    raised_at: int
    incident: bool = False
    """``offline`` only: ``order_id`` is a shared incident order (see :mod:`smartzone.domain.offline`)."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Result of one evaluation pass: a transition to persist now, or the final state."""

    state: DeviceState
    transitions: tuple[AlarmTransition, ...]
    """Transitions caused by one reading (usually none or one), to persist with ``state``."""
    write_needed: bool
    """True when ``state`` must be written (a transition, a clear-window change or a due heartbeat)."""


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y%m%dT%H%M%S") + f"{ms % 1000:03d}"


def make_alarm_id(device_id: str, alarm_type: AlarmType, raised_at: int) -> str:
    return f"AL-{_stamp(raised_at)}-{device_id}-{_TYPE_CODE[alarm_type]}"


def make_order_id(device_id: str, alarm_type: AlarmType, raised_at: int) -> str:
    """Deterministic: the same raising reading always names the same order."""
    return f"WO-{_stamp(raised_at)}-{device_id}-{_TYPE_CODE[alarm_type]}"


def dedupe_sorted(readings: Sequence[Reading]) -> list[Reading]:
    """Exact duplicates removed, sorted by device time (then seq and values: deterministic)."""
    return sorted(set(readings))


@dataclass(frozen=True, slots=True)
class _Rule:
    alarm_type: AlarmType
    value: Callable[[Reading], float | None]
    abnormal: Callable[[float], bool]
    normal: Callable[[float], bool]
    window_ms: int
    worse: Callable[[float, float], float]


def _rules(profile: AlarmProfile) -> tuple[_Rule, ...]:
    return (
        _Rule(
            AlarmType.TILT,
            lambda r: r.tilt_deg,
            lambda v: v > profile.tilt_raise_deg,
            lambda v: v < profile.tilt_clear_deg,
            profile.tilt_clear_window_s * 1000,
            max,
        ),
        _Rule(
            AlarmType.BATTERY_LOW,
            lambda r: r.battery_pct if r.has_battery else None,
            lambda v: v < profile.battery_low_pct,
            lambda v: v >= profile.battery_clear_pct,
            profile.battery_clear_window_s * 1000,
            min,
        ),
    )


def _apply_rule(
    state: DeviceState, rule: _Rule, reading: Reading, silenced: bool = False
) -> AlarmTransition | None:
    value = rule.value(reading)
    if value is None:
        return None
    key = rule.alarm_type.value
    track = state.alarms.get(key)
    if track is None or not track.active:
        if silenced or not rule.abnormal(value):
            return None
        previous_order = track.order_id if track else None
        alarm_id = make_alarm_id(reading.device_id, rule.alarm_type, reading.ts)
        order_id = previous_order or make_order_id(reading.device_id, rule.alarm_type, reading.ts)
        state.alarms[key] = AlarmTrack(
            active=True, alarm_id=alarm_id, raised_at=reading.ts, order_id=order_id, worst=value
        )
        return AlarmTransition(
            TransitionKind.RAISED,
            rule.alarm_type,
            reading.device_id,
            alarm_id,
            order_id,
            previous_order is not None,
            reading.ts,
            value,
            value,
            reading.ts,
        )
    track.worst = value if track.worst is None else rule.worse(track.worst, value)
    if not rule.normal(value):
        track.clear_since = None
        return None
    if track.clear_since is None:
        track.clear_since = reading.ts
    if reading.ts - track.clear_since < rule.window_ms:
        return None
    transition = AlarmTransition(
        TransitionKind.CLEARED,
        rule.alarm_type,
        reading.device_id,
        track.alarm_id or "",
        track.order_id or "",
        False,
        reading.ts,
        value,
        track.worst,
        track.raised_at or reading.ts,
    )
    state.alarms[key] = AlarmTrack(active=False, order_id=track.order_id)
    return transition


def _clear_offline(state: DeviceState, reading: Reading, previous_seen: int | None) -> AlarmTransition | None:
    """Any applied reading ends an active ``offline`` alarm; ``value``: seconds without data."""
    track = state.alarms.get(AlarmType.OFFLINE.value)
    if track is None or not track.active:
        return None
    raised_at = track.raised_at if track.raised_at is not None else reading.ts
    since = previous_seen if previous_seen is not None else raised_at
    silent_s = max(0.0, (reading.ts - since) / 1000)
    transition = AlarmTransition(
        TransitionKind.CLEARED,
        AlarmType.OFFLINE,
        reading.device_id,
        track.alarm_id or "",
        track.order_id or "",
        False,
        reading.ts,
        silent_s,
        max(silent_s, track.worst or 0.0),
        raised_at,
        track.incident,
    )
    state.alarms[AlarmType.OFFLINE.value] = AlarmTrack(
        active=False, order_id=track.order_id, incident=track.incident
    )
    return transition


def evaluate(
    state: DeviceState,
    profile: AlarmProfile,
    readings: Sequence[Reading],
    *,
    heartbeat_interval_ms: int,
    silenced_at: Callable[[int], bool] | None = None,
) -> Evaluation:
    """Apply the readings newer than the watermark, in order, up to the first reading that
    causes a transition (every rule is applied to that reading).

    ``readings`` must be :func:`dedupe_sorted`. The input state is not modified.
    ``silenced_at(device_time_ms)`` is true inside a maintenance window: no alarm is raised for
    such a reading (clears still happen, the state still advances).
    """
    work = state.model_copy(deep=True)
    applied = False
    rules = _rules(profile)
    for reading in readings:
        if work.watermark is not None and reading.ts <= work.watermark:
            continue
        applied = True
        previous_seen = work.last_seen
        work.watermark = reading.ts
        work.last_seen = reading.ts
        work.last_tilt = reading.tilt_deg
        if reading.has_battery:
            work.last_battery = reading.battery_pct
        silenced = silenced_at is not None and silenced_at(reading.ts)
        found = [_clear_offline(work, reading, previous_seen)]
        found.extend(_apply_rule(work, rule, reading, silenced) for rule in rules)
        transitions = tuple(t for t in found if t is not None)
        if transitions:
            work.heartbeat_at = work.last_seen
            return Evaluation(work, transitions, True)
    if not applied:
        return Evaluation(work, (), False)
    heartbeat_due = work.last_seen is not None and (
        state.heartbeat_at is None or work.last_seen - state.heartbeat_at >= heartbeat_interval_ms
    )
    if heartbeat_due or work.material() != state.material():
        work.heartbeat_at = work.last_seen
        return Evaluation(work, (), True)
    return Evaluation(work, (), False)


def count_stale(state: DeviceState, readings: Sequence[Reading]) -> int:
    """Readings at or before the watermark: late arrivals from earlier device time, dropped."""
    if state.watermark is None:
        return 0
    return sum(1 for r in readings if r.ts <= state.watermark)
