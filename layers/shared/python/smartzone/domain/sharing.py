"""Who may read a catalogue resource, and what they see unmasked (issue 8, "query and sharing").

- the provider always reads its own resources, unmasked;
- unconditional (无条件共享): every registered department, personal items masked;
- conditional (有条件共享): only with an approved, unexpired :class:`AccessGrant`; the grant names
  the personal items shown unmasked;
- not shared (不予共享): nobody but the provider.

The workflow behind the grants: a department files an :class:`AccessRequest` (purpose, items); the
provider approves it (expiry, items unmasked) or refuses it with a reason. Pure logic: the
repositories store requests, grants and the access log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from smartzone.domain.catalogue import COLUMN_PATTERN, DEPARTMENT_ID_PATTERN, Resource, SharingType

MAX_GRANT_DAYS = 366
"""The longest access a provider may grant at once."""


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


class AccessRequest(BaseModel):
    """A department's request to use a conditional resource, and the provider's decision."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    resource_code: str
    provider_id: str = Field(pattern=DEPARTMENT_ID_PATTERN)
    requester_id: str = Field(pattern=DEPARTMENT_ID_PATTERN)
    requested_by: str
    """Username of the requesting department's user."""
    purpose: str = Field(min_length=4, max_length=500)
    items: list[str] = Field(default_factory=list)
    """Columns the requester asks to see unmasked (personal items); empty: masked data is enough."""
    status: RequestStatus = RequestStatus.PENDING
    created_at: AwareDatetime
    decided_at: AwareDatetime | None = None
    decided_by: str | None = None
    reason: str | None = None
    """Why it was refused (required then)."""
    expires_at: AwareDatetime | None = None
    unmasked_items: list[str] = Field(default_factory=list)

    @field_validator("items", "unmasked_items")
    @classmethod
    def _columns(cls, value: list[str]) -> list[str]:
        import re

        for column in value:
            if not re.match(COLUMN_PATTERN, column):
                raise ValueError(f"not a column name: {column!r}")
        return sorted(set(value))


class AccessGrant(BaseModel):
    """Access to one resource for one department until ``expires_at`` (from an approved request)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resource_code: str
    department_id: str = Field(pattern=DEPARTMENT_ID_PATTERN)
    request_id: str
    unmasked_items: frozenset[str] = frozenset()
    granted_at: AwareDatetime
    expires_at: AwareDatetime

    def active(self, now: datetime) -> bool:
        return self.granted_at <= now < self.expires_at


class DecisionReason(StrEnum):
    PROVIDER = "provider"
    UNCONDITIONAL = "unconditional"
    GRANTED = "granted"
    NO_GRANT = "no_grant"
    GRANT_EXPIRED = "grant_expired"
    NOT_SHARED = "not_shared"
    NOT_A_DEPARTMENT = "not_a_department"


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    reason: DecisionReason
    unmasked_items: frozenset[str] = field(default_factory=frozenset)
    grant: AccessGrant | None = None

    @property
    def message(self) -> str:
        return _MESSAGES[self.reason]


_MESSAGES = {
    DecisionReason.PROVIDER: "the provider reads its own resource",
    DecisionReason.UNCONDITIONAL: "shared unconditionally with every registered department",
    DecisionReason.GRANTED: "an approved request grants access",
    DecisionReason.NO_GRANT: "a conditional resource needs an approved request",
    DecisionReason.GRANT_EXPIRED: "the approved access has expired",
    DecisionReason.NOT_SHARED: "this resource is not shared",
    DecisionReason.NOT_A_DEPARTMENT: "only registered departments read shared data",
}


def decide_access(
    department_id: str | None,
    resource: Resource,
    grants: Iterable[AccessGrant],
    now: datetime,
) -> AccessDecision:
    """May ``department_id`` read ``resource`` at ``now``, and which personal items unmasked?"""
    if not department_id:
        return AccessDecision(False, DecisionReason.NOT_A_DEPARTMENT)
    if department_id == resource.department_id:
        return AccessDecision(True, DecisionReason.PROVIDER, frozenset(resource.columns))
    if resource.sharing_type is SharingType.NOT_SHARED:
        return AccessDecision(False, DecisionReason.NOT_SHARED)
    mine = [g for g in grants if g.department_id == department_id and g.resource_code == resource.code]
    active = [g for g in mine if g.active(now)]
    if active:
        best = max(active, key=lambda g: (len(g.unmasked_items), g.expires_at))
        unmasked = frozenset().union(*(g.unmasked_items for g in active)) & frozenset(resource.columns)
        return AccessDecision(True, DecisionReason.GRANTED, unmasked, best)
    if resource.sharing_type is SharingType.UNCONDITIONAL:
        return AccessDecision(True, DecisionReason.UNCONDITIONAL)
    if mine:
        return AccessDecision(False, DecisionReason.GRANT_EXPIRED)
    return AccessDecision(False, DecisionReason.NO_GRANT)


class SharingRefused(ValueError):
    """A request or decision the workflow refuses; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


def check_request(resource: Resource, requester_id: str, items: Iterable[str]) -> list[str]:
    """The columns asked unmasked, checked: only conditional / unconditional resources of another
    department, and only personal items of the resource. Raises :class:`SharingRefused`."""
    if requester_id == resource.department_id:
        raise SharingRefused("a department does not request its own resource", "resource_code", 409)
    if resource.sharing_type is SharingType.NOT_SHARED:
        raise SharingRefused("this resource is not shared", "resource_code", 409)
    wanted = sorted(set(items))
    personal = {i.column for i in resource.personal_items}
    unknown = [c for c in wanted if c not in personal]
    if unknown:
        raise SharingRefused(f"not a personal item of {resource.code}: {', '.join(unknown)}", "items")
    if resource.sharing_type is SharingType.UNCONDITIONAL and not wanted:
        raise SharingRefused(
            "an unconditional resource is open already; request personal items", "items", 409
        )
    return wanted


def approve(
    request: AccessRequest,
    *,
    by: str,
    expires_at: datetime,
    unmasked_items: Iterable[str],
    now: datetime,
) -> tuple[AccessRequest, AccessGrant]:
    """The approved request and its grant. Unmasked items must be among those requested."""
    _check_pending(request)
    if expires_at <= now:
        raise SharingRefused("expires_at must be in the future", "expires_at")
    if expires_at - now > timedelta(days=MAX_GRANT_DAYS):
        raise SharingRefused(f"access is granted for at most {MAX_GRANT_DAYS} days at once", "expires_at")
    unmasked = sorted(set(unmasked_items))
    extra = [c for c in unmasked if c not in request.items]
    if extra:
        raise SharingRefused(f"items not requested cannot be granted: {', '.join(extra)}", "unmasked_items")
    decided = request.model_copy(
        update={
            "status": RequestStatus.APPROVED,
            "decided_at": now.astimezone(UTC),
            "decided_by": by,
            "expires_at": expires_at.astimezone(UTC),
            "unmasked_items": unmasked,
        }
    )
    grant = AccessGrant(
        resource_code=request.resource_code,
        department_id=request.requester_id,
        request_id=request.request_id,
        unmasked_items=frozenset(unmasked),
        granted_at=now.astimezone(UTC),
        expires_at=expires_at.astimezone(UTC),
    )
    return decided, grant


def refuse(request: AccessRequest, *, by: str, reason: str, now: datetime) -> AccessRequest:
    _check_pending(request)
    if len(reason.strip()) < 2:
        raise SharingRefused("a refusal needs its reason", "reason")
    return request.model_copy(
        update={
            "status": RequestStatus.REFUSED,
            "decided_at": now.astimezone(UTC),
            "decided_by": by,
            "reason": reason.strip(),
        }
    )


def _check_pending(request: AccessRequest) -> None:
    if request.status is not RequestStatus.PENDING:
        raise SharingRefused(f"the request is {request.status} already", "request_id", 409)


class AccessLogEntry(BaseModel):
    """One data access (every read of shared data is logged, allowed or not)."""

    model_config = ConfigDict(extra="forbid")

    resource_code: str
    department_id: str | None
    username: str
    at: AwareDatetime
    action: str = Field(description="e.g. query, download, refused")
    allowed: bool
    reason: str
    unmasked_items: list[str] = Field(default_factory=list)
    rows: int | None = None
    detail: str | None = Field(None, max_length=500)
    """What was asked (e.g. the filters), never personal values."""
