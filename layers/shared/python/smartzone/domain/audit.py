"""What an audit entry says: who read or changed which person's personal data, why, and when.

Entries never hold personal data themselves: the subject is a pseudonymous key (a resident's
``id_key``, a form submission's key, …), and ``fields`` names the fields that were shown or
changed, never their values. A value that looks like a citizen ID number or a mobile phone number
is refused in every text field, so that a plain ID cannot slip into the log by mistake.
"""

from __future__ import annotations

import re
import uuid

from pydantic import BaseModel, ConfigDict, Field, field_validator

from smartzone.domain.timeutil import now_ms

_PLAIN_ID = re.compile(r"\d{17}[\dXx]|\d{15}|\d{11}")
"""18- or 15-character ID numbers and 11-digit mobile numbers, anywhere in a text."""


class AuditAction:
    """The actions recorded by the platform (others may add their own names)."""

    UNMASKED_READ = "unmasked_read"
    """Personal data shown unmasked (masking policy, ``MaskDecision.audit``)."""
    LOOKUP = "lookup"
    """A resident looked up by ID number (masked answer)."""
    STEWARD_DECISION = "steward_decision"
    ERASURE = "erasure"
    """A person's personal data deleted or anonymised on request (issue 9.5)."""


class AuditEntry(BaseModel):
    """One append-only audit record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: str = Field(min_length=1, max_length=128)
    """Username of the person (or ``tool:<name>`` for an operator command)."""
    role: str = Field(min_length=1, max_length=64)
    """The role under which the actor acted (e.g. ``admin``)."""
    action: str = Field(min_length=1, max_length=64)
    subject_key: str = Field(min_length=1, max_length=256)
    """Pseudonymous key of the person concerned (``RESIDENT#<id_key>``, …); never a plain ID."""
    purpose: str = Field(default="", max_length=500)
    """Why (the reason the caller gave, or the operation)."""
    fields: tuple[str, ...] = ()
    """Names of the personal fields shown or changed (never values)."""
    at: int = Field(default_factory=now_ms)
    """Epoch milliseconds (UTC)."""
    entry_id: str = Field(default_factory=lambda: uuid.uuid4().hex, pattern=r"^[0-9a-f]{32}$")

    @field_validator("actor", "purpose")
    @classmethod
    def _no_plain_numbers(cls, value: str) -> str:
        if _PLAIN_ID.search(value):
            raise ValueError("must not contain an ID or phone number")
        return value

    @field_validator("subject_key")
    @classmethod
    def _pseudonymous(cls, value: str) -> str:
        # Keys are ``KIND#<hex or id>`` segments: none of them may be a plain ID or phone number
        # (a 64-character HMAC in hex is not, whatever digits it holds).
        if any(_PLAIN_ID.fullmatch(part) for part in value.split("#")):
            raise ValueError("must be a pseudonymous key, not an ID or phone number")
        return value
