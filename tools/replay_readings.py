"""Replay archived raw readings of a device and time range through the telemetry handler.

The IoT rule archives every message it receives (Firehose → the archive bucket,
``raw/manhole/year=YYYY/month=MM/day=DD/``, GZIP JSON lines, partitioned by ARRIVAL date in
UTC). This command reads the partitions covering the range (plus ``--late-days`` after it, for
readings that arrived late), keeps the lines of the device whose reading time ``ts`` lies in
``[--since, --until)``, and sends them, in reading-time order, to the telemetry buffer queue —
exactly what the IoT rule's SQS action sends — so the telemetry function processes them as it
processes live readings::

    python -m tools.replay_readings --device MH-0178 --since 2026-11-28T00:00+08:00 \
        --until 2026-11-29T00:00+08:00 [--env prod | --stack NAME] [--local] [--dry-run]

Idempotent: the telemetry function keeps one watermark per device and one open alarm per
(device, alarm type), enforced by conditional writes, so readings it already applied are counted
as stale and dropped, and replaying a day with an alarm never creates a second work order.
Replaying readings the function never saw (lost to a failure) applies them. A timestamp without
an offset is read as Beijing time (+08:00), as on the wire.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from smartzone.domain.timeutil import TimestampError, parse_ts_ms, to_iso
from smartzone.repositories.clients import client
from tools.ops_aws import (
    SESSION_FILE,
    find_bucket,
    queue_with_role,
    stack_name_of,
    stack_output,
    stack_queues,
    use_local_platform,
)

RAW_PREFIX = "raw/manhole/"
SQS_BATCH = 10
GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class ReplayReport:
    objects: int = 0
    lines: int = 0
    matched: int = 0
    sent: int = 0
    failed: int = 0
    unreadable: int = 0
    dry_run: bool = False
    first_ts: str | None = None
    last_ts: str | None = None
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verb = "would send" if self.dry_run else "sent"
        span = f" ({self.first_ts} … {self.last_ts})" if self.first_ts else ""
        return (
            f"objects {self.objects}, lines {self.lines}, matched {self.matched}{span}, "
            f"{verb} {self.sent if not self.dry_run else self.matched}, failed {self.failed}, "
            f"unreadable {self.unreadable}"
        )


def day_prefixes(since_ms: int, until_ms: int, late_days: int = 1) -> list[str]:
    """The archive's daily partitions (UTC arrival date) from ``since`` to ``until`` + late days."""
    first = datetime.fromtimestamp(since_ms / 1000, tz=UTC).date()
    last = datetime.fromtimestamp(max(since_ms, until_ms - 1) / 1000, tz=UTC).date() + timedelta(
        days=late_days
    )
    days = []
    day = first
    while day <= last:
        days.append(f"{RAW_PREFIX}year={day:%Y}/month={day:%m}/day={day:%d}/")
        day += timedelta(days=1)
    return days


def _objects(bucket: str, prefix: str) -> Iterator[str]:
    paginator = client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield str(obj["Key"])


def _lines(bucket: str, key: str) -> Iterator[str]:
    body = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    if body[:2] == GZIP_MAGIC:
        body = gzip.decompress(body)
    for line in body.decode("utf-8", errors="replace").splitlines():
        if line.strip():
            yield line


def archived_readings(
    bucket: str, device_id: str, since_ms: int, until_ms: int, report: ReplayReport, late_days: int = 1
) -> list[tuple[int, str]]:
    """(reading time, line) of the device in the range, sorted by reading time, duplicates kept."""
    found: list[tuple[int, str]] = []
    for prefix in day_prefixes(since_ms, until_ms, late_days):
        for key in _objects(bucket, prefix):
            report.objects += 1
            for line in _lines(bucket, key):
                report.lines += 1
                try:
                    record: Any = json.loads(line)
                    if not isinstance(record, dict) or record.get("device_id") != device_id:
                        continue
                    ts = parse_ts_ms(record.get("ts"))
                except (ValueError, TimestampError):
                    report.unreadable += 1
                    continue
                if since_ms <= ts < until_ms:
                    found.append((ts, line))
    found.sort(key=lambda item: item[0])
    return found


def send(queue_url: str, lines: Sequence[str], report: ReplayReport) -> None:
    sqs = client("sqs")
    for start in range(0, len(lines), SQS_BATCH):
        chunk = lines[start : start + SQS_BATCH]
        try:
            response = sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "MessageBody": line} for i, line in enumerate(chunk)],
            )
        except (ClientError, BotoCoreError) as exc:
            report.failed += len(chunk)
            report.errors.append(str(exc))
            continue
        report.sent += len(response.get("Successful", []))
        report.failed += len(response.get("Failed", []))


def replay(
    *,
    bucket: str,
    queue_url: str,
    device_id: str,
    since_ms: int,
    until_ms: int,
    dry_run: bool = False,
    late_days: int = 1,
) -> ReplayReport:
    if until_ms <= since_ms:
        raise ValueError("--until must be after --since")
    report = ReplayReport(dry_run=dry_run)
    readings = archived_readings(bucket, device_id, since_ms, until_ms, report, late_days)
    report.matched = len(readings)
    if readings:
        report.first_ts, report.last_ts = to_iso(readings[0][0]), to_iso(readings[-1][0])
    if not dry_run:
        send(queue_url, [line for _, line in readings], report)
    return report


def _time(value: str) -> int:
    try:
        return parse_ts_ms(value)
    except TimestampError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.replay_readings",
        description="Replay archived raw readings of one device through the telemetry buffer.",
    )
    parser.add_argument("--device", required=True, help="device id, e.g. MH-0178")
    parser.add_argument(
        "--since", required=True, type=_time, help="ISO-8601 (no offset = +08:00) or epoch ms"
    )
    parser.add_argument("--until", required=True, type=_time, help="end of the range (exclusive)")
    parser.add_argument("--env", choices=("dev", "staging", "prod"), help="stack SmartZone-<env>")
    parser.add_argument("--stack", help="stack name (default SmartZone, or SmartZone-<env>)")
    parser.add_argument(
        "--local",
        nargs="?",
        const=str(SESSION_FILE),
        metavar="SESSION",
        help="the local platform (its session file, default .local/session.json)",
    )
    parser.add_argument("--bucket", help="archive bucket (default: stack output ArchiveBucketName)")
    parser.add_argument("--queue-url", help="telemetry buffer (default: the stack's telemetry-buffer queue)")
    parser.add_argument(
        "--late-days", type=int, default=1, help="partitions after --until to read (default 1)"
    )
    parser.add_argument("--dry-run", action="store_true", help="count what would be sent; send nothing")
    args = parser.parse_args(argv)
    if args.local:
        use_local_platform(args.local)
    stack = stack_name_of(args.env, args.stack)
    try:
        bucket = (
            args.bucket or stack_output(stack, "ArchiveBucketName") or find_bucket(stack, "StorageArchive")
        )
        queue_url = args.queue_url or stack_output(stack, "TelemetryBufferQueueUrl")
        if queue_url is None:
            buffer = queue_with_role(stack_queues(stack), "telemetry-buffer")
            queue_url = buffer.url if buffer else None
        if bucket is None or queue_url is None:
            parser.error("archive bucket or telemetry buffer not found: pass --bucket / --queue-url")
        report = replay(
            bucket=bucket,
            queue_url=queue_url,
            device_id=args.device,
            since_ms=args.since,
            until_ms=args.until,
            dry_run=args.dry_run,
            late_days=args.late_days,
        )
    except ValueError as exc:
        parser.error(str(exc))
    except (ClientError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
