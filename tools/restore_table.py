"""Restore a table to a NEW table for inspection (the live table is never touched).

Two ways, both in the AWS China regions as elsewhere::

    # point-in-time recovery (every SmartZone table has it on): any second of the last 35 days
    python -m tools.restore_table --target smartzone-inspect-1129 --time 2026-11-29T08:00+08:00
    # on-demand backup: take one now (or use --backup-arn of an existing one) and restore it
    python -m tools.restore_table --target smartzone-inspect-1129 --method backup

Options: ``--table`` (default: the stack's table, output ``TableName``), ``--env``/``--stack``,
``--local`` (the local platform), ``--latest`` (PITR to the latest restorable time), ``--no-wait``.

The restored table has the same keys, indexes and items; AWS does not copy the stream, TTL,
point-in-time recovery, deletion protection or tags, and encrypts it with the key given by
``--kms-key`` (default: the AWS-owned key, which is enough for a short inspection). Delete it
when done (``aws dynamodb delete-table``). The local platform's emulator (moto) restores the
current items whatever the time (it keeps no history); the commands and answers are the same.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from smartzone.domain.timeutil import TimestampError, parse_ts_ms, to_iso
from smartzone.repositories.clients import client
from tools.ops_aws import SESSION_FILE, find_table, stack_name_of, use_local_platform

METHODS = ("pitr", "backup")


@dataclass
class RestoreResult:
    source: str
    target: str
    method: str
    status: str
    item_count: int | None = None
    restored_to: str | None = None
    backup_arn: str | None = None

    def summary(self) -> str:
        what = f"as of {self.restored_to}" if self.restored_to else f"from backup {self.backup_arn}"
        count = f", {self.item_count} items" if self.item_count is not None else ""
        return f"restored {self.source} → {self.target} ({self.method}, {what}): {self.status}{count}"


def pitr_status(table: str) -> dict[str, Any]:
    description = client("dynamodb").describe_continuous_backups(TableName=table)[
        "ContinuousBackupsDescription"
    ]
    return dict(description.get("PointInTimeRecoveryDescription") or {})


def restore(
    source: str,
    target: str,
    *,
    method: str = "pitr",
    at_ms: int | None = None,
    backup_arn: str | None = None,
    kms_key: str | None = None,
    wait: bool = True,
) -> RestoreResult:
    """Restore ``source`` into the new table ``target`` and (by default) wait until it is ACTIVE."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    if source == target:
        raise ValueError("the target must be a new table, not the source")
    ddb = client("dynamodb")
    sse: dict[str, Any] = (
        {"SSESpecificationOverride": {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": kms_key}}
        if kms_key
        else {}
    )
    result = RestoreResult(source=source, target=target, method=method, status="CREATING")
    if method == "pitr":
        status = pitr_status(source)
        if status.get("PointInTimeRecoveryStatus") != "ENABLED":
            raise ValueError(f"point-in-time recovery is not enabled on {source}: use --method backup")
        kwargs: dict[str, Any] = {"SourceTableName": source, "TargetTableName": target, **sse}
        if at_ms is None:
            kwargs["UseLatestRestorableTime"] = True
            latest = status.get("LatestRestorableDateTime")
            result.restored_to = (
                latest.astimezone(UTC).isoformat() if isinstance(latest, datetime) else "latest"
            )
        else:
            kwargs["RestoreDateTime"] = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
            result.restored_to = to_iso(at_ms)
        described = ddb.restore_table_to_point_in_time(**kwargs)["TableDescription"]
    else:
        if backup_arn is None:
            name = f"{source}-{datetime.now(tz=UTC):%Y%m%d%H%M%S}"[:255]
            backup_arn = ddb.create_backup(TableName=source, BackupName=name)["BackupDetails"]["BackupArn"]
        result.backup_arn = backup_arn
        described = ddb.restore_table_from_backup(TargetTableName=target, BackupArn=backup_arn, **sse)[
            "TableDescription"
        ]
    result.status = str(described.get("TableStatus", "CREATING"))
    if wait:
        ddb.get_waiter("table_exists").wait(TableName=target, WaiterConfig={"Delay": 20, "MaxAttempts": 180})
        table = ddb.describe_table(TableName=target)["Table"]
        result.status = str(table["TableStatus"])
        result.item_count = int(table.get("ItemCount", 0))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.restore_table",
        description="Restore a SmartZone table to a new table for inspection (PITR or backup).",
    )
    parser.add_argument("--target", required=True, help="name of the NEW table")
    parser.add_argument("--table", help="source table (default: the stack's table)")
    parser.add_argument("--env", choices=("dev", "staging", "prod"), help="stack SmartZone-<env>")
    parser.add_argument("--stack", help="stack name (default SmartZone, or SmartZone-<env>)")
    parser.add_argument(
        "--local",
        nargs="?",
        const=str(SESSION_FILE),
        metavar="SESSION",
        help="the local platform (its session file, default .local/session.json)",
    )
    parser.add_argument("--method", choices=METHODS, default="pitr")
    parser.add_argument("--time", help="PITR: restore as of this time (ISO-8601, no offset = +08:00)")
    parser.add_argument("--latest", action="store_true", help="PITR: the latest restorable time")
    parser.add_argument("--backup-arn", help="backup: restore this backup instead of taking one")
    parser.add_argument("--kms-key", help="encrypt the new table with this KMS key (id, alias or ARN)")
    parser.add_argument("--no-wait", action="store_true", help="return without waiting for ACTIVE")
    args = parser.parse_args(argv)
    if args.method == "pitr" and not (args.time or args.latest):
        parser.error("pitr needs --time or --latest")
    if args.local:
        use_local_platform(args.local)
    try:
        at_ms = parse_ts_ms(args.time) if args.time else None
        source = args.table or find_table(stack_name_of(args.env, args.stack))
        if source is None:
            parser.error("the stack's table was not found: pass --table")
        result = restore(
            source,
            args.target,
            method=args.method,
            at_ms=at_ms,
            backup_arn=args.backup_arn,
            kms_key=args.kms_key,
            wait=not args.no_wait,
        )
    except (ValueError, TimestampError) as exc:
        parser.error(str(exc))
    except (ClientError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
