"""Registering cameras: default detection types per camera kind, and settings given in part.

An administrator may register a camera without listing its detections (it then runs its kind's
defaults, below) or list types with only some values (the rest from
:data:`smartzone.domain.detections.DETECTION_POLICIES`, or, when changing a camera, from the
camera's current setting of that type).

| kind         | default detection types                                                |
|--------------|------------------------------------------------------------------------|
| ``river``      | illegal_dumping, river_loitering, illegal_fishing, straw_burning       |
| ``site``       | construction_violation, illegal_dumping                                |
| ``enterprise`` | pollution_equipment_stopped                                            |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain.cameras import CameraKind, DetectionSetting
from smartzone.domain.detections import DetectionType

DEFAULT_DETECTIONS: Mapping[CameraKind, tuple[DetectionType, ...]] = {
    CameraKind.RIVER: (
        DetectionType.ILLEGAL_DUMPING,
        DetectionType.RIVER_LOITERING,
        DetectionType.ILLEGAL_FISHING,
        DetectionType.STRAW_BURNING,
    ),
    CameraKind.SITE: (DetectionType.CONSTRUCTION_VIOLATION, DetectionType.ILLEGAL_DUMPING),
    CameraKind.ENTERPRISE: (DetectionType.POLLUTION_EQUIPMENT_STOPPED,),
}


class DetectionSettingInput(BaseModel):
    """A detection type to run; omitted values come from the current setting or the type's policy."""

    model_config = ConfigDict(extra="forbid")

    type: DetectionType
    min_confidence: float | None = Field(None, ge=0, le=1)
    quiet_window_s: int | None = Field(None, ge=0, le=7 * 86_400)


def default_detections(kind: CameraKind) -> list[DetectionSetting]:
    return [DetectionSetting.default(t) for t in DEFAULT_DETECTIONS[kind]]


def resolve_settings(
    inputs: Sequence[DetectionSettingInput], current: Sequence[DetectionSetting] = ()
) -> list[DetectionSetting]:
    """Full settings from partial inputs (in the inputs' order; duplicates are left for
    :class:`Camera` validation to refuse)."""
    known = {setting.type: setting for setting in current}
    out = []
    for given in inputs:
        base = known.get(given.type) or DetectionSetting.default(given.type)
        out.append(
            DetectionSetting(
                type=given.type,
                min_confidence=base.min_confidence if given.min_confidence is None else given.min_confidence,
                quiet_window_s=base.quiet_window_s if given.quiet_window_s is None else given.quiet_window_s,
            )
        )
    return out
