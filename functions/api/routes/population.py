"""`/v1/population` routes: the merge's review queue and data stewards' decisions (issue 7).

Data stewards and admins only (403 for other roles). Values in review items (candidates, the
value chosen meanwhile, a queued row's fields) are masked like residents' data; ``unmask=true``
with a ``purpose`` shows them (stewards must compare the sources' actual values) and writes one
audit entry per item shown. A decision (``set_field``, ``link_row``, ``dismiss``) is stored as
the next merge run's top-priority source and closes the item; deciding twice is a 409. A
``set_field`` names a golden field (:data:`~smartzone.population.sources.GOLDEN_FIELDS`) and a
value of its type (``sex`` ``male``/``female``, ``birth_date`` ``YYYY-MM-DD``, …): 422 naming
``field`` or ``value`` otherwise (the value is never echoed).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain.audit import AuditAction, AuditEntry
from smartzone.domain.identity import Caller, Role
from smartzone.domain.masking import MaskDecision
from smartzone.domain.residents import mask_value
from smartzone.domain.timeutil import now_ms, to_iso
from smartzone.population.models import DecisionAction, ReviewItem, ReviewReason, StewardDecision
from smartzone.population.sources import steward_value

from ..context import caller_of
from ..errors import ConflictError, ForbiddenError, NotFoundError, Unprocessable
from .devices import json_response
from .residents import PURPOSE, _cursor_key, _next, audit_log, decision_for, key_of_id_number, residents_repo

router = Router()

REVIEWERS = frozenset({Role.DATA_STEWARD, Role.ADMIN})
ITEM_ID = Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")


class CandidateOut(BaseModel):
    value: str | None
    source: str
    row: int
    source_date: str


class ReviewOut(BaseModel):
    item_id: str
    reason: ReviewReason
    status: str
    resident_key: str | None = None
    field: str | None = None
    candidates: list[CandidateOut] = Field(default_factory=list)
    chosen: str | None = None
    source: str | None = None
    row: int | None = None
    details: list[str] = Field(default_factory=list)
    row_fields: dict[str, str | None] = Field(default_factory=dict)
    created_at: str | None = None
    decision_id: str | None = None
    masked: bool = True


class ReviewList(BaseModel):
    items: list[ReviewOut]
    next_cursor: str | None = None


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: DecisionAction
    field: str | None = Field(
        None, min_length=1, max_length=64, description="set_field: the field (default: the item's)"
    )
    value: str | None = Field(None, min_length=1, max_length=200, description="set_field: the correct value")
    id_number: str | None = Field(
        None, min_length=1, max_length=40, description="link_row: the row's valid ID number"
    )
    note: str = Field("", max_length=500)


class DecisionOut(BaseModel):
    decision_id: str
    item_id: str
    action: DecisionAction
    resident_key: str | None = None
    status: Literal["decided"] = "decided"


def require_reviewer(caller: Caller) -> None:
    if not caller.roles & REVIEWERS:
        raise ForbiddenError("only data stewards and administrators work the review queue")


def review_view(item: ReviewItem, state: dict[str, Any], decision: MaskDecision) -> ReviewOut:
    field = item.field
    return ReviewOut(
        item_id=item.item_id,
        reason=item.reason,
        status=str(state.get("status", "open")),
        resident_key=item.id_key,
        field=field,
        candidates=[
            CandidateOut(
                value=mask_value(field, c.value, decision),
                source=c.source,
                row=c.row,
                source_date=c.source_date,
            )
            for c in item.candidates
        ],
        chosen=mask_value(field, item.chosen, decision),
        source=item.source,
        row=item.row,
        details=item.details,
        row_fields={k: mask_value(k, v, decision) for k, v in item.row_fields.items()},
        created_at=state.get("created_at"),
        decision_id=state.get("decision_id"),
        masked=not decision.unmasked,
    )


@router.get("/reviews", summary="The review queue (data stewards, admins)")
def list_reviews(
    status: Annotated[Literal["open", "decided"], Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    unmask: Annotated[bool, Query()] = False,
    purpose: Annotated[str | None, PURPOSE] = None,
) -> ReviewList:
    caller = caller_of(router)
    require_reviewer(caller)
    decision = decision_for(caller, unmask, purpose)
    scope = f"reviews|{status}"
    found, last = residents_repo().reviews(status, limit=limit, start_key=_cursor_key(cursor, scope))
    items = []
    for item, state in found:
        if decision.audit:
            audit_log().append(
                AuditEntry(
                    actor=caller.username,
                    role=Role.ADMIN.value if caller.is_admin else Role.DATA_STEWARD.value,
                    action=AuditAction.UNMASKED_READ,
                    subject_key=f"RESIDENT#{item.id_key}" if item.id_key else f"REVIEW#{item.item_id}",
                    purpose=purpose or "",
                    fields=tuple(sorted({item.field} if item.field else set(item.row_fields))),
                )
            )
        items.append(review_view(item, state, decision))
    return ReviewList(items=items, next_cursor=_next(last, scope))


@router.post("/reviews/<item_id>/decision", summary="A steward's decision on a review item")
def post_decision(
    item_id: Annotated[str, ITEM_ID], body: Annotated[DecisionRequest, Body()]
) -> Response[DecisionOut]:
    caller = caller_of(router)
    require_reviewer(caller)
    found = residents_repo().review(item_id)
    if found is None:
        raise NotFoundError("no such review item")
    item, state = found
    if state.get("status") != "open":
        raise ConflictError("this review item is already decided")
    id_key, id_number, field, value = item.id_key, None, None, None
    if body.action is DecisionAction.SET_FIELD:
        field = body.field or item.field
        if not field:
            raise Unprocessable("field: required for set_field on this item", field="field")
        if body.value is None:
            raise Unprocessable("value: required for set_field", field="value")
        if id_key is None:
            raise Unprocessable("set_field needs an item about a resident; use link_row", field="action")
        try:
            value = steward_value(field, body.value)
        except ValueError as exc:
            problem = str(exc)
            raise Unprocessable(problem, field=problem.partition(":")[0]) from exc
    elif body.action is DecisionAction.LINK_ROW:
        if item.reason is not ReviewReason.INVALID_ID or body.id_number is None:
            raise Unprocessable(
                "id_number: link_row needs a queued row and a valid ID number", field="id_number"
            )
        id_key = key_of_id_number(body.id_number)
        from smartzone.domain import idnumbers

        id_number = idnumbers.parse(body.id_number).normalised
    decision = StewardDecision(
        decision_id=uuid.uuid4().hex,
        action=body.action,
        item_id=item.item_id,
        id_key=id_key,
        id_number=id_number,
        field=field,
        value=value,
        source=item.source,
        row=item.row,
        candidates_seen=sorted({c.value for c in item.candidates}),
        steward=caller.username,
        decided_at=to_iso(now_ms()),
        note=body.note,
    )
    try:
        residents_repo().record_decision(decision)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in (
            "TransactionCanceledException",
            "ConditionalCheckFailedException",
        ):
            raise ConflictError("this review item is already decided") from exc
        raise
    audit_log().append(
        AuditEntry(
            actor=caller.username,
            role=Role.ADMIN.value if caller.is_admin else Role.DATA_STEWARD.value,
            action=AuditAction.STEWARD_DECISION,
            subject_key=f"RESIDENT#{id_key}" if id_key else f"REVIEW#{item.item_id}",
            purpose=f"{body.action.value} {item.item_id}",
            fields=(field,) if field else (),
        )
    )
    return json_response(
        201,
        DecisionOut(
            decision_id=decision.decision_id, item_id=item.item_id, action=body.action, resident_key=id_key
        ),
    )
