"""Devices (manhole covers) and grids: registry records plus the devices' hot alarm state."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from smartzone.domain.alarms import DeviceState
from smartzone.domain.registry import Device, Grid, GridWorker, MaintenanceWindow
from smartzone.domain.timeutil import to_iso
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, serialize, to_item
from smartzone.repositories.dynamo_ops import (
    BATCH_WRITE_LIMIT,
    batch_get_items,
    batch_put_items,
    query_index_page,
)

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
        items = batch_get_items(
            client("dynamodb"),
            self.table_name,
            [to_item(keys.device_key(i)) for i in sorted(set(device_ids))],
            max_unprocessed_retries=self.max_unprocessed_retries,
            unprocessed=lambda left: TransientStoreError(f"{left} device keys left unprocessed"),
            sleep=time.sleep,
        )
        records = (device_from_item(item) for item in items)
        return {record.device.device_id: record for record in records}

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
        batch_put_items(
            client("dynamodb"),
            self.table_name,
            items,
            max_unprocessed_retries=self.max_unprocessed_retries,
            unprocessed=lambda left: TransientStoreError(f"{left} items left unprocessed"),
            sleep=time.sleep,
        )

    # --- issue 3: the registry API (devices and grids by key or index Query, never Scan) -------

    def query_devices(
        self, grid_id: str | None, *, limit: int, start_key: dict[str, Any] | None = None
    ) -> DevicePage:
        """One index page of devices in id order: a grid's (gsi1 ``GRIDDEVICES#<grid>``) or all
        (gsi2 ``DEVICES``). Each row carries its index key, so a caller that stops mid-page can
        resume right after any row."""
        index, pk_name, sk_name, value = (
            (keys.GSI2, "gsi2pk", "gsi2sk", "DEVICES")
            if grid_id is None
            else (keys.GSI1, "gsi1pk", "gsi1sk", f"GRIDDEVICES#{grid_id}")
        )
        items, last_key = query_index_page(
            client("dynamodb"),
            self.table_name,
            index,
            pk_name,
            sk_name,
            value,
            limit=limit,
            start_key=start_key,
        )
        return DevicePage(rows=[(device_from_item(item), key) for item, key in items], last_key=last_key)

    def grid_devices(self, grid_id: str) -> list[DeviceRecord]:
        """Every device of a grid (gsi1 Query, all pages)."""
        out: list[DeviceRecord] = []
        start: dict[str, Any] | None = None
        while True:
            page = self.query_devices(grid_id, limit=500, start_key=start)
            out.extend(record for record, _ in page.rows)
            if not page.last_key:
                return out
            start = page.last_key

    def register_devices(self, devices: list[Device]) -> dict[str, str]:
        """Create or update devices' registry records; ``created``/``updated``/``unchanged`` by id.

        Hot state, version and maintenance windows of existing devices are never touched (windows
        have their own endpoints); unchanged devices cost no write. Reads one BatchGetItem per
        100 devices, writes new devices with BatchWriteItem and changed ones with UpdateItem.
        """
        existing = self.batch_get([d.device_id for d in devices])
        outcome: dict[str, str] = {}
        new: list[Device] = []
        for device in devices:
            current = existing.get(device.device_id)
            if current is None:
                new.append(device.model_copy(update={"maintenance": []}))
                outcome[device.device_id] = "created"
                continue
            merged = device.model_copy(update={"maintenance": current.device.maintenance})
            if merged == current.device:
                outcome[device.device_id] = "unchanged"
            else:
                self._update_registry_fields(merged)
                outcome[device.device_id] = "updated"
        self._batch_write([device_to_item(d) for d in new])
        return outcome

    def _update_registry_fields(self, device: Device) -> None:
        """Like :meth:`update_registry`, but leaves ``maintenance`` alone (no lost window)."""
        attributes = {
            k: v
            for k, v in device_to_item(device).items()
            if k not in ("pk", "sk", "state", "version", "maintenance")
        }
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values = {f":a{i}": value for i, value in enumerate(attributes.values())}
        assignments = [f"#a{i} = :a{i}" for i in range(len(attributes))]
        assignments += [
            "#st = if_not_exists(#st, :st0)",
            "#ver = if_not_exists(#ver, :ver0)",
            "#mw = if_not_exists(#mw, :mw0)",
        ]
        client("dynamodb").update_item(
            TableName=self.table_name,
            Key=to_item(keys.device_key(device.device_id)),
            UpdateExpression="SET " + ", ".join(assignments),
            ExpressionAttributeNames={**names, "#st": "state", "#ver": "version", "#mw": "maintenance"},
            ExpressionAttributeValues={
                **values,
                ":st0": {"S": state_json(DeviceState())},
                ":ver0": {"N": "0"},
                ":mw0": {"L": []},
            },
        )

    def change_maintenance(
        self,
        device_id: str,
        change: Callable[[list[MaintenanceWindow]], list[MaintenanceWindow] | None],
        *,
        item: dict[str, Any] | None = None,
        attempts: int = 5,
    ) -> DeviceRecord | None:
        """Rewrite a device's maintenance windows as ``change(current)`` decides (None: no write).

        One conditional UpdateItem of the ``maintenance`` attribute only, guarded by the list read
        (a concurrent change is re-read and ``change`` called again); hot state is not touched.
        ``item``: the device item already read (e.g. from an index page) for the first attempt.
        Returns the device as written (or as read when nothing changed); None when it does not exist.
        """
        for _ in range(attempts):
            if item is None:
                item = (
                    client("dynamodb")
                    .get_item(
                        TableName=self.table_name,
                        Key=to_item(keys.device_key(device_id)),
                        ConsistentRead=True,
                    )
                    .get("Item")
                )
                if not item:
                    return None
            record = device_from_item(item)
            windows = change(list(record.device.maintenance))
            if windows is None:
                return record
            old = item.get("maintenance")
            new_value = serialize([w.model_dump(mode="json") for w in windows])
            condition = "attribute_exists(pk) AND " + (
                "#mw = :old" if old is not None else "attribute_not_exists(#mw)"
            )
            values: dict[str, Any] = {":new": new_value}
            if old is not None:
                values[":old"] = old
            try:
                client("dynamodb").update_item(
                    TableName=self.table_name,
                    Key=to_item(keys.device_key(device_id)),
                    UpdateExpression="SET #mw = :new",
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#mw": "maintenance"},
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                item = None
                continue
            record.device = record.device.model_copy(update={"maintenance": windows})
            return record
        raise TransientStoreError(f"maintenance windows of {device_id} keep changing")

    def grid_device_items(self, grid_id: str) -> list[dict[str, Any]]:
        """The raw items of a grid's devices (gsi1 Query, all pages), for conditional rewrites."""
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": keys.GSI1,
            "KeyConditionExpression": "gsi1pk = :p",
            "ExpressionAttributeValues": {":p": {"S": f"GRIDDEVICES#{grid_id}"}},
        }
        while True:
            response = client("dynamodb").query(**params)
            out.extend(response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                return out
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # grids

    def query_grids(self, *, limit: int, start_key: dict[str, Any] | None = None) -> GridPage:
        """One page of grids in id order (gsi2 ``GRIDS``)."""
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": keys.GSI2,
            "KeyConditionExpression": "gsi2pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "GRIDS"}},
            "Limit": limit,
        }
        if start_key:
            params["ExclusiveStartKey"] = start_key
        response = client("dynamodb").query(**params)
        rows = [
            (grid_from_item(item), {k: item[k] for k in ("pk", "sk", "gsi2pk", "gsi2sk")})
            for item in response.get("Items", [])
        ]
        return GridPage(rows=rows, last_key=response.get("LastEvaluatedKey"))

    def get_grids(self, grid_ids: list[str]) -> dict[str, Grid]:
        """Grids by id (BatchGetItem; unknown ids absent)."""
        items = batch_get_items(
            client("dynamodb"),
            self.table_name,
            [to_item(keys.grid_key(i)) for i in sorted(set(grid_ids))],
            max_unprocessed_retries=self.max_unprocessed_retries,
            unprocessed=lambda _: TransientStoreError("grid keys left unprocessed"),
            sleep=time.sleep,
        )
        grids = (grid_from_item(item) for item in items)
        return {grid.grid_id: grid for grid in grids}

    def save_grid_fields(self, grid_id: str, name: str, community: str) -> tuple[Grid, bool]:
        """Create a grid or set its name and community; its workers and boundary are kept.

        Returns the grid as stored and whether it was created."""
        response = client("dynamodb").update_item(
            TableName=self.table_name,
            Key=to_item(keys.grid_key(grid_id)),
            UpdateExpression=(
                "SET #n = :n, #c = :c, grid_id = :g, entity = :e, gsi2pk = :g2p, gsi2sk = :g2s, "
                "workers = if_not_exists(workers, :empty)"
            ),
            ExpressionAttributeNames={"#n": "name", "#c": "community"},
            ExpressionAttributeValues=to_item(
                {
                    ":n": name,
                    ":c": community,
                    ":g": grid_id,
                    ":e": "grid",
                    ":g2p": keys.grid_index_keys(grid_id)["gsi2pk"],
                    ":g2s": keys.grid_index_keys(grid_id)["gsi2sk"],
                }
            )
            | {":empty": {"L": []}},
            ReturnValues="ALL_OLD",
        )
        created = not response.get("Attributes")
        grid = Grid(grid_id=grid_id, name=name, community=community)
        if not created:
            old = grid_from_item(response["Attributes"])
            grid = grid.model_copy(update={"workers": old.workers})
        return grid, created

    def change_grid_workers(
        self,
        grid_id: str,
        change: Callable[[Grid], list[GridWorker] | None],
        *,
        attempts: int = 5,
    ) -> Grid | None:
        """Rewrite a grid's worker list as ``change(grid)`` decides (None: no write), guarded by the
        list read (one conditional UpdateItem; re-read and re-decided on a race).
        Returns the grid as written, or None when the grid does not exist."""
        for _ in range(attempts):
            item = (
                client("dynamodb")
                .get_item(TableName=self.table_name, Key=to_item(keys.grid_key(grid_id)), ConsistentRead=True)
                .get("Item")
            )
            if not item:
                return None
            grid = grid_from_item(item)
            workers = change(grid)
            if workers is None:
                return grid
            old = item.get("workers")
            values: dict[str, Any] = {":new": serialize([w.model_dump(mode="json") for w in workers])}
            condition = "attribute_exists(pk) AND " + (
                "workers = :old" if old is not None else "attribute_not_exists(workers)"
            )
            if old is not None:
                values[":old"] = old
            try:
                client("dynamodb").update_item(
                    TableName=self.table_name,
                    Key=to_item(keys.grid_key(grid_id)),
                    UpdateExpression="SET workers = :new",
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                continue
            return grid.model_copy(update={"workers": workers})
        raise TransientStoreError(f"workers of grid {grid_id} keep changing")


def seen_values(device: Device, state: DeviceState) -> dict[str, str]:
    """``:g3p``/``:g3s``: the last-seen index entry (offline detection) for a state write."""
    heartbeat = to_iso(state.heartbeat_at) if state.heartbeat_at is not None else "0000"
    seen = keys.seen_index_keys(device.grid_id, device.device_id, heartbeat)
    return {":g3p": seen["gsi3pk"], ":g3s": seen["gsi3sk"]}


def state_json(state: DeviceState) -> str:
    return state.model_dump_json(exclude_none=True)


def dumps_compact(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class RegistryWriteResult:
    """What :meth:`DeviceRepository.put_many` wrote."""

    grids: int
    created: int
    updated: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class DevicePage:
    """One index page of devices: each row with its index key (a resume point), and the last key."""

    rows: list[tuple[DeviceRecord, dict[str, Any]]]
    last_key: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class GridPage:
    rows: list[tuple[Grid, dict[str, Any]]]
    last_key: dict[str, Any] | None
