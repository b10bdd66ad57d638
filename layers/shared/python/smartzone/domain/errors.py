"""The one error shape every refusal takes: an HTTP status, a code, a message and the field."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A request the platform refuses; ``status`` is the HTTP status to answer with."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        """The API's error body (never says more than the message)."""
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out
