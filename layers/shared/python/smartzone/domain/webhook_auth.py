"""Vendor webhook authentication: HMAC-SHA256 over ``timestamp + "\\n" + body``, replays refused.

Pure logic. A vendor signs each request with its own key (kept in Secrets Manager, one JSON map
vendor id → key) and sends three headers:

| header                    | value                                                        |
|---------------------------|--------------------------------------------------------------|
| ``X-SmartZone-Vendor``    | the vendor id (e.g. ``hikvision``)                           |
| ``X-SmartZone-Timestamp`` | Unix time in seconds (or ISO-8601 with offset)               |
| ``X-SmartZone-Signature`` | ``sha256=`` + hex HMAC-SHA256(key, timestamp + "\\n" + body) |

The timestamp must be within ``max_skew_s`` (5 min) of now; a signature is accepted once (the
repository remembers it with a conditional put until the timestamp leaves the window), so a
captured request cannot be replayed. Every refusal is the same 401 to the caller; the reason is
only logged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from smartzone.domain.timeutil import TimestampError, parse_ts_ms

VENDOR_HEADER = "x-smartzone-vendor"
TIMESTAMP_HEADER = "x-smartzone-timestamp"
SIGNATURE_HEADER = "x-smartzone-signature"
SIGNATURE_PREFIX = "sha256="
VENDOR_ID_RE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")


class AuthFailure(StrEnum):
    MISSING_HEADER = "missing_header"
    UNKNOWN_VENDOR = "unknown_vendor"
    BAD_TIMESTAMP = "bad_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    BAD_SIGNATURE = "bad_signature"
    REPLAYED = "replayed"


class Unauthenticated(Exception):
    def __init__(self, failure: AuthFailure) -> None:
        super().__init__(failure.value)
        self.failure = failure


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request whose signature is valid (not yet checked for replay)."""

    vendor_id: str
    timestamp_ms: int
    signature: str
    """Hex digest: the replay guard's key."""


def sign(key: str, timestamp: str, body: bytes | str) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (what vendors compute)."""
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(key.encode(), timestamp.encode() + b"\n" + raw, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value.strip() or None
    return None


def _timestamp_ms(text: str) -> int:
    if text.isdigit() and len(text) <= 11:  # Unix seconds
        return int(text) * 1000
    return parse_ts_ms(text)


def verify(
    headers: Mapping[str, str],
    body: bytes | str,
    vendor_keys: Mapping[str, str],
    *,
    now_ms: int,
    max_skew_s: int = 300,
) -> SignedRequest:
    """The request's vendor and signature, or :class:`Unauthenticated` with the reason."""
    vendor = _header(headers, VENDOR_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if vendor is None or timestamp is None or signature is None:
        raise Unauthenticated(AuthFailure.MISSING_HEADER)
    key = vendor_keys.get(vendor) if VENDOR_ID_RE.match(vendor) else None
    if not key:
        raise Unauthenticated(AuthFailure.UNKNOWN_VENDOR)
    try:
        at = _timestamp_ms(timestamp)
    except TimestampError:
        raise Unauthenticated(AuthFailure.BAD_TIMESTAMP) from None
    if abs(now_ms - at) > max_skew_s * 1000:
        raise Unauthenticated(AuthFailure.STALE_TIMESTAMP)
    expected = sign(key, timestamp, body)
    given = signature.lower()
    if not hmac.compare_digest(expected, given) or not _HEX_RE.match(given.removeprefix(SIGNATURE_PREFIX)):
        raise Unauthenticated(AuthFailure.BAD_SIGNATURE)
    return SignedRequest(vendor, at, given.removeprefix(SIGNATURE_PREFIX))
