"""DynamoDB request loops shared by the registry repositories (devices, grids, cameras).

- :func:`batch_get_items`: BatchGetItem, 100 keys per call, unprocessed keys retried with backoff;
- :func:`batch_put_items`: BatchWriteItem PutRequests, 25 per call, unprocessed items retried;
- :func:`query_index_page`: one page of an index Query on one partition, each item with its index
  key (a resume point for a caller that stops mid-page).

Each repository passes its DynamoDB client and its ``sleep`` (looked up in its own module, where
tests stub them) and the exception to raise when retries run out, so its callers keep catching
what they caught before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25


def _backoff(attempt: int) -> float:
    return min(0.05 * 2**attempt, 1.0)


def batch_get_items(
    ddb: Any,
    table_name: str,
    item_keys: list[dict[str, Any]],
    *,
    max_unprocessed_retries: int,
    unprocessed: Callable[[int], Exception],
    sleep: Callable[[float], None],
) -> list[dict[str, Any]]:
    """The items found for ``item_keys`` (DynamoDB-typed keys), one BatchGetItem per 100 keys.

    Raises ``unprocessed(number of keys still unprocessed)`` when retries run out."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(item_keys), BATCH_GET_LIMIT):
        request: dict[str, Any] = {table_name: {"Keys": item_keys[start : start + BATCH_GET_LIMIT]}}
        for attempt in range(max_unprocessed_retries + 1):
            response = ddb.batch_get_item(RequestItems=request)
            found.extend(response.get("Responses", {}).get(table_name, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            sleep(_backoff(attempt))
        else:
            raise unprocessed(len(request[table_name]["Keys"]))
    return found


def batch_put_items(
    ddb: Any,
    table_name: str,
    items: list[dict[str, Any]],
    *,
    max_unprocessed_retries: int,
    unprocessed: Callable[[int], Exception],
    sleep: Callable[[float], None],
) -> None:
    """PutRequests in chunks of 25; raises ``unprocessed(number of items still unprocessed)`` when
    retries run out."""
    for start in range(0, len(items), BATCH_WRITE_LIMIT):
        chunk = items[start : start + BATCH_WRITE_LIMIT]
        request: dict[str, Any] = {table_name: [{"PutRequest": {"Item": item}} for item in chunk]}
        for attempt in range(max_unprocessed_retries + 1):
            response = ddb.batch_write_item(RequestItems=request)
            request = response.get("UnprocessedItems") or {}
            if not request:
                break
            sleep(_backoff(attempt))
        else:
            raise unprocessed(len(request[table_name]))


def query_index_page(
    ddb: Any,
    table_name: str,
    index: str,
    pk_name: str,
    sk_name: str,
    value: str,
    *,
    limit: int,
    start_key: dict[str, Any] | None = None,
    equals: tuple[str, str] | None = None,
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], dict[str, Any] | None]:
    """One page of the index partition ``pk_name = value``: each raw item with its index key
    (``pk``, ``sk``, ``pk_name``, ``sk_name``), and the ``LastEvaluatedKey``.

    ``equals``: an (attribute, string value) filter applied to the page read."""
    params: dict[str, Any] = {
        "TableName": table_name,
        "IndexName": index,
        "KeyConditionExpression": "#p = :p",
        "ExpressionAttributeNames": {"#p": pk_name},
        "ExpressionAttributeValues": {":p": {"S": value}},
        "Limit": limit,
    }
    if equals is not None:
        params["FilterExpression"] = "#k = :k"
        params["ExpressionAttributeNames"]["#k"] = equals[0]
        params["ExpressionAttributeValues"][":k"] = {"S": equals[1]}
    if start_key:
        params["ExclusiveStartKey"] = start_key
    response = ddb.query(**params)
    rows = [
        (item, {k: item[k] for k in ("pk", "sk", pk_name, sk_name) if k in item})
        for item in response.get("Items", [])
    ]
    return rows, response.get("LastEvaluatedKey")
