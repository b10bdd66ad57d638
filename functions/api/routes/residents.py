"""`/v1/residents` routes: the population database (issue 7), masked per role, unmasking audited.

Who sees residents: admins, dispatchers and data stewards every resident; grid workers the
residents of their own grids only (404 for anyone else, as if unknown); technicians and
department staff none (403). Outputs follow THE masking policy (:mod:`smartzone.domain.masking`):
masked by default for everyone; ``unmask=true`` (with a ``purpose``) only for
:data:`~smartzone.domain.masking.POPULATION_UNMASKED_ROLES` (403 otherwise), and every unmasked
read writes an audit entry. A resident is found by ID number only with a POST body
(``/v1/residents/lookup``): ID numbers never travel in a URL (URLs reach access logs), and are
never echoed in an error. Elsewhere a resident is named by ``resident_key`` (the keyed HMAC).

Erasure on request (``POST /v1/residents/erasure``, admins): see
:mod:`smartzone.repositories.erasure`.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain import idnumbers
from smartzone.domain.audit import AuditAction, AuditEntry
from smartzone.domain.identity import Caller, Role
from smartzone.domain.masking import MaskDecision, mask_for, may_unmask_population
from smartzone.domain.residents import ID_KEY_PATTERN, Resident, ResidentOut, resident_view, shown_fields
from smartzone.repositories.audit import AuditLog
from smartzone.repositories.cursor import decode_cursor, encode_cursor
from smartzone.repositories.erasure import UnknownResident, erase_resident
from smartzone.repositories.personal_data import id_hmac_key
from smartzone.repositories.residents import ResidentRepository
from smartzone.settings import get_settings

from ..context import caller_of, cursor_secret, grids_of
from ..errors import ForbiddenError, NotFoundError, Unprocessable

router = Router()

READERS = frozenset({Role.ADMIN, Role.DISPATCHER, Role.DATA_STEWARD, Role.GRID_WORKER})
PURPOSE = Query(max_length=200, description="Why the data is unmasked (required with unmask=true)")


# -- models ------------------------------------------------------------------------------------------
class ResidentList(BaseModel):
    items: list[ResidentOut]
    total: int
    """How many residents the selection has (from the count items; the caller's grids only)."""
    next_cursor: str | None = None


class ResidentCounts(BaseModel):
    total: int
    by_grid: dict[str, int]
    by_community: dict[str, int]
    by_category: dict[str, int]
    by_grid_category: dict[str, dict[str, int]]


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id_number: str = Field(min_length=1, max_length=40, description="The citizen ID number (never in a URL)")
    unmask: bool = False
    purpose: str | None = Field(None, max_length=200)


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id_number: str | None = Field(None, min_length=1, max_length=40)
    resident_key: str | None = Field(None, pattern=ID_KEY_PATTERN)
    reason: str = Field(
        min_length=4, max_length=500, description="The request being fulfilled (ticket, date)"
    )
    preemptive: bool = Field(
        False,
        description="Erase even if no resident has this key yet (a tombstone keeps later runs from "
        "storing the person); otherwise an unknown resident is a 404",
    )


class ErasureOut(BaseModel):
    resident_key: str
    erased: dict[str, int]
    audit_entry_id: str


# -- helpers -------------------------------------------------------------------------------------------
@cache
def residents_repo() -> ResidentRepository:
    return ResidentRepository(get_settings().table_name)


@cache
def audit_log() -> AuditLog:
    return AuditLog(get_settings().table_name)


def require_reader(caller: Caller) -> None:
    if not caller.roles & READERS:
        raise ForbiddenError("this role may not read the population database")


def reach_of(caller: Caller) -> frozenset[str] | None:
    """The grids whose residents the caller sees (None: all)."""
    if caller.has(Role.ADMIN, Role.DISPATCHER, Role.DATA_STEWARD):
        return None
    return grids_of(router, caller)


def decision_for(caller: Caller, unmask: bool, purpose: str | None) -> MaskDecision:
    """Masked unless asked; unmasking only for the permitted roles and with a purpose."""
    staff = mask_for(caller)
    if not unmask:
        return MaskDecision(unmasked=False, full_addresses=staff.full_addresses)
    if not may_unmask_population(caller):
        raise ForbiddenError("this role may not see residents' data unmasked", field="unmask")
    if not purpose or not purpose.strip():
        raise Unprocessable("purpose: required when unmask is true", field="purpose")
    return MaskDecision(unmasked=True, full_addresses=True)


def role_name(caller: Caller) -> str:
    for role in (Role.ADMIN, Role.DATA_STEWARD, Role.DISPATCHER, Role.GRID_WORKER):
        if role in caller.roles:
            return role.value
    return ",".join(sorted(r.value for r in caller.roles))


def show(resident: Resident, caller: Caller, decision: MaskDecision, purpose: str | None) -> ResidentOut:
    """The resident as ``decision`` shows them; an unmasked view is audited first."""
    if decision.audit and resident.personal:
        audit_log().append(
            AuditEntry(
                actor=caller.username,
                role=role_name(caller),
                action=AuditAction.UNMASKED_READ,
                subject_key=resident.subject_key,
                purpose=purpose or "",
                fields=shown_fields(resident),
            )
        )
    return resident_view(resident, decision)


def visible(resident: Resident | None, reach: frozenset[str] | None) -> Resident:
    if resident is None or (reach is not None and resident.classification.grid_id not in reach):
        raise NotFoundError("no such resident")
    return resident


def key_of_id_number(raw: str) -> str:
    """The ``id_key`` of a valid ID number; 422 naming the field (never echoing the value)."""
    parsed = idnumbers.parse(raw)
    if not parsed.ok or parsed.normalised is None:
        codes = ", ".join(sorted({p.code.value for p in parsed.problems})) or "invalid"
        raise Unprocessable(f"id_number: not a valid ID number ({codes})", field="id_number")
    return idnumbers.id_key(parsed.normalised, id_hmac_key())


def _cursor_key(cursor: str | None, scope: str) -> dict[str, Any] | None:
    return decode_cursor(cursor, scope, cursor_secret()) if cursor else None


def _next(last: dict[str, Any] | None, scope: str) -> str | None:
    return encode_cursor(last, scope, cursor_secret()) if last else None


# -- routes ------------------------------------------------------------------------------------------
@router.get("/", summary="Residents of a grid, a community or a care category, with the total")
def list_residents(
    grid_id: Annotated[str | None, Query(min_length=1, max_length=16)] = None,
    community: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    category: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    unmask: Annotated[bool, Query()] = False,
    purpose: Annotated[str | None, PURPOSE] = None,
) -> ResidentList:
    caller = caller_of(router)
    require_reader(caller)
    if grid_id is None and community is None and category is None:
        raise Unprocessable("give grid_id, community or category", field="grid_id")
    if grid_id is not None and community is not None:
        raise Unprocessable("give grid_id or community, not both", field="community")
    reach = reach_of(caller)
    if grid_id is not None and reach is not None and grid_id not in reach:
        raise NotFoundError("no such grid")
    decision = decision_for(caller, unmask, purpose)
    if reach is not None and not reach:  # a grid worker without grids sees no resident
        return ResidentList(items=[], total=0)
    if reach is not None and category is not None and grid_id is None:
        if len(reach) != 1:
            raise Unprocessable(
                "grid_id: required for a care category (you answer for several grids)", field="grid_id"
            )
        grid_id = next(iter(reach))
    repo, counts = residents_repo(), residents_repo().counts()
    scope = f"residents|{grid_id}|{community}|{category}|{','.join(sorted(reach or ()))}"
    start = _cursor_key(cursor, scope)
    if category is not None:
        found, last = repo.by_category(category, limit=limit, grid_id=grid_id, start_key=start)
        if community is not None:
            found = [r for r in found if r.classification.community == community]
        total = counts.get(f"gridcategory#{grid_id}#{category}" if grid_id else f"category#{category}", 0)
    elif grid_id is not None:
        found, last = repo.by_grid(grid_id, limit=limit, start_key=start)
        total = counts.get(f"grid#{grid_id}", 0)
    else:
        assert community is not None
        found, last = repo.by_community(community, limit=limit, start_key=start, grids=reach)
        total = (
            counts.get(f"community#{community}", 0)
            if reach is None
            else sum(counts.get(f"gridcommunity#{g}#{community}", 0) for g in reach)
        )
    return ResidentList(
        items=[show(r, caller, decision, purpose) for r in found if r.erased_at is None],
        total=total,
        next_cursor=_next(last, scope),
    )


@router.get("/counts", summary="Resident counts by grid, community and care category")
def get_counts() -> ResidentCounts:
    caller = caller_of(router)
    require_reader(caller)
    reach = reach_of(caller)
    by: dict[str, dict[str, int]] = {"grid": {}, "community": {}, "category": {}}
    by_grid_category: dict[str, dict[str, int]] = {}
    for dim, n in residents_repo().counts().items():
        kind, _, value = dim.partition("#")
        if kind == "gridcommunity":
            continue
        if kind == "gridcategory":
            grid, _, category = value.partition("#")
            if reach is None or grid in reach:
                by_grid_category.setdefault(grid, {})[category] = n
        elif kind == "grid" and (reach is None or value in reach):
            by["grid"][value] = n
        elif kind in ("community", "category") and reach is None:
            by[kind][value] = n
    total = sum(by["grid"].values()) if reach is not None else residents_repo().counts().get("total#all", 0)
    if reach is not None:
        for categories in by_grid_category.values():
            for category, n in categories.items():
                by["category"][category] = by["category"].get(category, 0) + n
    return ResidentCounts(
        total=total,
        by_grid=by["grid"],
        by_community=by["community"],
        by_category=by["category"],
        by_grid_category=by_grid_category,
    )


@router.post("/lookup", summary="A resident by ID number (in the body, never the URL), masked per role")
def lookup(body: Annotated[LookupRequest, Body()]) -> ResidentOut:
    caller = caller_of(router)
    require_reader(caller)
    decision = decision_for(caller, body.unmask, body.purpose)
    key = key_of_id_number(body.id_number)
    resident = visible(residents_repo().get(key), reach_of(caller))
    if resident.erased_at is not None:
        raise NotFoundError("no such resident")
    if not decision.audit:
        audit_log().append(
            AuditEntry(
                actor=caller.username,
                role=role_name(caller),
                action=AuditAction.LOOKUP,
                subject_key=resident.subject_key,
                purpose=body.purpose or "",
            )
        )
    return show(resident, caller, decision, body.purpose)


@router.get("/<resident_key>", summary="A resident by resident_key, masked per role")
def get_resident(
    resident_key: Annotated[str, Path(pattern=ID_KEY_PATTERN)],
    unmask: Annotated[bool, Query()] = False,
    purpose: Annotated[str | None, PURPOSE] = None,
) -> ResidentOut:
    caller = caller_of(router)
    require_reader(caller)
    decision = decision_for(caller, unmask, purpose)
    resident = visible(residents_repo().get(resident_key), reach_of(caller))
    if resident.erased_at is not None:
        raise NotFoundError("no such resident")
    return show(resident, caller, decision, purpose)


@router.post("/erasure", summary="Erase a resident's personal data on request (admins; audited)")
def post_erasure(body: Annotated[ErasureRequest, Body()]) -> ErasureOut:
    caller = caller_of(router)
    if not caller.is_admin:
        raise ForbiddenError("only administrators may erase residents' data")
    if (body.id_number is None) == (body.resident_key is None):
        raise Unprocessable("give id_number or resident_key", field="id_number")
    key = body.resident_key or key_of_id_number(str(body.id_number))
    try:
        result = erase_resident(
            get_settings().table_name,
            key,
            actor=caller.username,
            role=Role.ADMIN.value,
            reason=body.reason,
            preemptive=body.preemptive,
        )
    except UnknownResident as exc:
        raise NotFoundError("no such resident (set preemptive to erase ahead of the data)") from exc
    return ErasureOut(resident_key=key, erased=result.erased, audit_entry_id=result.audit_entry_id)
