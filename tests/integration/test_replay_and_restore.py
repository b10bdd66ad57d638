"""``tools/replay_readings.py`` and ``tools/restore_table.py`` against emulated AWS.

Replay: archived raw readings (GZIP JSON lines under ``raw/manhole/year=…/month=…/day=…/``, as
Firehose writes them) go to the telemetry buffer; the telemetry handler consumes the buffer as
the event source would. Restore: point-in-time recovery and the on-demand backup path.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.telemetry import handler as telemetry
from infra.local.resources import LocalResources
from smartzone.domain.timeutil import parse_ts_ms
from smartzone.repositories.clients import client
from smartzone.repositories.devices import DeviceRepository
from tests.integration.test_telemetry_handler import orders
from tests.support.telemetry import FakeContext, demo_device, rule_message, sqs_event
from tools import replay_readings, restore_table

BUCKET = "smartzone-storagearchive1234-abcd"
MIN = 60_000


@pytest.fixture
def archive(resources: LocalResources) -> Iterator[dict[str, str]]:
    telemetry.pipeline.cache_clear()
    DeviceRepository(resources.table_name).put_device(demo_device("MH-0178", "G03"))
    DeviceRepository(resources.table_name).put_device(demo_device("MH-0042", "G01"))
    client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "cn-north-1"})
    buffer = client("sqs").create_queue(QueueName="SmartZone-IngestBufferQueue5E6F7A8B")["QueueUrl"]
    yield {"buffer": buffer}
    telemetry.pipeline.cache_clear()


def archive_object(key_day: datetime, name: str, lines: list[str]) -> None:
    key = f"raw/manhole/year={key_day:%Y}/month={key_day:%m}/day={key_day:%d}/{name}"
    client("s3").put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(("\n".join(lines) + "\n").encode()))


def consume(buffer: str) -> int:
    """The event source: deliver everything in the buffer to the telemetry handler."""
    handled = 0
    while True:
        got = client("sqs").receive_message(QueueUrl=buffer, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return handled
        telemetry.handler(sqs_event([m["Body"] for m in got]), FakeContext())
        client("sqs").delete_message_batch(
            QueueUrl=buffer,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
        )
        handled += len(got)


def a_day_with_an_alarm() -> tuple[int, int]:
    """Yesterday (UTC) in the archive: normal readings, a tilt alarm, another device, noise."""
    now = datetime.now(tz=UTC)
    day = datetime(now.year, now.month, now.day, tzinfo=UTC)
    start = int(day.timestamp() * 1000) - 86_400_000
    previous = datetime.fromtimestamp(start / 1000, tz=UTC)
    archive_object(
        previous,
        "SmartZone-RawArchive-1-a",
        [
            rule_message("MH-0178", start + 60 * MIN, 2.0),
            rule_message("MH-0042", start + 61 * MIN, 3.0),
            rule_message("MH-0178", start + 62 * MIN, 25.3),  # the alarm
            "{not json",
        ],
    )
    # Arrived after midnight (next day's partition) but read at 23:59 of the day.
    archive_object(
        datetime.fromtimestamp((start + 86_400_000) / 1000, tz=UTC),
        "SmartZone-RawArchive-1-b",
        [rule_message("MH-0178", start + 86_400_000 - MIN, 24.0)],
    )
    return start, start + 86_400_000


def test_given_a_day_with_an_alarm_when_replayed_twice_then_exactly_one_order_exists(
    archive: dict[str, str], resources: LocalResources
) -> None:
    since, until = a_day_with_an_alarm()

    first = replay_readings.replay(
        bucket=BUCKET, queue_url=archive["buffer"], device_id="MH-0178", since_ms=since, until_ms=until
    )
    assert (first.objects, first.matched, first.sent, first.unreadable) == (2, 3, 3, 1)
    assert consume(archive["buffer"]) == 3
    second = replay_readings.replay(
        bucket=BUCKET, queue_url=archive["buffer"], device_id="MH-0178", since_ms=since, until_ms=until
    )
    assert second.sent == 3
    assert consume(archive["buffer"]) == 3

    (order,) = orders(resources.table_name)
    assert order["device_id"] == "MH-0178"


def test_given_a_range_when_replayed_dry_then_it_counts_in_reading_time_order_and_sends_nothing(
    archive: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    since, until = a_day_with_an_alarm()
    report = replay_readings.replay(
        bucket=BUCKET,
        queue_url=archive["buffer"],
        device_id="MH-0178",
        since_ms=since + 61 * MIN,
        until_ms=until,
        dry_run=True,
    )
    assert report.matched == 2 and report.sent == 0
    assert parse_ts_ms(report.first_ts) == since + 62 * MIN
    assert consume(archive["buffer"]) == 0

    code = replay_readings.main(
        [
            "--device",
            "MH-0042",
            "--since",
            str(since),
            "--until",
            str(until),
            "--bucket",
            BUCKET,
            "--queue-url",
            archive["buffer"],
        ]
    )
    assert code == 0 and "matched 1" in capsys.readouterr().out
    (message,) = client("sqs").receive_message(QueueUrl=archive["buffer"]).get("Messages", [])
    assert json.loads(message["Body"])["device_id"] == "MH-0042"


def items(table: str) -> list[dict[str, Any]]:
    return client("dynamodb").scan(TableName=table)["Items"]


def test_given_a_table_with_pitr_when_restored_to_a_new_name_then_the_copy_has_the_items(
    resources: LocalResources,
) -> None:
    DeviceRepository(resources.table_name).put_device(demo_device("MH-0178", "G03"))
    client("dynamodb").update_continuous_backups(
        TableName=resources.table_name,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )

    result = restore_table.restore(resources.table_name, "smartzone-inspect", method="pitr")

    assert result.status == "ACTIVE" and result.item_count == len(items(resources.table_name))
    assert items("smartzone-inspect") and len(items("smartzone-inspect")) == len(items(resources.table_name))
    with pytest.raises(ValueError, match="new table"):
        restore_table.restore(resources.table_name, resources.table_name)


def test_given_no_pitr_when_restoring_then_pitr_is_refused_and_the_backup_path_restores(
    resources: LocalResources, capsys: pytest.CaptureFixture[str]
) -> None:
    DeviceRepository(resources.table_name).put_device(demo_device("MH-0178", "G03"))
    with pytest.raises(ValueError, match="not enabled"):
        restore_table.restore(resources.table_name, "smartzone-inspect", method="pitr")

    code = restore_table.main(
        ["--table", resources.table_name, "--target", "smartzone-inspect-b", "--method", "backup"]
    )

    assert code == 0
    out = capsys.readouterr().out
    assert "from backup arn:" in out and "ACTIVE" in out
    assert len(items("smartzone-inspect-b")) == len(items(resources.table_name))
