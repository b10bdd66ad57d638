"""The China TOKEN authorizer (``functions/authorizer/handler.py``) against a local JWKS.

Keys are generated in the test; the JWKS is served over HTTP on 127.0.0.1 for the end-to-end
handler test (plain HTTP is accepted only for a loopback host).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from functions.authorizer import handler as authorizer
from smartzone.domain.identity import Caller, Role
from smartzone.domain.jwt_verify import OidcTokenVerifier
from tests.support.telemetry import FakeContext

ISSUER = "https://idp.gaoxin.example.cn/realms/smartzone"
AUDIENCE = "smartzone-app"
METHOD_ARN = "arn:aws-cn:execute-api:cn-north-1:123456789012:abc123/prod/GET/v1/workorders/WO-1"
API_WIDE = "arn:aws-cn:execute-api:cn-north-1:123456789012:abc123/prod/*/*"
NOW = 1_795_960_000


@pytest.fixture(scope="module")
def key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"}, private=True)


@pytest.fixture(scope="module")
def jwks(key: RSAKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False)]}


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u-123",
        "preferred_username": "wangfang",
        "groups": ["grid_worker"],
        "iat": NOW - 60,
        "exp": NOW + 3600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: RSAKey, payload: dict[str, Any], kid: str = "k1") -> str:
    return jwt.encode({"alg": "RS256", "kid": kid}, payload, key)


def verifier(jwks: dict[str, Any], now: float = NOW) -> OidcTokenVerifier:
    return OidcTokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=lambda: jwks, clock=lambda: now)


def event(token: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "TOKEN", "methodArn": METHOD_ARN}
    if token is not None:
        out["authorizationToken"] = token
    return out


def test_valid_token_gets_an_api_wide_allow_with_string_context(key: RSAKey, jwks: dict[str, Any]) -> None:
    answer = authorizer.authorize(event(f"Bearer {sign(key, claims())}"), verifier(jwks))

    assert answer["principalId"] == "u-123"
    assert answer["policyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": API_WIDE}],
    }
    assert answer["context"] == {"sub": "u-123", "username": "wangfang", "groups": "grid_worker"}
    caller = Caller.from_claims(answer["context"])
    assert caller.username == "wangfang" and caller.roles == {Role.GRID_WORKER}


@pytest.mark.parametrize(
    ("case", "payload"),
    [
        ("expired", claims(exp=NOW - 3600)),
        ("wrong audience", claims(aud="another-app")),
        ("wrong issuer", claims(iss="https://evil.example.com")),
        ("no subject", claims(sub=None)),
        ("no expiry", claims(exp=None)),
    ],
)
def test_invalid_claims_are_unauthorized(
    key: RSAKey, jwks: dict[str, Any], case: str, payload: dict[str, Any]
) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.authorize(event(f"Bearer {sign(key, payload)}"), verifier(jwks))


def test_bad_signature_is_unauthorized(key: RSAKey, jwks: dict[str, Any]) -> None:
    other = RSAKey.generate_key(2048, private=True)
    forged = sign(other, claims())
    header, _, signature = sign(key, claims()).split(".")
    tampered = f"{header}.{sign(key, claims(groups=['admin'])).split('.')[1]}.{signature}"

    for token in (forged, tampered):
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorizer.authorize(event(f"Bearer {token}"), verifier(jwks))


@pytest.mark.parametrize("token", [None, "", "   ", "Bearer", "not-a-jwt", "Bearer a.b.c"])
def test_missing_or_malformed_token_is_unauthorized(jwks: dict[str, Any], token: str | None) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.authorize(event(token), verifier(jwks))


def test_unknown_key_id_is_unauthorized(key: RSAKey, jwks: dict[str, Any]) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.authorize(event(sign(key, claims(), kid="rotated-away")), verifier(jwks))


def test_person_without_a_platform_role_is_denied(key: RSAKey, jwks: dict[str, Any]) -> None:
    answer = authorizer.authorize(event(sign(key, claims(groups=["visitors"]))), verifier(jwks))

    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert "context" not in answer


def test_api_wide_resource_keeps_unusual_arns_as_they_are() -> None:
    assert authorizer.api_wide_resource(METHOD_ARN) == API_WIDE
    assert authorizer.api_wide_resource("not-an-arn") == "not-an-arn"


def test_configuration_comes_from_the_environment() -> None:
    with pytest.raises(authorizer.ConfigurationError):
        authorizer.verifier_from_env({"OIDC_ISSUER": ISSUER})
    with pytest.raises(authorizer.ConfigurationError):
        authorizer.verifier_from_env(
            {"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": AUDIENCE, "OIDC_JWKS_URL": "http://idp.example.cn/jwks"}
        )
    configured = authorizer.verifier_from_env(
        {
            "OIDC_ISSUER": ISSUER,
            "OIDC_AUDIENCE": f"{AUDIENCE}, other",
            "OIDC_JWKS_URL": "https://idp.example.cn/jwks",
        }
    )
    assert configured.issuer == ISSUER and configured.audiences == {AUDIENCE, "other"}


@pytest.fixture
def jwks_server(jwks: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """The JWKS served on 127.0.0.1; yields its URL and the paths requested."""
    requests: list[str] = []
    body = json.dumps(jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", requests
    finally:
        server.shutdown()
        server.server_close()


def test_handler_fetches_the_jwks_once_and_caches_it(
    key: RSAKey, jwks_server: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, requests = jwks_server
    monkeypatch.setenv("OIDC_ISSUER", ISSUER)
    monkeypatch.setenv("OIDC_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("OIDC_JWKS_URL", url)
    authorizer.default_verifier.cache_clear()
    now = int(time.time())
    token = sign(key, claims(iat=now - 10, exp=now + 600))
    try:
        first = authorizer.handler(event(f"Bearer {token}"), FakeContext())
        second = authorizer.handler(event(f"Bearer {token}"), FakeContext())
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorizer.handler(event("Bearer x.y.z"), FakeContext())
    finally:
        authorizer.default_verifier.cache_clear()

    assert first["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert second == first
    assert requests == ["/jwks.json"]
