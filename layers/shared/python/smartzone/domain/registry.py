"""The device and grid registry: manhole covers, grids, their grid workers, alarm profiles."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEVICE_ID_RE = re.compile(r"^[A-Z]{2,4}-[0-9A-Z]{2,12}$")
GRID_ID_RE = re.compile(r"^G[0-9A-Z-]{1,15}$")

Longitude = Annotated[float, Field(ge=-180, le=180)]
Latitude = Annotated[float, Field(ge=-90, le=90)]


class AlarmProfile(BaseModel):
    """Thresholds of one device (or a named profile shared by many): raise/clear with hysteresis."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "default"
    tilt_raise_deg: float = Field(20.0, gt=0, le=180)
    tilt_clear_deg: float = Field(10.0, ge=0, le=180)
    tilt_clear_window_s: int = Field(300, ge=0, le=86_400)
    battery_low_pct: float = Field(20.0, ge=0, le=100)
    battery_clear_pct: float = Field(30.0, ge=0, le=100)
    battery_clear_window_s: int = Field(3600, ge=0, le=7 * 86_400)
    offline_after_s: int = Field(3600, ge=60)

    @model_validator(mode="after")
    def _hysteresis(self) -> AlarmProfile:
        if self.tilt_clear_deg >= self.tilt_raise_deg:
            raise ValueError("tilt_clear_deg must be below tilt_raise_deg")
        if self.battery_clear_pct <= self.battery_low_pct:
            raise ValueError("battery_clear_pct must be above battery_low_pct")
        return self


DEFAULT_PROFILE = AlarmProfile()


class GridWorker(BaseModel):
    """A community grid worker (网格员) responsible for one grid."""

    model_config = ConfigDict(extra="forbid")

    worker_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=64)
    phone: str = Field(pattern=r"^1[3-9][0-9]{9}$")
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    webhook_url: str | None = Field(None, pattern=r"^https://")


class Grid(BaseModel):
    """A grid (网格): the smallest unit of community governance, with its responsible workers."""

    model_config = ConfigDict(extra="forbid")

    grid_id: str
    name: str = Field(min_length=1, max_length=64)
    community: str = Field(min_length=1, max_length=64)
    workers: list[GridWorker] = Field(default_factory=list)

    @field_validator("grid_id")
    @classmethod
    def _grid_id(cls, value: str) -> str:
        if not GRID_ID_RE.match(value):
            raise ValueError("grid_id must look like G01")
        return value


class MaintenanceWindow(BaseModel):
    """A period during which a device (or every device of a grid) raises no new alarms."""

    model_config = ConfigDict(extra="forbid")

    window_id: str = Field(min_length=1, max_length=64)
    start: str
    """ISO-8601 UTC."""
    end: str
    reason: str = Field("", max_length=200)
    scope: str = Field("device", pattern=r"^(device|grid)$")


class Device(BaseModel):
    """A manhole cover with its tilt sensor. ``device_id`` is the cover's own id (身份证号)."""

    model_config = ConfigDict(extra="forbid")

    device_id: str
    name: str = Field(min_length=1, max_length=64)
    road: str = Field(min_length=1, max_length=64)
    lon: Longitude
    lat: Latitude
    grid_id: str
    device_type: str = "manhole_cover"
    profile: AlarmProfile = DEFAULT_PROFILE
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    """Windows silencing new alarms (device's own, and copies of its grid's); stored on the device item."""

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str) -> str:
        if not DEVICE_ID_RE.match(value):
            raise ValueError("device_id must look like MH-0178")
        return value

    @property
    def short_name(self) -> str:
        """How people name the cover in Chinese text: ``178号窨井盖``."""
        number = self.device_id.split("-", 1)[1].lstrip("0") or "0"
        return f"{number}号窨井盖"


def is_valid_device_id(value: str) -> bool:
    return bool(DEVICE_ID_RE.match(value))
