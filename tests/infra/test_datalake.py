"""The data lake in the synthesized stack: bucket, ingest function and rules, Glue, Athena, grants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match

from infra.constructs.datalake import DATALAKE_LAYER_DIR, DATALAKE_LAYER_PLATFORM, glue_name
from infra.constructs.functions import RUNTIME
from infra.constructs.layers import PipLayerBundler
from tests.infra.conftest import Synth


def _statements(synth: Synth, role_prefix: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for logical_id, policy in synth.resources("AWS::IAM::Policy").items():
        if logical_id.startswith(role_prefix):
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_given_the_stack_then_the_data_lake_bucket_is_private_encrypted_versioned_and_notifies_eventbridge(
    synth: Synth,
) -> None:
    _, bucket = synth.only("AWS::S3::Bucket", "DataLakeBucket")
    props = bucket["Properties"]
    assert props["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms" and rule["BucketKeyEnabled"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "datalake/"
    expiring = {
        r["Prefix"]: r["ExpirationInDays"] for r in props["LifecycleConfiguration"]["Rules"] if "Prefix" in r
    }
    assert expiring == {"processed/": 90, "rejects/": 365, "reports/": 365}


def test_given_the_stack_then_glue_and_an_enforced_encrypted_athena_workgroup_exist(synth: Synth) -> None:
    synth.template.has_resource_properties(
        "AWS::Glue::Database", {"DatabaseInput": {"Name": glue_name("SmartZone")}}
    )
    synth.template.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "WorkGroupConfiguration": {
                "EnforceWorkGroupConfiguration": True,
                "BytesScannedCutoffPerQuery": 10 * 1024**3,
                "EngineVersion": {"SelectedEngineVersion": "Athena engine version 3"},
                "ResultConfiguration": {
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": Match.any_value()},
                    "OutputLocation": Match.any_value(),
                },
            }
        },
    )


def test_given_the_stack_then_dropped_files_and_a_daily_schedule_invoke_the_ingest_function(
    global_synth: Synth,
) -> None:
    function_id, function = global_synth.only("AWS::Lambda::Function", "DataLakeIngest")
    props = function["Properties"]
    assert props["Handler"] == "datalake.handler.handler" and props["MemorySize"] == 2048
    assert props["EphemeralStorage"] == {"Size": 4096} and props["Timeout"] == 900
    layer_id, _ = global_synth.only("AWS::Lambda::LayerVersion", "DataLakeLayer")
    assert {"Ref": layer_id} in props["Layers"]

    rules = global_synth.resources("AWS::Events::Rule")
    dropped = next(r["Properties"] for k, r in rules.items() if k.startswith("DataLakeDropped"))
    assert dropped["EventPattern"]["detail"]["object"] == {"key": [{"prefix": "incoming/"}]}
    assert dropped["EventPattern"]["detail-type"] == ["Object Created"]
    (target,) = dropped["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]} and "DeadLetterConfig" in target
    schedule = next(r["Properties"] for k, r in rules.items() if k.startswith("DataLakeStaleCheck"))
    assert schedule["ScheduleExpression"] == "cron(0 1 * * ? *)"
    global_synth.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"MaximumRetryAttempts": 2, "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}}},
    )


def test_given_the_stack_then_ingest_and_api_get_only_the_data_lake_grants_they_use(
    global_synth: Synth,
) -> None:
    ingest = _statements(global_synth, "DataLakeIngestRole")
    ingest_actions = {a for s in ingest for a in _actions(s)}
    assert {
        "glue:CreateTable",
        "glue:UpdateTable",
        "s3:GetObject",
        "s3:PutObject",
        "dynamodb:UpdateItem",
    } <= ingest_actions
    assert not any(a.endswith("*") for a in ingest_actions if not a.startswith(("xray:", "logs:")))
    assert "athena:StartQueryExecution" not in ingest_actions

    api = _statements(global_synth, "ApiHandlerRole")
    athena = [s for s in api if "athena:StartQueryExecution" in _actions(s)]
    assert len(athena) == 1 and "workgroup/SmartZone-datalake" in str(athena[0]["Resource"])

    _, api_function = global_synth.only("AWS::Lambda::Function", "ApiHandler")
    env = api_function["Properties"]["Environment"]["Variables"]
    assert env["QUERY_ENGINE"] == "athena" and env["GLUE_DATABASE"] == glue_name("SmartZone")
    assert env["ATHENA_WORKGROUP"] == "SmartZone-datalake" and "DATALAKE_BUCKET" in env


def test_given_the_data_lake_layer_then_it_is_built_for_the_platform_with_duckdb_wheels(
    tmp_path: Path,
) -> None:
    bundler = PipLayerBundler(
        DATALAKE_LAYER_DIR / "requirements.txt", RUNTIME, platform=DATALAKE_LAYER_PLATFORM
    )
    command = bundler.command(tmp_path)
    assert command[command.index("--platform") + 1] == "manylinux_2_28_aarch64"
    requirements = (DATALAKE_LAYER_DIR / "requirements.txt").read_text(encoding="utf-8")
    assert "duckdb" in requirements and "sqlglot" in requirements
