"""Merging, not flooding: a batch of one camera's detections of one type → ONE write plan.

Pure logic. Per (camera, type) the table keeps a merge state (:class:`MergeState`: the open order,
its detection summary, a version, recent detection fingerprints). For each batch the pipeline
calls :func:`plan_merge`, which

1. drops detections already merged (fingerprint seen: duplicate delivery) and exact duplicates;
2. COUNTS those below the camera's threshold for the type (``below_threshold``), dispatching none;
3. walks the rest in device-time order: a detection within the quiet window of the open order's
   last detection JOINS it (count, first/last seen, max confidence, up to :data:`MAX_SNAPSHOTS`
   snapshots, track ids); otherwise it OPENS a new order (title/description in Chinese, severity
   and SLA from the policy, routed by the camera's registered grid, ``routing.method=registry``);
4. returns the new state, with ``version + 1``: the repository writes everything in one
   transaction conditioned on the version read (a concurrent writer makes it fail; the pipeline
   re-reads and plans again, so exactly one order results).

``order_joinable=False`` says the open order can no longer be joined (it was resolved, closed or
cancelled meanwhile): the next detection opens a new order. ``taken_ids`` are order ids found
taken when writing (an earlier order of the camera and type, since cancelled or expired, had the
same first detection time): a new order avoids them with a suffix (``…-DUMP-2``, ``-3`` …).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from smartzone.domain.cameras import Camera, DetectionSetting
from smartzone.domain.detection_messages import CameraDetection
from smartzone.domain.detections import DETECTION_POLICIES, DetectionPolicy, DetectionSource
from smartzone.domain.timeutil import to_iso, to_local_display
from smartzone.domain.workorders import (
    Category,
    DetectionSummary,
    OrderLocation,
    OrderStatus,
    Routing,
    RoutingMethod,
    TimelineEntry,
    WorkOrder,
)

MAX_SNAPSHOTS = 5
"""Snapshots kept per order: the first one and the latest ``MAX_SNAPSHOTS - 1``."""
MAX_TRACK_IDS = 20
MAX_FINGERPRINTS = 1024
"""Recent detection fingerprints kept per camera and type, to recognise a re-delivered detection."""
DETECTION_ACTOR = "system:detections"
SYSTEM_ROLE = "system"

TYPE_CODES = {
    "illegal_dumping": "DUMP",
    "river_loitering": "LOIT",
    "straw_burning": "BURN",
    "illegal_fishing": "FISH",
    "pollution_equipment_stopped": "POLL",
    "construction_violation": "CONS",
}


class MergeState(BaseModel):
    """What the table keeps per (camera, type) between batches."""

    version: int = 0
    """0: no state item yet."""
    order_id: str | None = None
    """The order detections join (until it is no longer joinable)."""
    first_seen: int | None = None
    last_seen: int | None = None
    count: int = 0
    max_confidence: float = 0.0
    snapshots: list[str] = Field(default_factory=list)
    track_ids: list[str] = Field(default_factory=list)
    seen: list[str] = Field(default_factory=list)
    """Fingerprints of the latest merged detections (at most :data:`MAX_FINGERPRINTS`)."""
    transient_due: int | None = None
    """For transient types: when the open order closes itself unless acknowledged or recurring."""


@dataclass
class _Run:
    order_id: str
    joined: bool
    """True: detections join the state's open order; False: they make a new order."""
    first_seen: int
    last_seen: int
    count: int
    max_confidence: float
    snapshots: list[str]
    track_ids: list[str]
    added: int = 0


@dataclass(frozen=True)
class OrderJoin:
    """Detections that join an existing order: its new detection summary."""

    order_id: str
    summary: DetectionSummary
    added: int


@dataclass(frozen=True)
class MergePlan:
    state: MergeState
    expected_version: int
    join: OrderJoin | None = None
    new_orders: tuple[WorkOrder, ...] = ()
    below_threshold: int = 0
    dispatched: int = 0
    """Detections at or above the threshold merged into an order (joined or new)."""
    duplicates: int = 0

    @property
    def writes(self) -> bool:
        """Whether the state (and orders) must be written."""
        return self.join is not None or bool(self.new_orders)


@dataclass(frozen=True)
class Aggregate:
    """One batch's detections of one camera and type, as the pipeline hands them over."""

    camera: Camera
    setting: DetectionSetting
    detections: Sequence[CameraDetection] = field(default_factory=tuple)


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y%m%dT%H%M%S") + f"{ms % 1000:03d}"


def detection_order_id(camera_id: str, type_: str, first_seen: int, taken: Collection[str] = ()) -> str:
    """Deterministic: the first detection of a new order names it; an id in ``taken`` (an older
    order, cancelled or expired, opened by a detection of the same time) gets a suffix ``-2``, ``-3`` …"""
    base = f"DT-{_stamp(first_seen)}-{camera_id}-{TYPE_CODES.get(type_, 'DET')}"
    order_id, n = base, 1
    while order_id in taken:
        n += 1
        order_id = f"{base}-{n}"
    return order_id


def _keep_snapshots(current: list[str], new: Iterable[str]) -> list[str]:
    merged = list(current)
    for key in new:
        if key and key not in merged:
            merged.append(key)
    if len(merged) <= MAX_SNAPSHOTS:
        return merged
    return [merged[0], *merged[-(MAX_SNAPSHOTS - 1) :]]


def _keep_tracks(current: list[str], new: Iterable[str]) -> list[str]:
    merged = list(current)
    for track in new:
        if track and track not in merged and len(merged) < MAX_TRACK_IDS:
            merged.append(track)
    return merged


def _summary(camera_id: str, type_: str, run: _Run) -> DetectionSummary:
    return DetectionSummary(
        source=DetectionSource.CAMERA.value,
        type=type_,
        camera_id=camera_id,
        count=run.count,
        first_seen=to_iso(run.first_seen),
        last_seen=to_iso(run.last_seen),
        max_confidence=round(run.max_confidence, 4),
        snapshots=run.snapshots,
        track_ids=run.track_ids,
    )


def camera_order_text(
    camera: Camera, policy: DetectionPolicy, first_seen: int, confidence: float
) -> tuple[str, str]:
    """Title and description in Chinese (what the grid worker reads)."""
    where = camera.site or camera.river_segment or camera.name
    title = f"{policy.label_zh}:{camera.name}"
    text = (
        f"摄像头 {camera.name}({camera.camera_id},{where},网格 {camera.grid_id})于 "
        f"{to_local_display(first_seen)}(北京时间)识别到{policy.label_zh},置信度 {confidence:.0%}。"
        "请前往现场核查并处置;同一摄像头的重复识别会并入本工单。"
    )
    return title, text


def new_camera_order(camera: Camera, policy: DetectionPolicy, run: _Run, now_ms: int) -> WorkOrder:
    title, text = camera_order_text(camera, policy, run.first_seen, run.max_confidence)
    now = to_iso(now_ms)
    return WorkOrder(
        order_id=run.order_id,
        status=OrderStatus.DISPATCHED,
        category=Category(policy.type.value),
        severity=policy.severity,
        source="camera",
        grid_id=camera.grid_id,
        title=title,
        description=text,
        location=OrderLocation(lon=camera.lon, lat=camera.lat, name=camera.name),
        detection=_summary(camera.camera_id, policy.type.value, run),
        routing=Routing(method=RoutingMethod.REGISTRY, note=f"摄像头 {camera.camera_id} 登记的网格"),
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
                note=f"视频识别:{text}",
            )
        ],
    )


def split_threshold(
    detections: Iterable[CameraDetection], setting: DetectionSetting
) -> tuple[list[CameraDetection], int]:
    """(detections at or above the camera's threshold, how many were below it)."""
    above: list[CameraDetection] = []
    below = 0
    for detection in detections:
        if detection.confidence >= setting.min_confidence:
            above.append(detection)
        else:
            below += 1
    return above, below


def plan_merge(
    aggregate: Aggregate,
    state: MergeState,
    now_ms: int,
    *,
    order_joinable: bool = True,
    taken_ids: Collection[str] = (),
) -> MergePlan:
    """The write plan of one batch for one camera and type (see the module docstring)."""
    camera, setting = aggregate.camera, aggregate.setting
    policy = DETECTION_POLICIES[setting.type]
    window_ms = setting.quiet_window_s * 1000
    seen = set(state.seen)
    fresh: list[CameraDetection] = []
    duplicates = 0
    for detection in sorted(set(aggregate.detections), key=lambda d: (d.ts, d.fingerprint)):
        if detection.fingerprint in seen:
            duplicates += 1
            continue
        fresh.append(detection)
    duplicates += len(aggregate.detections) - len(set(aggregate.detections))
    above, below = split_threshold(fresh, setting)

    runs: list[_Run] = []
    current: _Run | None = None
    if state.order_id and order_joinable and state.last_seen is not None and state.first_seen is not None:
        current = _Run(
            order_id=state.order_id,
            joined=True,
            first_seen=state.first_seen,
            last_seen=state.last_seen,
            count=state.count,
            max_confidence=state.max_confidence,
            snapshots=list(state.snapshots),
            track_ids=list(state.track_ids),
        )
    for detection in above:
        if current is None or detection.ts - current.last_seen > window_ms:
            current = _Run(
                order_id=detection_order_id(camera.camera_id, setting.type.value, detection.ts, taken_ids),
                joined=False,
                first_seen=detection.ts,
                last_seen=detection.ts,
                count=0,
                max_confidence=0.0,
                snapshots=[],
                track_ids=[],
            )
        if not runs or runs[-1] is not current:
            runs.append(current)
        current.first_seen = min(current.first_seen, detection.ts)
        current.last_seen = max(current.last_seen, detection.ts)
        current.count += 1
        current.added += 1
        current.max_confidence = max(current.max_confidence, detection.confidence)
        current.snapshots = _keep_snapshots(current.snapshots, [detection.snapshot])
        current.track_ids = _keep_tracks(current.track_ids, [detection.track_id])

    join: OrderJoin | None = None
    new_orders: list[WorkOrder] = []
    for run in runs:
        if run.joined:
            join = OrderJoin(run.order_id, _summary(camera.camera_id, setting.type.value, run), run.added)
        else:
            new_orders.append(new_camera_order(camera, policy, run, now_ms))

    new_state = state.model_copy(deep=True)
    if runs:
        last = runs[-1]
        transient = policy.transient_close_after_s
        new_state = MergeState(
            version=state.version + 1,
            order_id=last.order_id,
            first_seen=last.first_seen,
            last_seen=last.last_seen,
            count=last.count,
            max_confidence=last.max_confidence,
            snapshots=last.snapshots,
            track_ids=last.track_ids,
            seen=[*state.seen, *(d.fingerprint for d in above)][-MAX_FINGERPRINTS:],
            transient_due=last.last_seen + transient * 1000 if transient else None,
        )
    return MergePlan(
        state=new_state,
        expected_version=state.version,
        join=join,
        new_orders=tuple(new_orders),
        below_threshold=below,
        dispatched=len(above),
        duplicates=duplicates,
    )
