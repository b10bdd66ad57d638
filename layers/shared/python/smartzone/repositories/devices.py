"""Devices (manhole covers) and grids: registry records plus the devices' hot alarm state."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smartzone.domain.alarms import DeviceState
from smartzone.domain.registry import Device, Grid
from smartzone.domain.timeutil import to_iso
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item

BATCH_GET_LIMIT = 100
_REGISTRY_FIELDS = (
    "device_id",
    "name",
    "road",
    "lon",
    "lat",
    "grid_id",
    "device_type",
    "profile",
    "maintenance",
)


class TransientStoreError(Exception):
    """DynamoDB did not answer in time (throttling, unprocessed keys): retry the records later."""


@dataclass(slots=True)
class DeviceRecord:
    device: Device
    state: DeviceState
    version: int


def device_to_item(device: Device, state: DeviceState | None = None, version: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {
        **keys.device_key(device.device_id),
        **keys.device_index_keys(device.device_id, device.grid_id),
        "entity": "device",
        **device.model_dump(mode="json"),
        "state": (state or DeviceState()).model_dump_json(exclude_none=True),
        "version": version,
    }
    return to_item(data)


def device_from_item(item: dict[str, Any]) -> DeviceRecord:
    data = from_item(item)
    device = Device.model_validate({k: data[k] for k in _REGISTRY_FIELDS if k in data})
    state = DeviceState.model_validate_json(data.get("state") or "{}")
    return DeviceRecord(device=device, state=state, version=int(data.get("version", 0)))


def grid_to_item(grid: Grid) -> dict[str, Any]:
    return to_item(
        {
            **keys.grid_key(grid.grid_id),
            **keys.grid_index_keys(grid.grid_id),
            "entity": "grid",
            **grid.model_dump(mode="json"),
        }
    )


def grid_from_item(item: dict[str, Any]) -> Grid:
    data = from_item(item)
    return Grid.model_validate({k: v for k, v in data.items() if k in Grid.model_fields})


class DeviceRepository:
    """Reads devices in batches (one BatchGetItem per 100) and writes registry records."""

    def __init__(self, table_name: str, *, max_unprocessed_retries: int = 5) -> None:
        self.table_name = table_name
        self.max_unprocessed_retries = max_unprocessed_retries

    def batch_get(self, device_ids: list[str]) -> dict[str, DeviceRecord]:
        """Devices by id; unknown ids are absent. Unprocessed keys are retried with backoff."""
        found: dict[str, DeviceRecord] = {}
        ids = sorted(set(device_ids))
        for start in range(0, len(ids), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [to_item(keys.device_key(i)) for i in ids[start : start + BATCH_GET_LIMIT]]
                }
            }
            for attempt in range(self.max_unprocessed_retries + 1):
                response = client("dynamodb").batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    record = device_from_item(item)
                    found[record.device.device_id] = record
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise TransientStoreError(
                    f"{len(request[self.table_name]['Keys'])} device keys left unprocessed"
                )
        return found

    def get(self, device_id: str, *, consistent: bool = False) -> DeviceRecord | None:
        item = (
            client("dynamodb")
            .get_item(
                TableName=self.table_name, Key=to_item(keys.device_key(device_id)), ConsistentRead=consistent
            )
            .get("Item")
        )
        return device_from_item(item) if item else None

    def put_device(self, device: Device) -> None:
        """Create or update a device's registry fields, keeping its hot state and version."""
        existing = self.get(device.device_id)
        state = existing.state if existing else None
        version = existing.version if existing else 0
        client("dynamodb").put_item(TableName=self.table_name, Item=device_to_item(device, state, version))

    def put_grid(self, grid: Grid) -> None:
        client("dynamodb").put_item(TableName=self.table_name, Item=grid_to_item(grid))

    def get_grid(self, grid_id: str) -> Grid | None:
        item = (
            client("dynamodb")
            .get_item(TableName=self.table_name, Key=to_item(keys.grid_key(grid_id)))
            .get("Item")
        )
        return grid_from_item(item) if item else None

    def save_state(self, record: DeviceRecord, state: DeviceState) -> int:
        """Write the hot state if nobody else did since it was read (raises ConditionalCheckFailed)."""
        new_version = record.version + 1
        client("dynamodb").update_item(
            TableName=self.table_name,
            Key=to_item(keys.device_key(record.device.device_id)),
            UpdateExpression="SET #s = :s, #v = :nv, gsi3pk = :g3p, gsi3sk = :g3s",
            ConditionExpression="#v = :v",
            ExpressionAttributeNames={"#s": "state", "#v": "version"},
            ExpressionAttributeValues=to_item(
                {
                    ":s": state_json(state),
                    ":v": record.version,
                    ":nv": new_version,
                    **seen_values(record.device, state),
                }
            ),
        )
        return new_version

    # --- bulk registry writes (the seed loader, imports) ----------------------------------------

    def put_many(
        self,
        devices: list[Device],
        grids: list[Grid],
        *,
        boundaries: dict[str, dict[str, Any]] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RegistryWriteResult:
        """Create or update grids and devices in bulk, keeping every existing device's hot state.

        Reads the devices first (one BatchGetItem per 100); writes grids and new devices with
        BatchWriteItem (25 per call, unprocessed items retried) and updates only the registry
        attributes of devices whose registry record changed (UpdateItem; ``state`` and ``version``
        untouched, or initialised if the item vanished meanwhile). Unchanged devices cost no write,
        so a re-run is cheap. ``boundaries`` (GeoJSON by grid id) are stored on the grid items as a
        JSON string attribute ``boundary``. ``progress(done, total)`` is called as devices land.

        A device created by someone else between the read and the batch write would be overwritten
        with an empty state; only registry imports create devices, so this cannot lose alarm state.
        """
        grid_items = []
        for grid in grids:
            item = grid_to_item(grid)
            if boundaries and grid.grid_id in boundaries:
                item["boundary"] = {"S": dumps_compact(boundaries[grid.grid_id])}
            grid_items.append(item)
        self._batch_write(grid_items)

        existing = self.batch_get([d.device_id for d in devices])
        new = [d for d in devices if d.device_id not in existing]
        changed = [d for d in devices if d.device_id in existing and existing[d.device_id].device != d]
        total = len(new) + len(changed)
        done = 0
        for start in range(0, len(new), BATCH_WRITE_LIMIT):
            chunk = new[start : start + BATCH_WRITE_LIMIT]
            self._batch_write([device_to_item(d) for d in chunk])
            done += len(chunk)
            if progress:
                progress(done, total)
        for device in changed:
            self.update_registry(device)
            done += 1
            if progress and (done % BATCH_WRITE_LIMIT == 0 or done == total):
                progress(done, total)
        return RegistryWriteResult(
            grids=len(grids), created=len(new), updated=len(changed), unchanged=len(devices) - total
        )

    def update_registry(self, device: Device) -> None:
        """Set a device's registry attributes (and index keys) without touching its hot state."""
        attributes = {
            k: v for k, v in device_to_item(device).items() if k not in ("pk", "sk", "state", "version")
        }
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values = {f":a{i}": value for i, value in enumerate(attributes.values())}
        assignments = [f"#a{i} = :a{i}" for i in range(len(attributes))]
        assignments += ["#st = if_not_exists(#st, :st0)", "#ver = if_not_exists(#ver, :ver0)"]
        client("dynamodb").update_item(
            TableName=self.table_name,
            Key=to_item(keys.device_key(device.device_id)),
            UpdateExpression="SET " + ", ".join(assignments),
            ExpressionAttributeNames={**names, "#st": "state", "#ver": "version"},
            ExpressionAttributeValues={
                **values,
                ":st0": {"S": state_json(DeviceState())},
                ":ver0": {"N": "0"},
            },
        )

    def _batch_write(self, items: list[dict[str, Any]]) -> None:
        """PutRequests in chunks of 25; unprocessed items are retried with backoff."""
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
                raise TransientStoreError(f"{len(request[self.table_name])} items left unprocessed")


def seen_values(device: Device, state: DeviceState) -> dict[str, str]:
    """``:g3p``/``:g3s``: the last-seen index entry (offline detection) for a state write."""
    heartbeat = to_iso(state.heartbeat_at) if state.heartbeat_at is not None else "0000"
    seen = keys.seen_index_keys(device.grid_id, device.device_id, heartbeat)
    return {":g3p": seen["gsi3pk"], ":g3s": seen["gsi3sk"]}


def state_json(state: DeviceState) -> str:
    return state.model_dump_json(exclude_none=True)


def dumps_compact(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


BATCH_WRITE_LIMIT = 25


@dataclass(frozen=True, slots=True)
class RegistryWriteResult:
    """What :meth:`DeviceRepository.put_many` wrote."""

    grids: int
    created: int
    updated: int
    unchanged: int
