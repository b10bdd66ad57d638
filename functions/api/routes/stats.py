"""`/v1/stats`: a period's work-order statistics, from the outbox dispatcher's daily items.

``GET /v1/stats?from=YYYY-MM-DD&to=YYYY-MM-DD`` (Beijing-time days, both inclusive; at most 366
days; defaults: the last 30 days up to today). Bad dates answer 422 naming ``from`` or ``to``.

Answers orders created by category and by grid, transitions into each status, closures by
category and cancellations by reason; the headline counts (``covers_repaired`` = manhole-tilt
orders closed, ``illegal_fishing_stopped``, ``straw_burning_handled``); and median / p90 of each
stage and of alarm-to-clearance (from log-spaced histograms: within one bucket, < 19 %).

Reach: dispatchers and admins see every grid. Grid workers see only their grids (from the user
registry): counts, closures and durations of orders in those grids, and ``grid_ids`` names them.
Departments see only the ``prefill`` part, for the forms they own (every grid); the work-order
parts are left empty for them. Technicians (without another role) are answered 403: statistics
are not theirs to see.

``prefill`` (issue 6, docs/forms.md): submitted form fields prefilled-confirmed / corrected /
typed new and the prefill ratio, per form, per form and community, and per day (the days'
``PREFILL`` items; grid workers: their grids only).

``detections`` (issue 5, docs/detections.md): per camera and type, orders, false positives,
precision, and detections below threshold / dispatched (the ``DETCOUNT`` items of the cameras
and types with orders in the period).

Cost: BatchGetItem of the days' items only (per day: ``COUNTS`` and one item per histogram), 100
keys a call (plus, per day, one ``DETCOUNT`` key per camera and type listed in ``detections``);
never a Scan or a Query.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from smartzone.domain.detection_stats import add_detection_counts
from smartzone.domain.prefill_stats import summarize_prefill
from smartzone.domain.statistics import PeriodError, PeriodStats, parse_period, period_days, summarize
from smartzone.domain.timeutil import SHANGHAI
from smartzone.repositories.detections import DetectionStore
from smartzone.repositories.stats import StatsRepository
from smartzone.repositories.submissions import prefill_items
from smartzone.settings import get_settings

from ..context import caller_of, grids_of
from ..errors import ForbiddenError, Unprocessable
from .form_access import owned_forms

router = Router()


@cache
def _repository(table_name: str) -> StatsRepository:
    return StatsRepository(table_name)


def stats() -> StatsRepository:
    return _repository(get_settings().table_name)


@router.get(
    "/",
    summary="Work-order statistics for a period (counts, headline figures, stage times)",
    tags=["stats"],
)
def get_stats(
    start: Annotated[
        str | None, Query(alias="from", max_length=32, description="first day (YYYY-MM-DD, Beijing time)")
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", max_length=32, description="last day (YYYY-MM-DD), inclusive")
    ] = None,
) -> PeriodStats:
    caller = caller_of(router)
    grids: frozenset[str] | None
    owned: frozenset[str] | None = None
    if caller.sees_all_orders:
        grids = None
    elif caller.is_grid_worker:
        grids = grids_of(router, caller)
    elif caller.is_department:
        grids, owned = None, owned_forms(router, caller)
    else:
        raise ForbiddenError("statistics are for dispatchers, administrators, grid workers and departments")
    try:
        from_day, to_day = parse_period(start, end, datetime.now(SHANGHAI).date())
    except PeriodError as exc:
        raise Unprocessable(str(exc), field=exc.field) from None
    days = period_days(from_day, to_day)
    if owned is not None:  # departments: their forms' prefill only, no work-order figures
        result = summarize(from_day, to_day, [], {}, frozenset())
        result.prefill = summarize_prefill(prefill_items(get_settings().table_name, days), None, owned)
        return result
    items = stats().period(days)
    result = summarize(from_day, to_day, items.counts, items.histograms, grids)
    pairs = [(row.camera_id, row.type) for row in result.detections]
    detection_counts = DetectionStore(get_settings().table_name).counters_of(days, pairs)
    result.detections = add_detection_counts(result.detections, detection_counts, grids)
    result.prefill = summarize_prefill(prefill_items(get_settings().table_name, days), grids)
    return result
