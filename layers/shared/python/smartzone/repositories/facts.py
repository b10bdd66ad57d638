"""Stored facts (``FACT#<subject key>``): each fact's current value and its history.

- ``CUR#<fact code>``: the current value with its provenance (``source``: form + version +
  submission, or an imported table; ``by``; ``at``; ``collected_at``; the ``grid_id`` and
  ``community`` it was collected in) and ``collected_at`` (top level, for the write condition:
  only a value collected no earlier replaces it).
- ``HIST#<fact code>#<at iso>#<source id>``: one entry per write (value and provenance), never
  changed afterwards (only :meth:`FactRepository.erase_subject` removes them).

A submission's fact writes are operations of the submission's own transaction
(:meth:`FactRepository.write_ops`), so facts change exactly once per submission, retries included.
Reading the facts a form needs is one BatchGetItem per 100 (subject, code) pairs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from smartzone.domain.facts import FactValue, Provenance
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item

FACT_PK_PREFIX = "FACT#"
BATCH_GET_LIMIT = 100
TRANSACTION_LIMIT = 100


def fact_key(subject: str, code: str) -> dict[str, str]:
    return {"pk": f"{FACT_PK_PREFIX}{subject}", "sk": f"CUR#{code}"}


def history_key(subject: str, code: str, at_iso: str, source_id: str) -> dict[str, str]:
    return {"pk": f"{FACT_PK_PREFIX}{subject}", "sk": f"HIST#{code}#{at_iso}#{source_id}"}


def replaces(source: Provenance, stored: FactValue | None) -> bool:
    """Whether a value from ``source`` becomes the current value over ``stored``: it was collected
    no earlier (a late offline submission does not replace a newer value; it goes to history)."""
    return stored is None or source.collected >= stored.source.collected


def _source_id(source: Provenance) -> str:
    return source.submission_id or f"import:{source.table or 'table'}"


class FactRepository:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    # -- reads ------------------------------------------------------------------------------------
    def current(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], FactValue]:
        """Current values of (subject key, fact code) pairs; absent facts are left out."""
        wanted = sorted(set(pairs))
        found: dict[tuple[str, str], FactValue] = {}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            keys = [to_item(fact_key(s, c)) for s, c in wanted[start : start + BATCH_GET_LIMIT]]
            request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
            while request:
                response = client("dynamodb").batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    data = from_item(item)
                    value = FactValue(
                        subject=data["subject"],
                        code=data["code"],
                        value=data.get("value"),
                        source=Provenance.model_validate(data["source"]),
                    )
                    found[(value.subject, value.code)] = value
                request = response.get("UnprocessedKeys") or {}
        return found

    def history(self, subject: str, code: str) -> list[FactValue]:
        """Every value the fact had, oldest first."""
        out: list[FactValue] = []
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :h)",
            "ExpressionAttributeValues": to_item({":p": f"{FACT_PK_PREFIX}{subject}", ":h": f"HIST#{code}#"}),
        }
        while True:
            page = client("dynamodb").query(**request)
            for item in page.get("Items", []):
                data = from_item(item)
                out.append(
                    FactValue(
                        subject=subject,
                        code=code,
                        value=data.get("value"),
                        source=Provenance.model_validate(data["source"]),
                    )
                )
            if "LastEvaluatedKey" not in page:
                return out
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- writes -----------------------------------------------------------------------------------
    def write_ops(
        self, subject: str, code: str, value: Any, source: Provenance, *, replace_current: bool = True
    ) -> list[dict[str, Any]]:
        """The transaction operations of one fact write: a history entry, and the current value
        unless ``replace_current`` is false (the stored value was collected later: see
        :func:`replaces`). The current-value put is conditioned on being collected no earlier than
        the stored one, so a transaction racing a newer write is cancelled (reason
        ``ConditionalCheckFailed`` at that operation) instead of overwriting it."""
        provenance = source.model_dump(mode="json", exclude_none=True)
        entry = {
            **history_key(subject, code, source.at, _source_id(source)),
            "entity": "fact_history",
            "value": value,
            "source": provenance,
        }
        ops: list[dict[str, Any]] = [{"Put": {"TableName": self.table_name, "Item": to_item(entry)}}]
        if replace_current:
            current = {
                **fact_key(subject, code),
                "entity": "fact",
                "subject": subject,
                "code": code,
                "value": value,
                "source": provenance,
                "collected_at": source.collected,
            }
            ops.insert(
                0,
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": to_item(current),
                        "ConditionExpression": (
                            "attribute_not_exists(pk) OR attribute_not_exists(#c) OR #c <= :c"
                        ),
                        "ExpressionAttributeNames": {"#c": "collected_at"},
                        "ExpressionAttributeValues": to_item({":c": source.collected}),
                    }
                },
            )
        return ops

    def import_facts(self, rows: Iterable[tuple[str, str, Any]], source: Provenance) -> int:
        """Write (subject, code, value) rows from an imported table; returns how many were written
        (each gets a history entry; the current value only where the import is not older)."""
        rows = list(rows)
        stored = self.current((subject, code) for subject, code, _ in rows)
        ops: list[dict[str, Any]] = []
        for subject, code, value in rows:
            ops.extend(
                self.write_ops(
                    subject,
                    code,
                    value,
                    source,
                    replace_current=replaces(source, stored.get((subject, code))),
                )
            )
        for start in range(0, len(ops), TRANSACTION_LIMIT):
            client("dynamodb").transact_write_items(TransactItems=ops[start : start + TRANSACTION_LIMIT])
        return len(rows)

    def erase_subject(self, subject_key: str) -> int:
        """Delete every fact and history entry of one subject (erasure on request); returns how many
        items were deleted. Submissions keep their values; the caller anonymises them separately
        (:meth:`smartzone.repositories.submissions.SubmissionRepository.anonymise_subject`)."""
        ddb = client("dynamodb")
        deleted = 0
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": to_item({":p": f"{FACT_PK_PREFIX}{subject_key}"}),
            "ProjectionExpression": "pk, sk",
        }
        while True:
            page = ddb.query(**request)
            items = page.get("Items", [])
            for start in range(0, len(items), 25):
                pending: dict[str, Any] = {
                    self.table_name: [{"DeleteRequest": {"Key": k}} for k in items[start : start + 25]]
                }
                while pending:
                    pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            deleted += len(items)
            if "LastEvaluatedKey" not in page:
                return deleted
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def submissions_of(self, subject_key: str) -> list[str]:
        """The submission ids that wrote facts of this subject (from its history)."""
        ids: set[str] = set()
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :h)",
            "ExpressionAttributeValues": to_item({":p": f"{FACT_PK_PREFIX}{subject_key}", ":h": "HIST#"}),
        }
        while True:
            page = client("dynamodb").query(**request)
            for item in page.get("Items", []):
                submission = from_item(item).get("source", {}).get("submission_id")
                if submission:
                    ids.add(str(submission))
            if "LastEvaluatedKey" not in page:
                return sorted(ids)
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
