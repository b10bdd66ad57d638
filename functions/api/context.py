"""Per-request context: who is calling (one ``Caller`` model) and what they can reach.

The caller comes from the authorizer's claims in the event (Cognito user pool authorizer in global
regions, our TOKEN authorizer in aws-cn: both pass strings). Their grids come from the user
registry on every request, so a reassignment takes effect at once.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, Router

from smartzone.domain.identity import Caller, InvalidCaller, Role
from smartzone.repositories.users import UserRepository
from smartzone.settings import get_settings

from .errors import PayloadTooLarge


def caller_of(router: Router | APIGatewayRestResolver) -> Caller:
    """The authenticated caller; raises :class:`InvalidCaller` (401) when there is none."""
    cached = router.context.get("caller")
    if isinstance(cached, Caller):
        return cached
    raw: dict[str, Any] = router.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    if not raw:
        raise InvalidCaller("no authorizer context")
    caller = Caller.from_claims(raw)
    if not caller.has_any_role:
        raise InvalidCaller("the caller has no role on this platform")
    router.append_context(caller=caller)
    return caller


def grids_of(router: Router | APIGatewayRestResolver, caller: Caller) -> frozenset[str]:
    """The caller's grids from the registry (looked up once per request)."""
    cached = router.context.get("caller_grids")
    if isinstance(cached, frozenset):
        return cached
    grids = users().grids_of(caller.username)
    router.append_context(caller_grids=grids)
    return grids


def department_of(router: Router | APIGatewayRestResolver, caller: Caller) -> str | None:
    """The department the caller acts for: the ``department`` role and an active registry entry
    with a ``department_id`` (looked up once per request), else None."""
    if "caller_department" in router.context:
        cached = router.context["caller_department"]
        return cached if isinstance(cached, str) else None
    department: str | None = None
    if Role.DEPARTMENT in caller.roles:
        profile = users().get(caller.username)
        if profile is not None and profile.active and profile.department_id:
            department = profile.department_id
    router.append_context(caller_department=department)
    return department


def check_body_size(router: Router | APIGatewayRestResolver) -> None:
    body = router.current_event.body or ""
    if len(body.encode()) > get_settings().max_body_bytes:
        raise PayloadTooLarge(f"request body exceeds {get_settings().max_body_bytes} bytes", field="body")


@cache
def users() -> UserRepository:
    return UserRepository(get_settings().table_name)


@cache
def cursor_secret() -> bytes:
    """The key that signs pagination cursors: from the environment locally, Secrets Manager in the cloud."""
    settings = get_settings()
    if settings.cursor_secret:
        return settings.cursor_secret.encode()
    if settings.cursor_secret_arn:
        from aws_lambda_powertools.utilities.parameters import get_secret

        return str(get_secret(settings.cursor_secret_arn, max_age=3600)).encode()
    raise RuntimeError("CURSOR_SECRET or CURSOR_SECRET_ARN must be set")
