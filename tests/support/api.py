"""Calls the API handler in-process with API Gateway REST proxy events, as a given user."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from smartzone.domain.identity import Caller
from tests.support.telemetry import FakeContext


@dataclass
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str]


def claims_of(caller: Caller) -> dict[str, Any]:
    """What a Cognito user pool authorizer passes: the ID token's claims, as strings."""
    return {
        "claims": {
            "sub": caller.subject,
            "cognito:username": caller.username,
            "cognito:groups": ",".join(caller.groups),
            "token_use": "id",
        }
    }


def rest_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    authorizer: dict[str, Any] | None = None,
    raw_body: str | None = None,
) -> dict[str, Any]:
    text = (
        raw_body
        if raw_body is not None
        else (json.dumps(body, ensure_ascii=False) if body is not None else None)
    )
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", "Host": "api.local"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1"},
            "authorizer": authorizer,
        },
        "body": text,
        "isBase64Encoded": False,
    }


class ApiClient:
    """``ApiClient(caller).get("/v1/workorders", status="dispatched")``."""

    def __init__(self, caller: Caller | None, authorizer: dict[str, Any] | None = None) -> None:
        self.authorizer = authorizer if authorizer is not None else (claims_of(caller) if caller else None)

    def call(
        self, method: str, path: str, body: Any = None, raw_body: str | None = None, **query: str
    ) -> ApiResponse:
        from functions.api.handler import handler

        event = rest_event(
            method, path, body=body, query=query or None, authorizer=self.authorizer, raw_body=raw_body
        )
        result = handler(event, FakeContext())
        text = result.get("body") or ""
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return ApiResponse(result["statusCode"], parsed, result.get("headers") or {})

    def get(self, path: str, **query: str) -> ApiResponse:
        return self.call("GET", path, **query)

    def post(self, path: str, body: Any = None, raw_body: str | None = None) -> ApiResponse:
        return self.call("POST", path, body=body, raw_body=raw_body)

    def put(self, path: str, body: Any = None) -> ApiResponse:
        return self.call("PUT", path, body=body)

    def patch(self, path: str, body: Any = None) -> ApiResponse:
        return self.call("PATCH", path, body=body)

    def delete(self, path: str) -> ApiResponse:
        return self.call("DELETE", path)


def url(path: str, **query: str) -> str:
    return f"{path}?{urlencode(query)}" if query else path
