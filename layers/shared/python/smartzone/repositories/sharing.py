"""Sharing requests, decisions, grants and the data-access log.

| item           | pk                         | sk                              | index                                          |
|----------------|----------------------------|---------------------------------|------------------------------------------------|
| access request | SHAREREQ#<request_id>      | REQUEST                         | gsi1 SHAREREQBY#<requester> / <created>#<id>; gsi2 SHAREREQTO#<provider> / <created>#<id> |
| grant          | GRANT#<department_id>      | <resource_code>#<request_id>    | –                                              |
| access log     | ACCESSLOG#<resource_code>  | <at iso>#<entry id>             | gsi3 ACCESSBY#<department_id> / <at iso>#<entry id> |

A decision updates the request (only while pending: a condition) and writes the grant in one
transaction, so a grant never exists without its approved request.
"""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from smartzone.domain.sharing import AccessGrant, AccessLogEntry, AccessRequest, RequestStatus
from smartzone.domain.timeutil import to_iso
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item

Page = tuple[builtins.list[Any], dict[str, Any] | None]


class RequestConflict(Exception):
    """The request exists already, or was decided by someone else meanwhile."""


def iso(at: datetime) -> str:
    return to_iso(int(at.timestamp() * 1000))


def _is_condition_failure(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons") or []
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons) or not reasons
    return False


def _request_item(request: AccessRequest) -> dict[str, Any]:
    sort = f"{iso(request.created_at)}#{request.request_id}"
    return to_item(
        {
            **keys.share_request_key(request.request_id),
            "gsi1pk": f"SHAREREQBY#{request.requester_id}",
            "gsi1sk": sort,
            "gsi2pk": f"SHAREREQTO#{request.provider_id}",
            "gsi2sk": sort,
            "entity": "share_request",
            "status": request.status.value,
            "request": request.model_dump(mode="json", exclude_none=True),
        }
    )


def _grant_item(grant: AccessGrant) -> dict[str, Any]:
    return to_item(
        {
            **keys.grant_key(grant.department_id, grant.resource_code, grant.request_id),
            "entity": "grant",
            "grant": {**grant.model_dump(mode="json"), "unmasked_items": sorted(grant.unmasked_items)},
        }
    )


class SharingRepository:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    # -- requests ------------------------------------------------------------------------------------
    def create_request(self, request: AccessRequest) -> None:
        try:
            client("dynamodb").put_item(
                TableName=self.table_name,
                Item=_request_item(request),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                raise RequestConflict(f"request {request.request_id} exists already") from exc
            raise

    def get_request(self, request_id: str) -> AccessRequest | None:
        item = (
            client("dynamodb")
            .get_item(
                TableName=self.table_name,
                Key=to_item(keys.share_request_key(request_id)),
                ConsistentRead=True,
            )
            .get("Item")
        )
        return AccessRequest.model_validate(from_item(item)["request"]) if item else None

    def requests_by(self, requester_id: str, *, limit: int = 50, start: dict[str, Any] | None = None) -> Page:
        """Requests a department filed, newest first."""
        return self._requests(keys.GSI1, "gsi1pk", f"SHAREREQBY#{requester_id}", limit, start)

    def requests_to(self, provider_id: str, *, limit: int = 50, start: dict[str, Any] | None = None) -> Page:
        """Requests for a provider's resources, newest first."""
        return self._requests(keys.GSI2, "gsi2pk", f"SHAREREQTO#{provider_id}", limit, start)

    def _requests(
        self, index: str, attr: str, partition: str, limit: int, start: dict[str, Any] | None
    ) -> Page:
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": f"{attr} = :p",
            "ExpressionAttributeValues": to_item({":p": partition}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start:
            params["ExclusiveStartKey"] = start
        page = client("dynamodb").query(**params)
        items = [AccessRequest.model_validate(from_item(i)["request"]) for i in page.get("Items", [])]
        return items, page.get("LastEvaluatedKey")

    def record_decision(self, decided: AccessRequest, grant: AccessGrant | None) -> None:
        """Store a decision (and its grant) if the request is still pending; else :class:`RequestConflict`."""
        put_request: dict[str, Any] = {
            "Put": {
                "TableName": self.table_name,
                "Item": _request_item(decided),
                "ConditionExpression": "#s = :pending",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": to_item({":pending": RequestStatus.PENDING.value}),
            }
        }
        actions = [put_request]
        if grant is not None:
            actions.append({"Put": {"TableName": self.table_name, "Item": _grant_item(grant)}})
        try:
            client("dynamodb").transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if _is_condition_failure(exc):
                raise RequestConflict(f"request {decided.request_id} was decided already") from exc
            raise

    # -- grants --------------------------------------------------------------------------------------
    def grants_for(self, department_id: str, resource_code: str | None = None) -> builtins.list[AccessGrant]:
        """A department's grants (all, or for one resource), expired ones included."""
        expression = "pk = :p"
        values: dict[str, Any] = {":p": keys.grant_key(department_id, "", "")["pk"]}
        if resource_code is not None:
            expression += " AND begins_with(sk, :s)"
            values[":s"] = f"{resource_code}#"
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": expression,
            "ExpressionAttributeValues": to_item(values),
        }
        grants: builtins.list[AccessGrant] = []
        while True:
            page = client("dynamodb").query(**params)
            grants += [AccessGrant.model_validate(from_item(i)["grant"]) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return grants
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- the access log ---------------------------------------------------------------------------------
    def append_access(self, entry: AccessLogEntry) -> str:
        """Append one entry (never overwritten); returns its id."""
        entry_id = uuid.uuid4().hex
        at = iso(entry.at)
        client("dynamodb").put_item(
            TableName=self.table_name,
            Item=to_item(
                {
                    "pk": f"ACCESSLOG#{entry.resource_code}",
                    "sk": f"{at}#{entry_id}",
                    **(
                        {"gsi3pk": f"ACCESSBY#{entry.department_id}", "gsi3sk": f"{at}#{entry_id}"}
                        if entry.department_id
                        else {}
                    ),
                    "entity": "access_log",
                    "entry": entry.model_dump(mode="json", exclude_none=True),
                }
            ),
            ConditionExpression="attribute_not_exists(pk)",
        )
        return entry_id

    def access_log(self, resource_code: str, *, limit: int = 100) -> builtins.list[AccessLogEntry]:
        """The newest entries for one resource."""
        page = client("dynamodb").query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues=to_item({":p": f"ACCESSLOG#{resource_code}"}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [AccessLogEntry.model_validate(from_item(i)["entry"]) for i in page.get("Items", [])]

    def access_log_of(self, department_id: str, *, limit: int = 100) -> builtins.list[AccessLogEntry]:
        """The newest entries of one reading department."""
        page = client("dynamodb").query(
            TableName=self.table_name,
            IndexName=keys.GSI3,
            KeyConditionExpression="gsi3pk = :p",
            ExpressionAttributeValues=to_item({":p": f"ACCESSBY#{department_id}"}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [AccessLogEntry.model_validate(from_item(i)["entry"]) for i in page.get("Items", [])]
