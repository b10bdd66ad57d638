"""The factory every SmartZone Lambda goes through.

Each function gets: its own IAM role (no managed policies; the caller adds least-privilege
grants), its own log group with a retention, JSON logs with Lambda's log-level controls matched
to Powertools' ``LOG_LEVEL``, python3.14 on arm64, the shared and dependency layers, and X-Ray
tracing only where the partition offers it (not in ``aws-cn``).

Code: the asset root is ``functions/`` (so that ``telemetry.handler.handler`` resolves and the
handler's relative imports work), filtered to the function's own package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs import REPO_ROOT
from infra.nag import acknowledge

FUNCTIONS_DIR = REPO_ROOT / "functions"
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
SERVICE_NAME = "smartzone"
METRICS_NAMESPACE = "SmartZone"

_APPLICATION_LOG_LEVELS = {
    "DEBUG": lambda_.ApplicationLogLevel.DEBUG,
    "INFO": lambda_.ApplicationLogLevel.INFO,
    "WARNING": lambda_.ApplicationLogLevel.WARN,
    "WARN": lambda_.ApplicationLogLevel.WARN,
    "ERROR": lambda_.ApplicationLogLevel.ERROR,
}


def function_code(package: str) -> lambda_.Code:
    """The ``functions/`` folder, reduced to one function's package (no caches, no siblings)."""
    if not (FUNCTIONS_DIR / package / "handler.py").is_file():
        raise FileNotFoundError(f"functions/{package}/handler.py is missing")
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        # Glob ignore rules, last match wins: drop everything, take the package back, then drop
        # byte-code caches inside it.
        exclude=["*", f"!{package}", f"!{package}/**", "**/__pycache__", "**/*.pyc"],
    )


@dataclass(frozen=True)
class FunctionSettings:
    """What every function of one deployment shares."""

    tracing: bool
    """X-Ray active tracing (only where the partition has X-Ray for Lambda)."""
    log_retention: logs.RetentionDays
    log_level: str = "INFO"
    layers: Sequence[lambda_.ILayerVersion] = field(default_factory=tuple)


class SmartZoneFunction(Construct):
    """One Lambda function with its own role and log group.

    ``package`` names the folder under ``functions/``; its handler is ``<package>.handler.handler``.
    ``environment`` holds only the variables this function needs (the common Powertools ones are
    added here). ``wildcard_resource_reasons`` explains any action the caller will grant on
    ``"*"`` (actions without resource-level permissions); they are acknowledged together with
    X-Ray's, as one ``AwsSolutions-IAM5[Resource::*]`` acknowledgment on the role.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        package: str,
        description: str,
        settings: FunctionSettings,
        environment: Mapping[str, str],
        timeout: cdk.Duration,
        memory_size: int = 256,
        wildcard_resource_reasons: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        level = settings.log_level.upper()
        if level not in _APPLICATION_LOG_LEVELS:
            raise ValueError(
                f"log level {settings.log_level!r} is not one of {sorted(_APPLICATION_LOG_LEVELS)}"
            )

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=settings.log_retention,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"SmartZone {package} function: its own least-privilege role",
        )
        # Instead of the AWSLambdaBasicExecutionRole managed policy: write to its own log group only.
        self.log_group.grant_write(self.role)

        env = {
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "LOG_LEVEL": level,
            **environment,
        }
        if not settings.tracing:
            env["POWERTOOLS_TRACE_DISABLED"] = "true"

        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"{package}.handler.handler",
            code=function_code(package),
            layers=list(settings.layers),
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=_APPLICATION_LOG_LEVELS[level],
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            tracing=lambda_.Tracing.ACTIVE if settings.tracing else None,
            environment=env,
            timeout=timeout,
            memory_size=memory_size,
        )
        # CDK makes the function depend on its role and on the role's policy; the role dependency
        # is implied by the Role GetAtt (cfn-lint W3005). Scoped to this resource, with this reason.
        cfn_function = self.function.node.default_child
        assert isinstance(cfn_function, cdk.CfnResource)
        cfn_function.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})

        reasons = list(wildcard_resource_reasons)
        if settings.tracing:
            reasons.append(
                "xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing) do not support "
                "resource-level permissions"
            )
        if reasons:
            acknowledge(
                self.role,
                "AwsSolutions-IAM5[Resource::*]",
                "; ".join(reasons) + ". These are the only actions granted on '*'.",
            )
