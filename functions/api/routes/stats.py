"""`/v1/stats`: a period's work-order statistics, from the outbox dispatcher's daily items.

``GET /v1/stats?from=YYYY-MM-DD&to=YYYY-MM-DD`` (Beijing-time days, both inclusive; at most 366
days; defaults: the last 30 days up to today). Bad dates answer 422 naming ``from`` or ``to``.

Answers orders created by category and by grid, transitions into each status, closures by
category and cancellations by reason; the headline counts (``covers_repaired`` = manhole-tilt
orders closed, ``illegal_fishing_stopped``, ``straw_burning_handled``); and median / p90 of each
stage and of alarm-to-clearance (from log-spaced histograms: within one bucket, < 19 %).

Reach: dispatchers and admins see every grid. Grid workers see only their grids (from the user
registry): counts, closures and durations of orders in those grids, and ``grid_ids`` names them.
Technicians (without another role) are answered 403: statistics are not theirs to see.

``prefill`` (issue 6, docs/forms.md): submitted form fields prefilled-confirmed / corrected /
typed new and the prefill ratio, per form, per form and community, and per day (the days'
``PREFILL`` items; grid workers: their grids only).

Cost: BatchGetItem of the days' items only (per day: ``COUNTS`` and one item per histogram), 100
keys a call; never a Scan or a Query over orders.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from smartzone.domain.prefill_stats import summarize_prefill
from smartzone.domain.statistics import PeriodError, PeriodStats, parse_period, period_days, summarize
from smartzone.domain.timeutil import SHANGHAI
from smartzone.repositories.stats import StatsRepository
from smartzone.repositories.submissions import prefill_items
from smartzone.settings import get_settings

from ..context import caller_of, grids_of
from ..errors import ForbiddenError, Unprocessable

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
    if caller.sees_all_orders:
        grids = None
    elif caller.is_grid_worker:
        grids = grids_of(router, caller)
    else:
        raise ForbiddenError("statistics are for dispatchers, administrators and grid workers")
    try:
        from_day, to_day = parse_period(start, end, datetime.now(SHANGHAI).date())
    except PeriodError as exc:
        raise Unprocessable(str(exc), field=exc.field) from None
    days = period_days(from_day, to_day)
    items = stats().period(days)
    result = summarize(from_day, to_day, items.counts, items.histograms, grids)
    result.prefill = summarize_prefill(prefill_items(get_settings().table_name, days), grids)
    return result
