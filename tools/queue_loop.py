"""The receive loop of the redrive commands (:mod:`tools.redrive`, :mod:`tools.redrive_notifications`).

A queue is worked until a receive returns nothing (or ``max_messages`` new messages were read).
Each receive's new messages go to the caller's handler, which acts on them (send, publish, …)
and names those it leaves in the queue; those are held invisible for the run. A held message
that comes back (the run outlasted its hold) is recognised, not handled or counted again, and held
again as its :class:`Reappearing` policy says; the policy also says when reappearing messages end
the run early, with a note. Every held message is released (made visible) when the run ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from smartzone.repositories.clients import client

SQS_BATCH = 10
MAX_VISIBILITY_S = 43_200
"""SQS's longest visibility timeout (12 hours)."""

Message = dict[str, Any]
Handler = Callable[[list[Message], Callable[[Message], None]], None]
"""Acts on the new messages of one receive; calls its second argument (``keep``) with each message
it leaves in the queue (held for the rest of the run)."""


@dataclass(frozen=True)
class Reappearing:
    """What the loop does with held messages that come back during the run."""

    grow: bool
    """Hold one twice as long each time it comes back (else for the visibility timeout again)."""
    note: str
    """The error recorded when reappearing messages end the run."""
    max_returns: int | None = None
    """Stop when a message came back more often than this."""
    max_stale_rounds: int | None = None
    """Stop after more than this many receives in a row that bring only messages seen before."""


def hold(queue_url: str, handles: list[str], seconds: int) -> None:
    """Set the visibility of received messages (0 releases them); best effort."""
    sqs = client("sqs")
    for start in range(0, len(handles), SQS_BATCH):
        chunk = handles[start : start + SQS_BATCH]
        # On failure they become visible again when their current visibility timeout ends.
        with contextlib.suppress(ClientError, BotoCoreError):
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": seconds}
                    for i, h in enumerate(chunk)
                ],
            )


def queue_depth(queue_url: str) -> int:
    """Messages in the queue, visible or not (approximate, as SQS counts them)."""
    attributes = client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


def work_queue(
    queue_url: str,
    handle: Handler,
    reappearing: Reappearing,
    errors: list[str],
    *,
    max_messages: int | None = None,
    wait_s: int = 1,
    visibility_timeout_s: int = 120,
) -> int:
    """Receive from ``queue_url`` until an empty receive, passing new messages to ``handle``.

    Returns the number of new messages read (at most ``max_messages``); a note on an early stop
    is appended to ``errors``. Messages left by ``handle`` are held for ``visibility_timeout_s``
    and released when the run ends."""
    sqs = client("sqs")
    found = 0
    seen: set[str] = set()
    held: dict[str, str] = {}
    """message id → its latest receipt handle (released at the end)."""
    returns: dict[str, int] = {}
    stale_rounds = 0

    def keep(message: Message) -> None:
        held[message["MessageId"]] = message["ReceiptHandle"]

    try:
        while max_messages is None or found < max_messages:
            wanted = SQS_BATCH if max_messages is None else min(SQS_BATCH, max_messages - found)
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=wait_s,
                VisibilityTimeout=visibility_timeout_s,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break  # only an empty receive ends the run: held messages may reappear meanwhile
            fresh = [m for m in messages if m["MessageId"] not in seen]
            back = [m for m in messages if m["MessageId"] in seen]
            stale_rounds = 0 if fresh else stale_rounds + 1
            by_hold: dict[int, list[str]] = {}
            for message in back:
                message_id = message["MessageId"]
                returns[message_id] = returns.get(message_id, 0) + 1
                held[message_id] = message["ReceiptHandle"]
                seconds = (
                    min(MAX_VISIBILITY_S, max(visibility_timeout_s, 1) * 2 ** returns[message_id])
                    if reappearing.grow
                    else visibility_timeout_s
                )
                by_hold.setdefault(seconds, []).append(message["ReceiptHandle"])
            for seconds, handles in by_hold.items():
                hold(queue_url, handles, seconds)
            if (
                reappearing.max_returns is not None
                and back
                and max(returns[m["MessageId"]] for m in back) > reappearing.max_returns
            ) or (reappearing.max_stale_rounds is not None and stale_rounds > reappearing.max_stale_rounds):
                errors.append(reappearing.note)
                break
            for message in fresh:
                seen.add(message["MessageId"])
            found += len(fresh)
            if fresh:
                handle(fresh, keep)
    finally:
        if held:
            hold(queue_url, list(held.values()), 0)
    return found
