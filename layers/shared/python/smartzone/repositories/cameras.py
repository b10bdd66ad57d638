"""The camera registry: one item per camera (``CAMERA#<camera_id>`` / ``CAMERA``).

Lists are index Queries, never Scans: all cameras on gsi2 (``CAMERAS``), a grid's on gsi1
(``GRIDCAMERAS#<grid>``), one kind's on gsi3 (``CAMERAKIND#<kind>``); a grid *and* kind filter
queries the grid's partition with a filter on ``kind``. Reads by id are GetItem or BatchGetItem
(100 keys per call, unprocessed keys retried). Every item carries a ``version``; changes
(:meth:`CameraRepository.change`) are conditional on it, so two concurrent PATCHes never lose
one another's fields.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from smartzone.domain.cameras import Camera, CameraKind
from smartzone.domain.timeutil import now_ms, to_iso
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
WriteOutcome = Literal["created", "updated", "unchanged"]


class CameraStoreError(Exception):
    """DynamoDB left keys unprocessed, or a camera kept changing under a conditional write."""


@dataclass(frozen=True, slots=True)
class CameraRecord:
    camera: Camera
    version: int
    updated_at: str | None


@dataclass(frozen=True, slots=True)
class CameraPage:
    """One index page: each row with its index key (a resume point), and the last key."""

    rows: list[tuple[CameraRecord, dict[str, Any]]]
    last_key: dict[str, Any] | None


def camera_to_item(camera: Camera, version: int, updated_at: str) -> dict[str, Any]:
    return to_item(
        {
            **keys.camera_key(camera.camera_id),
            **keys.camera_index_keys(camera.camera_id, camera.grid_id, camera.kind.value),
            "entity": "camera",
            **camera.model_dump(mode="json"),
            "version": version,
            "updated_at": updated_at,
        }
    )


def camera_from_item(item: dict[str, Any]) -> CameraRecord:
    data = from_item(item)
    camera = Camera.model_validate({k: v for k, v in data.items() if k in Camera.model_fields})
    return CameraRecord(camera=camera, version=int(data.get("version", 0)), updated_at=data.get("updated_at"))


class CameraRepository:
    def __init__(self, table_name: str, *, max_unprocessed_retries: int = 5) -> None:
        self.table_name = table_name
        self.max_unprocessed_retries = max_unprocessed_retries

    # --- reads ---------------------------------------------------------------------------------

    def get(self, camera_id: str, *, consistent: bool = False) -> CameraRecord | None:
        item = (
            client("dynamodb")
            .get_item(
                TableName=self.table_name, Key=to_item(keys.camera_key(camera_id)), ConsistentRead=consistent
            )
            .get("Item")
        )
        return camera_from_item(item) if item else None

    def batch_get(self, camera_ids: list[str]) -> dict[str, Camera]:
        """Cameras by id (one BatchGetItem per 100 ids); unknown ids are absent."""
        return {camera_id: record.camera for camera_id, record in self.batch_get_records(camera_ids).items()}

    def batch_get_records(self, camera_ids: list[str]) -> dict[str, CameraRecord]:
        found: dict[str, CameraRecord] = {}
        ids = sorted(set(camera_ids))
        for start in range(0, len(ids), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [to_item(keys.camera_key(i)) for i in ids[start : start + BATCH_GET_LIMIT]]
                }
            }
            for attempt in range(self.max_unprocessed_retries + 1):
                response = client("dynamodb").batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    record = camera_from_item(item)
                    found[record.camera.camera_id] = record
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise CameraStoreError("camera keys left unprocessed")
        return found

    def query(
        self,
        *,
        grid_id: str | None = None,
        kind: CameraKind | None = None,
        limit: int = 50,
        start_key: dict[str, Any] | None = None,
    ) -> CameraPage:
        """One index page of cameras in id order: a grid's, a kind's, a grid's of one kind, or all."""
        if grid_id is not None:
            index, pk_name, sk_name, value = keys.GSI1, "gsi1pk", "gsi1sk", f"GRIDCAMERAS#{grid_id}"
        elif kind is not None:
            index, pk_name, sk_name, value = keys.GSI3, "gsi3pk", "gsi3sk", f"CAMERAKIND#{kind.value}"
        else:
            index, pk_name, sk_name, value = keys.GSI2, "gsi2pk", "gsi2sk", "CAMERAS"
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": pk_name},
            "ExpressionAttributeValues": {":p": {"S": value}},
            "Limit": limit,
        }
        if grid_id is not None and kind is not None:
            params["FilterExpression"] = "#k = :k"
            params["ExpressionAttributeNames"]["#k"] = "kind"
            params["ExpressionAttributeValues"][":k"] = {"S": kind.value}
        if start_key:
            params["ExclusiveStartKey"] = start_key
        response = client("dynamodb").query(**params)
        rows = [
            (camera_from_item(item), {k: item[k] for k in ("pk", "sk", pk_name, sk_name) if k in item})
            for item in response.get("Items", [])
        ]
        return CameraPage(rows=rows, last_key=response.get("LastEvaluatedKey"))

    # --- writes --------------------------------------------------------------------------------

    def put(self, camera: Camera) -> tuple[CameraRecord, WriteOutcome]:
        """Create or replace a camera (conditional on the version read); unchanged costs no write."""
        for _ in range(5):
            current = self.get(camera.camera_id, consistent=True)
            if current is not None and current.camera == camera:
                return current, "unchanged"
            record = self._write(camera, current)
            if record is not None:
                return record, "updated" if current else "created"
        raise CameraStoreError(f"camera {camera.camera_id} keeps changing")

    def change(
        self, camera_id: str, change: Callable[[Camera], Camera], *, attempts: int = 5
    ) -> tuple[CameraRecord, WriteOutcome] | None:
        """Apply ``change`` to the stored camera (re-read and re-applied on a race); None: no camera."""
        for _ in range(attempts):
            current = self.get(camera_id, consistent=True)
            if current is None:
                return None
            camera = change(current.camera)
            if camera == current.camera:
                return current, "unchanged"
            record = self._write(camera, current)
            if record is not None:
                return record, "updated"
        raise CameraStoreError(f"camera {camera_id} keeps changing")

    def put_many(self, cameras: list[Camera]) -> dict[str, WriteOutcome]:
        """Create or update many cameras (the seed loader, bulk imports): one BatchGetItem per 100,
        BatchWriteItem per 25 new or changed cameras; unchanged cameras are not written.

        Last writer wins per camera (as for the device registry's bulk loads)."""
        existing = self.batch_get_records([c.camera_id for c in cameras])
        outcome: dict[str, WriteOutcome] = {}
        items: list[dict[str, Any]] = []
        at = to_iso(now_ms())
        for camera in cameras:
            current = existing.get(camera.camera_id)
            if current is not None and current.camera == camera:
                outcome[camera.camera_id] = "unchanged"
                continue
            outcome[camera.camera_id] = "updated" if current else "created"
            items.append(camera_to_item(camera, (current.version if current else 0) + 1, at))
        self._batch_write(items)
        return outcome

    def _write(self, camera: Camera, current: CameraRecord | None) -> CameraRecord | None:
        """One conditional put; None when someone else wrote the camera since ``current`` was read."""
        version = (current.version if current else 0) + 1
        at = to_iso(now_ms())
        condition: dict[str, Any] = (
            {
                "ConditionExpression": "#v = :v",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":v": {"N": str(current.version)}},
            }
            if current
            else {"ConditionExpression": "attribute_not_exists(pk)"}
        )
        try:
            client("dynamodb").put_item(
                TableName=self.table_name, Item=camera_to_item(camera, version, at), **condition
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return None
        return CameraRecord(camera=camera, version=version, updated_at=at)

    def _batch_write(self, items: list[dict[str, Any]]) -> None:
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            chunk = items[start : start + BATCH_WRITE_LIMIT]
            request: dict[str, Any] = {self.table_name: [{"PutRequest": {"Item": item}} for item in chunk]}
            for attempt in range(self.max_unprocessed_retries + 1):
                response = client("dynamodb").batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise CameraStoreError("camera items left unprocessed")
