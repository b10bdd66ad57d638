"""Verification of the district's OIDC ID tokens, for the TOKEN authorizer of ``aws-cn``.

China regions have no Cognito user pools, so a Lambda TOKEN authorizer verifies the JWTs of the
district's OIDC identity provider itself:

- signature: RS256 only (``none``, HMAC and every other algorithm refused, so a public key can
  never be used as an HMAC secret), with the key of the JWKS selected by the header's ``kid``
  (a token without ``kid`` is accepted only while the JWKS holds exactly one key);
- keys cached for ``ttl_s``; a ``kid`` not in the cache triggers ONE refetch (the provider may
  have rotated its keys), then the token is rejected. Refetches for unknown ``kid`` s are spaced
  at least ``refetch_cooldown_s`` apart, so tokens with made-up ``kid`` s cannot hammer the
  provider. When a refetch fails, the keys already held stay in use;
- claims: ``iss`` equal to the configured issuer, ``aud`` containing the configured audience
  (and ``azp``, when present, equal to it), ``exp`` required and not passed, ``nbf`` and
  ``iat`` not in the future, all with a small leeway for clock skew; ``sub`` required.

Fetching the JWKS is injected (any callable returning the JWKS document), so this module does
no I/O: the authorizer passes a function that GETs the configured JWKS URL.
Signature checking is done by ``joserfc``; everything else here is plain Python.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import RSAKey

ALGORITHM = "RS256"
DEFAULT_LEEWAY_S = 60.0
DEFAULT_TTL_S = 3600.0
DEFAULT_REFETCH_COOLDOWN_S = 30.0
DEFAULT_MAX_STALE_S = 24 * 3600.0
MAX_TOKEN_CHARS = 8192

JwksFetcher = Callable[[], Mapping[str, Any]]
"""Returns the provider's JWKS document (``{"keys": [...]}``); may raise on network errors."""
Clock = Callable[[], float]
"""Seconds since the epoch."""


class InvalidToken(Exception):
    """The token must not be trusted (the authorizer answers ``Unauthorized``, i.e. 401).

    ``reason`` is a short, fixed phrase for logs and metrics; it never contains the token.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64url_json(segment: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("malformed token") from exc


def _usable_keys(document: Mapping[str, Any]) -> dict[str | None, RSAKey]:
    """The RS256 signing keys of a JWKS document, by ``kid`` (malformed keys skipped)."""
    keys: dict[str | None, RSAKey] = {}
    raw_keys = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(raw_keys, list):
        return keys
    for jwk in raw_keys:
        if not isinstance(jwk, Mapping) or jwk.get("kty") != "RSA":
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", ALGORITHM) != ALGORITHM:
            continue
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            continue
        public = {k: v for k, v in jwk.items() if k in {"kty", "n", "e", "kid", "use", "alg"}}
        try:
            keys[kid] = RSAKey.import_key(public)
        except (JoseError, ValueError, TypeError):
            continue
    return keys


class JwksCache:
    """The provider's signing keys, refreshed after ``ttl_s`` or when an unknown ``kid`` appears.

    Fetch attempts (scheduled or for an unknown ``kid``) are at least ``refetch_cooldown_s``
    apart. If the provider cannot be reached, the keys last fetched stay in use, but never longer
    than ``max_stale_s`` after they were fetched.
    """

    def __init__(
        self,
        fetch: JwksFetcher,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        refetch_cooldown_s: float = DEFAULT_REFETCH_COOLDOWN_S,
        max_stale_s: float = DEFAULT_MAX_STALE_S,
        clock: Clock = time.time,
    ) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._cooldown_s = refetch_cooldown_s
        self._max_stale_s = max(max_stale_s, ttl_s)
        self._clock = clock
        self._keys: dict[str | None, RSAKey] = {}
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self.fetches = 0
        """How many times the JWKS was fetched (for metrics and tests)."""

    def _refresh(self, now: float) -> None:
        """Fetch the JWKS; on failure (or an empty key set) keep the keys already held."""
        self.fetches += 1
        self._attempted_at = now
        try:
            document = self._fetch()
        except Exception:  # any failure of the injected fetcher: keep what we have
            return
        keys = _usable_keys(document)
        if keys:
            self._keys = keys
            self._loaded_at = now

    def _refresh_due(self, now: float) -> bool:
        if self._attempted_at is None:
            return True
        if self._loaded_at is not None and now - self._loaded_at < self._ttl_s:
            return False
        return self._may_refetch(now)

    def _may_refetch(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self._cooldown_s

    def key_for(self, kid: str | None) -> RSAKey:
        """The key for ``kid`` (or the only key, when the token names none)."""
        now = self._clock()
        fetched_now = False
        if self._refresh_due(now):
            self._refresh(now)
            fetched_now = True
        if self._loaded_at is not None and now - self._loaded_at > self._max_stale_s:
            self._keys = {}
        key = self._lookup(kid)
        if key is None and not fetched_now and self._may_refetch(now):
            self._refresh(now)
            key = self._lookup(kid)
        if key is None:
            if not self._keys:
                raise InvalidToken("signing keys unavailable")
            raise InvalidToken("unknown key id" if kid is not None else "missing key id")
        return key

    def _lookup(self, kid: str | None) -> RSAKey | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken(f"malformed {name} claim")
    return float(value)


class OidcTokenVerifier:
    """Verifies ID tokens of one OIDC issuer for one (or a few) client ids."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | Collection[str],
        jwks: JwksCache | JwksFetcher,
        leeway_s: float = DEFAULT_LEEWAY_S,
        clock: Clock = time.time,
    ) -> None:
        if not issuer:
            raise ValueError("issuer is required")
        self.issuer = issuer
        self.audiences = frozenset([audience] if isinstance(audience, str) else audience)
        if not self.audiences or not all(self.audiences):
            raise ValueError("audience is required")
        self.keys = jwks if isinstance(jwks, JwksCache) else JwksCache(jwks, clock=clock)
        self.leeway_s = leeway_s
        self._clock = clock

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or :class:`InvalidToken` with the reason."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("malformed token")
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        parts = token.split(".")
        if len(parts) != 3 or not all(parts[:2]):
            raise InvalidToken("malformed token")
        header = _b64url_json(parts[0])
        if not isinstance(header, dict):
            raise InvalidToken("malformed token")
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("unsupported algorithm")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("malformed token")

        key = self.keys.key_for(kid)
        try:
            signed = jws.deserialize_compact(token, key, algorithms=[ALGORITHM])
        except BadSignatureError as exc:
            raise InvalidToken("bad signature") from exc
        except JoseError as exc:
            raise InvalidToken("malformed token") from exc
        try:
            claims = json.loads(signed.payload)
        except ValueError as exc:
            raise InvalidToken("malformed token") from exc
        if not isinstance(claims, dict):
            raise InvalidToken("malformed token")
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        if claims.get("iss") != self.issuer:
            raise InvalidToken("wrong issuer")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(a, str) and a in self.audiences for a in audiences):
            raise InvalidToken("wrong audience")
        azp = claims.get("azp")
        if (azp is not None or len(audiences) > 1) and azp not in self.audiences:
            raise InvalidToken("wrong authorized party")
        now = self._clock()
        exp = _number(claims, "exp")
        if exp is None:
            raise InvalidToken("missing exp claim")
        if now >= exp + self.leeway_s:
            raise InvalidToken("token expired")
        nbf = _number(claims, "nbf")
        if nbf is not None and now + self.leeway_s < nbf:
            raise InvalidToken("token not yet valid")
        iat = _number(claims, "iat")
        if iat is not None and now + self.leeway_s < iat:
            raise InvalidToken("token issued in the future")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.strip():
            raise InvalidToken("missing subject")
