"""Redrive parked notifications: publish the events in the outbox retry queue to SNS again.

The outbox dispatcher parks an event in the retry queue, in full, when SNS still refuses it after
its attempts (metric ``NotificationsParked``). Once SNS works again, run::

    python -m tools.redrive_notifications [--dry-run] [--max N] [--queue-url URL] [--topic-arn ARN]

Defaults come from the environment, like the functions' settings: ``RETRY_QUEUE_URL`` and
``NOTIFICATIONS_TOPIC_ARN`` (plus the usual AWS credentials and region, e.g. ``cn-north-1``).

For every parked event it publishes the same SNS message the dispatcher would have published
(same text, subject and message attributes ``grid_id``, ``category``, ``severity``,
``event_type``, ``event_id``, so subscription filter policies route it to the same grid's
workers) and deletes the queue message only after SNS accepted it. Messages that fail (SNS still
down, or a body that is not a parked event) stay in the queue and are released for a later run.
It prints ``found / published / failed / left`` and exits 1 when anything failed.

Running it twice, or after a partial run, is safe: an event may reach a subscriber more than once
(at-least-once delivery), always with the same event id ``<order_id>:v<version>``, on which
consumers deduplicate.

``--dry-run`` lists what would be published without publishing or deleting anything. Note that
reading a message (dry run included) counts as a receive towards the retry queue's dead-letter
``maxReceiveCount``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from smartzone.repositories.clients import client
from smartzone.repositories.notifier import Notifier, PublishError, describe_error, parse_parked
from smartzone.settings import get_settings
from tools.queue_loop import Message, Reappearing, queue_depth, work_queue


@dataclass
class RedriveReport:
    found: int = 0
    """Messages read from the retry queue."""
    published: int = 0
    """Published to SNS and deleted from the queue (in a dry run: would be published)."""
    failed: int = 0
    """Left in the queue: SNS refused them, or the body is not a parked event."""
    left: int = 0
    """Messages in the retry queue after the run (approximate, as SQS counts them)."""
    dry_run: bool = False
    event_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.dry_run:
            return (
                f"found {self.found}, would publish {self.published}, failed {self.failed}, "
                f"left {self.left} (dry run: nothing published or deleted)"
            )
        return f"found {self.found}, published {self.published}, failed {self.failed}, left {self.left}"


MAX_STALE_ROUNDS = 5
"""Receives in a row that bring only messages already seen before the run gives up (a visibility
timeout shorter than the receives would otherwise loop forever)."""
SAME_HOLD = Reappearing(
    grow=False,
    note="held messages keep reappearing: run the command again to continue",
    max_stale_rounds=MAX_STALE_ROUNDS,
)


def redrive(
    queue_url: str | None = None,
    topic_arn: str | None = None,
    *,
    dry_run: bool = False,
    max_messages: int | None = None,
    wait_s: int = 2,
    visibility_timeout_s: int = 120,
    echo: bool = False,
) -> RedriveReport:
    """Publish the parked events of ``queue_url`` to ``topic_arn`` (defaults: the settings)."""
    settings = get_settings()
    queue_url = queue_url or settings.retry_queue_url
    topic_arn = topic_arn or settings.notifications_topic_arn
    if not queue_url or not topic_arn:
        raise ValueError(
            "a retry queue URL and a topic ARN are needed (RETRY_QUEUE_URL, NOTIFICATIONS_TOPIC_ARN)"
        )
    notifier = Notifier(topic_arn, queue_url, attempts=settings.publish_attempts)
    sqs = client("sqs")
    report = RedriveReport(dry_run=dry_run)

    def say(line: str) -> None:
        if echo:
            print(line)

    def publish(fresh: list[Message], keep: Callable[[Message], None]) -> None:
        for message in fresh:
            try:
                parked = parse_parked(message["Body"])
            except ValidationError as exc:
                report.failed += 1
                report.errors.append(
                    f"{message['MessageId']}: not a parked event ({exc.error_count()} errors)"
                )
                say(f"skip    {message['MessageId']}: not a parked event, left in the queue")
                keep(message)
                continue
            event = parked.event
            if dry_run:
                report.published += 1
                report.event_ids.append(event.event_id)
                say(f"would publish {event.event_id} {event.event_type} grid={event.grid_id}")
                say(f"        parked after: {parked.error}")
                keep(message)
                continue
            try:
                notifier.publish(event)
            except PublishError as exc:
                report.failed += 1
                report.errors.append(str(exc))
                say(f"failed  {event.event_id}: {describe_error(exc.cause)}")
                keep(message)
                continue
            report.published += 1
            report.event_ids.append(event.event_id)
            say(f"published {event.event_id} {event.event_type} grid={event.grid_id}")
            try:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            except (ClientError, BotoCoreError) as exc:
                # Published but still queued: a later run publishes it again (same event id).
                report.errors.append(f"{event.event_id}: published, not deleted: {describe_error(exc)}")

    report.found = work_queue(
        queue_url,
        publish,
        SAME_HOLD,
        report.errors,
        max_messages=max_messages,
        wait_s=wait_s,
        visibility_timeout_s=visibility_timeout_s,
    )
    report.left = queue_depth(queue_url)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.redrive_notifications",
        description="Publish the notifications parked in the outbox retry queue to SNS again.",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be published; change nothing")
    parser.add_argument("--max", type=int, default=None, metavar="N", help="handle at most N messages")
    parser.add_argument("--queue-url", default=None, help="retry queue URL (default: $RETRY_QUEUE_URL)")
    parser.add_argument(
        "--topic-arn", default=None, help="notifications topic ARN (default: $NOTIFICATIONS_TOPIC_ARN)"
    )
    args = parser.parse_args(argv)
    if args.max is not None and args.max < 1:
        parser.error("--max must be at least 1")
    try:
        report = redrive(
            args.queue_url, args.topic_arn, dry_run=args.dry_run, max_messages=args.max, echo=True
        )
    except ValueError as exc:
        parser.error(str(exc))
    except (ClientError, BotoCoreError) as exc:
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        return 2
    print(report.summary())
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
