"""Who is calling: the one ``Caller`` model every handler reads, whatever the identity provider.

Global regions put a Cognito user pool authorizer in front of the API; API Gateway then passes
the ID token's claims to the handler as strings under ``requestContext.authorizer.claims``
(``cognito:groups`` arrives as ``"[dispatcher, admin]"``, ``"dispatcher,admin"`` or
``"dispatcher admin"``, depending on the integration). In ``aws-cn`` a Lambda TOKEN authorizer
verifies the district's OIDC ID token (see :mod:`smartzone.domain.jwt_verify`) and passes its
context, also strings only, under ``requestContext.authorizer``: :meth:`Caller.authorizer_context`
writes that context and :meth:`Caller.from_claims` reads either shape back.

The caller's grid is deliberately NOT part of the model: handlers look it up in the registry,
so a reassignment takes effect at once instead of when the token expires.

A person is identified on work orders (``assignee``, the timeline's ``actor``) by ``username``,
which falls back to the subject when the provider sends no username.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    """The user groups of the platform (Cognito groups / the OIDC ``groups`` claim)."""

    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    GRID_WORKER = "grid_worker"
    TECHNICIAN = "technician"
    DEPARTMENT = "department"
    """A city department's staff or system: owns forms and catalogue resources, shares data.
    Which department comes from the user registry (``department_id``), not from a token claim."""
    DATA_STEWARD = "data_steward"
    """Population data stewards: review queue and steward decisions of the resident merge."""


SEES_ALL_ORDERS = frozenset({Role.ADMIN, Role.DISPATCHER})
"""Roles that see every order, device and grid (the command centre and administrators)."""

GROUP_CLAIMS = ("cognito:groups", "groups")
USERNAME_CLAIMS = ("cognito:username", "username", "preferred_username")
CONTEXT_GROUPS_KEY = "groups"
"""The key under which the TOKEN authorizer passes groups (comma-separated) in its context."""

_GROUP_SPLIT = re.compile(r"[,\s]+")
_MAX_GROUPS = 50


class InvalidCaller(ValueError):
    """The authorizer's claims do not identify anybody (the API answers 401)."""


def parse_groups(value: object) -> tuple[str, ...]:
    """Group names from a claim in any shape API Gateway or an IdP produces.

    Accepts a list, a JSON array string (``'["a","b"]'``), a bracketed list (``"[a, b]"`` or
    ``"[a b]"``), a comma- or space-separated string, or a single name. Order is kept, duplicates
    and empty names dropped.
    """
    items: list[object]
    if value is None:
        return ()
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    elif isinstance(value, str):
        text = value.strip()
        items = []
        if text.startswith("["):
            try:
                decoded = json.loads(text)
            except ValueError:
                decoded = None
            if isinstance(decoded, list):
                items = decoded
            else:
                text = text.strip("[]")
        if not items:
            items = list(_GROUP_SPLIT.split(text))
    else:
        return ()
    seen: dict[str, None] = {}
    for item in items:
        if not isinstance(item, str):
            continue
        name = item.strip().strip("\"'").strip()
        if name and name not in seen:
            seen[name] = None
    return tuple(seen)[:_MAX_GROUPS]


def role_of(group: str) -> Role | None:
    """The role a group name stands for (case and ``-``/``_`` insensitive), or None."""
    key = group.strip().lower().replace("-", "_")
    try:
        return Role(key)
    except ValueError:
        return None


def roles_of(groups: Iterable[str]) -> frozenset[Role]:
    return frozenset(role for role in (role_of(g) for g in groups) if role is not None)


def _claim_text(claims: Mapping[str, Any], names: Iterable[str]) -> str | None:
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


class Caller(BaseModel):
    """The authenticated person behind a request."""

    model_config = ConfigDict(frozen=True)

    subject: str = Field(min_length=1)
    username: str = Field(min_length=1)
    groups: tuple[str, ...] = ()
    """Every group the token names, known or not (for logs and audits)."""
    roles: frozenset[Role] = frozenset()
    """The groups the platform knows; unknown groups grant nothing."""

    @classmethod
    def of(cls, subject: str, username: str | None = None, groups: Iterable[str] = ()) -> Caller:
        names = parse_groups(groups if isinstance(groups, str) else list(groups))
        return cls(subject=subject, username=username or subject, groups=names, roles=roles_of(names))

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Caller:
        """Read the claims API Gateway passes (Cognito authorizer or our TOKEN authorizer).

        ``claims`` may be the authorizer object itself (TOKEN authorizer context) or a mapping
        holding it under ``"claims"`` (Cognito authorizer), as in ``requestContext.authorizer``.
        """
        nested = claims.get("claims")
        if isinstance(nested, Mapping):
            claims = nested
        elif isinstance(nested, str) and nested.strip().startswith("{"):
            try:
                decoded = json.loads(nested)
            except ValueError:
                decoded = None
            if isinstance(decoded, Mapping):
                claims = decoded
        subject = _claim_text(claims, ("sub", "principalId"))
        if subject is None:
            raise InvalidCaller("no subject in the authorizer's claims")
        groups: tuple[str, ...] = ()
        for name in GROUP_CLAIMS:
            if name in claims:
                groups = parse_groups(claims[name])
                break
        return cls.of(subject, _claim_text(claims, USERNAME_CLAIMS), groups)

    def authorizer_context(self) -> dict[str, str]:
        """The TOKEN authorizer's ``context``: string values only, read back by :meth:`from_claims`."""
        return {"sub": self.subject, "username": self.username, CONTEXT_GROUPS_KEY: ",".join(self.groups)}

    # -- predicates ------------------------------------------------------------------------------
    def has(self, *roles: Role) -> bool:
        return any(role in self.roles for role in roles)

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    @property
    def is_dispatcher(self) -> bool:
        return Role.DISPATCHER in self.roles

    @property
    def is_grid_worker(self) -> bool:
        return Role.GRID_WORKER in self.roles

    @property
    def is_technician(self) -> bool:
        return Role.TECHNICIAN in self.roles

    @property
    def is_department(self) -> bool:
        return Role.DEPARTMENT in self.roles

    @property
    def is_data_steward(self) -> bool:
        return Role.DATA_STEWARD in self.roles

    @property
    def sees_all_orders(self) -> bool:
        return bool(self.roles & SEES_ALL_ORDERS)

    @property
    def has_any_role(self) -> bool:
        return bool(self.roles)
