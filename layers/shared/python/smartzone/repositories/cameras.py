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
from smartzone.repositories.dynamo_ops import batch_get_items, batch_put_items, query_index_page

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
        items = batch_get_items(
            client("dynamodb"),
            self.table_name,
            [to_item(keys.camera_key(i)) for i in sorted(set(camera_ids))],
            max_unprocessed_retries=self.max_unprocessed_retries,
            unprocessed=lambda _: CameraStoreError("camera keys left unprocessed"),
            sleep=time.sleep,
        )
        records = (camera_from_item(item) for item in items)
        return {record.camera.camera_id: record for record in records}

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
        items, last_key = query_index_page(
            client("dynamodb"),
            self.table_name,
            index,
            pk_name,
            sk_name,
            value,
            limit=limit,
            start_key=start_key,
            equals=("kind", kind.value) if grid_id is not None and kind is not None else None,
        )
        return CameraPage(rows=[(camera_from_item(item), key) for item, key in items], last_key=last_key)

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
        batch_put_items(
            client("dynamodb"),
            self.table_name,
            items,
            max_unprocessed_retries=self.max_unprocessed_retries,
            unprocessed=lambda _: CameraStoreError("camera items left unprocessed"),
            sleep=time.sleep,
        )
