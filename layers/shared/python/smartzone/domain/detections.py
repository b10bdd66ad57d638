"""Detection types raised by video analytics, drones and patrols, and each type's policy.

Every type becomes its own work-order category (``Category`` has the same values) with its own
severity, SLA targets and, for transient events, an auto-close window: an order that nobody has
acknowledged and that saw no recurrence within ``transient_close_after_s`` closes itself with
that reason (e.g. loitering that stopped).

| type                          | 中文          | severity | ack / resolve    | transient close |
|-------------------------------|---------------|----------|------------------|-----------------|
| ``illegal_dumping``           | 违规倾倒      | medium   | 60 min / 24 h    | –               |
| ``river_loitering``           | 河岸逗留      | low      | 30 min / 4 h     | 30 min          |
| ``straw_burning``             | 秸秆焚烧      | critical | 10 min / 2 h     | –               |
| ``illegal_fishing``           | 非法捕捞      | high     | 15 min / 4 h     | 60 min          |
| ``pollution_equipment_stopped`` | 治污设施停运 | high     | 30 min / 8 h     | –               |
| ``construction_violation``    | 工地违规施工  | medium   | 60 min / 48 h    | –               |
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain.workorders import Severity


class DetectionType(StrEnum):
    ILLEGAL_DUMPING = "illegal_dumping"
    RIVER_LOITERING = "river_loitering"
    STRAW_BURNING = "straw_burning"
    ILLEGAL_FISHING = "illegal_fishing"
    POLLUTION_EQUIPMENT_STOPPED = "pollution_equipment_stopped"
    CONSTRUCTION_VIOLATION = "construction_violation"


class DetectionSource(StrEnum):
    CAMERA = "camera"
    DRONE = "drone"


class DetectionPolicy(BaseModel):
    """How one detection type is dispatched (defaults; cameras may tune threshold and window)."""

    model_config = ConfigDict(frozen=True)

    type: DetectionType
    label_zh: str
    severity: Severity
    acknowledge_s: int = Field(gt=0)
    resolve_s: int = Field(gt=0)
    default_min_confidence: float = Field(ge=0, le=1)
    default_quiet_window_s: int = Field(ge=0)
    """Repeated detections of one camera and type within this window join the open order."""
    transient_close_after_s: int | None = Field(None, gt=0)
    """Transient events: an unacknowledged order without recurrence this long closes itself."""


def _policy(
    type_: DetectionType,
    label_zh: str,
    severity: Severity,
    ack_min: int,
    resolve_h: int,
    confidence: float,
    quiet_min: int,
    transient_min: int | None = None,
) -> DetectionPolicy:
    return DetectionPolicy(
        type=type_,
        label_zh=label_zh,
        severity=severity,
        acknowledge_s=ack_min * 60,
        resolve_s=resolve_h * 3600,
        default_min_confidence=confidence,
        default_quiet_window_s=quiet_min * 60,
        transient_close_after_s=transient_min * 60 if transient_min else None,
    )


DETECTION_POLICIES: Mapping[DetectionType, DetectionPolicy] = {
    p.type: p
    for p in (
        _policy(DetectionType.ILLEGAL_DUMPING, "违规倾倒", Severity.MEDIUM, 60, 24, 0.7, 60),
        _policy(DetectionType.RIVER_LOITERING, "河岸逗留", Severity.LOW, 30, 4, 0.6, 30, transient_min=30),
        _policy(DetectionType.STRAW_BURNING, "秸秆焚烧", Severity.CRITICAL, 10, 2, 0.6, 120),
        _policy(DetectionType.ILLEGAL_FISHING, "非法捕捞", Severity.HIGH, 15, 4, 0.7, 60, transient_min=60),
        _policy(DetectionType.POLLUTION_EQUIPMENT_STOPPED, "治污设施停运", Severity.HIGH, 30, 8, 0.8, 240),
        _policy(DetectionType.CONSTRUCTION_VIOLATION, "工地违规施工", Severity.MEDIUM, 60, 48, 0.7, 240),
    )
}
"""THE per-type policy table (one row per :class:`DetectionType`)."""
