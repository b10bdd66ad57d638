"""OIDC ID-token verification for the China TOKEN authorizer, against a local JWKS.

Tokens are signed here with ``cryptography`` directly (not with the library under the verifier),
so the test also checks interoperability with any standard RS256 signer.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from smartzone.domain.identity import Caller, Role
from smartzone.domain.jwt_verify import InvalidToken, JwksCache, OidcTokenVerifier

ISSUER = "https://idp.gaoxin.example.cn/realms/smartzone"
AUDIENCE = "smartzone-app"
NOW = 1_795_960_000.0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64int(value: int) -> str:
    return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass
class Signer:
    kid: str
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    def jwk(self) -> dict[str, str]:
        numbers = self.key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": b64int(numbers.n),
            "e": b64int(numbers.e),
        }

    def token(self, claims: Any = None, *, header: Mapping[str, Any] | None = None, **kw: Any) -> str:
        head = {"alg": "RS256", "typ": "JWT", "kid": self.kid, **(header or {})}
        body: Any = claims if claims is not None else good_claims(**kw)
        signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(body).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64(signature)}"


def good_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u-0001",
        "preferred_username": "gw-g03-01",
        "groups": ["grid_worker"],
        "iat": NOW - 60,
        "nbf": NOW - 60,
        "exp": NOW + 3600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


# Key generation is slow: make the keys once.
KEY_A = Signer("key-a")
KEY_B = Signer("key-b")
ROGUE = Signer("key-a")  # same kid as KEY_A, different key


class Idp:
    """A local JWKS endpoint whose keys can be rotated and which counts fetches."""

    def __init__(self, *signers: Signer) -> None:
        self.signers = list(signers)
        self.calls = 0
        self.down = False

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.down:
            raise ConnectionError("idp unreachable")
        return {"keys": [s.jwk() for s in self.signers]}


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def verifier(idp: Idp, clock: Clock | None = None, **kw: Any) -> OidcTokenVerifier:
    clock = clock or Clock()
    cache = JwksCache(
        idp, clock=clock, ttl_s=kw.pop("ttl_s", 3600), refetch_cooldown_s=kw.pop("cooldown", 30)
    )
    return OidcTokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=cache, clock=clock, **kw)


def reason(v: OidcTokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as err:
        v.verify(token)
    return err.value.reason


# -- the essentials ---------------------------------------------------------------------------------
def test_given_a_valid_token_when_verified_then_claims_are_returned_and_read_as_a_caller() -> None:
    claims = verifier(Idp(KEY_A)).verify(KEY_A.token())
    assert claims["sub"] == "u-0001"
    caller = Caller.from_claims(claims)
    assert caller.username == "gw-g03-01" and caller.roles == {Role.GRID_WORKER}


def test_given_a_bearer_prefix_when_verified_then_accepted() -> None:
    assert verifier(Idp(KEY_A)).verify("Bearer " + KEY_A.token())["sub"] == "u-0001"


def test_given_an_expired_token_then_rejected_as_expired() -> None:
    assert reason(verifier(Idp(KEY_A)), KEY_A.token(exp=NOW - 61)) == "token expired"


def test_given_a_token_just_expired_within_the_leeway_then_accepted() -> None:
    assert verifier(Idp(KEY_A)).verify(KEY_A.token(exp=NOW - 30))["sub"] == "u-0001"


def test_given_a_token_without_exp_then_rejected() -> None:
    assert reason(verifier(Idp(KEY_A)), KEY_A.token(exp=None)) == "missing exp claim"


@pytest.mark.parametrize("exp", ["tomorrow", True, [1]])
def test_given_a_malformed_exp_then_rejected(exp: Any) -> None:
    assert reason(verifier(Idp(KEY_A)), KEY_A.token(exp=exp)) == "malformed exp claim"


def test_given_a_token_not_yet_valid_then_rejected() -> None:
    assert reason(verifier(Idp(KEY_A)), KEY_A.token(nbf=NOW + 300)) == "token not yet valid"
    assert verifier(Idp(KEY_A)).verify(KEY_A.token(nbf=NOW + 30))["sub"] == "u-0001"


def test_given_a_token_issued_in_the_future_then_rejected() -> None:
    assert reason(verifier(Idp(KEY_A)), KEY_A.token(iat=NOW + 600)) == "token issued in the future"


@pytest.mark.parametrize("aud", ["another-app", ["another-app"], [], None, 7])
def test_given_a_wrong_audience_then_rejected(aud: Any) -> None:
    assert reason(verifier(Idp(KEY_A)), KEY_A.token(aud=aud)) == "wrong audience"


def test_given_several_audiences_then_azp_must_name_us() -> None:
    v = verifier(Idp(KEY_A))
    assert reason(v, KEY_A.token(aud=[AUDIENCE, "other"])) == "wrong authorized party"
    assert v.verify(KEY_A.token(aud=[AUDIENCE, "other"], azp=AUDIENCE))["sub"] == "u-0001"
    assert reason(v, KEY_A.token(azp="other")) == "wrong authorized party"


@pytest.mark.parametrize("iss", ["https://evil.example.com/realms/smartzone", ISSUER + "/", None])
def test_given_a_wrong_issuer_then_rejected(iss: str | None) -> None:
    assert reason(verifier(Idp(KEY_A)), KEY_A.token(iss=iss)) == "wrong issuer"


def test_given_a_token_without_subject_then_rejected() -> None:
    assert reason(verifier(Idp(KEY_A)), KEY_A.token(sub=None)) == "missing subject"


# -- signatures -----------------------------------------------------------------------------------------
def test_given_a_token_signed_by_another_key_with_the_same_kid_then_bad_signature() -> None:
    assert reason(verifier(Idp(KEY_A)), ROGUE.token()) == "bad signature"


def test_given_a_tampered_payload_then_bad_signature() -> None:
    head, _, sig = KEY_A.token().split(".")
    forged = b64(json.dumps(good_claims(groups=["dispatcher", "admin"])).encode())
    assert reason(verifier(Idp(KEY_A)), f"{head}.{forged}.{sig}") == "bad signature"


def test_given_an_unsigned_token_then_rejected() -> None:
    head = b64(json.dumps({"alg": "none", "kid": "key-a"}).encode())
    body = b64(json.dumps(good_claims()).encode())
    assert reason(verifier(Idp(KEY_A)), f"{head}.{body}.") == "unsupported algorithm"


def test_given_an_hs256_token_made_with_the_public_key_as_secret_then_rejected() -> None:
    """The classic algorithm confusion: HMAC keyed with the (public) RSA modulus."""
    head = b64(json.dumps({"alg": "HS256", "kid": "key-a"}).encode())
    body = b64(json.dumps(good_claims()).encode())
    mac = hmac.HMAC(json.dumps(KEY_A.jwk()).encode(), hashes.SHA256())
    mac.update(f"{head}.{body}".encode())
    assert reason(verifier(Idp(KEY_A)), f"{head}.{body}.{b64(mac.finalize())}") == "unsupported algorithm"


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "!!!.???.***", "x" * 9000, ".."])
def test_given_garbage_then_malformed(token: str) -> None:
    assert reason(verifier(Idp(KEY_A)), token) == "malformed token"


def test_given_a_payload_that_is_not_an_object_then_malformed() -> None:
    assert reason(verifier(Idp(KEY_A)), KEY_A.token(["not", "claims"])) == "malformed token"


# -- keys: selection, cache, rotation --------------------------------------------------------------------
def test_given_two_keys_when_verifying_then_the_key_is_selected_by_kid() -> None:
    v = verifier(Idp(KEY_A, KEY_B))
    assert v.verify(KEY_A.token())["sub"] == v.verify(KEY_B.token(sub="u-0002"))["sub"].replace("2", "1")


def test_given_many_tokens_within_the_ttl_then_the_jwks_is_fetched_once() -> None:
    idp = Idp(KEY_A)
    v = verifier(idp)
    for _ in range(5):
        v.verify(KEY_A.token())
    assert idp.calls == 1


def test_given_the_ttl_passed_then_the_jwks_is_fetched_again() -> None:
    idp, clock = Idp(KEY_A), Clock()
    v = verifier(idp, clock)
    v.verify(KEY_A.token())
    clock.now += 3601
    v.verify(KEY_A.token(exp=clock.now + 60, iat=clock.now))
    assert idp.calls == 2


def test_given_an_unknown_kid_then_one_refetch_then_rejected() -> None:
    idp, clock = Idp(KEY_A), Clock()
    v = verifier(idp, clock)
    v.verify(KEY_A.token())
    clock.now += 60
    assert reason(v, Signer("key-zzz", KEY_B.key).token()) == "unknown key id"
    assert idp.calls == 2


def test_given_made_up_kids_in_a_burst_then_refetches_are_spaced_by_the_cooldown() -> None:
    idp, clock = Idp(KEY_A), Clock()
    v = verifier(idp, clock)
    v.verify(KEY_A.token())
    clock.now += 60
    for i in range(10):
        reason(v, Signer(f"made-up-{i}", KEY_B.key).token())
    assert idp.calls == 2
    clock.now += 31
    reason(v, Signer("made-up-x", KEY_B.key).token())
    assert idp.calls == 3


def test_given_the_provider_rotated_its_keys_then_the_new_kid_is_found_by_one_refetch() -> None:
    idp, clock = Idp(KEY_A), Clock()
    v = verifier(idp, clock)
    v.verify(KEY_A.token())
    idp.signers = [KEY_A, KEY_B]
    clock.now += 60
    assert v.verify(KEY_B.token(exp=clock.now + 60))["sub"] == "u-0001"
    assert idp.calls == 2


def test_given_a_token_without_kid_then_accepted_only_when_the_jwks_has_one_key() -> None:
    head = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(good_claims()).encode())
    signature = KEY_A.key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    token = f"{head}.{body}.{b64(signature)}"
    assert verifier(Idp(KEY_A)).verify(token)["sub"] == "u-0001"
    assert reason(verifier(Idp(KEY_A, KEY_B)), token) == "missing key id"


def test_given_the_provider_down_at_start_then_rejected_and_retried_after_the_cooldown() -> None:
    idp, clock = Idp(KEY_A), Clock()
    idp.down = True
    v = verifier(idp, clock)
    assert reason(v, KEY_A.token()) == "signing keys unavailable"
    assert reason(v, KEY_A.token()) == "signing keys unavailable"
    assert idp.calls == 1
    idp.down = False
    clock.now += 31
    assert v.verify(KEY_A.token())["sub"] == "u-0001"


def test_given_the_provider_down_when_the_ttl_passes_then_the_cached_keys_stay_in_use_for_a_while() -> None:
    idp, clock = Idp(KEY_A), Clock()
    v = verifier(idp, clock)
    v.verify(KEY_A.token())
    idp.down = True
    clock.now += 7200
    assert v.verify(KEY_A.token(exp=clock.now + 60))["sub"] == "u-0001"
    clock.now += 2 * 86400
    assert reason(v, KEY_A.token(exp=clock.now + 60)) == "signing keys unavailable"


def test_given_a_jwks_with_unusable_keys_then_they_are_ignored() -> None:
    def fetch() -> dict[str, Any]:
        return {
            "keys": [
                {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "x", "y": "y"},
                {**KEY_B.jwk(), "use": "enc"},
                {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
                "junk",
                KEY_A.jwk(),
            ]
        }

    v = OidcTokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=fetch, clock=Clock())
    assert v.verify(KEY_A.token())["sub"] == "u-0001"
    assert reason(v, KEY_B.token()) == "unknown key id"


def test_given_no_issuer_or_audience_configured_then_the_verifier_refuses_to_start() -> None:
    with pytest.raises(ValueError):
        OidcTokenVerifier(issuer="", audience=AUDIENCE, jwks=Idp(KEY_A))
    with pytest.raises(ValueError):
        OidcTokenVerifier(issuer=ISSUER, audience=[], jwks=Idp(KEY_A))
