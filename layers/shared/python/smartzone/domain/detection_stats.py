"""False-positive feedback: per camera and type, how many orders were dispatched and how many
were cancelled as ``false_positive`` — the precision the district tunes thresholds with.

Pure logic, used by :mod:`smartzone.domain.statistics`: the outbox's statistics sink sees every
order transition; for an order raised by a camera it adds (to the day's ``COUNTS`` item, with
``ADD``) ``<grid>|det_orders|<camera>:<type>`` on creation,
``<grid>|det_false_positive|<camera>:<type>`` on a cancellation for ``false_positive`` and
``<grid>|det_expired|<camera>:<type>`` when a transient order closed itself (``expire``).
``GET /v1/stats`` adds them up over the period into :class:`CameraPrecision` rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from smartzone.domain.workorders import WorkOrder

ORDERS = "det_orders"
FALSE_POSITIVE = "det_false_positive"
EXPIRED = "det_expired"
KINDS = frozenset({ORDERS, FALSE_POSITIVE, EXPIRED})
_SEP = "|"


class CameraPrecision(BaseModel):
    """One camera and type over a period."""

    camera_id: str
    type: str
    orders: int
    """Orders dispatched (each may merge many detections)."""
    false_positives: int
    """Orders cancelled as ``false_positive``."""
    expired: int
    """Transient orders that closed themselves unacknowledged."""
    precision: float | None
    """``(orders - false_positives) / orders``; ``None`` without orders."""


def camera_key(order: WorkOrder) -> str | None:
    """``<camera>:<type>`` of a camera order, else ``None``."""
    if order.detection is None or not order.detection.camera_id:
        return None
    return f"{order.detection.camera_id}:{order.detection.type}"


def detection_counters(
    order: WorkOrder, *, created: bool, cancelled_reason: str | None, expired: bool
) -> dict[str, int]:
    key = camera_key(order)
    if key is None:
        return {}
    counters: dict[str, int] = {}
    if created:
        counters[_SEP.join((order.grid_id, ORDERS, key))] = 1
    if cancelled_reason == "false_positive":
        counters[_SEP.join((order.grid_id, FALSE_POSITIVE, key))] = 1
    if expired:
        counters[_SEP.join((order.grid_id, EXPIRED, key))] = 1
    return counters


def summarize_precision(
    items: Iterable[Mapping[str, Any]], grids: Collection[str] | None
) -> list[CameraPrecision]:
    totals: dict[str, dict[str, int]] = {}
    for item in items:
        for name, raw in item.items():
            parts = name.split(_SEP)
            if len(parts) != 3 or parts[1] not in KINDS or (grids is not None and parts[0] not in grids):
                continue
            try:
                value = int(raw)
            except (TypeError, ValueError):
                continue
            row = totals.setdefault(parts[2], {kind: 0 for kind in KINDS})
            row[parts[1]] += value
    rows = []
    for key in sorted(totals):
        camera_id, _, type_ = key.partition(":")
        counts = totals[key]
        orders, fps = counts[ORDERS], counts[FALSE_POSITIVE]
        rows.append(
            CameraPrecision(
                camera_id=camera_id,
                type=type_,
                orders=orders,
                false_positives=fps,
                expired=counts[EXPIRED],
                precision=round((orders - fps) / orders, 4) if orders else None,
            )
        )
    return rows
