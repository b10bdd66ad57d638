"""Environments (dev / staging / prod presets), retention and removal policies, backups.

One extra synth: ``prod`` in ``cn-north-1`` (where the district deploys). The dev preset's
DESTROY policy is checked on a small stack with the same aspect.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3

from infra.constructs import REPO_ROOT
from infra.environments import (
    DATA_RESOURCE_TYPES,
    ENVIRONMENTS,
    MIN_AUDIT_RETENTION_DAYS,
    RemovalPolicies,
    environment_context,
)
from tests.infra.conftest import CHINA_REGION, OIDC_CONTEXT, SKIP_BUNDLING, Synth

RETENTION_KEYS = (
    "archive_expiry_days",
    "log_retention_days",
    "inbox_ttl_days",
    "audit_retention_days",
    "uploads_expiry_days",
    "access_log_expiry_days",
)


@pytest.fixture(scope="module")
def prod_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    from infra.app import build_app

    outdir = tmp_path_factory.mktemp("prod")
    app = build_app(
        {**SKIP_BUNDLING, **OIDC_CONTEXT, "region": CHINA_REGION, "env": "prod"}, outdir=str(outdir)
    )
    (stack,) = app.synth().stacks
    return Synth(CHINA_REGION, outdir, stack.stack_name, [])


def test_given_no_env_when_building_then_there_is_no_preset_and_unknown_names_are_refused() -> None:
    assert environment_context(None) == {} and environment_context("") == {}
    assert environment_context("prod")["env"] == "prod"
    with pytest.raises(ValueError, match="not one of"):
        environment_context("production")


def test_given_the_presets_then_prod_and_staging_retain_and_audit_is_kept_three_years() -> None:
    assert set(ENVIRONMENTS) == {"dev", "staging", "prod"}
    for name, preset in ENVIRONMENTS.items():
        assert preset["stack_name"] == f"SmartZone-{name}"
        assert preset["audit_retention_days"] >= MIN_AUDIT_RETENTION_DAYS
        assert preset["archive_expiry_days"] > 180
    assert ENVIRONMENTS["prod"]["removal_policy"] == ENVIRONMENTS["staging"]["removal_policy"] == "retain"
    assert ENVIRONMENTS["dev"]["removal_policy"] == "destroy"
    assert ENVIRONMENTS["prod"]["log_retention_days"] >= 180  # Cybersecurity Law: ≥ 6 months


def test_given_the_retention_table_in_the_docs_then_it_matches_the_presets() -> None:
    text = (REPO_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for key in RETENTION_KEYS:
        (row,) = [line for line in text.splitlines() if line.startswith("|") and f"`{key}`" in line]
        cells = [c.strip() for c in row.strip("|").split("|")]
        documented = [int(c) for c in cells[2:5]]
        assert documented == [ENVIRONMENTS[e][key] for e in ("dev", "staging", "prod")], key


def test_given_prod_when_synthesized_then_data_is_retained_and_retention_follows_the_preset(
    prod_synth: Synth,
) -> None:
    prod = ENVIRONMENTS["prod"]
    assert prod_synth.stack_name == "SmartZone-prod"
    resources = prod_synth.template_json["Resources"]
    data = {k: v for k, v in resources.items() if v["Type"] in DATA_RESOURCE_TYPES}
    assert {v["Type"] for v in data.values()} >= {
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::Logs::LogGroup",
    }
    for logical_id, resource in data.items():
        assert resource.get("DeletionPolicy") == "Retain", logical_id
    for table in prod_synth.resources("AWS::DynamoDB::Table").values():
        assert table["Properties"]["DeletionProtectionEnabled"] is True
        assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    for logical_id, group in prod_synth.resources("AWS::Logs::LogGroup").items():
        assert group["Properties"]["RetentionInDays"] == prod["log_retention_days"], logical_id

    _, archive = prod_synth.only("AWS::S3::Bucket", "StorageArchive")
    (rule,) = archive["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == prod["archive_expiry_days"]
    _, outbox = prod_synth.only("AWS::Lambda::Function", "NotificationsOutbox")
    assert outbox["Properties"]["Environment"]["Variables"]["INBOX_TTL_DAYS"] == str(prod["inbox_ttl_days"])


def test_given_prod_when_synthesized_then_alarms_carry_its_name_and_thresholds(prod_synth: Synth) -> None:
    by_name = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in prod_synth.resources("AWS::CloudWatch::Alarm").values()
    }
    assert all(name.startswith("SmartZone-prod-") for name in by_name)
    assert (
        by_name["SmartZone-prod-ApiLatencyP99-Api-RestApi"]["Threshold"]
        == ENVIRONMENTS["prod"]["alarm_api_p99_ms"]
    )
    assert by_name["SmartZone-prod-Api5xx-Api-RestApi"]["Threshold"] == ENVIRONMENTS["prod"]["alarm_api_5xx"]
    assert "SmartZone-prod-FunctionErrors-Identity-TokenAuthorizer" in by_name  # the China TOKEN authorizer
    assert not any("FleetReportingAnomaly" in name for name in by_name)  # off in aws-cn
    _, dashboard = prod_synth.only("AWS::CloudWatch::Dashboard")
    assert dashboard["Properties"]["DashboardName"] == "SmartZone-prod-operations"


def test_given_every_table_of_the_default_stack_then_point_in_time_recovery_is_on(synth: Synth) -> None:
    tables = synth.resources("AWS::DynamoDB::Table")
    assert tables
    for logical_id, table in tables.items():
        spec = table["Properties"].get("PointInTimeRecoverySpecification") or {}
        assert spec.get("PointInTimeRecoveryEnabled") is True, logical_id
        assert table.get("DeletionPolicy") == "Retain", logical_id


def test_given_the_dev_policy_when_applied_then_data_resources_may_be_destroyed(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "DevLike")
    dynamodb.Table(
        stack,
        "Table",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        deletion_protection=True,
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )
    s3.Bucket(stack, "Bucket", removal_policy=cdk.RemovalPolicy.RETAIN)
    kms.Key(stack, "Key", removal_policy=cdk.RemovalPolicy.RETAIN)
    logs.LogGroup(stack, "Logs", removal_policy=cdk.RemovalPolicy.RETAIN)
    cdk.Aspects.of(stack).add(RemovalPolicies(cdk.RemovalPolicy.DESTROY))

    template: dict[str, Any] = json.loads((Path(app.synth().directory) / "DevLike.template.json").read_text())

    kinds = {r["Type"]: r for r in template["Resources"].values()}
    for kind in ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Logs::LogGroup"):
        assert kinds[kind]["DeletionPolicy"] == "Delete", kind
    assert kinds["AWS::DynamoDB::Table"]["Properties"]["DeletionProtectionEnabled"] is False


def test_given_the_makefile_then_each_environment_has_one_synth_and_one_deploy_command() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^synth:.*\n\t.*infra/app.py \$\(ENV_CONTEXT\)", makefile, re.M)
    assert re.search(r"^deploy:.*\n(\t.*\n)*\tnpx cdk deploy \$\(ENV_CONTEXT\)", makefile, re.M)
    assert "-c env=$(ENV)" in makefile
