"""The sweeper's transient sweep: detection orders of transient types that closed themselves.

The merge states of open transient orders sit on gsi1 ``DETTRANSIENT`` sorted by due time
(:mod:`smartzone.repositories.detections`): one Query finds those due now. For each, the order is
read and :func:`smartzone.domain.detection_transient.plan_expiry` decides: still ``dispatched`` and
no recurrence within the window → ``expire`` (one conditional write on the order's version). Either
way the state leaves the index (conditional on its version: a detection arriving meanwhile keeps
it, with its new due time), so an acknowledged order is never looked at again.

The index is eventually consistent, the state is re-read strongly: a state whose fresh due time is
still ahead (a detection joined after the index was written) is left alone — it stays on the index
under its new due time and is swept when that comes.
"""

from __future__ import annotations

from collections import Counter

from botocore.exceptions import BotoCoreError, ClientError

from smartzone.domain.detection_transient import plan_expiry
from smartzone.domain.lifecycle import StaleVersion
from smartzone.observability import logger
from smartzone.repositories.detections import DetectionStore
from smartzone.repositories.workorders import WorkOrderRepository

MAX_ATTEMPTS = 3


class TransientSweep:
    def __init__(self, store: DetectionStore, orders: WorkOrderRepository, limit: int = 200) -> None:
        self.store = store
        self.orders = orders
        self.limit = limit

    def run(self, now: int, counts: Counter[str], expired: list[str]) -> None:
        try:
            due = self.store.transient_due(now, self.limit)
        except (ClientError, BotoCoreError) as exc:
            counts["errors"] += 1
            logger.warning("transient sweep could not read its index", extra={"error": str(exc)})
            return
        for item in due:
            fresh_due = item.state.transient_due
            if fresh_due is None or fresh_due > now:
                counts["not_due"] += 1  # stale index entry: released meanwhile, or a detection joined
                continue
            try:
                if item.state.order_id and self._expire(item.state.order_id, now):
                    expired.append(item.state.order_id)
                    counts["expired"] += 1
                self.store.release_transient(item.camera_id, item.type, item.state, now)
            except (ClientError, BotoCoreError) as exc:
                counts["errors"] += 1
                logger.warning(
                    "transient order not expired", extra={"order_id": item.state.order_id, "error": str(exc)}
                )

    def _expire(self, order_id: str, now: int) -> bool:
        for _ in range(MAX_ATTEMPTS):
            order = self.orders.get(order_id)
            plan = plan_expiry(order, now) if order is not None else None
            if order is None or plan is None:
                return False
            try:
                self.orders.apply(plan, order)
                logger.info("transient order expired", extra={"order_id": order_id})
                return True
            except StaleVersion:
                continue
        return False
