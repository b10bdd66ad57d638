"""Grid boundaries for routing by location, read from the grid registry items.

A grid's boundary lives on its grid item (``GRID#<grid_id>`` / ``GRID``) as the attribute
``boundary``: a GeoJSON Polygon or MultiPolygon in WGS-84, stored as a compact JSON string. The
seed loader writes it; ``PUT /v1/grids/{grid_id}/boundary`` replaces it. All grids are read with
one gsi2 Query of the ``GRIDS`` partition (projected to ``grid_id`` and ``boundary``; never a Scan),
and kept in memory for :data:`DEFAULT_TTL_S` seconds per table, so a Lambda routes a whole batch
(and the next batches of a warm container) with one read. A boundary change reaches a warm
container within the TTL; the writer's own container sees it at once (:meth:`invalidate`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from smartzone.domain.routing import GridArea
from smartzone.observability import logger
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import to_item

DEFAULT_TTL_S = 60.0
_CACHE: dict[str, tuple[Any, float, list[GridArea]]] = {}
"""By table: the client that read it (a new client, e.g. another endpoint, reads anew), when, what."""
_LOCK = threading.Lock()


class GridAreaRepository:
    """Every grid's area (grids without a stored boundary are left out)."""

    def __init__(
        self, table_name: str, *, ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.table_name = table_name
        self.ttl_s = ttl_s
        self.clock = clock

    def all(self) -> list[GridArea]:
        """All grid areas in ``grid_id`` order (cached for ``ttl_s`` seconds)."""
        now = self.clock()
        dynamodb = client("dynamodb")
        with _LOCK:
            cached = _CACHE.get(self.table_name)
        if cached is not None and cached[0] is dynamodb and now - cached[1] < self.ttl_s:
            return cached[2]
        areas = self._read()
        with _LOCK:
            _CACHE[self.table_name] = (dynamodb, now, areas)
        return areas

    def invalidate(self) -> None:
        """Forget the cached areas of this table (after a boundary write)."""
        with _LOCK:
            _CACHE.pop(self.table_name, None)

    def get(self, grid_id: str) -> GridArea | None:
        """One grid's area, read now (not cached); None without a grid or a boundary."""
        item = (
            client("dynamodb")
            .get_item(
                TableName=self.table_name,
                Key=to_item(keys.grid_key(grid_id)),
                ProjectionExpression="grid_id, #b",
                ExpressionAttributeNames={"#b": "boundary"},
                ConsistentRead=True,
            )
            .get("Item")
        )
        return _area_of(item) if item else None

    def put_boundary(self, grid_id: str, area: GridArea) -> bool:
        """Store a grid's boundary on its existing grid item; False when the grid does not exist."""
        try:
            client("dynamodb").update_item(
                TableName=self.table_name,
                Key=to_item(keys.grid_key(grid_id)),
                UpdateExpression="SET #b = :b",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#b": "boundary"},
                ExpressionAttributeValues={":b": {"S": dumps_geometry(area.geojson())}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        self.invalidate()
        return True

    def _read(self) -> list[GridArea]:
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": keys.GSI2,
            "KeyConditionExpression": "gsi2pk = :p",
            "ExpressionAttributeValues": {":p": {"S": keys.grid_index_keys("")["gsi2pk"]}},
            "ProjectionExpression": "grid_id, #b",
            "ExpressionAttributeNames": {"#b": "boundary"},
        }
        areas: list[GridArea] = []
        while True:
            response = client("dynamodb").query(**params)
            for item in response.get("Items", []):
                area = _area_of(item)
                if area is not None:
                    areas.append(area)
            if not response.get("LastEvaluatedKey"):
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return sorted(areas, key=lambda a: a.grid_id)


def _area_of(item: dict[str, Any]) -> GridArea | None:
    grid_id = item.get("grid_id", {}).get("S")
    raw = item.get("boundary", {}).get("S")
    if not grid_id or not raw:
        return None
    try:
        return GridArea.from_geojson(grid_id, json.loads(raw))
    except (
        ValueError,
        KeyError,
        TypeError,
    ) as error:  # a broken stored boundary must not stop routing to the others
        logger.warning("grid boundary unreadable", extra={"grid_id": grid_id, "reason": str(error)})
        return None


def dumps_geometry(geometry: dict[str, Any]) -> str:
    return json.dumps(geometry, separators=(",", ":"))


def clear_cache() -> None:
    """Forget every cached table (tests)."""
    with _LOCK:
        _CACHE.clear()
