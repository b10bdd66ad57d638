"""Form submissions (``SUBMISSION#<submission_id>``) and the daily prefill counters.

Recording a submission is ONE ``TransactWriteItems``: the submission put on condition that its
id is new (the client's submission id: an offline retry fails the condition and the transaction
is cancelled as a whole), the fact writes (current value + history, see
:mod:`smartzone.repositories.facts`) and an ``ADD`` to the day's prefill counters
(``STATS#<day>`` / ``PREFILL``; attribute ``<form>|<community>|<grid>|<outcome>``). So facts
and counters change exactly once per submission, however often it is retried. A cancellation
by ``TransactionConflict`` (another submission writing the same counters or facts) is retried
with jittered backoff, then answered 503 (:class:`SubmissionBusy`); a fact write whose condition
failed (a later-collected value arrived meanwhile) raises :class:`StaleFacts` for the caller to
plan again.

Indexes: gsi1 ``FORMSUBS#<form>`` / ``<received>#<id>`` (a form's submissions: departments,
exports), gsi2 ``FORMGRIDSUBS#<form>#<grid>`` / same (one grid's: grid workers). Dates filter
the sort key; pages continue with DynamoDB's ``LastEvaluatedKey`` (signed by the API).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from smartzone.domain.errors import ServiceError
from smartzone.domain.forms import Submission
from smartzone.domain.prefill_stats import PREFILL_PART, counter_name
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item

BATCH_GET_LIMIT = 100
TRANSACTION_CONFLICT_RETRIES = 4
"""Attempts after the first when the transaction conflicts with another (jittered backoff)."""


class DuplicateSubmission(Exception):
    """A submission with this id exists already (``existing`` holds it)."""

    def __init__(self, existing: Submission) -> None:
        super().__init__(existing.submission_id)
        self.existing = existing


class StaleFacts(Exception):
    """A fact the submission replaces got a later-collected value since it was read (nothing was
    written): read the facts again and plan the writes anew."""


class SubmissionBusy(ServiceError):
    """The transaction kept conflicting with concurrent submissions: 503, the app retries later
    (the submission id makes the retry safe)."""

    status = 503
    code = "busy"

    def __init__(self) -> None:
        super().__init__(
            "提交繁忙,请稍后重试 (too many submissions at once; please retry shortly)",
            field="client_submission_id",
        )


def submission_key(submission_id: str) -> dict[str, str]:
    return {"pk": f"SUBMISSION#{submission_id}", "sk": "SUBMISSION"}


def _sort(submission: Submission) -> str:
    return f"{submission.received_at}#{submission.submission_id}"


@dataclass(frozen=True)
class SubmissionPage:
    items: list[Submission]
    last_key: dict[str, Any] | None


class SubmissionRepository:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def get(self, submission_id: str) -> Submission | None:
        item = (
            client("dynamodb")
            .get_item(
                TableName=self.table_name, Key=to_item(submission_key(submission_id)), ConsistentRead=True
            )
            .get("Item")
        )
        return _submission_of(item) if item else None

    def record(self, submission: Submission, fact_ops: Sequence[dict[str, Any]], day: str) -> Submission:
        """Store the submission, its fact writes and its counters at once (see the module doc).

        Raises :class:`DuplicateSubmission` when the id exists, :class:`StaleFacts` when a fact's
        current value was replaced by a later-collected one meanwhile, :class:`SubmissionBusy` when
        conflicts persist after the retries (nothing is written in any of these cases)."""
        item = {
            **submission_key(submission.submission_id),
            "entity": "form_submission",
            **submission.model_dump(mode="json"),
            "gsi1pk": f"FORMSUBS#{submission.form_id}",
            "gsi1sk": _sort(submission),
            "gsi2pk": f"FORMGRIDSUBS#{submission.form_id}#{submission.grid_id}",
            "gsi2sk": _sort(submission),
        }
        counts = {
            counter_name(submission.form_id, submission.community, submission.grid_id, outcome): n
            for outcome, n in {"submissions": 1, **submission.outcome_counts()}.items()
            if n
        }
        names = {f"#a{i}": name for i, name in enumerate(sorted(counts))}
        values: dict[str, Any] = {f":v{i}": counts[name] for i, name in enumerate(sorted(counts))}
        ops: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": to_item(item),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            *fact_ops,
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": to_item(keys.stats_key(day, PREFILL_PART)),
                    "UpdateExpression": "ADD " + ", ".join(f"{n} :v{n[2:]}" for n in names) + " SET #e = :e",
                    "ExpressionAttributeNames": {**names, "#e": "entity"},
                    "ExpressionAttributeValues": to_item({**values, ":e": "stats"}),
                }
            },
        ]
        for attempt in range(TRANSACTION_CONFLICT_RETRIES + 1):
            try:
                client("dynamodb").transact_write_items(TransactItems=ops)
                return submission
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
                if (
                    code == "TransactionCanceledException"
                    and reasons
                    and reasons[0] == "ConditionalCheckFailed"
                ):
                    existing = self.get(submission.submission_id)
                    if existing is not None:
                        raise DuplicateSubmission(existing) from exc
                if code == "TransactionCanceledException" and "ConditionalCheckFailed" in reasons[1:]:
                    # A fact's current value was replaced by a later-collected one since it was read.
                    raise StaleFacts(submission.submission_id) from exc
                conflict = code == "TransactionConflictException" or (
                    code == "TransactionCanceledException" and "TransactionConflict" in reasons
                )
                if not conflict:
                    raise
                # Another submission is writing the day's counters or the same facts right now
                # (botocore does not retry this): back off with jitter, then a 503, never a 500.
                if attempt == TRANSACTION_CONFLICT_RETRIES:
                    raise SubmissionBusy() from exc
                time.sleep(random.uniform(0, min(0.05 * 2**attempt, 1.0)))  # full jitter
        raise AssertionError("unreachable")  # pragma: no cover

    def query(
        self,
        form_id: str,
        *,
        grid_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 50,
        start_key: dict[str, Any] | None = None,
        newest_first: bool = True,
    ) -> SubmissionPage:
        """One page of a form's submissions (one grid's when ``grid_id``), received in [since, until)."""
        index, partition = (
            ("gsi2", f"FORMGRIDSUBS#{form_id}#{grid_id}") if grid_id else ("gsi1", f"FORMSUBS#{form_id}")
        )
        condition = f"{index}pk = :p"
        values: dict[str, Any] = {":p": partition}
        if since and until:
            condition += f" AND {index}sk BETWEEN :a AND :b"
            values.update({":a": since, ":b": until})
        elif since:
            condition += f" AND {index}sk >= :a"
            values[":a"] = since
        elif until:
            condition += f" AND {index}sk < :b"
            values[":b"] = until
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": to_item(values),
            "ScanIndexForward": not newest_first,
            "Limit": limit,
        }
        if start_key:
            request["ExclusiveStartKey"] = start_key
        page = client("dynamodb").query(**request)
        return SubmissionPage(
            [_submission_of(i) for i in page.get("Items", [])], page.get("LastEvaluatedKey") or None
        )

    def iterate(self, form_id: str, since: str, until: str) -> Iterator[Submission]:
        """Every submission of a form received in [since, until), oldest first (exports)."""
        start: dict[str, Any] | None = None
        while True:
            page = self.query(
                form_id, since=since, until=until, limit=500, start_key=start, newest_first=False
            )
            yield from page.items
            if page.last_key is None:
                return
            start = page.last_key

    def anonymise_subject(
        self, submission_ids: Sequence[str], subject_key: str, fields: Sequence[str]
    ) -> int:
        """Erasure: drop ``fields`` (the subject's personal fields) from these submissions' values and
        replace the subject key by ``erased``; returns how many submissions were changed."""
        changed = 0
        for submission_id in submission_ids:
            current = self.get(submission_id)
            if current is None:
                continue
            values = {k: v for k, v in current.values.items() if k not in set(fields)}
            subjects = {t: ("erased" if s == subject_key else s) for t, s in current.subjects.items()}
            client("dynamodb").update_item(
                TableName=self.table_name,
                Key=to_item(submission_key(submission_id)),
                UpdateExpression="SET #v = :v, subjects = :s",
                ExpressionAttributeNames={"#v": "values"},
                ExpressionAttributeValues=to_item({":v": values, ":s": subjects}),
            )
            changed += 1
        return changed


def _submission_of(item: dict[str, Any]) -> Submission:
    data = from_item(item)
    return Submission.model_validate({k: v for k, v in data.items() if k in Submission.model_fields})


def prefill_items(table_name: str, days: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """The ``STATS#<day>`` / ``PREFILL`` items of ``days`` as (day, plain attributes) (BatchGetItem)."""
    found: list[tuple[str, dict[str, Any]]] = []
    wanted = [keys.stats_key(day, PREFILL_PART) for day in days]
    for start in range(0, len(wanted), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table_name: {"Keys": [to_item(k) for k in wanted[start : start + BATCH_GET_LIMIT]]}
        }
        while request:
            response = client("dynamodb").batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table_name, []):
                data = from_item(item)
                found.append((str(data["pk"]).removeprefix("STATS#"), data))
            request = response.get("UnprocessedKeys") or {}
    return found
