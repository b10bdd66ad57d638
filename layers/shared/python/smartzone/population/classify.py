"""精准归类: classify golden records by configurable rules (``events/population/classification.json``).

- ``residence``: ``registered`` (户籍人口) when the hukou address names the district (any of
  ``registered_markers``), ``floating`` (流动人口) when the person lives here with a hukou
  elsewhere, else the sources' ``residence_hint``, else ``unknown``;
- ``age`` and ``age_band`` on the ``as_of`` date (bands ``[min, max]`` inclusive, max may be null);
- ``community`` / ``grid_id``: by coordinates when the record has ``lon``/``lat`` (the grid polygon
  containing the point, :mod:`smartzone.domain.geo`), else by the address → community/grid table
  (the longest matching ``contains`` fragment wins), else none;
- ``categories``: care categories, each ``all`` of conditions on fields
  (``eq``, ``in``, ``gte``, ``lte``, ``present``); ``age`` is usable as a field.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain import geo
from smartzone.population.models import GoldenRecord


class AgeBand(BaseModel):
    label: str
    min: int
    max: int | None = None


class AddressRule(BaseModel):
    contains: str
    community: str
    grid_id: str


class Condition(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    field: str
    eq: str | None = None
    in_: list[str] | None = Field(default=None, alias="in")
    gte: float | None = None
    lte: float | None = None
    present: bool | None = None

    def holds(self, values: dict[str, Any]) -> bool:
        value = values.get(self.field)
        if self.present is not None and (value not in (None, "")) != self.present:
            return False
        if value is None:
            return self.present is False
        if self.eq is not None and str(value) != self.eq:
            return False
        if self.in_ is not None and str(value) not in self.in_:
            return False
        try:
            if self.gte is not None and float(value) < self.gte:
                return False
            if self.lte is not None and float(value) > self.lte:
                return False
        except ValueError:
            return False
        return True


class CareCategory(BaseModel):
    id: str
    label: str
    all: list[Condition]


class ClassificationConfig(BaseModel):
    version: str
    registered_markers: list[str]
    age_bands: list[AgeBand]
    addresses: list[AddressRule] = Field(default_factory=list)
    care_categories: list[CareCategory] = Field(default_factory=list)


def load_config(path: Path) -> ClassificationConfig:
    return ClassificationConfig.model_validate(json.loads(path.read_text(encoding="utf-8")))


class Classifier:
    """Applies a :class:`ClassificationConfig` (and optional grid polygons) to golden records."""

    def __init__(
        self,
        config: ClassificationConfig,
        as_of: date,
        grids: list[tuple[str, str, dict[str, Any]]] | None = None,
    ) -> None:
        """``grids``: ``(grid_id, community, GeoJSON geometry)`` for classification by location."""
        self.config = config
        self.as_of = as_of
        self.grids = [(g, c, geometry, geo.bbox(geometry)) for g, c, geometry in grids or []]
        self.addresses = sorted(config.addresses, key=lambda a: (-len(a.contains), a.contains))

    def classify(self, record: GoldenRecord | dict[str, Any]) -> dict[str, Any]:
        """Classification of a golden record (a model or its plain-dict form)."""
        if isinstance(record, GoldenRecord):
            values: dict[str, Any] = {k: f.value for k, f in record.fields.items()}
        else:
            values = {k: f["value"] for k, f in record["fields"].items()}
        result: dict[str, Any] = {"residence": self.residence(values)}
        age = self.age(values.get("birth_date"))
        if age is not None:
            values["age"] = age
            result["age"] = age
            result["age_band"] = self.age_band(age)
        community, grid_id, by = self.place(values)
        result.update(community=community, grid_id=grid_id, placed_by=by)
        result["categories"] = [
            c.id for c in self.config.care_categories if all(k.holds(values) for k in c.all)
        ]
        result["rules_version"] = self.config.version
        return result

    def residence(self, values: dict[str, Any]) -> str:
        hukou = values.get("hukou_address")
        if hukou:
            if any(marker in hukou for marker in self.config.registered_markers):
                return "registered"
            if values.get("address"):
                return "floating"
        hint = values.get("residence_hint")
        return hint if hint in ("registered", "floating") else "unknown"

    def age(self, birth: str | None) -> int | None:
        if not birth:
            return None
        born = date.fromisoformat(birth)
        return self.as_of.year - born.year - ((self.as_of.month, self.as_of.day) < (born.month, born.day))

    def age_band(self, age: int) -> str | None:
        for band in self.config.age_bands:
            if age >= band.min and (band.max is None or age <= band.max):
                return band.label
        return None

    def place(self, values: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
        lon, lat = values.get("lon"), values.get("lat")
        if lon and lat:
            x, y = float(lon), float(lat)
            for grid_id, community, geometry, box in self.grids:
                if geo.in_bbox(box, x, y) and geo.contains(geometry, x, y):
                    return community, grid_id, "location"
        address = values.get("address")
        if address:
            for rule in self.addresses:
                if rule.contains in address:
                    return rule.community, rule.grid_id, "address"
        return None, None, None


def grids_from_district(district: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(grid_id, community, boundary)`` from the seed district (``events/seed/district.json``)."""
    return [(g["grid_id"], g["community"], district["boundaries"][g["grid_id"]]) for g in district["grids"]]


class Summary:
    """Counts by residence, age band, community, grid and care category (memory: O(distinct values))."""

    KEYS = ("residence", "age_band", "community", "grid_id")

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = {k: Counter() for k in self.KEYS}
        self.categories: Counter[str] = Counter()

    def add(self, classification: dict[str, Any]) -> None:
        for key in self.KEYS:
            self.counts[key][str(classification.get(key))] += 1
        self.categories.update(classification.get("categories", []))

    def as_dict(self) -> dict[str, dict[str, int]]:
        summary = {k: dict(sorted(v.items())) for k, v in self.counts.items()}
        summary["categories"] = dict(sorted(self.categories.items()))
        return summary


def summarise(classifications: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Counts of a list of classifications (see :class:`Summary`)."""
    summary = Summary()
    for c in classifications:
        summary.add(c)
    return summary.as_dict()
