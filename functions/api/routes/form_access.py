"""Helpers of the form routes: the forms the caller's department owns and the audit of
unmasked reads of personal data (masking policy: every unmasked read is audited)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from aws_lambda_powertools.event_handler.api_gateway import Router

from smartzone.domain.audit import AuditAction, AuditEntry
from smartzone.domain.identity import Caller
from smartzone.domain.masking import UNMASKED_ROLES
from smartzone.repositories.audit import AuditLog
from smartzone.repositories.forms import FormRepository
from smartzone.settings import get_settings

from ..context import department_of


def owned_forms(router: Router, caller: Caller) -> frozenset[str]:
    """The ids of the forms the caller's department owns (none without a department)."""
    department = department_of(router, caller)
    if not department:
        return frozenset()
    return frozenset(f.form_id for f in FormRepository(get_settings().table_name).of_department(department))


def audit_key(subject: str) -> str:
    """``resident:<hex>`` → ``RESIDENT#<hex>``; other subjects likewise (``FORM#…`` kept)."""
    if "#" in subject:
        return subject
    kind, _, ident = subject.partition(":")
    return f"{kind.upper()}#{ident}"


def audit_unmasked(caller: Caller, subject: str, purpose: str, fields: Sequence[str]) -> None:
    """Append one ``unmasked_read`` entry (``repositories/audit.py``, the platform's audit log)."""
    role = next((r.value for r in sorted(caller.roles & UNMASKED_ROLES)), "unknown")
    key = audit_key(subject)
    try:
        entry = AuditEntry(
            actor=caller.username,
            role=role,
            action=AuditAction.UNMASKED_READ,
            subject_key=key,
            purpose=purpose,
            fields=tuple(fields),
        )
    except ValueError:
        # A subject id that looks like a phone or ID number is logged by its hash instead.
        digest = hashlib.sha256(key.encode()).hexdigest()
        entry = AuditEntry(
            actor=caller.username,
            role=role,
            action=AuditAction.UNMASKED_READ,
            subject_key=f"SUBJECTHASH#{digest}",
            purpose=purpose,
            fields=tuple(fields),
        )
    AuditLog(get_settings().table_name).append(entry)
