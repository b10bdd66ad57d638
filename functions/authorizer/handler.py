"""API Gateway Lambda TOKEN authorizer for ``aws-cn`` (no Cognito user pools there).

Verifies the district OIDC provider's ID token (``Authorization: Bearer <token>``) with
:mod:`smartzone.domain.jwt_verify` (RS256 signature against the provider's JWKS, issuer,
audience, expiry) and answers API Gateway with an IAM policy:

- no token, or a token that does not verify: ``raise Exception("Unauthorized")``, the one way to
  make API Gateway answer 401;
- a valid token of a person with no platform role: a ``Deny`` policy (API Gateway answers 403);
- otherwise an ``Allow`` policy and ``context`` = :meth:`Caller.authorizer_context` (strings only),
  which the API handler reads back with :meth:`Caller.from_claims`.

The Allow covers every method of the API's stage (``<api>/<stage>/*/*``), not only the method
called: API Gateway caches the policy per token, and a policy naming one method would deny the
caller's next request to another one until the cache expires.

Configuration (environment): ``OIDC_ISSUER``, ``OIDC_JWKS_URL``, ``OIDC_AUDIENCE`` (one client id,
or several separated by commas). The JWKS is fetched over HTTPS (plain HTTP only for a loopback
host, i.e. the local platform) with urllib and cached by :class:`JwksCache`.

Handler string: ``authorizer.handler.handler``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import urllib.request
from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from smartzone.domain.identity import Caller, InvalidCaller
from smartzone.domain.jwt_verify import InvalidToken, JwksFetcher, OidcTokenVerifier
from smartzone.observability import logger

UNAUTHORIZED = "Unauthorized"
"""The exact message API Gateway turns into a 401."""
JWKS_TIMEOUT_S = 3.0
MAX_JWKS_BYTES = 256 * 1024


class ConfigurationError(RuntimeError):
    """The authorizer's environment is incomplete or invalid."""


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def https_fetcher(url: str, *, timeout_s: float = JWKS_TIMEOUT_S) -> JwksFetcher:
    """A JWKS fetcher that GETs ``url`` (HTTPS; HTTP only for a loopback host)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(parts.hostname)):
        raise ConfigurationError("OIDC_JWKS_URL must be an https:// URL")

    def fetch() -> Mapping[str, Any]:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            raw = response.read(MAX_JWKS_BYTES + 1)
        if len(raw) > MAX_JWKS_BYTES:
            raise ValueError("JWKS document too large")
        document = json.loads(raw)
        if not isinstance(document, dict):
            raise ValueError("JWKS document is not an object")
        return document

    return fetch


def verifier_from_env(environ: Mapping[str, str] | None = None) -> OidcTokenVerifier:
    """The verifier configured by ``OIDC_ISSUER``, ``OIDC_JWKS_URL`` and ``OIDC_AUDIENCE``."""
    env = os.environ if environ is None else environ
    issuer = env.get("OIDC_ISSUER", "").strip()
    jwks_url = env.get("OIDC_JWKS_URL", "").strip()
    audiences = [a.strip() for a in env.get("OIDC_AUDIENCE", "").split(",") if a.strip()]
    if not issuer or not jwks_url or not audiences:
        raise ConfigurationError("OIDC_ISSUER, OIDC_JWKS_URL and OIDC_AUDIENCE must be set")
    return OidcTokenVerifier(issuer=issuer, audience=audiences, jwks=https_fetcher(jwks_url))


@cache
def default_verifier() -> OidcTokenVerifier:
    """One verifier (and so one JWKS cache) per execution environment."""
    return verifier_from_env()


def api_wide_resource(method_arn: str) -> str:
    """``arn:…:execute-api:region:account:api/stage/*/*`` from the ARN of the method called."""
    prefix, sep, path = method_arn.partition(":execute-api:")
    parts = path.split("/")
    if not sep or len(parts) < 2 or not all(parts[:2]):
        return method_arn
    return f"{prefix}{sep}{parts[0]}/{parts[1]}/*/*"


def policy(
    principal_id: str, effect: str, resource: str, context: Mapping[str, str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }
    if context is not None:
        out["context"] = dict(context)
    return out


def authorize(event: Mapping[str, Any], verifier: OidcTokenVerifier) -> dict[str, Any]:
    """The authorizer's answer for a TOKEN event; raises ``Exception("Unauthorized")`` for 401."""
    token = event.get("authorizationToken")
    method_arn = event.get("methodArn")
    if not isinstance(method_arn, str) or not method_arn:
        method_arn = "*"
    if not isinstance(token, str) or not token.strip():
        logger.info("token refused", extra={"reason": "missing token"})
        raise Exception(UNAUTHORIZED)
    try:
        claims = verifier.verify(token.strip())
        caller = Caller.from_claims(claims)
    except InvalidToken as exc:
        logger.info("token refused", extra={"reason": exc.reason})
        raise Exception(UNAUTHORIZED) from None
    except (InvalidCaller, ValidationError):
        logger.info("token refused", extra={"reason": "unusable claims"})
        raise Exception(UNAUTHORIZED) from None
    if not caller.has_any_role:
        logger.info("caller denied", extra={"reason": "no platform role", "sub": caller.subject})
        return policy(caller.subject, "Deny", api_wide_resource(method_arn))
    return policy(caller.subject, "Allow", api_wide_resource(method_arn), caller.authorizer_context())


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return authorize(event, default_verifier())
