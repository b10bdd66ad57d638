"""The outbox dispatcher's input: DynamoDB stream records of order items, as order changes."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from smartzone.domain.notifications import OrderChange
from smartzone.repositories.codec import from_item
from smartzone.repositories.keys import ORDER_PK_PREFIX


def record_keys(record: DynamoDBRecord) -> dict[str, Any]:
    """The item's key (``pk``, ``sk``) as plain values."""
    stream = record.dynamodb
    return from_item(stream.get("Keys") or {}) if stream is not None else {}


def is_order_record(record: DynamoDBRecord) -> bool:
    """The event-source mapping already filters on this; checked again, defensively."""
    return str(record_keys(record).get("pk", "")).startswith(ORDER_PK_PREFIX)


def order_change(record: DynamoDBRecord) -> OrderChange | None:
    """The order change a stream record carries; ``None`` for any other item or event.

    Numbers come back as ``int``/``float`` (not ``Decimal``) through the table's codec. Raises
    ``pydantic.ValidationError`` for an order image the model cannot read.
    """
    stream = record.dynamodb
    if stream is None or not is_order_record(record):
        return None
    old = stream.get("OldImage")
    new = stream.get("NewImage")
    return OrderChange.from_images(
        str(record.get("eventName", "")),
        from_item(old) if old else None,
        from_item(new) if new else None,
    )
