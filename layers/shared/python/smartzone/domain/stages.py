"""Time spent in each stage of a work order, and log-spaced histograms of such durations.

Stages are named by the transition that ends them; a stage's time is the time the order spent
in its first status, whichever transition ended it:

| stage                          | time spent in |
|--------------------------------|---------------|
| ``dispatched_to_acknowledged`` | dispatched    |
| ``acknowledged_to_verifying``  | acknowledged  |
| ``verifying_to_handling``      | verifying     |
| ``handling_to_resolved``       | handling      |
| ``resolved_to_closed``         | resolved      |

Only completed stages are reported (the current status has not ended yet). A reopened order
spends time in a stage again: the times are summed. A stage the order never went through is
absent. The alarm-to-clearance time runs from the order's creation to its (last) closure and is
reported only while the order is closed.

:class:`LogHistogram` keeps counts per bucket ``[r**i, r**(i+1))`` with ``r = 2**(1/k)``
(``k`` buckets per doubling; 4 by default, about 19 % wide), plus a count of zeros. Histograms
merge by adding counts, so the outbox dispatcher can maintain them with atomic counter updates
(``ADD`` on one bucket) and the stats endpoint can add up days, grids and categories. A quantile
estimate lies in the same bucket as the exact (nearest-rank) quantile, so its error is at most
one bucket (relative error < r - 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain.timeutil import TimestampError, from_iso, to_iso
from smartzone.domain.workorders import OrderStatus, WorkOrder


class Stage(StrEnum):
    DISPATCHED_TO_ACKNOWLEDGED = "dispatched_to_acknowledged"
    ACKNOWLEDGED_TO_VERIFYING = "acknowledged_to_verifying"
    VERIFYING_TO_HANDLING = "verifying_to_handling"
    HANDLING_TO_RESOLVED = "handling_to_resolved"
    RESOLVED_TO_CLOSED = "resolved_to_closed"


STAGE_OF_STATUS: Mapping[OrderStatus, Stage] = {
    OrderStatus.DISPATCHED: Stage.DISPATCHED_TO_ACKNOWLEDGED,
    OrderStatus.ACKNOWLEDGED: Stage.ACKNOWLEDGED_TO_VERIFYING,
    OrderStatus.VERIFYING: Stage.VERIFYING_TO_HANDLING,
    OrderStatus.HANDLING: Stage.HANDLING_TO_RESOLVED,
    OrderStatus.RESOLVED: Stage.RESOLVED_TO_CLOSED,
}
STAGE_LABEL_ZH = {
    Stage.DISPATCHED_TO_ACKNOWLEDGED: "派单→接单",
    Stage.ACKNOWLEDGED_TO_VERIFYING: "接单→核查",
    Stage.VERIFYING_TO_HANDLING: "核查→处置",
    Stage.HANDLING_TO_RESOLVED: "处置→办结",
    Stage.RESOLVED_TO_CLOSED: "办结→预警消除",
}


class StageDurations(BaseModel):
    """``stage_durations`` of ``GET /v1/workorders/{id}`` (milliseconds)."""

    model_config = ConfigDict(frozen=True)

    stages_ms: dict[Stage, int] = Field(default_factory=dict)
    """Completed stages only, in stage order; repeated stages (after a reopen) summed."""
    alarm_to_clearance_ms: int | None = None
    """Creation → last closure, while the order is closed; otherwise None."""
    current_status: OrderStatus
    current_since: str
    """When the order entered its current status."""


def stage_durations(order: WorkOrder) -> StageDurations:
    """The time the order spent in each stage, from its timeline (robust to reopen and gaps).

    Entries are taken in time order (stable for equal times); entries that do not change the
    status (comments, escalations, …) and entries with unreadable times are ignored; a stage
    never shorter than zero.
    """
    created_ms = from_iso(order.created_at)
    moves: list[tuple[int, int, OrderStatus]] = []
    for index, entry in enumerate(order.timeline):
        if entry.to_status is None:
            continue
        try:
            at_ms = from_iso(entry.at)
        except TimestampError:
            continue
        moves.append((at_ms, index, entry.to_status))
    moves.sort()

    totals: dict[Stage, int] = {}
    current, since = OrderStatus.DISPATCHED, created_ms
    closed_at: int | None = None
    for at_ms, _, status in moves:
        if status is current:
            continue
        stage = STAGE_OF_STATUS.get(current)
        if stage is not None:
            totals[stage] = totals.get(stage, 0) + max(0, at_ms - since)
        current, since = status, max(at_ms, since)
        if status is OrderStatus.CLOSED:
            closed_at = at_ms
    ordered = {stage: totals[stage] for stage in Stage if stage in totals}
    total = None
    if current is OrderStatus.CLOSED and closed_at is not None:
        total = max(0, closed_at - created_ms)
    return StageDurations(
        stages_ms=ordered,
        alarm_to_clearance_ms=total,
        current_status=current,
        current_since=to_iso(since),
    )


# -- log-spaced histograms ------------------------------------------------------------------------
DEFAULT_BUCKETS_PER_DOUBLING = 4


def bucket_index(value: float, buckets_per_doubling: int = DEFAULT_BUCKETS_PER_DOUBLING) -> int | None:
    """The bucket ``i`` with ``r**i <= value < r**(i+1)``; None for zero (the zero bucket).

    Values are durations: negative, NaN and infinite values are refused.
    """
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"not a duration: {value!r}")
    if value == 0:
        return None
    return math.floor(math.log2(value) * buckets_per_doubling)


def bucket_bounds(
    index: int, buckets_per_doubling: int = DEFAULT_BUCKETS_PER_DOUBLING
) -> tuple[float, float]:
    """``[low, high)`` of bucket ``index``."""
    return 2.0 ** (index / buckets_per_doubling), 2.0 ** ((index + 1) / buckets_per_doubling)


class LogHistogram(BaseModel):
    """Counts of durations per log-spaced bucket; mergeable; quantiles within one bucket."""

    model_config = ConfigDict(extra="forbid")

    buckets_per_doubling: int = Field(DEFAULT_BUCKETS_PER_DOUBLING, ge=1, le=64)
    counts: dict[int, int] = Field(default_factory=dict)
    """Bucket index → count (only non-zero counts kept)."""
    zeros: int = Field(0, ge=0)
    """Values of exactly zero (e.g. an order resolved after the sensor was already normal)."""

    @property
    def ratio(self) -> float:
        return 2.0 ** (1 / self.buckets_per_doubling)

    @property
    def total(self) -> int:
        return self.zeros + sum(self.counts.values())

    def index_of(self, value: float) -> int | None:
        return bucket_index(value, self.buckets_per_doubling)

    def add(self, value: float, count: int = 1) -> None:
        if count < 0:
            raise ValueError("count must not be negative")
        if count == 0:
            return
        index = self.index_of(value)
        if index is None:
            self.zeros += count
        else:
            self.counts[index] = self.counts.get(index, 0) + count

    @classmethod
    def of(
        cls, values: Iterable[float], buckets_per_doubling: int = DEFAULT_BUCKETS_PER_DOUBLING
    ) -> LogHistogram:
        hist = cls(buckets_per_doubling=buckets_per_doubling)
        for value in values:
            hist.add(value)
        return hist

    def merge(self, other: LogHistogram) -> LogHistogram:
        """A new histogram holding both histograms' counts (same bucket layout required)."""
        if other.buckets_per_doubling != self.buckets_per_doubling:
            raise ValueError("cannot merge histograms with different bucket widths")
        counts = dict(self.counts)
        for index, count in other.counts.items():
            counts[index] = counts.get(index, 0) + count
        return LogHistogram(
            buckets_per_doubling=self.buckets_per_doubling,
            counts={i: c for i, c in counts.items() if c},
            zeros=self.zeros + other.zeros,
        )

    def representative(self, index: int | None) -> float:
        """The value reported for a bucket: its geometric midpoint (0 for the zero bucket)."""
        if index is None:
            return 0.0
        return 2.0 ** ((index + 0.5) / self.buckets_per_doubling)

    def quantile_bucket(self, q: float) -> int | None:
        """The bucket holding the nearest-rank ``q`` quantile (the ``ceil(q·n)``-th smallest value)."""
        if not 0 <= q <= 1:
            raise ValueError("q must be within [0, 1]")
        n = self.total
        if n == 0:
            raise ValueError("empty histogram")
        rank = max(1, math.ceil(q * n))
        seen = self.zeros
        if rank <= seen:
            return None
        for index in sorted(self.counts):
            seen += self.counts[index]
            if rank <= seen:
                return index
        raise AssertionError("unreachable: rank within total")  # pragma: no cover

    def quantile(self, q: float) -> float | None:
        """Estimated nearest-rank ``q`` quantile, or None when the histogram is empty."""
        if self.total == 0:
            return None
        return self.representative(self.quantile_bucket(q))

    def median(self) -> float | None:
        return self.quantile(0.5)

    def p90(self) -> float | None:
        return self.quantile(0.9)

    # -- storage -------------------------------------------------------------------------------
    def to_item(self) -> dict[str, Any]:
        """A JSON/DynamoDB-friendly form (map keys must be strings)."""
        return {
            "k": self.buckets_per_doubling,
            "counts": {str(i): c for i, c in sorted(self.counts.items())},
            "zeros": self.zeros,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> LogHistogram:
        raw = item.get("counts") or {}
        return cls(
            buckets_per_doubling=int(item.get("k", DEFAULT_BUCKETS_PER_DOUBLING)),
            counts={int(i): int(c) for i, c in raw.items() if int(c)},
            zeros=int(item.get("zeros", 0)),
        )
