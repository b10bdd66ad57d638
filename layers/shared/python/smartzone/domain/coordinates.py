"""Chinese map coordinate systems → WGS-84, the only system the platform stores.

Chinese map data is often in one of two obfuscated systems:

- **GCJ-02** ("Mars coordinates", 国测局坐标): WGS-84 shifted by a published, non-invertible
  polynomial offset (100–700 m). Used by AMap/Gaode, Tencent and Google maps in China. Points
  outside China are not shifted (the usual coarse rectangle, :func:`out_of_china`).
- **BD-09** (百度坐标): Baidu's further rotation and scaling of GCJ-02.

Forward formulas (WGS-84 → GCJ-02 → BD-09) are the published ones (as in eviltransform and
coordtransform). The inverses have no closed form: each is found by fixed-point iteration of the
forward formula (start at the input, subtract the forward error, repeat) until the forward image
matches the input within :data:`INVERSE_TOLERANCE_DEG` (about 1 mm), far inside the 0.5 m the
platform promises. Pure Python, no dependency (the PyPI packages for this are unmaintained).

Every import declares its ``crs`` (:data:`Crs`); :func:`to_wgs84` converts on the way in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

Crs = Literal["WGS-84", "GCJ-02", "BD-09"]
CRS_VALUES: tuple[Crs, ...] = ("WGS-84", "GCJ-02", "BD-09")

_A = 6378245.0
"""Krasovsky 1940 semi-major axis, used by GCJ-02."""
_EE = 0.00669342162296594323
"""Krasovsky 1940 first eccentricity squared."""
_X_PI = math.pi * 3000.0 / 180.0
INVERSE_TOLERANCE_DEG = 1e-8
"""Stop inverting when the forward image is this close to the input (~1 mm)."""
MAX_ITERATIONS = 30


def out_of_china(lon: float, lat: float) -> bool:
    """Outside the rectangle in which GCJ-02 shifts points (the conventional coarse test)."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 → GCJ-02 (unchanged outside China)."""
    if out_of_china(lon, lat):
        return lon, lat
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    rad_lat = math.radians(lat)
    magic = 1 - _EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return lon + dlon, lat + dlat


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 → BD-09."""
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def _bd09_to_gcj02_approx(lon: float, lat: float) -> tuple[float, float]:
    """The published closed-form inverse (centimetre-level error): the iteration's start."""
    x, y = lon - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def _invert(
    forward: Callable[[float, float], tuple[float, float]],
    lon: float,
    lat: float,
    start: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """The point ``p`` with ``forward(p) ≈ (lon, lat)``, by fixed-point iteration."""
    guess_lon, guess_lat = start if start is not None else (lon, lat)
    for _ in range(MAX_ITERATIONS):
        image_lon, image_lat = forward(guess_lon, guess_lat)
        error_lon, error_lat = image_lon - lon, image_lat - lat
        if abs(error_lon) < INVERSE_TOLERANCE_DEG and abs(error_lat) < INVERSE_TOLERANCE_DEG:
            break
        guess_lon, guess_lat = guess_lon - error_lon, guess_lat - error_lat
    return guess_lon, guess_lat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 → WGS-84 (unchanged outside China), by iteration to about 1 mm."""
    if out_of_china(lon, lat):
        return lon, lat
    return _invert(wgs84_to_gcj02, lon, lat)


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """BD-09 → GCJ-02, by iteration from the closed-form approximation."""
    return _invert(gcj02_to_bd09, lon, lat, start=_bd09_to_gcj02_approx(lon, lat))


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(lon: float, lat: float, crs: Crs) -> tuple[float, float]:
    """A point declared in ``crs``, in WGS-84."""
    if crs == "WGS-84":
        return lon, lat
    if crs == "GCJ-02":
        return gcj02_to_wgs84(lon, lat)
    if crs == "BD-09":
        return bd09_to_wgs84(lon, lat)
    raise ValueError(f"unknown coordinate system {crs!r}; expected one of {', '.join(CRS_VALUES)}")


def from_wgs84(lon: float, lat: float, crs: Crs) -> tuple[float, float]:
    """A WGS-84 point in ``crs`` (for exports to Chinese map services)."""
    if crs == "WGS-84":
        return lon, lat
    if crs == "GCJ-02":
        return wgs84_to_gcj02(lon, lat)
    if crs == "BD-09":
        return wgs84_to_bd09(lon, lat)
    raise ValueError(f"unknown coordinate system {crs!r}; expected one of {', '.join(CRS_VALUES)}")


def geometry_to_wgs84(coordinates: Any, crs: Crs, *, precision: int = 7) -> Any:
    """Nested GeoJSON coordinates (any depth) converted to WGS-84, rounded to ``precision`` places.

    Closed rings stay closed: equal input positions convert to equal output positions.
    """
    if isinstance(coordinates, Sequence) and coordinates and isinstance(coordinates[0], int | float):
        lon, lat = to_wgs84(float(coordinates[0]), float(coordinates[1]), crs)
        return [round(lon, precision), round(lat, precision)]
    return [geometry_to_wgs84(item, crs, precision=precision) for item in coordinates]
