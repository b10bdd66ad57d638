"""Devices (manhole covers) and grids: registry records plus the devices' hot alarm state."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from smartzone.domain.alarms import DeviceState
from smartzone.domain.registry import Device, Grid
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item

BATCH_GET_LIMIT = 100
_REGISTRY_FIELDS = ("device_id", "name", "road", "lon", "lat", "grid_id", "device_type", "profile")


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
            UpdateExpression="SET #s = :s, #v = :nv",
            ConditionExpression="#v = :v",
            ExpressionAttributeNames={"#s": "state", "#v": "version"},
            ExpressionAttributeValues=to_item(
                {":s": state_json(state), ":v": record.version, ":nv": new_version}
            ),
        )
        return new_version


def state_json(state: DeviceState) -> str:
    return state.model_dump_json(exclude_none=True)


def dumps_compact(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
