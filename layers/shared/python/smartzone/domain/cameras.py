"""The camera registry: AI video cameras along the river bank, at construction sites and enterprises.

A camera reports to one grid (its registered grid routes its orders) and watches a river segment
or a site. For each detection type it runs, it has a confidence threshold (below it a detection is
counted, not dispatched) and a quiet window (repeats within it join the open order).
Detections are pushed by the camera's vendor (``vendor_id``): over MQTT as the camera itself, or
to the HTTPS webhook signed with the vendor's key.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from smartzone.domain.detections import DETECTION_POLICIES, DetectionType
from smartzone.domain.registry import GRID_ID_RE, Latitude, Longitude

CAMERA_ID_RE = re.compile(r"^CAM-[0-9A-Z-]{1,20}$")


class CameraKind(StrEnum):
    RIVER = "river"
    """River-bank camera (7.7 km of the bank)."""
    SITE = "site"
    """Construction site."""
    ENTERPRISE = "enterprise"
    """An enterprise's premises (e.g. its pollution-control equipment)."""


class DetectionSetting(BaseModel):
    """One detection type a camera runs, with its threshold and quiet window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: DetectionType
    min_confidence: float = Field(ge=0, le=1)
    quiet_window_s: int = Field(ge=0, le=7 * 86_400)

    @classmethod
    def default(cls, type_: DetectionType) -> DetectionSetting:
        policy = DETECTION_POLICIES[type_]
        return cls(
            type=type_,
            min_confidence=policy.default_min_confidence,
            quiet_window_s=policy.default_quiet_window_s,
        )


class Camera(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera_id: str = Field(pattern=CAMERA_ID_RE.pattern)
    name: str = Field(min_length=1, max_length=64)
    kind: CameraKind = CameraKind.RIVER
    lon: Longitude
    lat: Latitude
    grid_id: str = Field(pattern=GRID_ID_RE.pattern)
    river_segment: str | None = Field(None, max_length=32)
    site: str | None = Field(None, max_length=64)
    """For site and enterprise cameras: the site's or enterprise's name."""
    vendor_id: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]{1,31}$")
    detections: list[DetectionSetting] = Field(default_factory=list)
    active: bool = True

    @model_validator(mode="after")
    def _one_setting_per_type(self) -> Camera:
        types = [setting.type for setting in self.detections]
        if len(types) != len(set(types)):
            raise ValueError("detections: one setting per detection type")
        return self

    def setting_for(self, type_: DetectionType | str) -> DetectionSetting | None:
        """The camera's setting for a type, or ``None`` when it does not run that type."""
        for setting in self.detections:
            if setting.type == type_:
                return setting
        return None
