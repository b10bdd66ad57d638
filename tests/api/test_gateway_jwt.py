"""The emulated API Gateway with real ID tokens issued by a (moto) Cognito user pool.

Cognito shape (global regions): signature, issuer, audience, ``token_use`` and expiry checked
before the handler runs; claims passed as strings. TOKEN shape (``aws-cn``): our authorizer Lambda
verifies the same tokens against the pool's JWKS and its policy is enforced.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from functions.authorizer.handler import authorize
from infra.local.gateway import LocalGateway, claim_strings
from infra.local.userpool import LocalUserPool
from smartzone.domain.identity import Caller, Role
from smartzone.domain.jwt_verify import OidcTokenVerifier
from tests.api.gateway_fixtures import bearer, gateway, pool

__all__ = ["gateway", "pool"]  # fixtures used by name below


class Echo:
    """A stand-in API handler that records the event it was invoked with."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _payload(token: str) -> dict[str, Any]:
    segment = _segments(token)[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


# -- Cognito authorizer shape ------------------------------------------------------------------
def test_valid_dispatcher_token_reaches_the_api(gateway: LocalGateway, pool: LocalUserPool) -> None:
    response = gateway.request("GET", "/v1/workorders", headers=bearer(pool.id_token("disp-01")))

    assert response.status == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}
    assert response.headers["Content-Type"] == "application/json"


def test_bare_token_without_bearer_prefix_is_accepted(gateway: LocalGateway, pool: LocalUserPool) -> None:
    response = gateway.request("GET", "/v1/workorders", headers={"authorization": pool.id_token("disp-01")})

    assert response.status == 200, response.text


def test_claims_reach_the_handler_as_strings_like_the_cognito_authorizer(pool: LocalUserPool) -> None:
    pool.add_user("both-01", ["dispatcher", "admin"])
    echo = Echo()
    gateway = LocalGateway.for_user_pool(pool, handler=echo)

    response = gateway.request(
        "POST",
        "/v1/reports",
        headers=bearer(pool.id_token("both-01")),
        json_body={"a": "中"},
        query={"x": "1"},
    )

    assert response.status == 200
    (event,) = echo.events
    claims = event["requestContext"]["authorizer"]["claims"]
    assert all(isinstance(v, str) for v in claims.values())
    assert set(claims["cognito:groups"].split(",")) == {"dispatcher", "admin"}
    assert claims["cognito:username"] == "both-01"
    assert claims["token_use"] == "id"
    assert claims["aud"] == pool.client_id
    assert claims["iss"] == pool.issuer
    assert claims["exp"].endswith(
        " UTC " + time.strftime("%Y", time.gmtime())
    )  # "Tue Apr 04 18:39:39 UTC 2023"
    caller = Caller.from_claims(event["requestContext"]["authorizer"])
    assert caller.username == "both-01" and caller.roles == {Role.DISPATCHER, Role.ADMIN}
    assert json.loads(event["body"]) == {"a": "中"}
    assert event["httpMethod"] == "POST" and event["path"] == "/v1/reports"
    assert event["queryStringParameters"] == {"x": "1"}


def test_claim_strings_formats_dates_lists_and_booleans() -> None:
    out = claim_strings(
        {"exp": 1680633579, "iat": 1680629979.0, "auth_time": 1680629979, "g": ["a", "b"], "v": True}
    )

    assert out == {
        "exp": "Tue Apr 04 18:39:39 UTC 2023",
        "iat": "Tue Apr 04 17:39:39 UTC 2023",
        "auth_time": "1680629979",
        "g": "a,b",
        "v": "true",
    }


def test_no_header_is_401_without_invoking_the_handler(pool: LocalUserPool) -> None:
    echo = Echo()
    gateway = LocalGateway.for_user_pool(pool, handler=echo)

    for headers in ({}, {"Authorization": ""}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
        response = gateway.request("GET", "/v1/workorders", headers=headers)
        assert response.status == 401, headers
        assert response.json()["error"] == "unauthorized"
    assert echo.events == []


def test_payload_altered_token_is_401(gateway: LocalGateway, pool: LocalUserPool) -> None:
    token = pool.id_token("gw-g03-01")
    header, _, signature = _segments(token)
    claims = _payload(token)
    claims["cognito:groups"] = ["admin"]
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"

    assert gateway.request("GET", "/v1/workorders", headers=bearer(forged)).status == 401


def test_token_signed_by_another_key_is_401(gateway: LocalGateway, pool: LocalUserPool) -> None:
    claims = _payload(pool.id_token("disp-01"))
    other_key = RSAKey.generate_key(2048)
    forged = jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, other_key)

    assert gateway.request("GET", "/v1/workorders", headers=bearer(forged)).status == 401


def test_unsigned_token_is_401(gateway: LocalGateway, pool: LocalUserPool) -> None:
    claims = _payload(pool.id_token("disp-01"))
    header = _b64(json.dumps({"alg": "none"}).encode())
    unsigned = f"{header}.{_b64(json.dumps(claims).encode())}."

    assert gateway.request("GET", "/v1/workorders", headers=bearer(unsigned)).status == 401


def test_expired_token_is_401(pool: LocalUserPool) -> None:
    token = pool.id_token("disp-01")
    later = LocalGateway.for_user_pool(pool, clock=lambda: time.time() + 2 * 3600)
    now = LocalGateway.for_user_pool(pool)

    assert now.request("GET", "/v1/workorders", headers=bearer(token)).status == 200
    assert later.request("GET", "/v1/workorders", headers=bearer(token)).status == 401


def test_token_of_another_app_client_is_401(gateway: LocalGateway, pool: LocalUserPool) -> None:
    other_client = pool.add_client("someone-elses-app")
    token = pool.id_token("disp-01", client_id=other_client)

    assert _payload(token)["aud"] == other_client
    assert gateway.request("GET", "/v1/workorders", headers=bearer(token)).status == 401


def test_token_of_another_pool_is_401(gateway: LocalGateway, pool: LocalUserPool) -> None:
    other = LocalUserPool.create("another-pool")
    other.add_user("disp-01", ["dispatcher"])

    # Same signing key in moto, but another issuer (and audience): refused.
    assert gateway.request("GET", "/v1/workorders", headers=bearer(other.id_token("disp-01"))).status == 401


def test_access_token_is_401(gateway: LocalGateway, pool: LocalUserPool) -> None:
    access = str(pool.tokens("disp-01")["AccessToken"])

    assert gateway.request("GET", "/v1/workorders", headers=bearer(access)).status == 401


def test_user_without_a_role_is_refused_by_the_api(gateway: LocalGateway, pool: LocalUserPool) -> None:
    response = gateway.request("GET", "/v1/workorders", headers=bearer(pool.id_token("nobody")))

    assert response.status == 401


def test_openapi_document_needs_no_token(gateway: LocalGateway) -> None:
    response = gateway.request("GET", "/v1/openapi.json")

    assert response.status == 200
    assert response.json()["openapi"].startswith("3.")


def test_handler_crash_is_502(pool: LocalUserPool) -> None:
    def crash(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    gateway = LocalGateway.for_user_pool(pool, handler=crash)

    assert gateway.request("GET", "/v1/workorders", headers=bearer(pool.id_token("disp-01"))).status == 502


def test_user_pool_keeps_grid_id_out_of_the_app_clients_writable_attributes(pool: LocalUserPool) -> None:
    import boto3

    idp = boto3.client("cognito-idp", region_name=pool.region)
    app_client = idp.describe_user_pool_client(UserPoolId=pool.pool_id, ClientId=pool.client_id)[
        "UserPoolClient"
    ]
    groups = {g["GroupName"] for g in idp.list_groups(UserPoolId=pool.pool_id)["Groups"]}

    assert "custom:grid_id" not in app_client["WriteAttributes"]
    assert "custom:grid_id" in app_client["ReadAttributes"]
    assert groups == {"admin", "dispatcher", "grid_worker", "technician", "department", "data_steward"}
    assert _payload(pool.id_token("gw-g03-01"))["custom:grid_id"] == "G03"


# -- TOKEN authorizer shape (aws-cn) -----------------------------------------------------------
def test_token_mode_valid_token_reaches_the_api(pool: LocalUserPool) -> None:
    gateway = LocalGateway.for_user_pool(pool, mode="token")

    response = gateway.request("GET", "/v1/workorders", headers=bearer(pool.id_token("disp-01")))

    assert response.status == 200, response.text


def test_token_mode_passes_the_authorizer_context(pool: LocalUserPool) -> None:
    echo = Echo()
    gateway = LocalGateway.for_user_pool(pool, mode="token", handler=echo)

    assert gateway.request("GET", "/v1/grids", headers=bearer(pool.id_token("gw-g03-01"))).status == 200

    authorizer = echo.events[0]["requestContext"]["authorizer"]
    assert all(isinstance(v, str) for v in authorizer.values())
    assert authorizer["username"] == "gw-g03-01" and authorizer["groups"] == "grid_worker"
    assert authorizer["principalId"] == authorizer["sub"]
    assert Caller.from_claims(authorizer).roles == {Role.GRID_WORKER}


@pytest.mark.parametrize("case", ["no header", "forged", "expired", "other client"])
def test_token_mode_refuses_bad_tokens_with_401(pool: LocalUserPool, case: str) -> None:
    echo = Echo()
    clock = (lambda: time.time() + 2 * 3600) if case == "expired" else time.time
    gateway = LocalGateway.for_user_pool(pool, mode="token", handler=echo, clock=clock)
    token = pool.id_token("disp-01")
    if case == "forged":
        header, _, signature = _segments(token)
        claims = {**_payload(token), "cognito:groups": ["admin"]}
        token = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    elif case == "other client":
        token = pool.id_token("disp-01", client_id=pool.add_client("other"))
    headers = {} if case == "no header" else bearer(token)

    assert gateway.request("GET", "/v1/workorders", headers=headers).status == 401
    assert echo.events == []


def test_token_mode_denies_a_person_without_a_role_with_403(pool: LocalUserPool) -> None:
    echo = Echo()
    gateway = LocalGateway.for_user_pool(pool, mode="token", handler=echo)

    assert gateway.request("GET", "/v1/workorders", headers=bearer(pool.id_token("nobody"))).status == 403
    assert echo.events == []


def test_authorizer_handler_logic_with_moto_tokens(pool: LocalUserPool) -> None:
    verifier = OidcTokenVerifier(issuer=pool.issuer, audience=pool.client_id, jwks=pool.jwks)
    method_arn = "arn:aws-cn:execute-api:cn-north-1:123456789012:abc123/prod/GET/v1/workorders"

    answer = authorize(
        {"authorizationToken": f"Bearer {pool.id_token('disp-01')}", "methodArn": method_arn}, verifier
    )

    assert answer["policyDocument"]["Statement"] == [
        {
            "Action": "execute-api:Invoke",
            "Effect": "Allow",
            "Resource": "arn:aws-cn:execute-api:cn-north-1:123456789012:abc123/prod/*/*",
        }
    ]
    assert answer["context"]["username"] == "disp-01" and answer["context"]["groups"] == "dispatcher"
    assert all(isinstance(v, str) for v in answer["context"].values())
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize({"authorizationToken": "Bearer not.a.token", "methodArn": method_arn}, verifier)
