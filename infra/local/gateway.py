"""API Gateway (REST, regional) emulated in-process: authorizer first, then the API Lambda.

One request goes through the same steps as in the cloud:

1. the authorizer of the API's identity shape (``mode``):

   - ``"cognito"`` (global regions): the Cognito user pool authorizer. The ID token of the
     ``Authorization`` header (``Bearer <token>`` or the bare token) is verified against the user
     pool's JWKS: RS256 signature, ``iss`` = the pool's issuer URL, ``aud`` = one of the pool's app
     client ids, ``token_use`` = ``id``, expiry. The claims reach the handler as API Gateway passes
     them, strings only, under ``requestContext.authorizer.claims`` (``cognito:groups`` as
     ``"a,b"``, ``exp``/``iat`` as ``"Tue Apr 04 18:39:39 UTC 2023"``);
   - ``"token"`` (``aws-cn``): our Lambda TOKEN authorizer (:mod:`functions.authorizer.handler`)
     is invoked with a TOKEN event and its IAM policy is enforced; its ``context`` (strings) and
     ``principalId`` reach the handler under ``requestContext.authorizer``.

   No token or an invalid one: 401 without invoking the handler; a Deny policy: 403. The bodies
   use the API's error shape (``{"error", "message"}``): the stack configures its gateway
   responses (UNAUTHORIZED, ACCESS_DENIED) the same way.
2. the REST proxy event (``/{proxy+}``, stage ``prod``) is built and the API handler invoked;
   a handler that raises becomes 502, as with API Gateway. Bodies are text (UTF-8, invalid bytes
   replaced) unless their media type is one of ``binary_media_types`` (then base64), as with a
   REST API's binary media types setting (the stack sets none).

API keys and usage plans are not emulated: a method with ``ApiKeyRequired`` is served without an
``x-api-key`` header (the header, if sent, is passed to the function like any other), and the
event carries no ``requestContext.identity.apiKeyId``. The data routes' key-ownership check
(``functions/api/data_access.py`` ``check_api_key``) therefore does not apply locally; the ID
token authenticates either way (keys only throttle in the cloud).

Paths in ``public_paths`` (the OpenAPI document) skip the authorizer. :meth:`LocalGateway.wsgi` is
a WSGI application over the same path, for schemathesis in tests and the local HTTP server.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs

from smartzone.domain.jwt_verify import Clock, InvalidToken, JwksFetcher, OidcTokenVerifier

Mode = Literal["cognito", "token"]
Handler = Callable[[dict[str, Any], Any], Mapping[str, Any]]

STAGE = "prod"
API_ID = "local"
ACCOUNT_ID = "123456789012"
PUBLIC_PATHS = frozenset({"/v1/openapi.json"})
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
"""API Gateway's request payload limit."""

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE_CLAIMS = frozenset({"exp", "iat"})
_DENIED_CODES = {401: "unauthorized", 403: "forbidden", 413: "payload_too_large"}


# -- requests and responses --------------------------------------------------------------------
@dataclass
class GatewayResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Denied(Exception):
    """The authorizer refused the request (401 or 403); the handler is not invoked."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> GatewayResponse:
        code = _DENIED_CODES.get(self.status, "gateway_error")
        body = json.dumps({"error": code, "message": self.message}).encode()
        return GatewayResponse(self.status, {"Content-Type": "application/json"}, body)


@dataclass
class LambdaContext:
    """The parts of a Lambda context Powertools reads."""

    function_name: str = "api"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:api"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 29_000


def _bearer(headers: Mapping[str, str]) -> str | None:
    for name, value in headers.items():
        if name.lower() == "authorization":
            text = value.strip()
            if text[:7].lower() == "bearer ":
                text = text[7:].strip()
            return text or None
    return None


# -- authorizers -------------------------------------------------------------------------------
def _http_date(epoch: float) -> str:
    t = time.gmtime(epoch)
    return f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} UTC {t.tm_year}"


def claim_strings(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as the REST API's Cognito authorizer passes them to the integration: strings."""
    out: dict[str, str] = {}
    for name, value in claims.items():
        if name in _DATE_CLAIMS and isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = _http_date(value)
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            out[name] = ",".join(str(v) for v in value)
        elif isinstance(value, dict):
            out[name] = json.dumps(value, separators=(",", ":"))
        else:
            out[name] = str(value)
    return out


class CognitoAuthorizer:
    """API Gateway's ``COGNITO_USER_POOLS`` authorizer for one user pool and its app clients."""

    def __init__(
        self,
        *,
        issuer: str,
        client_ids: str | Iterable[str],
        jwks: JwksFetcher,
        clock: Clock = time.time,
        leeway_s: float = 0.0,
    ) -> None:
        audiences = [client_ids] if isinstance(client_ids, str) else list(client_ids)
        self.verifier = OidcTokenVerifier(
            issuer=issuer, audience=audiences, jwks=jwks, clock=clock, leeway_s=leeway_s
        )

    def authorize(self, token: str | None, method: str, path: str) -> dict[str, Any]:
        if not token:
            raise Denied(401, "a valid token is required")
        try:
            claims = self.verifier.verify(token)
        except InvalidToken as exc:
            raise Denied(401, "a valid token is required") from exc
        if claims.get("token_use") != "id":
            raise Denied(401, "a valid token is required")
        return {"claims": claim_strings(claims)}


class TokenAuthorizer:
    """A Lambda ``TOKEN`` authorizer (ours by default), its policy enforced like API Gateway does."""

    def __init__(
        self,
        authorize: Callable[[dict[str, Any]], Mapping[str, Any]],
        *,
        region: str = "cn-north-1",
        partition: str = "aws-cn",
    ) -> None:
        self._authorize = authorize
        self.arn_prefix = f"arn:{partition}:execute-api:{region}:{ACCOUNT_ID}:{API_ID}/{STAGE}"

    @classmethod
    def with_verifier(cls, verifier: OidcTokenVerifier, **kwargs: Any) -> TokenAuthorizer:
        """Our authorizer's logic (:func:`functions.authorizer.handler.authorize`) with ``verifier``."""
        from functions.authorizer.handler import authorize

        return cls(lambda event: authorize(event, verifier), **kwargs)

    def authorize(self, token: str | None, method: str, path: str) -> dict[str, Any]:
        if not token:  # API Gateway refuses a missing identity source without calling the function
            raise Denied(401, "a valid token is required")
        method_arn = f"{self.arn_prefix}/{method}{path}"
        event = {"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": method_arn}
        try:
            answer = self._authorize(event)
        except Exception as exc:
            if str(exc) == "Unauthorized":
                raise Denied(401, "a valid token is required") from exc
            raise Denied(500, "authorizer error") from exc
        if not self._allows(answer, method_arn):
            raise Denied(403, "not authorized to access this resource")
        context = answer.get("context") or {}
        if not isinstance(context, Mapping) or not all(
            isinstance(v, str | int | float | bool) for v in context.values()
        ):
            raise Denied(500, "authorizer error")  # API Gateway refuses non-scalar context values
        return {**{k: v for k, v in context.items()}, "principalId": str(answer.get("principalId", ""))}

    @staticmethod
    def _allows(answer: Mapping[str, Any], method_arn: str) -> bool:
        statements = (answer.get("policyDocument") or {}).get("Statement") or []
        allowed = False
        for statement in statements:
            resources = statement.get("Resource", [])
            resources = [resources] if isinstance(resources, str) else resources
            if not any(fnmatch.fnmatchcase(method_arn, r) for r in resources):
                continue
            if statement.get("Effect") == "Deny":
                return False
            if statement.get("Effect") == "Allow":
                allowed = True
        return allowed


# -- the gateway -------------------------------------------------------------------------------
class Authorizer(Protocol):
    """What the gateway needs of an authorizer: ``requestContext.authorizer``, or :class:`Denied`."""

    def authorize(self, token: str | None, method: str, path: str) -> dict[str, Any]: ...


class LocalGateway:
    """``LocalGateway.for_user_pool(pool).request("GET", "/v1/workorders", headers=...)``."""

    def __init__(
        self,
        authorizer: Authorizer,
        handler: Handler | None = None,
        *,
        public_paths: Iterable[str] = PUBLIC_PATHS,
        stage: str = STAGE,
        binary_media_types: Iterable[str] = (),
        open_routes: Mapping[tuple[str, str], Handler] | None = None,
    ) -> None:
        self.open_routes = dict(open_routes or {})
        """``(METHOD, path)`` → the function of a method without an authorizer (``AuthorizationType
        NONE``, e.g. the signed detections webhook): invoked without the user authorizer."""
        self.authorizer = authorizer
        self.binary_media_types = tuple(t.lower() for t in binary_media_types)
        self._handler = handler
        self.public_paths = frozenset(public_paths)
        self.stage = stage

    @classmethod
    def for_user_pool(
        cls,
        pool: Any,
        *,
        mode: Mode = "cognito",
        clock: Clock = time.time,
        handler: Handler | None = None,
        client_ids: Iterable[str] | None = None,
    ) -> LocalGateway:
        """A gateway in front of the API whose tokens come from ``pool`` (a ``LocalUserPool``).

        ``mode="token"`` runs our TOKEN authorizer instead, with the pool as the OIDC provider.
        """
        audiences = list(client_ids) if client_ids is not None else [pool.client_id]
        authorizer: CognitoAuthorizer | TokenAuthorizer
        if mode == "cognito":
            authorizer = CognitoAuthorizer(
                issuer=pool.issuer, client_ids=audiences, jwks=pool.jwks, clock=clock
            )
        elif mode == "token":
            verifier = OidcTokenVerifier(issuer=pool.issuer, audience=audiences, jwks=pool.jwks, clock=clock)
            authorizer = TokenAuthorizer.with_verifier(verifier)
        else:
            raise ValueError(f"unknown mode {mode!r}: 'cognito' or 'token'")
        return cls(authorizer, handler)

    @property
    def handler(self) -> Handler:
        if self._handler is None:
            from functions.api.handler import handler

            self._handler = handler
        return self._handler

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        json_body: Any = None,
    ) -> GatewayResponse:
        method = method.upper()
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False)
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
        raw = body.encode() if isinstance(body, str) else body
        if raw is not None and len(raw) > MAX_PAYLOAD_BYTES:
            return Denied(413, "request entity too large").response()
        authorizer_context: dict[str, Any] | None = None
        own = self.open_routes.get((method, path))
        if own is not None:
            try:
                result = own(self.event(method, path, query or {}, headers, raw, None), LambdaContext())
            except Exception:
                return GatewayResponse(
                    502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'
                )
            return self._response(result)
        if path not in self.public_paths:
            try:
                authorizer_context = self.authorizer.authorize(_bearer(headers), method, path)
            except Denied as denied:
                return denied.response()
        event = self.event(method, path, query or {}, headers, raw, authorizer_context)
        try:
            result = self.handler(event, LambdaContext())
        except Exception:
            return GatewayResponse(
                502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'
            )
        return self._response(result)

    def event(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | list[str]],
        headers: Mapping[str, str],
        body: bytes | None,
        authorizer: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The REST proxy integration event for ``/{proxy+}``."""
        multi_query = {k: [v] if isinstance(v, str) else list(v) for k, v in query.items()}
        multi_query = {k: v for k, v in multi_query.items() if v}
        text: str | None = None
        is_b64 = False
        if body:
            if self._is_binary(headers):
                text, is_b64 = base64.b64encode(body).decode(), True
            else:  # a text payload: API Gateway decodes it as UTF-8, replacing invalid bytes
                text = body.decode("utf-8", errors="replace")
        request_context: dict[str, Any] = {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/{self.stage}{path}",
            "stage": self.stage,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "protocol": "HTTP/1.1",
            # No apiKeyId: the local gateway checks no API key (see the module's docstring).
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent")},
        }
        if authorizer is not None:
            request_context["authorizer"] = authorizer
        return {
            "resource": "/{proxy+}",
            "path": path,
            "httpMethod": method,
            "headers": dict(headers) or None,
            "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": {"proxy": path.lstrip("/")},
            "stageVariables": None,
            "requestContext": request_context,
            "body": text,
            "isBase64Encoded": is_b64,
        }

    def _is_binary(self, headers: Mapping[str, str]) -> bool:
        if not self.binary_media_types:
            return False
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        return any(fnmatch.fnmatchcase(media_type, pattern) for pattern in self.binary_media_types)

    @staticmethod
    def _response(result: Mapping[str, Any]) -> GatewayResponse:
        if not isinstance(result, Mapping) or not isinstance(result.get("statusCode"), int):
            return GatewayResponse(
                502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'
            )
        headers: dict[str, str] = {}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            if values:
                headers[name] = ", ".join(str(v) for v in values)
        for name, value in (result.get("headers") or {}).items():
            headers[name] = str(value)
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        return GatewayResponse(int(result["statusCode"]), headers, raw)

    # -- WSGI ------------------------------------------------------------------------------------
    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """The gateway as a WSGI application (for schemathesis and the local HTTP server)."""
        path = environ.get("PATH_INFO", "") or "/"
        path = path.encode("latin-1").decode("utf-8", errors="replace")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers[key[5:].replace("_", "-").title()] = value
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").title()] = environ[key]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else None
        response = self.request(
            environ.get("REQUEST_METHOD", "GET"), path, query=query, headers=headers, body=body
        )
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = "Unknown"
        header_list = [(k, v) for k, v in response.headers.items()]
        header_list.append(("Content-Length", str(len(response.body))))
        start_response(f"{response.status} {phrase}", header_list)
        return [response.body]
