"""The user registry (``USER#<username>``): roles and grids of every person."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from smartzone.domain.users import UserProfile
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item


class UserRepository:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def get(self, username: str) -> UserProfile | None:
        item = (
            client("dynamodb")
            .get_item(TableName=self.table_name, Key=to_item(keys.user_key(username)))
            .get("Item")
        )
        if not item:
            return None
        data = from_item(item)
        return UserProfile.model_validate({k: v for k, v in data.items() if k in UserProfile.model_fields})

    def put(self, user: UserProfile) -> None:
        client("dynamodb").put_item(
            TableName=self.table_name,
            Item=to_item(
                {
                    **keys.user_key(user.username),
                    **keys.user_index_keys(user.username, user.roles),
                    "entity": "user",
                    **user.model_dump(mode="json"),
                }
            ),
        )

    def grids_of(self, username: str) -> frozenset[str]:
        """The grids the user answers for now (empty for unknown or inactive users)."""
        user = self.get(username)
        return frozenset(user.grid_ids) if user and user.active else frozenset()

    # --- issue 3: registry writes (grid workers' onboarding and offboarding, the seed) ---------

    def change(
        self,
        username: str,
        decide: Callable[[UserProfile | None], UserProfile | None],
        *,
        attempts: int = 5,
    ) -> UserProfile | None:
        """Read the user, let ``decide`` return the new profile (None: no write), write it with a
        condition on the revision read (``rev``), re-reading and re-deciding on a race.
        Returns the profile as stored afterwards (None when absent and nothing was written)."""
        for _ in range(attempts):
            item = (
                client("dynamodb")
                .get_item(
                    TableName=self.table_name, Key=to_item(keys.user_key(username)), ConsistentRead=True
                )
                .get("Item")
            )
            current = _profile_of(item) if item else None
            wanted = decide(current)
            if wanted is None:
                return current
            rev = int(from_item({"rev": item["rev"]})["rev"]) if item and "rev" in item else None
            values: dict[str, Any] = {}
            if not item:
                condition = "attribute_not_exists(pk)"
            elif rev is None:
                condition = "attribute_not_exists(rev)"
            else:
                condition, values = "rev = :rev", {":rev": {"N": str(rev)}}
            try:
                client("dynamodb").put_item(
                    TableName=self.table_name,
                    Item={**_user_item(wanted), "rev": {"N": str((rev or 0) + 1)}},
                    ConditionExpression=condition,
                    **({"ExpressionAttributeValues": values} if values else {}),
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                continue
            return wanted
        raise RuntimeError(f"user {username} keeps changing; try again")

    def put_many(self, users: list[UserProfile]) -> dict[str, str]:
        """Write users in bulk (the seed): ``created``/``updated``/``unchanged`` by username.

        One BatchGetItem per 100 users, then BatchWriteItem for the new and changed ones only.
        """
        ddb = client("dynamodb")
        existing: dict[str, UserProfile] = {}
        names = sorted({u.username for u in users})
        for start in range(0, len(names), 100):
            request: dict[str, Any] = {
                self.table_name: {"Keys": [to_item(keys.user_key(n)) for n in names[start : start + 100]]}
            }
            for attempt in range(_MAX_BATCH_RETRIES):
                response = ddb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    profile = _profile_of(item)
                    existing[profile.username] = profile
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError("user keys left unprocessed")
        outcome: dict[str, str] = {}
        writes: list[dict[str, Any]] = []
        for user in users:
            before = existing.get(user.username)
            if before == user:
                outcome[user.username] = "unchanged"
                continue
            outcome[user.username] = "created" if before is None else "updated"
            writes.append({"PutRequest": {"Item": _user_item(user)}})
        for start in range(0, len(writes), 25):
            pending: dict[str, Any] = {self.table_name: writes[start : start + 25]}
            for attempt in range(_MAX_BATCH_RETRIES):
                pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError("users left unprocessed")
        return outcome


_MAX_BATCH_RETRIES = 6


def _user_item(user: UserProfile) -> dict[str, Any]:
    return to_item(
        {
            **keys.user_key(user.username),
            **keys.user_index_keys(user.username, user.roles),
            "entity": "user",
            **user.model_dump(mode="json"),
        }
    )


def _profile_of(item: dict[str, Any]) -> UserProfile:
    data = from_item(item)
    return UserProfile.model_validate({k: v for k, v in data.items() if k in UserProfile.model_fields})


def dispatcher_usernames(table_name: str) -> list[str]:
    """The active dispatchers (one Query on gsi1 ``DISPATCHERS``)."""
    names: list[str] = []
    request: dict[str, Any] = {
        "TableName": table_name,
        "IndexName": keys.GSI1,
        "KeyConditionExpression": "gsi1pk = :p",
        "ExpressionAttributeValues": to_item({":p": "DISPATCHERS"}),
    }
    while True:
        page = client("dynamodb").query(**request)
        names += [
            str(from_item(i)["username"]) for i in page.get("Items", []) if from_item(i).get("active", True)
        ]
        if "LastEvaluatedKey" not in page:
            return names
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
