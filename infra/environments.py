"""Deployment environments: ``dev``, ``staging`` and ``prod`` as presets of CDK context.

``-c env=prod`` (or ``make synth ENV=prod``) selects a preset; any ``-c key=value`` given too wins
over the preset, and the preset wins over nothing. Without ``env`` the app behaves as before
(stack ``SmartZone``, the stack's own defaults): the local platform and the tests use that.

Each preset names its stack (so the three can live in one account and region side by side),
its retention periods, its alarm thresholds and its removal policy: ``prod`` and ``staging``
RETAIN tables, buckets, keys, user pools and log groups when the stack (or the resource) is
deleted; ``dev`` may DESTROY them (:class:`RemovalPolicies`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
import jsii
from constructs import IConstruct

ENV_CONTEXT_KEY = "env"
REMOVAL_POLICIES = ("retain", "destroy")
MIN_AUDIT_RETENTION_DAYS = 1096
"""The audit log is kept at least three years (issue 9, point 5)."""

ENVIRONMENTS: Mapping[str, Mapping[str, Any]] = {
    "dev": {
        "stack_name": "SmartZone-dev",
        "removal_policy": "destroy",
        "log_retention_days": 30,
        "log_level": "DEBUG",
        "archive_expiry_days": 365,
        "access_log_expiry_days": 90,
        "uploads_expiry_days": 90,
        "inbox_ttl_days": 30,
        "audit_retention_days": 1096,
        "alarm_api_5xx": 20,
        "alarm_api_p99_ms": 5000,
        "alarm_buffer_age_s": 900,
        "alarm_iterator_age_s": 900,
        "fleet_expected_readings_per_min": 0,
    },
    "staging": {
        "stack_name": "SmartZone-staging",
        "removal_policy": "retain",
        "log_retention_days": 180,
        "archive_expiry_days": 731,
        "access_log_expiry_days": 180,
        "uploads_expiry_days": 365,
        "inbox_ttl_days": 90,
        "audit_retention_days": 1096,
        "alarm_api_5xx": 10,
        "alarm_api_p99_ms": 3000,
        "alarm_buffer_age_s": 600,
        "alarm_iterator_age_s": 600,
        "fleet_expected_readings_per_min": 4,
    },
    "prod": {
        "stack_name": "SmartZone-prod",
        "removal_policy": "retain",
        "log_retention_days": 1096,
        "archive_expiry_days": 1096,
        "access_log_expiry_days": 365,
        "uploads_expiry_days": 731,
        "inbox_ttl_days": 180,
        "audit_retention_days": 1096,
        "alarm_api_5xx": 5,
        "alarm_api_p99_ms": 2000,
        "alarm_buffer_age_s": 300,
        "alarm_iterator_age_s": 300,
        "fleet_expected_readings_per_min": 40,
    },
}
"""Context values per environment (keys of ``StackConfig`` and ``MonitoringSettings``)."""


def environment_context(env: str | None) -> dict[str, Any]:
    """The preset of ``env`` (empty for no environment); an unknown name is an error."""
    if env is None or env == "":
        return {}
    if env not in ENVIRONMENTS:
        raise ValueError(f"context env={env!r} is not one of {sorted(ENVIRONMENTS)}")
    preset = dict(ENVIRONMENTS[env])
    preset[ENV_CONTEXT_KEY] = env
    return preset


def removal_policy_of(name: str) -> cdk.RemovalPolicy:
    if name not in REMOVAL_POLICIES:
        raise ValueError(f"removal_policy={name!r} is not one of {REMOVAL_POLICIES}")
    return cdk.RemovalPolicy.DESTROY if name == "destroy" else cdk.RemovalPolicy.RETAIN


DATA_RESOURCE_TYPES = frozenset(
    {
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::Logs::LogGroup",
        "AWS::Cognito::UserPool",
    }
)
"""What holds data: retained in ``prod`` and ``staging``, destroyable in ``dev``."""


@jsii.implements(cdk.IAspect)
class RemovalPolicies:
    """Applies one removal policy to every data-holding resource of a stack (also ones added later).

    DESTROY also turns the tables' and user pools' deletion protection off. A bucket that still holds objects
    cannot be deleted by CloudFormation: empty it first (``docs/operations.md``).
    """

    def __init__(self, policy: cdk.RemovalPolicy) -> None:
        self.policy = policy

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, cdk.CfnResource) or node.cfn_resource_type not in DATA_RESOURCE_TYPES:
            return
        node.apply_removal_policy(self.policy)
        if node.cfn_resource_type == "AWS::DynamoDB::Table":
            node.add_property_override("DeletionProtectionEnabled", self.policy != cdk.RemovalPolicy.DESTROY)
        if node.cfn_resource_type == "AWS::Cognito::UserPool":
            node.add_property_override(
                "DeletionProtection", "INACTIVE" if self.policy == cdk.RemovalPolicy.DESTROY else "ACTIVE"
            )
