"""Opaque, tamper-proof pagination cursors.

A cursor carries DynamoDB's ``LastEvaluatedKey`` and the *scope* of the query it belongs to (the
index, the partition and the filters); it is signed with HMAC-SHA256. A cursor altered, forged or
replayed against another scope (e.g. another grid) is refused, so it can never widen a caller's
reach.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

MAX_CURSOR_CHARS = 2048


class InvalidCursor(ValueError):
    """The cursor is malformed, altered or belongs to another query (answered 400)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, scope: str, payload: bytes) -> bytes:
    return hmac.new(secret, scope.encode() + b"\x00" + payload, hashlib.sha256).digest()[:16]


def encode_cursor(last_key: dict[str, Any], scope: str, secret: bytes) -> str:
    payload = json.dumps(last_key, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(payload)}.{_b64(_sign(secret, scope, payload))}"


def decode_cursor(cursor: str, scope: str, secret: bytes) -> dict[str, Any]:
    if len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
        raise InvalidCursor("cursor is not valid")
    body, signature = cursor.split(".")
    try:
        payload, given = _unb64(body), _unb64(signature)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if not hmac.compare_digest(given, _sign(secret, scope, payload)):
        raise InvalidCursor("cursor is not valid for this query")
    try:
        value = json.loads(payload)
    except ValueError as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if not isinstance(value, dict):
        raise InvalidCursor("cursor is not valid")
    return value
