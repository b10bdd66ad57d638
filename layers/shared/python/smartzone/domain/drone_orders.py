"""Drone change detections → one work order each, routed by location.

A drone flight compared against an earlier one reports a change (a new heap of waste, a new
structure …) at a WGS-84 point, with an optional outline and the before/after images. Each change
becomes one order in the grid containing the point (:func:`smartzone.domain.routing.route_point`,
with its fallbacks visible on the order). The order id is derived from the change (flight, type,
time, place or the vendor's ``change_id``), so a re-delivered change never makes a second order.
"""

from __future__ import annotations

import hashlib

from smartzone.domain.detection_merge import DETECTION_ACTOR, SYSTEM_ROLE, TYPE_CODES, _stamp
from smartzone.domain.detection_messages import DroneChange
from smartzone.domain.detections import DETECTION_POLICIES, DetectionSource
from smartzone.domain.routing import RouteResult
from smartzone.domain.timeutil import to_iso, to_local_display
from smartzone.domain.workorders import (
    Category,
    DetectionSummary,
    OrderLocation,
    OrderStatus,
    TimelineEntry,
    WorkOrder,
)


def drone_order_id(change: DroneChange) -> str:
    identity = change.change_id or f"{change.lon:.6f},{change.lat:.6f}"
    digest = hashlib.blake2b(f"{change.flight_id}|{identity}".encode(), digest_size=4).hexdigest()
    return f"DR-{_stamp(change.ts)}-{TYPE_CODES.get(change.type.value, 'DET')}-{digest}"


def new_drone_order(change: DroneChange, route: RouteResult, now_ms: int) -> WorkOrder:
    policy = DETECTION_POLICIES[change.type]
    now = to_iso(now_ms)
    title = f"{policy.label_zh}:无人机巡查发现变化"
    text = (
        f"无人机航次 {change.flight_id} 于 {to_local_display(change.ts)}(北京时间)与前次航拍比对,"
        f"在 ({change.lon:.6f}, {change.lat:.6f}) 发现{policy.label_zh}疑似变化"
        + (f",置信度 {change.confidence:.0%}" if change.confidence is not None else "")
        + "。请对照前后影像前往现场核查并处置。"
    )
    return WorkOrder(
        order_id=drone_order_id(change),
        status=OrderStatus.DISPATCHED,
        category=Category(change.type.value),
        severity=policy.severity,
        source="drone",
        grid_id=route.grid_id,
        title=title,
        description=text,
        location=OrderLocation(lon=change.lon, lat=change.lat, name=f"无人机航次 {change.flight_id}"),
        detection=DetectionSummary(
            source=DetectionSource.DRONE.value,
            type=change.type.value,
            count=1,
            first_seen=to_iso(change.ts),
            last_seen=to_iso(change.ts),
            max_confidence=change.confidence,
            flight_id=change.flight_id,
            before_image=change.before_image,
            after_image=change.after_image,
            polygon=[list(point) for point in change.polygon] if change.polygon else None,
        ),
        routing=route.routing,
        created_at=now,
        updated_at=now,
        timeline=[
            TimelineEntry(
                at=now,
                actor=DETECTION_ACTOR,
                role=SYSTEM_ROLE,
                action="raise",
                from_status=None,
                to_status=OrderStatus.DISPATCHED,
                note=f"无人机变化检测:{text}",
            )
        ],
    )
