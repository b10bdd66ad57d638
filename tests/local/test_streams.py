"""The local stream reader keeps following the table through moto's quirks."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from infra.local.resources import LocalResources
from infra.local.streams import StreamReader
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import to_item


def put_order(table: str, order_id: str) -> None:
    client("dynamodb").put_item(
        TableName=table, Item=to_item({**keys.order_key(order_id), "status": "dispatched"})
    )


def test_given_a_cancelled_transaction_between_polls_when_polling_again_then_new_records_still_arrive(
    resources: LocalResources,
) -> None:
    reader = StreamReader(resources.table_name)
    put_order(resources.table_name, "WO-1")
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in reader.poll()["Records"]] == ["ORDER#WO-1"]

    with pytest.raises(ClientError):  # a duplicate: the condition fails and the transaction is cancelled
        client("dynamodb").transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": resources.table_name,
                        "Item": to_item({**keys.order_key("WO-1"), "status": "dispatched"}),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            ]
        )
    put_order(resources.table_name, "WO-2")

    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in reader.poll()["Records"]] == ["ORDER#WO-2"]
    assert reader.poll()["Records"] == []
