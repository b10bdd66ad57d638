"""The data catalogue (``CATALOGUE#<code>``): get, list, put resources; record loads.

An item keeps the resource as one JSON document (``doc``) beside the attributes that are
filtered or updated on their own (``classification``, ``sharing_type``, ``last_loaded_at``).
Lists are index queries (gsi2 ``CATALOGUE`` for the whole catalogue, gsi1 ``CATDEPT#<dept>`` for one
provider), never a Scan. Writes carry a revision (``rev``) so that concurrent admin edits do not
overwrite each other; the last-load time only ever moves forward.
"""

from __future__ import annotations

import builtins
import time
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from smartzone.domain.catalogue import Resource
from smartzone.domain.timeutil import to_iso
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item

_MAX_BATCH_RETRIES = 6


class ResourceConflict(Exception):
    """The resource exists already (create) or changed since it was read (update)."""


class ResourceMissing(Exception):
    """No such resource."""


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def resource_item(resource: Resource, rev: int) -> dict[str, Any]:
    return to_item(
        {
            **keys.catalogue_key(resource.code),
            **keys.catalogue_index_keys(resource.code, resource.department_id),
            "entity": "catalogue_resource",
            "rev": rev,
            "classification": resource.classification,
            "sharing_type": resource.sharing_type.value,
            "last_loaded_at": _iso(resource.last_loaded_at),
            "doc": resource.model_dump_json(exclude_none=True, exclude={"last_loaded_at"}),
        }
    )


def _iso(at: datetime | None) -> str | None:
    return to_iso(int(at.timestamp() * 1000)) if at is not None else None


def _resource_of(item: dict[str, Any]) -> tuple[Resource, int]:
    data = from_item(item)
    resource = Resource.model_validate_json(data["doc"])
    if data.get("last_loaded_at"):
        resource = resource.model_copy(
            update={"last_loaded_at": datetime.fromisoformat(data["last_loaded_at"])}
        )
    return resource, int(data.get("rev", 0))


class CatalogueRepository:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    # -- reads -------------------------------------------------------------------------------------
    def get(self, code: str) -> Resource | None:
        found = self.get_with_rev(code)
        return found[0] if found else None

    def get_with_rev(self, code: str) -> tuple[Resource, int] | None:
        item = (
            client("dynamodb")
            .get_item(TableName=self.table_name, Key=to_item(keys.catalogue_key(code)), ConsistentRead=True)
            .get("Item")
        )
        return _resource_of(item) if item else None

    def list(
        self,
        *,
        department_id: str | None = None,
        classification: str | None = None,
        sharing_type: str | None = None,
        limit: int = 100,
        start: dict[str, Any] | None = None,
    ) -> tuple[builtins.list[Resource], dict[str, Any] | None]:
        """One page of resources in code order (all, or one provider's) and the key to go on from.

        ``limit`` items are read; the classification / sharing-type filters apply after the read
        (a filtered page may be short while the key goes on)."""
        if department_id is not None:
            index, attr, partition = keys.GSI1, "gsi1pk", f"CATDEPT#{department_id}"
        else:
            index, attr, partition = keys.GSI2, "gsi2pk", "CATALOGUE"
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": f"{attr} = :p",
            "ExpressionAttributeValues": to_item({":p": partition}),
            "Limit": limit,
        }
        filters, names, values = [], {}, {}
        for name, value in (("classification", classification), ("sharing_type", sharing_type)):
            if value is not None:
                filters.append(f"#{name} = :{name}")
                names[f"#{name}"] = name
                values[f":{name}"] = value
        if filters:
            params["FilterExpression"] = " AND ".join(filters)
            params["ExpressionAttributeNames"] = names
            params["ExpressionAttributeValues"].update(to_item(values))
        if start:
            params["ExclusiveStartKey"] = start
        page = client("dynamodb").query(**params)
        resources = [_resource_of(i)[0] for i in page.get("Items", [])]
        return resources, page.get("LastEvaluatedKey")

    def all(self, *, department_id: str | None = None) -> builtins.list[Resource]:
        out: builtins.list[Resource] = []
        start: dict[str, Any] | None = None
        while True:
            page, start = self.list(department_id=department_id, limit=500, start=start)
            out += page
            if not start:
                return out

    # -- writes ------------------------------------------------------------------------------------
    def create(self, resource: Resource) -> None:
        """Add a new resource; :class:`ResourceConflict` when its code is taken."""
        try:
            client("dynamodb").put_item(
                TableName=self.table_name,
                Item=resource_item(resource, 1),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                raise ResourceConflict(f"resource {resource.code} exists already") from exc
            raise

    def update(self, resource: Resource, *, rev: int) -> int:
        """Replace a resource read at revision ``rev``; returns the new revision."""
        try:
            client("dynamodb").put_item(
                TableName=self.table_name,
                Item=resource_item(resource, rev + 1),
                ConditionExpression="attribute_exists(pk) AND rev = :rev",
                ExpressionAttributeValues={":rev": {"N": str(rev)}},
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                raise ResourceConflict(f"resource {resource.code} changed since it was read") from exc
            raise
        return rev + 1

    def put(self, resource: Resource) -> None:
        """Create or replace without a revision check (the seed loader)."""
        found = self.get_with_rev(resource.code)
        rev = found[1] if found else 0
        client("dynamodb").put_item(TableName=self.table_name, Item=resource_item(resource, rev + 1))

    def put_many(self, resources: builtins.list[Resource]) -> dict[str, str]:
        """Load resources in bulk (the seed): ``created``/``updated``/``unchanged`` by code.

        Reads with BatchGetItem (100 keys per call), writes only new and changed ones (25 per
        BatchWriteItem). The last-load time of an existing resource is kept.
        """
        ddb = client("dynamodb")
        existing: dict[str, tuple[Resource, int]] = {}
        codes = sorted({r.code for r in resources})
        for begin in range(0, len(codes), 100):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [to_item(keys.catalogue_key(c)) for c in codes[begin : begin + 100]],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(_MAX_BATCH_RETRIES):
                response = ddb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    resource, rev = _resource_of(item)
                    existing[resource.code] = (resource, rev)
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError("catalogue keys left unprocessed")
        outcome: dict[str, str] = {}
        writes: builtins.list[dict[str, Any]] = []
        for resource in resources:
            before = existing.get(resource.code)
            if before is not None:
                resource = resource.model_copy(update={"last_loaded_at": before[0].last_loaded_at})
                if before[0] == resource:
                    outcome[resource.code] = "unchanged"
                    continue
            outcome[resource.code] = "created" if before is None else "updated"
            rev = before[1] + 1 if before else 1
            writes.append({"PutRequest": {"Item": resource_item(resource, rev)}})
        for begin in range(0, len(writes), 25):
            pending: dict[str, Any] = {self.table_name: writes[begin : begin + 25]}
            for attempt in range(_MAX_BATCH_RETRIES):
                pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError("catalogue resources left unprocessed")
        return outcome

    def record_load(self, code: str, loaded_at: datetime) -> bool:
        """Set the last-load time to ``loaded_at`` unless a later one is recorded already (the
        revision moves on, so an admin edit read before the load is refused, not lost).

        Returns False when the stored time was later (nothing changed); raises
        :class:`ResourceMissing` for an unknown code.
        """
        at = to_iso(int(loaded_at.timestamp() * 1000))
        try:
            client("dynamodb").update_item(
                TableName=self.table_name,
                Key=to_item(keys.catalogue_key(code)),
                UpdateExpression="SET last_loaded_at = :at ADD rev :one",
                ConditionExpression="attribute_exists(pk) AND "
                "(attribute_not_exists(last_loaded_at) OR last_loaded_at < :at)",
                ExpressionAttributeValues=to_item({":at": at, ":one": 1}),
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            if self.get(code) is None:
                raise ResourceMissing(code) from exc
            return False
        return True
