"""Statistics of work orders: what one outbound event adds, and a period's summary.

Pure logic. The outbox dispatcher's statistics sink turns every outbound event into one
:class:`StatsUpdate` (atomic ``ADD`` increments, written in one transaction with a per-event
marker so that a redelivered event is counted once); ``GET /v1/stats`` reads the days of a period
and :func:`summarize` adds them up.

Storage (one partition per day of the event, in Asia/Shanghai); every attribute named below is a
counter maintained with ``ADD``:

- ``STATS#<day>`` / ``COUNTS``:
  ``<grid>|created|<category>`` (orders created), ``<grid>|status|<status>`` (transitions into a
  status), ``<grid>|closed|<category>`` (orders closed, 预警消除), ``<grid>|cancelled|<reason>``
  (orders cancelled, by reason);
- ``STATS#<day>`` / ``HIST#<name>``: ``<grid>|<bucket>``, a log-spaced histogram
  (:mod:`smartzone.domain.stages`) of the duration ``name`` (each stage, and
  ``alarm_to_clearance``) of the orders closed that day; bucket ``z`` counts zero durations.

Every counter carries its grid, so one item per day serves both the district (all grids summed)
and a grid worker (their grids only). Closures are counted by category generically: the headline
counts ("covers repaired", "illegal fishing stopped", "straw burning handled") are closures of a
category (:data:`HEADLINES`), so a new category is counted without code changes.

What counts when:
- an order is *created* on its ``order_created`` event (its first status counts as entered);
- a status is *entered* whenever an event's status differs from the previous one (a reopened
  order enters ``handling`` again; closing it again counts another closure);
- a *closed* order adds its stage durations and alarm-to-clearance time to the histograms (after
  a reopen and a second closure, its durations — summed over both rounds — count again);
- a *cancelled* order counts under the reason its cancel entry recorded (``other`` if none).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain.detection_stats import CameraPrecision, detection_counters, summarize_precision
from smartzone.domain.detection_transient import was_expired
from smartzone.domain.lifecycle import CancelReason
from smartzone.domain.notifications import OutboundEvent, OutboundEventType
from smartzone.domain.prefill_stats import PrefillStats
from smartzone.domain.stages import (
    DEFAULT_BUCKETS_PER_DOUBLING,
    STAGE_LABEL_ZH,
    LogHistogram,
    Stage,
    bucket_index,
    stage_durations,
)
from smartzone.domain.timeutil import SHANGHAI, from_iso
from smartzone.domain.workorders import OrderStatus, TimelineEntry, WorkOrder

COUNTS_PART = "COUNTS"
HIST_PART_PREFIX = "HIST#"
ALARM_TO_CLEARANCE = "alarm_to_clearance"
DURATIONS: tuple[str, ...] = (*(stage.value for stage in Stage), ALARM_TO_CLEARANCE)
"""Every histogram kept per day: one per stage, and the whole alarm-to-clearance time."""
DURATION_LABEL_ZH: Mapping[str, str] = {
    **{stage.value: label for stage, label in STAGE_LABEL_ZH.items()},
    ALARM_TO_CLEARANCE: "告警→预警消除",
}
HISTOGRAM_BUCKETS_PER_DOUBLING = DEFAULT_BUCKETS_PER_DOUBLING
ZERO_BUCKET = "z"
SEP = "|"

CREATED = "created"
STATUS = "status"
CLOSED = "closed"
CANCELLED = "cancelled"
COUNTER_KINDS = frozenset({CREATED, STATUS, CLOSED, CANCELLED})
UNKNOWN_REASON = "other"

HEADLINES: Mapping[str, str] = {
    "covers_repaired": "manhole_tilt",
    "illegal_fishing_stopped": "illegal_fishing",
    "straw_burning_handled": "straw_burning",
}
"""Headline counts: closures of one category (修复井盖, 制止非法捕捞, 处置秸秆焚烧)."""
HEADLINE_LABEL_ZH: Mapping[str, str] = {
    "covers_repaired": "修复井盖",
    "illegal_fishing_stopped": "制止非法捕捞",
    "straw_burning_handled": "处置秸秆焚烧",
}
MAX_PERIOD_DAYS = 366
DEFAULT_PERIOD_DAYS = 30
_DAY_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_REASON_RE = re.compile(r"\(([a-z_]+)\)")


def hist_part(name: str) -> str:
    """The sort key of a duration's histogram item: ``HIST#<stage>`` or ``HIST#alarm_to_clearance``."""
    return f"{HIST_PART_PREFIX}{name}"


def stats_day(iso: str) -> str:
    """The Beijing-time day (``yyyy-mm-dd``) a UTC timestamp falls on."""
    return datetime.fromtimestamp(from_iso(iso) / 1000, tz=SHANGHAI).date().isoformat()


def counter_name(grid_id: str, kind: str, key: str) -> str:
    return f"{grid_id}{SEP}{kind}{SEP}{key}"


def bucket_name(grid_id: str, index: int | None) -> str:
    return f"{grid_id}{SEP}{ZERO_BUCKET if index is None else index}"


# -- one event → increments ------------------------------------------------------------------------
@dataclass(frozen=True)
class StatsUpdate:
    """What one event adds: counters of the day's ``COUNTS`` item and histogram buckets."""

    day: str
    counters: Mapping[str, int] = field(default_factory=dict)
    histograms: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Item sort key (``HIST#<name>``) → bucket attribute → increment."""

    @property
    def empty(self) -> bool:
        return not self.counters and not any(self.histograms.values())


def cancel_reason(order: WorkOrder) -> str:
    """The reason of the order's (last) cancellation, from its timeline entry's note
    (``取消原因:误报(false_positive)``); ``other`` when none is recorded."""
    known = {reason.value for reason in CancelReason}
    entry: TimelineEntry | None = next(
        (e for e in reversed(order.timeline) if e.to_status is OrderStatus.CANCELLED), None
    )
    if entry is None or not entry.note:
        return UNKNOWN_REASON
    for match in _REASON_RE.finditer(entry.note):
        if match.group(1) in known:
            return match.group(1)
    return UNKNOWN_REASON


def duration_buckets(order: WorkOrder) -> dict[str, int | None]:
    """For a closed order: each duration's name → its histogram bucket (``None``: zero)."""
    durations = stage_durations(order)
    out: dict[str, int | None] = {
        stage.value: bucket_index(ms, HISTOGRAM_BUCKETS_PER_DOUBLING)
        for stage, ms in durations.stages_ms.items()
    }
    if durations.alarm_to_clearance_ms is not None:
        out[ALARM_TO_CLEARANCE] = bucket_index(
            durations.alarm_to_clearance_ms, HISTOGRAM_BUCKETS_PER_DOUBLING
        )
    return out


def stats_update(event: OutboundEvent) -> StatsUpdate:
    """The increments one event makes (possibly none: then nothing is written)."""
    grid = event.grid_id
    counters: dict[str, int] = {}
    histograms: dict[str, dict[str, int]] = {}
    created = event.event_type is OutboundEventType.ORDER_CREATED
    if created:
        counters[counter_name(grid, CREATED, event.category)] = 1
    if created or (event.previous_status is not None and event.status != event.previous_status):
        counters[counter_name(grid, STATUS, event.status)] = 1
        if event.status == OrderStatus.CLOSED.value:
            order = WorkOrder.model_validate(event.order)
            expired = was_expired(order)  # closed itself (transient detection): not a handled case
            if not expired:
                counters[counter_name(grid, CLOSED, event.category)] = 1
            counters.update(detection_counters(order, created=False, cancelled_reason=None, expired=expired))
            for name, index in duration_buckets(order).items():
                histograms[hist_part(name)] = {bucket_name(grid, index): 1}
        elif event.status == OrderStatus.CANCELLED.value:
            cancelled = WorkOrder.model_validate(event.order)
            reason = cancel_reason(cancelled)
            counters[counter_name(grid, CANCELLED, reason)] = 1
            counters.update(
                detection_counters(cancelled, created=False, cancelled_reason=reason, expired=False)
            )
    if created and event.order.get("detection"):
        counters.update(
            detection_counters(
                WorkOrder.model_validate(event.order), created=True, cancelled_reason=None, expired=False
            )
        )
    return StatsUpdate(day=stats_day(event.occurred_at), counters=counters, histograms=histograms)


# -- a period ---------------------------------------------------------------------------------------
class PeriodError(ValueError):
    """A bad period (answered 422 naming ``field``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _parse_day(text: str, name: str) -> date:
    if not _DAY_RE.match(text):
        raise PeriodError(f"{name} must be a date like 2026-11-29", name)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{name} is not a valid date", name) from None


def parse_period(start: str | None, end: str | None, today: date) -> tuple[date, date]:
    """``from``/``to`` (inclusive Beijing-time days). Defaults: ``to`` today, ``from`` 30 days
    back. At most :data:`MAX_PERIOD_DAYS` days; ``from`` not after ``to``."""
    to_day = _parse_day(end.strip(), "to") if end is not None else today
    from_day = (
        _parse_day(start.strip(), "from")
        if start is not None
        else to_day - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    )
    if from_day > to_day:
        raise PeriodError("from must not be after to", "from")
    if (to_day - from_day).days + 1 > MAX_PERIOD_DAYS:
        raise PeriodError(f"the period must not exceed {MAX_PERIOD_DAYS} days", "to")
    return from_day, to_day


def period_days(from_day: date, to_day: date) -> list[str]:
    return [(from_day + timedelta(days=i)).isoformat() for i in range((to_day - from_day).days + 1)]


class DurationSummary(BaseModel):
    """Median and 90th percentile of one duration over a period (estimates: within one bucket)."""

    model_config = ConfigDict(frozen=True)

    label_zh: str
    count: int
    median_ms: int | None = None
    p90_ms: int | None = None


class OrderCounts(BaseModel):
    created: int = 0
    by_category: dict[str, int] = Field(default_factory=dict)
    """Orders created, by category."""
    by_grid: dict[str, int] = Field(default_factory=dict)
    """Orders created, by grid."""
    by_status: dict[str, int] = Field(default_factory=dict)
    """Transitions into each status (creation enters ``dispatched``)."""
    closed_by_category: dict[str, int] = Field(default_factory=dict)
    cancelled_by_reason: dict[str, int] = Field(default_factory=dict)


class PeriodStats(BaseModel):
    """``GET /v1/stats``."""

    model_config = ConfigDict(populate_by_name=True)

    from_day: str = Field(alias="from")
    to_day: str = Field(alias="to")
    timezone: str = "Asia/Shanghai"
    grid_ids: list[str] | None = None
    """The grids counted (a grid worker's grids); ``None``: every grid."""
    orders: OrderCounts
    headline: dict[str, int]
    """``covers_repaired``, ``illegal_fishing_stopped``, ``straw_burning_handled``: closures."""
    durations: dict[str, DurationSummary]
    """Each stage (``dispatched_to_acknowledged`` …) and ``alarm_to_clearance``."""
    detections: list[CameraPrecision] = Field(default_factory=list)
    """Per camera and type: orders dispatched, false positives, precision (issue 5)."""
    prefill: PrefillStats | None = None
    """Forms (issue 6): fields prefilled-confirmed / corrected / typed new, per form and community."""


def _counter_value(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _add(target: dict[str, int], key: str, value: int) -> None:
    if value:
        target[key] = target.get(key, 0) + value


def summarize_counts(items: Iterable[Mapping[str, Any]], grids: Collection[str] | None) -> OrderCounts:
    """Add up the days' ``COUNTS`` items (plain values), keeping only ``grids`` (``None``: all)."""
    counts = OrderCounts()
    for item in items:
        for name, raw in item.items():
            parts = name.split(SEP)
            if len(parts) != 3 or parts[1] not in COUNTER_KINDS:
                continue
            grid, kind, key = parts
            if grids is not None and grid not in grids:
                continue
            value = _counter_value(raw)
            if kind == CREATED:
                counts.created += value
                _add(counts.by_category, key, value)
                _add(counts.by_grid, grid, value)
            elif kind == STATUS:
                _add(counts.by_status, key, value)
            elif kind == CLOSED:
                _add(counts.closed_by_category, key, value)
            else:
                _add(counts.cancelled_by_reason, key, value)
    for mapping in (
        counts.by_category,
        counts.by_grid,
        counts.by_status,
        counts.closed_by_category,
        counts.cancelled_by_reason,
    ):
        ordered = dict(sorted(mapping.items()))
        mapping.clear()
        mapping.update(ordered)
    return counts


def merge_histogram(items: Iterable[Mapping[str, Any]], grids: Collection[str] | None) -> LogHistogram:
    """One duration's histogram over the days' ``HIST#<name>`` items and the grids in scope."""
    hist = LogHistogram(buckets_per_doubling=HISTOGRAM_BUCKETS_PER_DOUBLING)
    for item in items:
        for name, raw in item.items():
            grid, sep, bucket = name.rpartition(SEP)
            if not sep or (grids is not None and grid not in grids):
                continue
            value = _counter_value(raw)
            if value <= 0:
                continue
            if bucket == ZERO_BUCKET:
                hist.zeros += value
                continue
            try:
                index = int(bucket)
            except ValueError:
                continue
            hist.counts[index] = hist.counts.get(index, 0) + value
    return hist


def summarize_duration(name: str, hist: LogHistogram) -> DurationSummary:
    median, p90 = hist.median(), hist.p90()
    return DurationSummary(
        label_zh=DURATION_LABEL_ZH.get(name, name),
        count=hist.total,
        median_ms=round(median) if median is not None else None,
        p90_ms=round(p90) if p90 is not None else None,
    )


def headline_counts(counts: OrderCounts) -> dict[str, int]:
    return {name: counts.closed_by_category.get(category, 0) for name, category in HEADLINES.items()}


def summarize(
    from_day: date,
    to_day: date,
    counts_items: Iterable[Mapping[str, Any]],
    histogram_items: Mapping[str, Iterable[Mapping[str, Any]]],
    grids: Collection[str] | None,
) -> PeriodStats:
    """The period's statistics from its days' items (``histogram_items``: duration name → items)."""
    counts_items = list(counts_items)
    counts = summarize_counts(counts_items, grids)
    durations = {
        name: summarize_duration(name, merge_histogram(histogram_items.get(name, ()), grids))
        for name in DURATIONS
    }
    return PeriodStats(
        from_day=from_day.isoformat(),
        to_day=to_day.isoformat(),
        grid_ids=sorted(grids) if grids is not None else None,
        orders=counts,
        headline=headline_counts(counts),
        durations=durations,
        detections=summarize_precision(counts_items, grids),
    )
