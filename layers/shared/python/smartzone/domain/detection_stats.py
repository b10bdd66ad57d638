"""False-positive feedback: per camera and type, how many orders were dispatched and how many
were cancelled as ``false_positive`` — the precision the district tunes thresholds with.

Pure logic, used by :mod:`smartzone.domain.statistics`: the outbox's statistics sink sees every
order transition; for an order raised by a camera it adds (to the day's ``COUNTS`` item, with
``ADD``) ``<grid>|det_orders|<camera>:<type>`` on creation,
``<grid>|det_false_positive|<camera>:<type>`` on a cancellation for ``false_positive`` and
``<grid>|det_expired|<camera>:<type>`` when a transient order closed itself (``expire``).
``GET /v1/stats`` adds them up over the period into :class:`CameraPrecision` rows, and adds the
detection pipeline's own per-day counters (``DETCOUNT#<day>``: detections ``below_threshold`` —
counted, never dispatched — and ``dispatched`` into orders) with :func:`add_detection_counts`, for
the cameras and types that have a row (an order event in the period): the route reads those
counters by key (BatchGetItem), never with a Query.

Days: an order counts on the day it was created, a false positive on the day it was cancelled, so
over a period that starts after an order's creation its cancellation may count without the order.
Precision is therefore clamped to 0..1 (a period's rows are exact once it covers the orders'
creation and cancellation days; over months the difference is a few orders at the edges).
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
    """``(orders - false_positives) / orders``, clamped to 0..1; ``None`` without orders."""
    below_threshold: int = 0
    """Detections below the camera's threshold for the type: counted, not dispatched."""
    dispatched: int = 0
    """Detections at or above the threshold, merged into orders (new or joined)."""


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
                precision=round(min(1.0, max(0.0, (orders - fps) / orders)), 4) if orders else None,
            )
        )
    return rows


def add_detection_counts(
    rows: Iterable[CameraPrecision], counters: Iterable[Mapping[str, Any]], grids: Collection[str] | None
) -> list[CameraPrecision]:
    """``rows`` with the period's detection counters (``DETCOUNT`` items: ``sk`` ``<camera>#<type>``,
    ``below_threshold``, ``dispatched``, ``grid_id``) added (a counter without a row gets one).
    ``grids``: only counters of those grids (``None``: all)."""
    by_key = {(row.camera_id, row.type): row.model_copy() for row in rows}
    for item in counters:
        if grids is not None and item.get("grid_id") not in grids:
            continue
        camera_id, _, type_ = str(item.get("sk", "")).partition("#")
        if not camera_id or not type_:
            continue
        row = by_key.get((camera_id, type_))
        if row is None:
            row = by_key[(camera_id, type_)] = CameraPrecision(
                camera_id=camera_id, type=type_, orders=0, false_positives=0, expired=0, precision=None
            )
        for name in ("below_threshold", "dispatched"):
            try:
                setattr(row, name, getattr(row, name) + int(item.get(name) or 0))
            except (TypeError, ValueError):
                continue
    return [by_key[key] for key in sorted(by_key)]
