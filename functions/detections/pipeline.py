"""The detections batch pipeline: parse → check against the camera registry → merge → one write
per camera and type; drone changes → one order each, routed by location.

Reads per batch: one BatchGetItem of the cameras, one of the merge states (per 100), the grid
areas (cached) when drone changes are present. Writes: ONE transaction per camera and type
(:meth:`DetectionStore.write`; split only if it would exceed DynamoDB's 100 items, i.e. more than
97 new orders of one camera and type in one batch), plus one UpdateItem for a camera/type with only below-threshold
detections, plus one conditional put per drone change. Bad messages are rejected with a reason
(acknowledged, copied to the rejects queue, counted); only transient failures are retried.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

from botocore.exceptions import BotoCoreError, ClientError

from smartzone.domain.cameras import Camera, DetectionSetting
from smartzone.domain.detection_merge import Aggregate, MergePlan, MergeState, plan_merge
from smartzone.domain.detection_messages import (
    CameraDetection,
    DetectionRejection,
    DetectionRejectReason,
    DroneChange,
    outside_vendor_prefix,
    parse_detection,
    vendor_prefix,
)
from smartzone.domain.drone_orders import new_drone_order
from smartzone.domain.readings import Rejection
from smartzone.domain.routing import route_point
from smartzone.domain.statistics import stats_day
from smartzone.domain.timeutil import now_ms, to_iso
from smartzone.observability import logger
from smartzone.repositories.cameras import CameraRepository
from smartzone.repositories.detections import (
    TRANSACTION_LIMIT,
    DetectionStore,
    StoreUnavailable,
    WriteOutcome,
    transaction_size,
)
from smartzone.repositories.grid_areas import GridAreaRepository
from smartzone.repositories.rejects import RejectedMessage, RejectSink
from smartzone.repositories.workorders import WorkOrderRepository
from smartzone.settings import Settings
from smartzone.sqs_batch import BatchOutcome as SqsBatchOutcome
from smartzone.sqs_batch import Message, send_rejects

MAX_WRITE_ATTEMPTS = 6
_TRANSIENT = (ClientError, BotoCoreError, StoreUnavailable)


@dataclass
class BatchOutcome(SqsBatchOutcome):
    orders: list[str] = field(default_factory=list)
    """Ids of the orders created or joined."""


class DetectionPipeline:
    def __init__(
        self,
        settings: Settings,
        cameras: CameraRepository,
        store: DetectionStore,
        orders: WorkOrderRepository,
        areas: GridAreaRepository,
        rejects: RejectSink,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.settings = settings
        self.cameras = cameras
        self.store = store
        self.orders = orders
        self.areas = areas
        self.rejects = rejects
        self.clock = clock

    def process(self, messages: Sequence[Message]) -> BatchOutcome:
        outcome = BatchOutcome()
        now = self.clock()
        outcome.counts["received"] = len(messages)
        by_camera: dict[str, list[tuple[str, CameraDetection]]] = defaultdict(list)
        drones: list[tuple[str, DroneChange]] = []
        bodies = {m.message_id: m.body for m in messages}

        def reject(message_id: str, rejection: DetectionRejection) -> None:
            # RejectedMessage reads only ``reason.value``, ``detail`` and ``device_id`` of its rejection.
            outcome.rejected.append(
                RejectedMessage(message_id, bodies[message_id], cast(Rejection, rejection), to_iso(now))
            )
            outcome.counts[f"rejected_{rejection.reason.value}"] += 1

        for message in messages:
            parsed = parse_detection(
                message.body,
                now_ms=now,
                max_future_skew_s=self.settings.max_future_skew_s,
                max_age_s=self.settings.max_reading_age_s,
            )
            if isinstance(parsed, DetectionRejection):
                reject(message.message_id, parsed)
            elif isinstance(parsed, DroneChange):
                drones.append((message.message_id, parsed))
            else:
                by_camera[parsed.camera_id].append((message.message_id, parsed))

        groups = self._group(by_camera, outcome, reject)
        self._merge_all(groups, now, outcome)
        self._drones(drones, now, outcome)
        self._send_rejects(outcome)
        return outcome

    # -- cameras ---------------------------------------------------------------------------------
    def _group(
        self,
        by_camera: dict[str, list[tuple[str, CameraDetection]]],
        outcome: BatchOutcome,
        reject: Callable[[str, DetectionRejection], None],
    ) -> dict[tuple[str, str], tuple[Camera, DetectionSetting, list[tuple[str, CameraDetection]]]]:
        if not by_camera:
            return {}
        try:
            cameras = self.cameras.batch_get(list(by_camera))
        except Exception as exc:  # the registry could not be read: every camera message is retried
            logger.warning("camera registry unreadable; batch retried", extra={"error": str(exc)})
            outcome.failed.update(mid for items in by_camera.values() for mid, _ in items)
            return {}
        groups: dict[tuple[str, str], tuple[Camera, DetectionSetting, list[tuple[str, CameraDetection]]]] = {}
        for camera_id, items in by_camera.items():
            camera = cameras.get(camera_id)
            for message_id, detection in items:
                if camera is None:
                    reject(
                        message_id,
                        DetectionRejection(
                            DetectionRejectReason.UNKNOWN_CAMERA, "camera is not registered", camera_id
                        ),
                    )
                    continue
                if not camera.active:
                    reject(
                        message_id,
                        DetectionRejection(
                            DetectionRejectReason.CAMERA_INACTIVE, "camera is not active", camera_id
                        ),
                    )
                    continue
                if detection.vendor_id and detection.vendor_id != camera.vendor_id:
                    reject(
                        message_id,
                        DetectionRejection(
                            DetectionRejectReason.VENDOR_MISMATCH,
                            "camera is not operated by this vendor",
                            camera_id,
                        ),
                    )
                    continue
                if camera.vendor_id and outside_vendor_prefix(detection.snapshot, camera.vendor_id):
                    reject(
                        message_id,
                        DetectionRejection(
                            DetectionRejectReason.INVALID_SNAPSHOT,
                            f"snapshot_url: not under {vendor_prefix(camera.vendor_id)} (the camera's vendor)",
                            camera_id,
                        ),
                    )
                    continue
                setting = camera.setting_for(detection.type)
                if setting is None:
                    reject(
                        message_id,
                        DetectionRejection(
                            DetectionRejectReason.TYPE_NOT_ENABLED,
                            f"camera does not run {detection.type.value}",
                            camera_id,
                        ),
                    )
                    continue
                key = (camera_id, detection.type.value)
                groups.setdefault(key, (camera, setting, []))[2].append((message_id, detection))
        return groups

    def _merge_all(
        self,
        groups: dict[tuple[str, str], tuple[Camera, DetectionSetting, list[tuple[str, CameraDetection]]]],
        now: int,
        outcome: BatchOutcome,
    ) -> None:
        if not groups:
            return
        try:
            states = self.store.load_states(groups)
        except _TRANSIENT as exc:
            logger.warning("merge states unreadable; batch retried", extra={"error": str(exc)})
            outcome.failed.update(mid for _, _, items in groups.values() for mid, _ in items)
            return
        day = stats_day(to_iso(now))
        for (camera_id, type_), (camera, setting, items) in groups.items():
            detections = sorted((d for _, d in items), key=lambda d: (d.ts, d.fingerprint))
            try:
                state = states[(camera_id, type_)]
                while detections:  # one transaction, unless it would exceed TRANSACTION_LIMIT items
                    state, merged = self._merge(
                        Aggregate(camera, setting, detections), state, now, day, outcome
                    )
                    detections = detections[merged:]
            except (*_TRANSIENT, _Unsettled) as exc:
                logger.warning(
                    "detections not merged; their messages will be retried",
                    extra={"camera_id": camera_id, "type": type_, "error": str(exc)},
                )
                outcome.failed.update(mid for mid, _ in items)

    @staticmethod
    def _plan(
        aggregate: Aggregate, state: MergeState, now: int, joinable: bool, taken: set[str]
    ) -> tuple[MergePlan, int]:
        """The plan of the longest prefix of the (time-ordered) detections that fits one transaction
        (all of them unless a batch opens more than ~97 orders), and the prefix's length."""
        size = len(aggregate.detections)
        while True:
            part = Aggregate(aggregate.camera, aggregate.setting, aggregate.detections[:size])
            plan = plan_merge(part, state, now, order_joinable=joinable, taken_ids=taken)
            if transaction_size(plan) <= TRANSACTION_LIMIT or size == 1:
                return plan, size
            size = max(1, size - (transaction_size(plan) - TRANSACTION_LIMIT))

    def _merge(
        self, aggregate: Aggregate, state: MergeState, now: int, day: str, outcome: BatchOutcome
    ) -> tuple[MergeState, int]:
        """Merge (a prefix of) the detections in one transaction: (the state written, how many)."""
        camera_id, type_ = aggregate.camera.camera_id, aggregate.setting.type.value
        joinable = True
        taken: set[str] = set()
        for attempt in range(MAX_WRITE_ATTEMPTS):
            plan, size = self._plan(aggregate, state, now, joinable, taken)
            if not plan.writes:
                if plan.below_threshold:
                    self.store.count_only(
                        camera_id,
                        type_,
                        day=day,
                        below=plan.below_threshold,
                        grid_id=aggregate.camera.grid_id,
                    )
                self._count(plan.below_threshold, 0, plan.duplicates, outcome)
                return state, size
            result = self.store.write(
                camera_id, type_, plan, day=day, now_ms=now, grid_id=aggregate.camera.grid_id, taken=taken
            )
            if result is WriteOutcome.WRITTEN:
                self._count(plan.below_threshold, plan.dispatched, plan.duplicates, outcome)
                if plan.join is not None:
                    outcome.counts["orders_joined"] += 1
                    outcome.orders.append(plan.join.order_id)
                for order in plan.new_orders:
                    outcome.counts["orders_created"] += 1
                    outcome.orders.append(order.order_id)
                    logger.info(
                        "detection order opened",
                        extra={"order_id": order.order_id, "camera_id": camera_id, "type": type_},
                    )
                return plan.state, size
            outcome.counts["conflicts"] += 1
            if result is WriteOutcome.ORDER_NOT_JOINABLE:
                joinable = False
                continue
            if result is WriteOutcome.ORDER_EXISTS:
                # The id is taken by an older order (cancelled or expired) whose first detection had
                # the same time: the state is unchanged, so plan again with a suffixed id.
                logger.info("detection order id taken; renamed", extra={"taken": sorted(taken)})
                continue
            if result is WriteOutcome.BUSY:
                time.sleep(min(0.02 * 2**attempt, 0.3))
            state = self.store.load_state(camera_id, type_)
            joinable = True
        raise _Unsettled(f"merge of {camera_id}/{type_} did not settle")

    @staticmethod
    def _count(below: int, dispatched: int, duplicates: int, outcome: BatchOutcome) -> None:
        outcome.counts["below_threshold"] += below
        outcome.counts["dispatched"] += dispatched
        outcome.counts["duplicates"] += duplicates

    # -- drones ----------------------------------------------------------------------------------
    def _drones(self, drones: list[tuple[str, DroneChange]], now: int, outcome: BatchOutcome) -> None:
        if not drones:
            return
        try:
            areas = self.areas.all()
        except _TRANSIENT as exc:
            logger.warning("grid areas unreadable; drone changes retried", extra={"error": str(exc)})
            outcome.failed.update(mid for mid, _ in drones)
            return
        for message_id, change in drones:
            route = route_point(change.lon, change.lat, areas, fallback_m=self.settings.route_fallback_m)
            order = new_drone_order(change, route, now)
            try:
                _, created = self.orders.create(order)
            except _TRANSIENT as exc:
                logger.warning("drone order not written; retried", extra={"error": str(exc)})
                outcome.failed.add(message_id)
                continue
            outcome.counts["drone_orders" if created else "duplicates"] += 1
            outcome.orders.append(order.order_id)

    def _send_rejects(self, outcome: BatchOutcome) -> None:
        send_rejects(outcome, self.rejects, log_message="detection rejected", source_key="source_id")


class _Unsettled(Exception):
    """The merge state kept changing under the writes (retried with the messages)."""
