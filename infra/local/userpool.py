"""A Cognito user pool in emulated AWS (moto) that issues real signed ID tokens.

Mirrors the identity the stack defines for global regions: groups ``admin``, ``dispatcher``,
``grid_worker`` and ``technician``; a ``custom:grid_id`` attribute that the app client may read but
not write; an app client allowed the admin password flow. Tokens come from ``AdminInitiateAuth``
(``ADMIN_USER_PASSWORD_AUTH``), signed by moto with its static RSA key; :meth:`LocalUserPool.jwks`
returns the matching public JWKS (shipped inside moto, as served at
``/<pool id>/.well-known/jwks.json``), so tokens can be verified in-process with no HTTP.

AWS China has no Cognito user pools (and moto has no Cognito backend for ``cn-*`` regions), so the
pool lives in a global region (``us-east-1`` unless told otherwise); in the China shape the same
pool stands in for the district's OIDC provider behind the TOKEN authorizer.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import boto3

from smartzone.domain.identity import Role

DEFAULT_REGION = "us-east-1"
GROUPS: tuple[str, ...] = tuple(role.value for role in Role)
GRID_ATTRIBUTE = "custom:grid_id"
DEFAULT_PASSWORD = "Local-Passw0rd!"
_READABLE = ["email", "name", "phone_number", GRID_ATTRIBUTE]
_WRITABLE = ["email", "name", "phone_number"]  # not custom:grid_id: only administrators set it


@cache
def moto_public_jwks() -> dict[str, Any]:
    """The public JWKS matching the key moto signs every Cognito token with."""
    package = resources.files("moto") / "cognitoidp" / "resources"
    gz = package / "jwks-public.json.gz"
    if gz.is_file():
        document: dict[str, Any] = json.loads(gzip.decompress(gz.read_bytes()))
    else:
        document = json.loads((package / "jwks-public.json").read_text(encoding="utf-8"))
    return document


@dataclass(frozen=True)
class PoolUser:
    username: str
    groups: tuple[str, ...]
    grid_id: str | None = None
    password: str = DEFAULT_PASSWORD


@dataclass
class LocalUserPool:
    """``LocalUserPool.create()`` inside ``mock_aws()``; then ``add_user`` and ``id_token``."""

    pool_id: str
    client_id: str
    region: str
    users: dict[str, PoolUser] = field(default_factory=dict)

    @classmethod
    def create(cls, name: str = "smartzone-users", *, region: str = DEFAULT_REGION) -> LocalUserPool:
        idp = _idp(region)
        pool = idp.create_user_pool(
            PoolName=name,
            Schema=[
                {
                    "Name": GRID_ATTRIBUTE.removeprefix("custom:"),
                    "AttributeDataType": "String",
                    "Mutable": True,
                    "StringAttributeConstraints": {"MinLength": "1", "MaxLength": "64"},
                }
            ],
            Policies={"PasswordPolicy": {"MinimumLength": 8}},
            AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
        )["UserPool"]
        pool_id = pool["Id"]
        for group in GROUPS:
            idp.create_group(UserPoolId=pool_id, GroupName=group)
        client_id = cls._create_client(idp, pool_id, "smartzone-app")
        return cls(pool_id=pool_id, client_id=client_id, region=region)

    @staticmethod
    def _create_client(idp: Any, pool_id: str, name: str) -> str:
        app_client = idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=name,
            GenerateSecret=False,
            ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            ReadAttributes=_READABLE,
            WriteAttributes=_WRITABLE,
        )["UserPoolClient"]
        client_id: str = app_client["ClientId"]
        return client_id

    def add_client(self, name: str) -> str:
        """Another app client of the same pool (its tokens carry another ``aud``)."""
        return self._create_client(_idp(self.region), self.pool_id, name)

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"

    def jwks(self) -> dict[str, Any]:
        """The pool's published keys (moto's static public JWKS)."""
        return moto_public_jwks()

    def add_user(
        self,
        username: str,
        groups: Iterable[str],
        *,
        grid_id: str | None = None,
        email: str | None = None,
        password: str = DEFAULT_PASSWORD,
    ) -> PoolUser:
        idp = _idp(self.region)
        attributes = [{"Name": "email", "Value": email or f"{username}@smartzone.local"}]
        if grid_id:
            attributes.append({"Name": GRID_ATTRIBUTE, "Value": grid_id})
        idp.admin_create_user(
            UserPoolId=self.pool_id,
            Username=username,
            UserAttributes=attributes,
            MessageAction="SUPPRESS",
        )
        idp.admin_set_user_password(
            UserPoolId=self.pool_id, Username=username, Password=password, Permanent=True
        )
        names = tuple(groups)
        for group in names:
            idp.admin_add_user_to_group(UserPoolId=self.pool_id, Username=username, GroupName=group)
        user = PoolUser(username=username, groups=names, grid_id=grid_id, password=password)
        self.users[username] = user
        return user

    def tokens(self, username: str, *, client_id: str | None = None) -> Mapping[str, Any]:
        """``AuthenticationResult`` of ``AdminInitiateAuth`` (IdToken, AccessToken, …)."""
        user = self.users[username]
        result = _idp(self.region).admin_initiate_auth(
            UserPoolId=self.pool_id,
            ClientId=client_id or self.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": user.password},
        )
        auth: Mapping[str, Any] = result["AuthenticationResult"]
        return auth

    def id_token(self, username: str, *, client_id: str | None = None) -> str:
        return str(self.tokens(username, client_id=client_id)["IdToken"])


def _idp(region: str) -> Any:
    return boto3.client("cognito-idp", region_name=region)
