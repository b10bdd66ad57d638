"""Who may call the API: one construct that hides the partition difference (DESIGN.md, "Where it runs").

- **Global regions**: a Cognito user pool (admin-created users only; groups ``admin``,
  ``dispatcher``, ``grid_worker``, ``technician``; a ``custom:grid_id`` attribute that only
  administrators set, never the app client), one public app client (no secret, SRP sign-in,
  ID tokens) and a ``CognitoUserPoolsAuthorizer`` that validates the ID token in the
  ``Authorization`` header.
- **AWS China** (no Cognito user pools): a Lambda TOKEN authorizer (``functions/authorizer``)
  that verifies the district's OIDC ID tokens against the configured issuer, JWKS URL and
  audience, and passes the same claims as the authorizer context.

Either way the API construct reads only :attr:`Identity.authorizer` and
:attr:`Identity.authorization_type`. The caller's grid is looked up in the registry by the
handlers, never taken from the token, so ``custom:grid_id`` is informational.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.constructs.functions import FunctionSettings, SmartZoneFunction
from infra.nag import acknowledge
from smartzone.domain.identity import Role

IDENTITY_SOURCE = "method.request.header.Authorization"
AUTHORIZATION_HEADER = "Authorization"
TOKEN_PATTERN = r"^(Bearer )?[-0-9A-Za-z_=]+\.[-0-9A-Za-z_=]+\.[-0-9A-Za-z_=]+$"
"""A compact JWS, optionally after ``Bearer``: anything else gets 401 without invoking the authorizer."""
AUTHORIZER_TIMEOUT = cdk.Duration.seconds(10)
GRID_ID_ATTRIBUTE = "grid_id"
"""The custom attribute (``custom:grid_id`` in tokens): written by administrators only."""
GROUP_DESCRIPTIONS = {
    Role.ADMIN: "Administrators: registry, users, every order",
    Role.DISPATCHER: "Command centre: every order, reassignment, escalation",
    Role.GRID_WORKER: "Grid workers: their grid's orders and devices",
    Role.TECHNICIAN: "Technicians: orders assigned to them",
    Role.DEPARTMENT: "City departments: their forms, catalogue resources and approved data",
    Role.DATA_STEWARD: "Population data stewards: merge review queue and decisions",
}


class IdentityConfigError(ValueError):
    """A setting identity needs in this partition is missing or malformed (the synth stops)."""


@dataclass(frozen=True)
class IdentitySettings:
    """What identity needs from CDK context (the OIDC values only in ``aws-cn``)."""

    use_cognito: bool
    """True where Cognito user pools exist (global regions); False in ``aws-cn``."""
    cache_ttl_s: int = 300
    """How long API Gateway caches an authorizer's answer for one token, in seconds."""
    oidc_issuer: str = ""
    oidc_jwks_url: str = ""
    oidc_audience: str = ""

    def validate(self) -> None:
        if self.use_cognito:
            return
        missing = [
            name
            for name in ("oidc_issuer", "oidc_jwks_url", "oidc_audience")
            if not getattr(self, name).strip()
        ]
        if missing:
            raise IdentityConfigError(
                "AWS China has no Cognito user pools: the API's TOKEN authorizer verifies the "
                "district's OIDC tokens and needs CDK context "
                + ", ".join(missing)
                + " (e.g. -c oidc_issuer=https://idp.example.cn -c "
                "oidc_jwks_url=https://idp.example.cn/.well-known/jwks.json -c oidc_audience=smartzone)"
            )
        for name in ("oidc_issuer", "oidc_jwks_url"):
            if not getattr(self, name).startswith("https://"):
                raise IdentityConfigError(
                    f"context {name} must be an https:// URL, got {getattr(self, name)!r}"
                )


class Identity(Construct):
    """``authorizer`` and ``authorization_type`` for the API's protected methods.

    Global: ``user_pool`` and ``client`` are set, ``function`` is None. China: ``function`` (the
    TOKEN authorizer) is set, ``user_pool`` and ``client`` are None.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: IdentitySettings,
        functions: FunctionSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        settings.validate()
        self.user_pool: cognito.UserPool | None = None
        self.client: cognito.UserPoolClient | None = None
        self.function: SmartZoneFunction | None = None
        self.authorizer: apigateway.IAuthorizer
        self.authorization_type: apigateway.AuthorizationType
        if settings.use_cognito:
            self.mode = "cognito"
            self._cognito(settings)
        else:
            self.mode = "oidc-token"
            self._token_authorizer(settings, functions)

    def _cognito(self, settings: IdentitySettings) -> None:
        pool = cognito.UserPool(
            self,
            "UserPool",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True, email=True),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            keep_original=cognito.KeepOriginalAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True),
            ),
            custom_attributes={
                GRID_ID_ATTRIBUTE: cognito.StringAttribute(min_len=1, max_len=64, mutable=True),
            },
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=cdk.Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            deletion_protection=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(
            pool,
            "AwsSolutions-COG2",
            "MFA is optional (TOTP only, no SMS): grid workers sign in on shared field phones without "
            "a second device; administrators and dispatchers are asked to enrol TOTP, and accounts "
            "are created by administrators only (no self sign-up).",
        )
        acknowledge(
            pool,
            "AwsSolutions-COG8",
            "The Essentials feature plan: threat protection (Plus plan) is charged per active user; "
            "accounts are admin-created with no self sign-up, a 12-character password policy and "
            "optional TOTP. Switch feature_plan to PLUS when the district opts for risk-based sign-in.",
        )
        for precedence, (role, description) in enumerate(GROUP_DESCRIPTIONS.items()):
            cognito.UserPoolGroup(
                self,
                f"Group{role.value.title().replace('_', '')}",
                user_pool=pool,
                group_name=role.value,
                description=description,
                precedence=precedence,
            )
        client = pool.add_client(
            "AppClient",
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_srp=True),
            disable_o_auth=True,
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            id_token_validity=cdk.Duration.hours(1),
            access_token_validity=cdk.Duration.hours(1),
            refresh_token_validity=cdk.Duration.days(30),
            read_attributes=cognito.ClientAttributes()
            .with_standard_attributes(
                email=True, email_verified=True, fullname=True, phone_number=True, preferred_username=True
            )
            .with_custom_attributes(GRID_ID_ATTRIBUTE),
            # Users may edit their own contact details but never their grid.
            write_attributes=cognito.ClientAttributes().with_standard_attributes(
                email=True, fullname=True, phone_number=True, preferred_username=True
            ),
        )
        self.user_pool = pool
        self.client = client
        self.authorizer = apigateway.CognitoUserPoolsAuthorizer(
            self,
            "Authorizer",
            cognito_user_pools=[pool],
            identity_source=IDENTITY_SOURCE,
            results_cache_ttl=cdk.Duration.seconds(settings.cache_ttl_s),
        )
        self.authorization_type = apigateway.AuthorizationType.COGNITO

    def _token_authorizer(self, settings: IdentitySettings, functions: FunctionSettings) -> None:
        self.function = SmartZoneFunction(
            self,
            "TokenAuthorizer",
            package="authorizer",
            description="API TOKEN authorizer (aws-cn): verifies the district's OIDC ID tokens",
            settings=functions,
            timeout=AUTHORIZER_TIMEOUT,
            memory_size=256,
            environment={
                "OIDC_ISSUER": settings.oidc_issuer,
                "OIDC_JWKS_URL": settings.oidc_jwks_url,
                "OIDC_AUDIENCE": settings.oidc_audience,
            },
        )
        self.authorizer = apigateway.TokenAuthorizer(
            self,
            "Authorizer",
            handler=self.function.function,
            identity_source=IDENTITY_SOURCE,
            validation_regex=TOKEN_PATTERN,
            results_cache_ttl=cdk.Duration.seconds(settings.cache_ttl_s),
        )
        self.authorization_type = apigateway.AuthorizationType.CUSTOM
