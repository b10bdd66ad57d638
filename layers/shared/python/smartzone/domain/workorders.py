"""Work orders: statuses, categories, the order model and sensor orders raised by alarms."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain.alarms import AlarmTransition, AlarmType
from smartzone.domain.registry import Device
from smartzone.domain.timeutil import to_iso


class OrderStatus(StrEnum):
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    VERIFYING = "verifying"
    HANDLING = "handling"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({OrderStatus.CLOSED, OrderStatus.CANCELLED})
OPEN_STATUSES = frozenset(OrderStatus) - FINAL_STATUSES
WORKING_STATUSES = OPEN_STATUSES - {OrderStatus.RESOLVED}
"""Open and not yet resolved: a re-raise attaches without reopening."""


class Category(StrEnum):
    MANHOLE_TILT = "manhole_tilt"
    DEVICE_BATTERY_LOW = "device_battery_low"
    DEVICE_OFFLINE = "device_offline"
    PATROL_REPORT = "patrol_report"
    """A problem a grid worker found on patrol (``POST /v1/reports``)."""
    # Detections (video analytics, drones): one category per ``DetectionType`` (same values).
    ILLEGAL_DUMPING = "illegal_dumping"
    RIVER_LOITERING = "river_loitering"
    STRAW_BURNING = "straw_burning"
    ILLEGAL_FISHING = "illegal_fishing"
    POLLUTION_EQUIPMENT_STOPPED = "pollution_equipment_stopped"
    CONSTRUCTION_VIOLATION = "construction_violation"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


CATEGORY_OF_ALARM = {
    AlarmType.TILT: Category.MANHOLE_TILT,
    AlarmType.BATTERY_LOW: Category.DEVICE_BATTERY_LOW,
    AlarmType.OFFLINE: Category.DEVICE_OFFLINE,
}
SEVERITY_OF_ALARM = {
    AlarmType.TILT: Severity.HIGH,
    AlarmType.BATTERY_LOW: Severity.LOW,
    AlarmType.OFFLINE: Severity.MEDIUM,
}
CATEGORY_LABEL_ZH = {
    Category.MANHOLE_TILT: "窨井盖倾斜",
    Category.DEVICE_BATTERY_LOW: "设备电量低",
    Category.DEVICE_OFFLINE: "设备离线",
    Category.PATROL_REPORT: "巡查上报",
    Category.ILLEGAL_DUMPING: "违规倾倒",
    Category.RIVER_LOITERING: "河岸逗留",
    Category.STRAW_BURNING: "秸秆焚烧",
    Category.ILLEGAL_FISHING: "非法捕捞",
    Category.POLLUTION_EQUIPMENT_STOPPED: "治污设施停运",
    Category.CONSTRUCTION_VIOLATION: "工地违规施工",
}
STATUS_LABEL_ZH = {
    OrderStatus.DISPATCHED: "已派单",
    OrderStatus.ACKNOWLEDGED: "已接单",
    OrderStatus.VERIFYING: "核查中",
    OrderStatus.HANDLING: "处置中",
    OrderStatus.RESOLVED: "已办结",
    OrderStatus.CLOSED: "预警消除",
    OrderStatus.CANCELLED: "已取消",
}

SYSTEM_ACTOR = "system:telemetry"
SYSTEM_ROLE = "system"


class TimelineEntry(BaseModel):
    """One line of an order's history. Every transition appends one."""

    model_config = ConfigDict(populate_by_name=True)

    at: str
    actor: str
    role: str
    action: str
    from_status: OrderStatus | None = Field(None, alias="from")
    to_status: OrderStatus | None = Field(None, alias="to")
    """Both empty for entries that record an event without changing the status."""
    note: str | None = None
    photos: list[str] = Field(default_factory=list)

    def to_item(self) -> dict[str, object]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class OrderLocation(BaseModel):
    lon: float
    lat: float
    road: str | None = None
    name: str | None = None


class SensorReading(BaseModel):
    value: float
    unit: str
    at: str


class Reporter(BaseModel):
    """Who filed a patrol report (personal data: masked on output by ``mask_for``)."""

    username: str
    name: str | None = None
    phone: str | None = None


class RoutingMethod(StrEnum):
    REGISTRY = "registry"
    """The source's registered grid (a device's or a camera's)."""
    CONTAINS = "contains"
    """The grid whose boundary contains the location."""
    NEAREST = "nearest"
    """Outside every grid: the nearest grid within the fallback distance."""
    COMMAND_CENTRE = "command_centre"
    """Outside every grid and too far from all of them: the command centre's queue."""


class Routing(BaseModel):
    """How an order found its grid (shown on the order, so a fallback is visible)."""

    method: RoutingMethod
    distance_m: float | None = None
    """For ``nearest``: the distance to that grid's boundary."""
    note: str | None = None


class DetectionSummary(BaseModel):
    """The detections merged into one order (camera/drone orders)."""

    source: str
    """``camera`` or ``drone``."""
    type: str
    camera_id: str | None = None
    count: int = 1
    first_seen: str
    last_seen: str
    max_confidence: float | None = None
    snapshots: list[str] = Field(default_factory=list)
    """S3 keys of up to N snapshots (the API presigns short-lived links)."""
    track_ids: list[str] = Field(default_factory=list)
    flight_id: str | None = None
    before_image: str | None = None
    after_image: str | None = None
    polygon: list[list[float]] | None = None
    """A drone change's outline: a ring of ``[lon, lat]``."""


class WorkOrder(BaseModel):
    """A work order as stored and as returned by the API."""

    order_id: str
    version: int = 1
    status: OrderStatus
    category: Category
    severity: Severity
    source: str
    grid_id: str
    assignee: str | None = None
    title: str
    description: str
    device_id: str | None = None
    alarm_type: AlarmType | None = None
    alarm_ids: list[str] = Field(default_factory=list)
    device_ids: list[str] = Field(default_factory=list)
    """An incident order's devices (many devices of one grid offline at once)."""
    devices_back: list[str] = Field(default_factory=list)
    """Incident devices that have reported again."""
    location: OrderLocation | None = None
    reporter: Reporter | None = None
    reading: SensorReading | None = None
    sensor_normal: bool = False
    sensor_normal_at: str | None = None
    reraise_count: int = 0
    detection: DetectionSummary | None = None
    routing: Routing | None = None
    escalation_level: int = 0
    created_at: str
    updated_at: str
    resolved_at: str | None = None
    closed_at: str | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def alarm_text_zh(device: Device, transition: AlarmTransition) -> tuple[str, str]:
    """The order's title and a description a grid worker can act on."""
    where = f"位于{device.road}({device.name},网格 {device.grid_id})"
    if transition.alarm_type is AlarmType.TILT:
        title = f"{device.short_name}倾斜告警"
        text = (
            f"{device.short_name}({device.device_id})倾斜 {_fmt(transition.value)}°,"
            f"超过 {_fmt(device.profile.tilt_raise_deg)}° 阈值,{where},请立即查看并处置。"
        )
    elif transition.alarm_type is AlarmType.BATTERY_LOW:
        title = f"{device.short_name}传感器电量低"
        text = (
            f"{device.short_name}({device.device_id})传感器电量 {_fmt(transition.value)}%,"
            f"低于 {_fmt(device.profile.battery_low_pct)}%,{where},请安排更换电池。"
        )
    else:
        title = f"{device.short_name}离线"
        text = f"{device.short_name}({device.device_id})已离线,{where},请检查设备。"
    return title, text


def unit_of(alarm_type: AlarmType) -> str:
    return {AlarmType.TILT: "deg", AlarmType.BATTERY_LOW: "pct"}.get(alarm_type, "")


def new_sensor_order(device: Device, transition: AlarmTransition, now_ms: int) -> WorkOrder:
    """The order raised by a sensor alarm: ``dispatched`` to the device's grid, one timeline entry."""
    title, text = alarm_text_zh(device, transition)
    now = to_iso(now_ms)
    return WorkOrder(
        order_id=transition.order_id,
        status=OrderStatus.DISPATCHED,
        category=CATEGORY_OF_ALARM[transition.alarm_type],
        severity=SEVERITY_OF_ALARM[transition.alarm_type],
        source="sensor",
        grid_id=device.grid_id,
        title=title,
        description=text,
        device_id=device.device_id,
        alarm_type=transition.alarm_type,
        alarm_ids=[transition.alarm_id],
        location=OrderLocation(lon=device.lon, lat=device.lat, road=device.road, name=device.name),
        reading=SensorReading(
            value=transition.value, unit=unit_of(transition.alarm_type), at=to_iso(transition.at)
        ),
        created_at=now,
        updated_at=now,
        timeline=[
            TimelineEntry(
                at=now,
                actor=SYSTEM_ACTOR,
                role=SYSTEM_ROLE,
                action="raise",
                from_status=None,
                to_status=OrderStatus.DISPATCHED,
                note=f"告警触发:{text}",
            )
        ],
    )


def system_entry(
    now_ms: int,
    action: str,
    note: str,
    from_status: OrderStatus | None = None,
    to_status: OrderStatus | None = None,
) -> TimelineEntry:
    """A timeline entry written by the platform itself (alarm re-raised, sensor back to normal, …)."""
    return TimelineEntry(
        at=to_iso(now_ms),
        actor=SYSTEM_ACTOR,
        role=SYSTEM_ROLE,
        action=action,
        from_status=from_status,
        to_status=to_status,
        note=note,
    )
