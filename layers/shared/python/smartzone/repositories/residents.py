"""The resident store: golden records, care-category memberships, counts, review items, decisions.

Key design (also in :mod:`smartzone.repositories.keys`):

| item                | pk                   | sk              | index keys                                                    |
|---------------------|----------------------|-----------------|---------------------------------------------------------------|
| resident            | RESIDENT#<id_key>    | RESIDENT        | gsi1 RESGRID#<grid> / <id_key>; gsi2 RESCOMMUNITY#<c> / <id_key> |
| category membership | RESIDENT#<id_key>    | CAT#<category>  | gsi3 RESCATEGORY#<category> / <grid>#<id_key>                 |
| counts              | RESCOUNTS            | <dim>#<value>   | – (``count``; dims total, grid, community, category, gridcategory, gridcommunity) |
| review item         | REVIEW#<item_id>     | REVIEW          | gsi1 REVIEWS#<status> / <reason>#<item_id>; gsi2 RESREVIEWS#<id_key> / <item_id> |
| steward decision    | DECISION#<id>        | DECISION        | gsi1 DECISIONS / <decided_at>#<id>; gsi2 RESDECISIONS#<id_key> / <id> |

Personal data (ID numbers, every golden value, candidate values, queued rows' fields, decided
values) is sealed (:mod:`smartzone.repositories.personal_data`) with the item's ``pk`` as
associated data; keys, classification and lineage metadata are in clear. Nothing here logs a
value. An erased resident keeps a tombstone (``erased_at``, no personal data) so that a later
merge run does not bring the person back: :meth:`ResidentRepository.write_residents` and
:meth:`ResidentRepository.write_reviews` skip golden records and review items of tombstoned keys.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from smartzone.domain.residents import Classification, FieldSource, Resident
from smartzone.population.models import Candidate, ReviewItem, StewardDecision
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, serialize, to_item
from smartzone.repositories.personal_data import Sealer, sealer

RESIDENT_PREFIX = "RESIDENT#"
COUNTS_PK = "RESCOUNTS"
OPEN, DECIDED = "open", "decided"
_BATCH_RETRIES = 8


def resident_key(id_key: str) -> dict[str, str]:
    return {"pk": f"{RESIDENT_PREFIX}{id_key}", "sk": "RESIDENT"}


def category_key(id_key: str, category: str) -> dict[str, str]:
    return {"pk": f"{RESIDENT_PREFIX}{id_key}", "sk": f"CAT#{category}"}


def review_key(item_id: str) -> dict[str, str]:
    return {"pk": f"REVIEW#{item_id}", "sk": "REVIEW"}


def decision_key(decision_id: str) -> dict[str, str]:
    return {"pk": f"DECISION#{decision_id}", "sk": "DECISION"}


def counts_of(residents: Iterable[Resident]) -> Counter[str]:
    """Residents by grid, community, care category and grid + category (and the total)."""
    counts: Counter[str] = Counter()
    for r in residents:
        if r.erased_at is not None:
            continue
        counts.update(count_dimensions(r.classification))
    return counts


def count_dimensions(c: Classification) -> list[str]:
    dims = ["total#all"]
    if c.grid_id:
        dims.append(f"grid#{c.grid_id}")
    if c.community:
        dims.append(f"community#{c.community}")
        if c.grid_id:
            dims.append(f"gridcommunity#{c.grid_id}#{c.community}")
    for category in c.categories:
        dims.append(f"category#{category}")
        if c.grid_id:
            dims.append(f"gridcategory#{c.grid_id}#{category}")
    return dims


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class ResidentRepository:
    def __init__(self, table_name: str, seal: Sealer | None = None) -> None:
        self.table_name = table_name
        self._sealer = seal

    @property
    def sealer(self) -> Sealer:
        return self._sealer or sealer()

    # -- residents ---------------------------------------------------------------------------------
    def _resident_item(self, r: Resident) -> dict[str, Any]:
        key = resident_key(r.id_key)
        c = r.classification
        item: dict[str, Any] = {
            **key,
            "entity": "resident",
            "id_key": r.id_key,
            "personal": self.sealer.seal(r.personal, key["pk"]),
            "attributes": r.attributes,
            "lineage": {k: v.model_dump() for k, v in r.lineage.items()},
            "registration": c.registration,
            "age_band": c.age_band,
            "community": c.community,
            "grid_id": c.grid_id,
            "categories": list(c.categories),
            "run_id": r.run_id,
            "updated_at": r.updated_at,
        }
        if c.grid_id:
            item.update({"gsi1pk": f"RESGRID#{c.grid_id}", "gsi1sk": r.id_key})
        if c.community:
            item.update({"gsi2pk": f"RESCOMMUNITY#{c.community}", "gsi2sk": r.id_key})
        return item

    def _resident_of(self, data: Mapping[str, Any]) -> Resident:
        sealed = data.get("personal")
        personal = self.sealer.open(sealed, str(data["pk"])) if sealed else {}
        return Resident(
            id_key=str(data["id_key"]),
            personal={k: str(v) for k, v in personal.items()},
            attributes=dict(data.get("attributes") or {}),
            lineage={k: FieldSource.model_validate(v) for k, v in (data.get("lineage") or {}).items()},
            classification=Classification(
                registration=data.get("registration"),
                age_band=data.get("age_band"),
                community=data.get("community"),
                grid_id=data.get("grid_id"),
                categories=tuple(data.get("categories") or ()),
            ),
            run_id=data.get("run_id"),
            updated_at=data.get("updated_at"),
            erased_at=data.get("erased_at"),
        )

    def get(self, id_key: str) -> Resident | None:
        item = (
            client("dynamodb")
            .get_item(TableName=self.table_name, Key=to_item(resident_key(id_key)), ConsistentRead=True)
            .get("Item")
        )
        return self._resident_of(from_item(item)) if item else None

    def get_many(self, id_keys: Iterable[str]) -> list[Resident]:
        return [self._resident_of(d) for d in self._batch_get([resident_key(k) for k in id_keys])]

    def write_residents(self, residents: list[Resident]) -> list[Resident]:
        """Upsert golden records and their category memberships (erased people are skipped).

        Reads the current items first (one BatchGetItem per 100) to skip tombstones and to drop
        memberships of categories a person no longer has. Returns the residents written.
        """
        current = {str(d["id_key"]): d for d in self._batch_get([resident_key(r.id_key) for r in residents])}
        writes: list[dict[str, Any]] = []
        written: list[Resident] = []
        for r in residents:
            before = current.get(r.id_key)
            if before is not None and before.get("erased_at"):
                continue
            written.append(r)
            writes.append({"PutRequest": {"Item": to_item(self._resident_item(r))}})
            grid = r.classification.grid_id or "-"
            for category in r.classification.categories:
                member = {
                    **category_key(r.id_key, category),
                    "entity": "resident_category",
                    "gsi3pk": f"RESCATEGORY#{category}",
                    "gsi3sk": f"{grid}#{r.id_key}",
                }
                writes.append({"PutRequest": {"Item": to_item(member)}})
            old = set(before.get("categories") or ()) if before else set()
            for category in sorted(old - set(r.classification.categories)):
                writes.append({"DeleteRequest": {"Key": to_item(category_key(r.id_key, category))}})
        self._batch_write(writes)
        return written

    def _query(self, request: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        page = client("dynamodb").query(TableName=self.table_name, **request)
        return [from_item(i) for i in page.get("Items", [])], page.get("LastEvaluatedKey")

    def by_grid(
        self, grid_id: str, *, limit: int, start_key: dict[str, Any] | None = None
    ) -> tuple[list[Resident], dict[str, Any] | None]:
        return self._by_index(keys.GSI1, "gsi1pk", f"RESGRID#{grid_id}", limit, start_key)

    def by_community(
        self,
        community: str,
        *,
        limit: int,
        start_key: dict[str, Any] | None = None,
        grids: Iterable[str] | None = None,
    ) -> tuple[list[Resident], dict[str, Any] | None]:
        """Residents of a community; ``grids``: None = every grid, otherwise only these (empty: none)."""
        return self._by_index(keys.GSI2, "gsi2pk", f"RESCOMMUNITY#{community}", limit, start_key, grids)

    def _by_index(
        self,
        index: str,
        attribute: str,
        value: str,
        limit: int,
        start_key: dict[str, Any] | None,
        grids: Iterable[str] | None = None,
    ) -> tuple[list[Resident], dict[str, Any] | None]:
        request: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": f"{attribute} = :p",
            "ExpressionAttributeValues": {":p": serialize(value)},
            "Limit": limit,
        }
        allowed = None if grids is None else sorted(set(grids))
        if allowed is not None and not allowed:  # an empty reach is no resident, never "no filter"
            return [], None
        if allowed:
            names = [f":g{i}" for i in range(len(allowed))]
            request["FilterExpression"] = f"grid_id IN ({', '.join(names)})"
            request["ExpressionAttributeValues"].update(
                {n: serialize(g) for n, g in zip(names, allowed, strict=True)}
            )
        if start_key:
            request["ExclusiveStartKey"] = start_key
        items, last = self._query(request)
        return [self._resident_of(d) for d in items], last

    def by_category(
        self,
        category: str,
        *,
        limit: int,
        grid_id: str | None = None,
        start_key: dict[str, Any] | None = None,
    ) -> tuple[list[Resident], dict[str, Any] | None]:
        condition = "gsi3pk = :p"
        values = {":p": serialize(f"RESCATEGORY#{category}")}
        if grid_id:
            condition += " AND begins_with(gsi3sk, :g)"
            values[":g"] = serialize(f"{grid_id}#")
        request: dict[str, Any] = {
            "IndexName": keys.GSI3,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "Limit": limit,
        }
        if start_key:
            request["ExclusiveStartKey"] = start_key
        members, last = self._query(request)
        id_keys = [str(m["pk"]).removeprefix(RESIDENT_PREFIX) for m in members]
        found = {r.id_key: r for r in self.get_many(id_keys)}
        return [found[k] for k in id_keys if k in found], last

    # -- counts ------------------------------------------------------------------------------------
    def replace_counts(self, counts: Mapping[str, int]) -> None:
        """Replace every count item by ``counts`` (``<dim>#<value>`` → n), dropping the others."""
        existing = {str(d["sk"]) for d in self._all({"KeyConditionExpression": "pk = :p"}, COUNTS_PK)}
        writes: list[dict[str, Any]] = [
            {
                "PutRequest": {
                    "Item": to_item({"pk": COUNTS_PK, "sk": dim, "entity": "resident_count", "count": n})
                }
            }
            for dim, n in sorted(counts.items())
        ]
        writes += [
            {"DeleteRequest": {"Key": to_item({"pk": COUNTS_PK, "sk": dim})}}
            for dim in sorted(existing - set(counts))
        ]
        self._batch_write(writes)

    def counts(self) -> dict[str, int]:
        return {
            str(d["sk"]): int(d.get("count", 0))
            for d in self._all({"KeyConditionExpression": "pk = :p"}, COUNTS_PK)
        }

    def _all(self, request: dict[str, Any], partition: str) -> Iterator[dict[str, Any]]:
        request = {**request, "ExpressionAttributeValues": {":p": serialize(partition)}}
        while True:
            items, last = self._query(request)
            yield from items
            if not last:
                return
            request["ExclusiveStartKey"] = last

    # -- review items --------------------------------------------------------------------------------
    def _review_item(self, item: ReviewItem, created_at: str) -> dict[str, Any]:
        key = review_key(item.item_id)
        personal = {
            "candidates": [c.value for c in item.candidates],
            "chosen": item.chosen,
            "row_fields": item.row_fields,
        }
        data: dict[str, Any] = {
            **key,
            "entity": "review",
            "item_id": item.item_id,
            "reason": item.reason.value,
            "status": OPEN,
            "id_key": item.id_key,
            "field": item.field,
            "source": item.source,
            "row": item.row,
            "details": list(item.details),
            "candidate_refs": [
                {"source": c.source, "row": c.row, "source_date": c.source_date} for c in item.candidates
            ],
            "personal": self.sealer.seal(personal, key["pk"]),
            "created_at": created_at,
            "gsi1pk": f"REVIEWS#{OPEN}",
            "gsi1sk": f"{item.reason.value}#{item.item_id}",
        }
        if item.id_key:
            data.update({"gsi2pk": f"RESREVIEWS#{item.id_key}", "gsi2sk": item.item_id})
        if item.reopens:
            data["reopened_from"] = item.reopens
        return data

    def erased_keys(self, id_keys: Iterable[str]) -> set[str]:
        """The keys among ``id_keys`` whose resident is an erasure tombstone (one BatchGet per 100)."""
        found = self._batch_get([resident_key(k) for k in set(id_keys)])
        return {str(d["id_key"]) for d in found if d.get("erased_at")}

    def write_reviews(self, items: list[ReviewItem], created_at: str) -> dict[str, int]:
        """Open review items. One already decided is left as it is, unless the merge marked it
        ``reopens`` that very decision (its candidates changed); items of erased residents
        (tombstones) are never written: they hold the person's names and phones. Counts by outcome."""
        outcome = Counter({"opened": 0, "kept_decided": 0, "reopened": 0, "skipped_erased": 0})
        erased = self.erased_keys(i.id_key for i in items if i.id_key)
        for item in items:
            if item.id_key in erased:
                outcome["skipped_erased"] += 1
                continue
            condition = "attribute_not_exists(pk) OR #s = :open"
            values: dict[str, Any] = {":open": serialize(OPEN)}
            if item.reopens:
                condition += " OR decision_id = :reopens"
                values[":reopens"] = serialize(item.reopens)
            try:
                client("dynamodb").put_item(
                    TableName=self.table_name,
                    Item=to_item(self._review_item(item, created_at)),
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues=values,
                )
                outcome["reopened" if item.reopens else "opened"] += 1
            except ClientError as exc:
                if not _is_condition_failure(exc):
                    raise
                outcome["kept_decided"] += 1
        return dict(outcome)

    def review(self, item_id: str) -> tuple[ReviewItem, dict[str, Any]] | None:
        """The review item and its stored state (``status``, ``created_at``, ``decision_id``)."""
        raw = (
            client("dynamodb")
            .get_item(TableName=self.table_name, Key=to_item(review_key(item_id)), ConsistentRead=True)
            .get("Item")
        )
        if not raw:
            return None
        data = from_item(raw)
        return self._review_of(data), data

    def _review_of(self, data: Mapping[str, Any]) -> ReviewItem:
        sealed = data.get("personal")
        personal = self.sealer.open(sealed, str(data["pk"])) if sealed else {}
        values = list(personal.get("candidates") or [])
        refs = list(data.get("candidate_refs") or [])
        return ReviewItem(
            item_id=str(data["item_id"]),
            reason=data["reason"],
            id_key=data.get("id_key"),
            field=data.get("field"),
            candidates=[Candidate(value=str(v), **ref) for v, ref in zip(values, refs, strict=True)],
            chosen=personal.get("chosen"),
            source=data.get("source"),
            row=data.get("row"),
            details=list(data.get("details") or []),
            row_fields=dict(personal.get("row_fields") or {}),
        )

    def reviews(
        self, status: str, *, limit: int, start_key: dict[str, Any] | None = None
    ) -> tuple[list[tuple[ReviewItem, dict[str, Any]]], dict[str, Any] | None]:
        request: dict[str, Any] = {
            "IndexName": keys.GSI1,
            "KeyConditionExpression": "gsi1pk = :p",
            "ExpressionAttributeValues": {":p": serialize(f"REVIEWS#{status}")},
            "Limit": limit,
        }
        if start_key:
            request["ExclusiveStartKey"] = start_key
        items, last = self._query(request)
        return [(self._review_of(d), d) for d in items], last

    # -- steward decisions -----------------------------------------------------------------------------
    def record_decision(self, decision: StewardDecision) -> None:
        """Store the decision and mark its review item decided, in one transaction; a second
        decision on the same item fails (``ConditionalCheckFailedException``: 409 in the API)."""
        key = decision_key(decision.decision_id)
        personal = {
            "value": decision.value,
            "id_number": decision.id_number,
            "candidates_seen": decision.candidates_seen,
            "note": decision.note,
        }
        item: dict[str, Any] = {
            **key,
            "entity": "decision",
            **decision.model_dump(mode="json", exclude={"value", "id_number", "candidates_seen", "note"}),
            "personal": self.sealer.seal(personal, key["pk"]),
            "gsi1pk": "DECISIONS",
            "gsi1sk": f"{decision.decided_at}#{decision.decision_id}",
        }
        if decision.id_key:
            item.update({"gsi2pk": f"RESDECISIONS#{decision.id_key}", "gsi2sk": decision.decision_id})
        transaction: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": to_item(item),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        if decision.item_id:
            transaction.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": to_item(review_key(decision.item_id)),
                        "UpdateExpression": "SET #s = :decided, decision_id = :d, gsi1pk = :g",
                        "ConditionExpression": "#s = :open",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": to_item(
                            {
                                ":decided": DECIDED,
                                ":open": OPEN,
                                ":d": decision.decision_id,
                                ":g": f"REVIEWS#{DECIDED}",
                            }
                        ),
                    }
                }
            )
        client("dynamodb").transact_write_items(TransactItems=transaction)

    def decisions(self) -> list[StewardDecision]:
        """Every steward decision (the merge's top-priority source), oldest first."""
        found = []
        for d in self._all({"IndexName": keys.GSI1, "KeyConditionExpression": "gsi1pk = :p"}, "DECISIONS"):
            personal = self.sealer.open(d["personal"], str(d["pk"])) if d.get("personal") else {}
            values = {k: v for k, v in d.items() if k in StewardDecision.model_fields}
            values.update({k: v for k, v in personal.items() if v is not None})
            found.append(StewardDecision.model_validate(values))
        return found

    # -- erasure -------------------------------------------------------------------------------------
    def erase(self, id_key: str, at: str, *, preemptive: bool = False) -> dict[str, int] | None:
        """Erase one person's personal data (right to erasure): keeps a tombstone without any
        personal data, deletes category memberships, the person's review items and decisions, and
        lowers the counts. Idempotent. Returns what was done, by kind; None (nothing written) when
        no resident has the key, unless ``preemptive`` (then a tombstone is written anyway, so that
        later runs never store the person)."""
        ddb = client("dynamodb")
        key = resident_key(id_key)
        request: dict[str, Any] = {}
        if not preemptive:
            request["ConditionExpression"] = "attribute_exists(pk)"
        try:
            old = ddb.update_item(
                TableName=self.table_name,
                Key=to_item(key),
                UpdateExpression=(
                    "SET erased_at = :at, id_key = :k, entity = :e "
                    "REMOVE personal, attributes, lineage, registration, age_band, community, grid_id, "
                    "categories, run_id, updated_at, gsi1pk, gsi1sk, gsi2pk, gsi2sk"
                ),
                ExpressionAttributeValues=to_item({":at": at, ":k": id_key, ":e": "resident"}),
                ReturnValues="ALL_OLD",
                **request,
            ).get("Attributes")
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            return None
        before = from_item(old) if old else {}
        done = Counter({"resident": 1 if before.get("personal") else 0})
        members = self._memberships(key["pk"])
        deletes = [{"DeleteRequest": {"Key": to_item({"pk": m["pk"], "sk": m["sk"]})}} for m in members]
        done["category_memberships"] = len(members)
        for index_pk, kind in (
            (f"RESREVIEWS#{id_key}", "review_items"),
            (f"RESDECISIONS#{id_key}", "decisions"),
        ):
            found = list(
                self._all({"IndexName": keys.GSI2, "KeyConditionExpression": "gsi2pk = :p"}, index_pk)
            )
            done[kind] = len(found)
            deletes += [{"DeleteRequest": {"Key": to_item({"pk": f["pk"], "sk": f["sk"]})}} for f in found]
        self._batch_write(deletes)
        if before.get("personal") and not before.get("erased_at"):
            classification = Classification(
                community=before.get("community"),
                grid_id=before.get("grid_id"),
                categories=tuple(before.get("categories") or ()),
            )
            for dim in count_dimensions(classification):
                try:
                    ddb.update_item(
                        TableName=self.table_name,
                        Key=to_item({"pk": COUNTS_PK, "sk": dim}),
                        UpdateExpression="ADD #c :minus",
                        ConditionExpression="attribute_exists(pk) AND #c > :zero",
                        ExpressionAttributeNames={"#c": "count"},
                        ExpressionAttributeValues={":minus": serialize(-1), ":zero": serialize(0)},
                    )
                except ClientError as exc:
                    if not _is_condition_failure(exc):
                        raise
        return dict(done)

    def _memberships(self, pk: str) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :c)",
            "ExpressionAttributeValues": {":p": serialize(pk), ":c": serialize("CAT#")},
        }
        found: list[dict[str, Any]] = []
        while True:
            items, last = self._query(request)
            found += items
            if not last:
                return found
            request["ExclusiveStartKey"] = last

    # -- batches -------------------------------------------------------------------------------------
    def _batch_get(self, item_keys: list[dict[str, str]]) -> list[dict[str, Any]]:
        ddb = client("dynamodb")
        unique = list({(k["pk"], k["sk"]): k for k in item_keys}.values())
        found: list[dict[str, Any]] = []
        for start in range(0, len(unique), 100):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [to_item(k) for k in unique[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(_BATCH_RETRIES):
                answer = ddb.batch_get_item(RequestItems=request)
                found += [from_item(i) for i in answer.get("Responses", {}).get(self.table_name, [])]
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError("resident keys left unprocessed")
        return found

    def _batch_write(self, writes: list[dict[str, Any]]) -> None:
        ddb = client("dynamodb")
        for start in range(0, len(writes), 25):
            pending: dict[str, Any] = {self.table_name: writes[start : start + 25]}
            for attempt in range(_BATCH_RETRIES):
                pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError("resident writes left unprocessed")
