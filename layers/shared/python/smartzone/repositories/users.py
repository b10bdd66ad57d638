"""The user registry (``USER#<username>``): roles and grids of every person."""

from __future__ import annotations

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
                    **keys.user_index_keys(user.username),
                    "entity": "user",
                    **user.model_dump(mode="json"),
                }
            ),
        )

    def grids_of(self, username: str) -> frozenset[str]:
        """The grids the user answers for now (empty for unknown or inactive users)."""
        user = self.get(username)
        return frozenset(user.grid_ids) if user and user.active else frozenset()
