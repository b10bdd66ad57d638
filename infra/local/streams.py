"""Read a table's DynamoDB stream (moto or real) and hand it out as Lambda stream events.

``StreamReader(table_name).poll()`` returns ``{"Records": [...]}`` exactly as the outbox
dispatcher's event-source mapping would deliver it: attribute values in DynamoDB JSON (binary
values base64-encoded), ``ApproximateCreationDateTime`` in epoch seconds, ``eventSourceARN`` and
``awsRegion`` set, and only the records the mapping's filter lets through (by default ``pk``
beginning ``ORDER#``, like ``{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "ORDER#"}]}}}}``).
The reader remembers its position per shard: each poll returns only what is new.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from smartzone.repositories.clients import client
from smartzone.repositories.keys import ORDER_PK_PREFIX

StartingPosition = Literal["TRIM_HORIZON", "LATEST"]
DEFAULT_BATCH_SIZE = 100
"""The event-source mapping's default batch size for DynamoDB streams."""


def _lambda_value(value: Any) -> Any:
    """A DynamoDB attribute value from the Streams API, in the JSON form Lambda delivers."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {k: _lambda_value(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_lambda_value(v) for v in value]
    return value


def to_lambda_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """One ``GetRecords`` record as a record of a Lambda DynamoDB-stream event."""
    out = _lambda_value(record)
    stream = dict(out.get("dynamodb", {}))
    created = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        stream["ApproximateCreationDateTime"] = int(created.timestamp())
    out["dynamodb"] = stream
    out["eventSource"] = "aws:dynamodb"
    out["eventSourceARN"] = stream_arn
    out["awsRegion"] = region
    return dict(out)


def pk_prefix_filter(prefix: str) -> Any:
    """A record filter equal to the mapping's ``{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": …}]}}}}``."""

    def matches(record: dict[str, Any]) -> bool:
        pk = record.get("dynamodb", {}).get("Keys", {}).get("pk", {}).get("S", "")
        return isinstance(pk, str) and pk.startswith(prefix)

    return matches


class StreamReader:
    """Polls a table's latest stream, remembering its position in every shard.

    ``starting_position`` works like the event-source mapping's: ``TRIM_HORIZON`` (everything
    still in the stream; the default) or ``LATEST`` (only records written after the reader was
    created). ``key_prefix=None`` lets every record through.
    """

    def __init__(
        self,
        table_name: str,
        *,
        key_prefix: str | None = ORDER_PK_PREFIX,
        starting_position: StartingPosition = "TRIM_HORIZON",
    ) -> None:
        self.table_name = table_name
        self.starting_position = starting_position
        self._accept = pk_prefix_filter(key_prefix) if key_prefix is not None else (lambda _r: True)
        self.stream_arn: str = client("dynamodb").describe_table(TableName=table_name)["Table"][
            "LatestStreamArn"
        ]
        self.region: str = client("dynamodbstreams").meta.region_name
        self._iterators: dict[str, str | None] = {}
        self._last_sequence: dict[str, str] = {}
        self._pending: deque[dict[str, Any]] = deque()
        if starting_position == "LATEST":
            self._discover_shards()

    def _discover_shards(self) -> None:
        streams = client("dynamodbstreams")
        description = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id in self._iterators:
                continue
            known_parent = shard.get("ParentShardId") in self._iterators
            position = "TRIM_HORIZON" if known_parent else self.starting_position
            self._iterators[shard_id] = streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=position
            )["ShardIterator"]

    def _refresh_iterators(self) -> None:
        """Re-anchor each shard after the last record read.

        moto replaces a table by a copy when a transaction is cancelled, and an iterator held
        across that follows the old copy; asking for a fresh iterator after the last sequence
        number read keeps the reader on the live table (and is harmless on real DynamoDB).
        """
        streams = client("dynamodbstreams")
        self.stream_arn = client("dynamodb").describe_table(TableName=self.table_name)["Table"][
            "LatestStreamArn"
        ]
        for shard_id, sequence in self._last_sequence.items():
            if self._iterators.get(shard_id) is None:
                continue
            self._iterators[shard_id] = streams.get_shard_iterator(
                StreamArn=self.stream_arn,
                ShardId=shard_id,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                SequenceNumber=sequence,
            )["ShardIterator"]

    def _fetch(self) -> None:
        """Read every shard up to its current end into the pending buffer."""
        streams = client("dynamodbstreams")
        self._refresh_iterators()
        self._discover_shards()
        for shard_id, iterator in list(self._iterators.items()):
            while iterator is not None:
                response = streams.get_records(ShardIterator=iterator, Limit=1000)
                records = response.get("Records", [])
                for record in records:
                    self._last_sequence[shard_id] = record["dynamodb"]["SequenceNumber"]
                    if self._accept(record):
                        self._pending.append(to_lambda_record(record, self.stream_arn, self.region))
                next_iterator = response.get("NextShardIterator")
                if not records:
                    # At the end of an open shard, keep the iterator for the next poll; a closed
                    # shard has no next iterator.
                    iterator = next_iterator
                    break
                iterator = next_iterator
            self._iterators[shard_id] = iterator

    def poll(self, max_records: int | None = None) -> dict[str, Any]:
        """The records written since the last poll (at most ``max_records``), as a Lambda event."""
        self._fetch()
        count = len(self._pending) if max_records is None else min(max_records, len(self._pending))
        return {"Records": [self._pending.popleft() for _ in range(count)]}

    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[dict[str, Any]]:
        """Everything new, as consecutive Lambda events of at most ``batch_size`` records."""
        self._fetch()
        while self._pending:
            yield self.poll(batch_size)
