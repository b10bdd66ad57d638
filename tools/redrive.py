"""Redrive: move messages from any of our dead-letter or parking queues back to where they belong.

AWS China has no console redrive; this command works there, in global regions and against the
local platform (``--local``)::

    python -m tools.redrive [--env prod | --stack NAME] [--local] [--queue NAME ...]
                            [--dry-run] [--max N] [--reason REASON] [--list]

The stack's queues are found by name (``<stack>-…``) and linked by their redrive policies:

| queue                               | goes back to                                           |
|-------------------------------------|--------------------------------------------------------|
| any dead-letter queue               | its source queue (body and attributes as they were)    |
| ``publish-retry`` (outbox)          | SNS: the notifications topic (``tools.redrive_notifications``) |
| ``rule-errors`` (IoT rule)          | the telemetry buffer, re-evaluated with the rule's SQL from the error's original payload |
| ``rejects`` (only when named)       | the telemetry buffer (the original body), e.g. after registering an unknown device |
| ``stream-failures``                 | not movable: metadata of stream batches (see docs/runbook.md) |

Without ``--queue`` every dead-letter queue, the publish-retry and the rule-errors queue is
redriven (rejects only when named: most are bad records for good). ``--queue`` takes a queue
name, a name fragment (``Buffer-Dlq``, ``BufferDlq``) or a role (``rejects``).

No message is lost: a message is deleted only after its copy was accepted by the target (a
batch send reports each entry); one that fails stays (its visibility is released). ``--dry-run``
receives nothing (receiving counts towards a queue's own ``maxReceiveCount``): it prints each
queue, its target and its approximate message count. Exit status 1 when anything failed.

A queue is worked until a receive returns nothing. Messages left on purpose (skipped, failed) are
held invisible for the run; when a long run outlasts that hold they come back, are recognised (not
counted or sent twice), held again for twice as long, and never end the run early.

Rejects whose body was cut at ``MAX_BODY_CHARS`` (200,000 characters,
:mod:`smartzone.repositories.rejects`) are not the original message any more: they are never
resent, but skipped and counted as ``truncated body``.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from smartzone.repositories.clients import client
from smartzone.repositories.rejects import MAX_BODY_CHARS
from tools.ops_aws import (
    SESSION_FILE,
    QueueInfo,
    find_topic,
    queue_with_role,
    stack_name_of,
    stack_output,
    stack_queues,
    use_local_platform,
)
from tools.queue_loop import Message, Reappearing, queue_depth, work_queue

TRUNCATED = "truncated body"
MAX_RETURNS = 12
"""A held message back this often (its hold doubled each time) means holds do not work: stop."""
GROWING_HOLD = Reappearing(
    grow=True,
    note="held messages keep coming back (visibility not kept?): stopped early",
    max_returns=MAX_RETURNS,
)
BUFFER = "telemetry-buffer"
REJECTS = "rejects"
RULE_ERRORS = "rule-errors"
PUBLISH_RETRY = "publish-retry"
STREAM_FAILURES = "stream-failures"
DEFAULT_ROLES = frozenset({PUBLISH_RETRY, RULE_ERRORS})
NOT_MOVABLE = "not movable"


@dataclass
class QueueReport:
    queue: str
    target: str
    found: int = 0
    moved: int = 0
    failed: int = 0
    skipped: int = 0
    """Messages left on purpose (e.g. rejects of another reason, rule errors without payload)."""
    skip_reasons: dict[str, int] = field(default_factory=dict)
    """Of ``skipped``, those a transform refused with a reason (:class:`Skip`), per reason."""
    left: int = 0
    errors: list[str] = field(default_factory=list)

    def line(self, dry_run: bool) -> str:
        if dry_run:
            return f"{self.queue} → {self.target}: ~{self.found} message(s) would be redriven (dry run)"
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.skip_reasons.items()))
        return (
            f"{self.queue} → {self.target}: found {self.found}, moved {self.moved}, "
            f"failed {self.failed}, skipped {self.skipped}{f' ({reasons})' if reasons else ''}, "
            f"left {self.left}"
        )


@dataclass
class RedriveReport:
    dry_run: bool
    queues: list[QueueReport] = field(default_factory=list)

    @property
    def moved(self) -> int:
        return sum(q.moved for q in self.queues)

    @property
    def found(self) -> int:
        return sum(q.found for q in self.queues)

    @property
    def failed(self) -> int:
        return sum(q.failed for q in self.queues)


Transform = Callable[[dict[str, Any]], dict[str, Any] | None]
"""A received message → the entry to send (``MessageBody``, ``MessageAttributes``), or None to skip
(or raise :class:`Skip` to skip it with a reason that the report counts)."""


class Skip(Exception):
    """A transform's verdict: leave the message in its queue, for ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _as_is(message: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"MessageBody": message["Body"]}
    if message.get("MessageAttributes"):
        entry["MessageAttributes"] = message["MessageAttributes"]
    attrs = message.get("Attributes", {})
    if "MessageGroupId" in attrs:
        entry["MessageGroupId"] = attrs["MessageGroupId"]
        entry["MessageDeduplicationId"] = attrs.get("MessageDeduplicationId") or message["MessageId"]
    return entry


def _rejected_original(reason: str | None) -> Transform:
    """A rejects-queue copy → the buffer message it was (only rejects of ``reason``, when given)."""

    def transform(message: dict[str, Any]) -> dict[str, Any] | None:
        try:
            copy = json.loads(message["Body"])
        except ValueError:
            return None
        if not isinstance(copy, dict) or "body" not in copy:
            return None
        if reason is not None and copy.get("reason") != reason:
            return None
        body = str(copy["body"])
        if copy.get("truncated") is True or len(body) >= MAX_BODY_CHARS:
            # Cut at MAX_BODY_CHARS when it was rejected (older copies carry no flag: a body of
            # exactly that length is taken as cut): resending it would send a broken message.
            raise Skip(TRUNCATED)
        return {"MessageBody": body}

    return transform


def _rule_error_replay(sql_of: Callable[[str], str]) -> Transform:
    """An IoT error-action message → what the rule would have sent to the buffer."""
    from infra.local.iot_sql import compile_rule

    def transform(message: dict[str, Any]) -> dict[str, Any] | None:
        try:
            error = json.loads(message["Body"])
            payload = base64.b64decode(error["base64OriginalPayload"])
            topic = str(error["topic"])
        except (ValueError, KeyError, TypeError):
            return None  # no original payload (e.g. the local platform's errors): left for a look
        sent = error.get("timestamp") or message.get("Attributes", {}).get("SentTimestamp")
        output = compile_rule(sql_of(str(error.get("ruleName", "")))).evaluate(
            topic, payload, int(sent) if sent else int(time.time() * 1000)
        )
        return None if output is None else {"MessageBody": json.dumps(output, ensure_ascii=False)}

    return transform


def _rule_sql(rule_name: str) -> str:
    """The rule's SQL from IoT (cloud), else the telemetry rule's SQL as the stack defines it."""
    if rule_name:
        try:
            return str(client("iot").get_topic_rule(ruleName=rule_name)["rule"]["sql"])
        except (ClientError, BotoCoreError, KeyError):
            pass
    from infra.constructs.ingest import TELEMETRY_SQL

    return TELEMETRY_SQL


def move_messages(
    source_url: str,
    target_url: str,
    report: QueueReport,
    *,
    transform: Transform = _as_is,
    max_messages: int | None = None,
    wait_s: int = 1,
    visibility_timeout_s: int = 120,
) -> QueueReport:
    """Receive from ``source_url`` in batches, send to ``target_url``, delete only what was sent.

    Stops after a receive that returns nothing (or at ``max_messages`` new ones). A message left in
    the queue (skipped, failed) is held for ``visibility_timeout_s``; if it comes back during the
    run (the run outlasted the hold), it is not counted again and is held for twice as long each
    time it returns, so that unseen messages behind it are still reached. All held messages are
    released when the run ends (:func:`tools.queue_loop.work_queue`)."""
    sqs = client("sqs")

    def send(fresh: list[Message], keep: Callable[[Message], None]) -> None:
        entries: dict[str, tuple[Message, dict[str, Any]]] = {}
        for i, message in enumerate(fresh):
            try:
                entry = transform(message)
            except Skip as skip:
                report.skip_reasons[skip.reason] = report.skip_reasons.get(skip.reason, 0) + 1
                entry = None
            if entry is None:
                report.skipped += 1
                keep(message)
                continue
            entries[str(i)] = (message, {"Id": str(i), **entry})
        if not entries:
            return
        try:
            response = sqs.send_message_batch(
                QueueUrl=target_url, Entries=[entry for _, entry in entries.values()]
            )
        except (ClientError, BotoCoreError) as exc:
            report.failed += len(entries)
            report.errors.append(f"send to {target_url} failed: {exc}")
            for message, _ in entries.values():
                keep(message)
            return
        for failure in response.get("Failed", []):
            message, _ = entries.pop(failure["Id"])
            report.failed += 1
            report.errors.append(f"{message['MessageId']}: {failure.get('Message', failure.get('Code'))}")
            keep(message)
        sent = [m for m, _ in entries.values()]
        if not sent:
            return
        deleted = sqs.delete_message_batch(
            QueueUrl=source_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(sent)],
        )
        report.moved += len(sent)
        for failure in deleted.get("Failed", []):
            # Sent but not deleted: the next run sends it again (consumers are idempotent).
            report.errors.append(f"{sent[int(failure['Id'])]['MessageId']}: sent, not deleted")

    report.found += work_queue(
        source_url,
        send,
        GROWING_HOLD,
        report.errors,
        max_messages=None if max_messages is None else max_messages - report.found,
        wait_s=wait_s,
        visibility_timeout_s=visibility_timeout_s,
    )
    report.left = queue_depth(source_url)
    return report


def _matches(queue: QueueInfo, wanted: Sequence[str]) -> bool:
    def norm(text: str) -> str:
        return text.replace("-", "").lower()

    return any(w == queue.role or w == queue.url or norm(w) in norm(queue.name) for w in wanted)


def plan(queues: list[QueueInfo], wanted: Sequence[str] = ()) -> list[tuple[QueueInfo, str]]:
    """(queue, target description) for every queue to redrive."""
    chosen: list[tuple[QueueInfo, str]] = []
    by_url = {q.url: q for q in queues}
    for queue in queues:
        if wanted and not _matches(queue, wanted):
            continue
        if queue.is_dlq:
            source = by_url.get(queue.source_url or "")
            chosen.append((queue, source.name if source else str(queue.source_url)))
        elif queue.role in (RULE_ERRORS, REJECTS):
            if queue.role == REJECTS and not wanted:
                continue
            chosen.append((queue, f"{BUFFER} (re-evaluated)" if queue.role == RULE_ERRORS else BUFFER))
        elif queue.role == PUBLISH_RETRY:
            chosen.append((queue, "SNS notifications topic"))
        elif queue.role == STREAM_FAILURES and wanted:
            chosen.append((queue, NOT_MOVABLE))
    return chosen


def redrive(
    stack: str,
    *,
    queues: Sequence[str] = (),
    dry_run: bool = False,
    max_messages: int | None = None,
    reason: str | None = None,
    topic_arn: str | None = None,
    wait_s: int = 1,
) -> RedriveReport:
    all_queues = stack_queues(stack)
    if not all_queues:
        raise ValueError(f"no queues of stack {stack!r} found (wrong --env/--stack, region or credentials?)")
    report = RedriveReport(dry_run=dry_run)
    for queue, target in plan(all_queues, queues):
        entry = QueueReport(queue=queue.name, target=target)
        report.queues.append(entry)
        if dry_run or target == NOT_MOVABLE:
            entry.found = queue.visible + queue.in_flight
            entry.left = entry.found
            continue
        if queue.is_dlq:
            move_messages(queue.url, str(queue.source_url), entry, max_messages=max_messages, wait_s=wait_s)
        elif queue.role == PUBLISH_RETRY:
            from tools.redrive_notifications import redrive as publish_parked

            topic = (
                topic_arn
                or stack_output(stack, "NotificationsTopicArn")
                or find_topic(stack, "Notifications")
            )
            if topic is None:
                entry.errors.append("notifications topic not found: pass --topic-arn")
                entry.failed = queue.visible
                continue
            parked = publish_parked(queue.url, topic, max_messages=max_messages, wait_s=wait_s)
            entry.found, entry.moved, entry.failed, entry.left = (
                parked.found,
                parked.published,
                parked.failed,
                parked.left,
            )
            entry.errors.extend(parked.errors)
        else:
            buffer = queue_with_role(all_queues, BUFFER)
            if buffer is None:
                entry.errors.append(f"no single queue tagged {BUFFER} in stack {stack}")
                entry.failed = queue.visible
                continue
            transform = (
                _rule_error_replay(_rule_sql) if queue.role == RULE_ERRORS else _rejected_original(reason)
            )
            move_messages(
                queue.url, buffer.url, entry, transform=transform, max_messages=max_messages, wait_s=wait_s
            )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.redrive",
        description="Move messages from SmartZone's dead-letter and parking queues back to their source.",
    )
    parser.add_argument("--env", choices=("dev", "staging", "prod"), help="stack SmartZone-<env>")
    parser.add_argument("--stack", help="stack name (default SmartZone, or SmartZone-<env>)")
    parser.add_argument(
        "--local",
        nargs="?",
        const=str(SESSION_FILE),
        metavar="SESSION",
        help="the local platform (its session file, default .local/session.json)",
    )
    parser.add_argument("--queue", action="append", default=[], help="queue name, fragment or role")
    parser.add_argument("--dry-run", action="store_true", help="count only: receive and move nothing")
    parser.add_argument("--max", type=int, default=None, metavar="N", help="at most N messages per queue")
    parser.add_argument("--reason", help="rejects only: redrive rejects of this reason (e.g. unknown_device)")
    parser.add_argument("--topic-arn", help="publish-retry only: the notifications topic")
    parser.add_argument("--list", action="store_true", help="list the stack's queues and exit")
    args = parser.parse_args(argv)
    if args.max is not None and args.max < 1:
        parser.error("--max must be at least 1")
    if args.local:
        use_local_platform(args.local)
    stack = stack_name_of(args.env, args.stack)
    try:
        if args.list:
            for q in stack_queues(stack):
                kind = "dead-letter" if q.is_dlq else (q.role or "queue")
                print(f"{q.name:<70} {kind:<16} visible {q.visible:>6} in flight {q.in_flight:>4}")
            return 0
        report = redrive(
            stack,
            queues=args.queue,
            dry_run=args.dry_run,
            max_messages=args.max,
            reason=args.reason,
            topic_arn=args.topic_arn,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for entry in report.queues:
        print(entry.line(report.dry_run))
        for error in entry.errors[:20]:
            print(f"    {error}")
    verb = "would move" if report.dry_run else "moved"
    print(
        f"total: found {report.found}, {verb} {report.moved if not report.dry_run else report.found}, failed {report.failed}"
    )
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
