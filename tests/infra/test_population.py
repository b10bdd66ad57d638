"""CDK assertions for the population construct (issue 7): the merge workflow on Step Functions
with two Distributed Maps, the protected resident data and the API's append-only audit rights."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import CHINA_REGION, Synth


def _definition(synth: Synth) -> str:
    _, machine = synth.only("AWS::StepFunctions::StateMachine", "PopulationMergeWorkflow")
    return json.dumps(machine["Properties"]["DefinitionString"])


def _statements(synth: Synth, role_fragment: str) -> list[dict[str, Any]]:
    found = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        roles = json.dumps(policy["Properties"].get("Roles", []))
        if role_fragment in roles:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_given_the_stack_then_the_merge_workflow_fans_out_with_two_distributed_maps(synth: Synth) -> None:
    """In both partitions: map 1 reads the mapping objects from S3 (one Lambda per source table),
    a Pass lists the 256 ID-key partitions, map 2 merges them, then the reduce step."""
    definition = _definition(synth)
    assert definition.count('\\"Mode\\":\\"DISTRIBUTED\\"') == 2
    assert "s3:listObjectsV2" in definition and '\\"Prefix\\":\\"config/sources/\\"' in definition
    assert "States.ArrayRange(0, 255, 1)" in definition
    for step in ("PartitionSource", "MergePartition", "ReduceRun"):
        assert step in definition
    _, machine = synth.only("AWS::StepFunctions::StateMachine", "PopulationMergeWorkflow")
    logging = machine["Properties"]["LoggingConfiguration"]
    assert logging["Level"] == "ALL" and logging["IncludeExecutionData"] is False
    tracing = machine["Properties"].get("TracingConfiguration", {}).get("Enabled", False)
    assert tracing is (synth.region != CHINA_REGION)


def test_given_the_stack_then_personal_data_has_its_own_rotated_key_and_a_generated_hmac_secret(
    synth: Synth,
) -> None:
    keys = synth.resources("AWS::KMS::Key")
    personal = [k for k in keys if "PopulationPersonalDataKey" in k]
    assert len(personal) == 1 and keys[personal[0]]["Properties"]["EnableKeyRotation"] is True
    _, secret = synth.only("AWS::SecretsManager::Secret", "PopulationIdHmacSecret")
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] == 64
    assert "KmsKeyId" in secret["Properties"]
    _, bucket = synth.only("AWS::S3::Bucket", "PopulationBucket")
    encryption = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-work"]["Prefix"] == "work/" and rules["expire-work"]["ExpirationInDays"] == 3


def test_given_the_api_function_then_it_finds_residents_by_hmac_and_may_not_change_audit_entries(
    synth: Synth,
) -> None:
    _, api = synth.only("AWS::Lambda::Function", "ApiHandlerFunction")
    env = api["Properties"]["Environment"]["Variables"]
    assert "ID_HMAC_SECRET_ARN" in env
    assert env["PERSONAL_DATA_KEY_ID"] == "alias/SmartZone-personal-data"
    denies = [s for s in _statements(synth, "ApiHandlerRole") if s.get("Effect") == "Deny"]
    assert any(
        set(s["Action"]) == {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
        and s["Condition"] == {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["AUDIT#*"]}}
        for s in denies
    )
    allowed = {
        a
        for s in _statements(synth, "ApiHandlerRole")
        if s.get("Effect") == "Allow"
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert "dynamodb:DeleteItem" not in allowed


def test_given_the_merge_steps_then_each_has_its_own_role_and_long_enough_limits(synth: Synth) -> None:
    for package, timeout in (
        ("population_partition", 900),
        ("population_merge", 900),
        ("population_reduce", 300),
    ):
        matches = [
            f
            for f in synth.resources("AWS::Lambda::Function").values()
            if f["Properties"]["Handler"] == f"{package}.handler.handler"
        ]
        assert len(matches) == 1
        props = matches[0]["Properties"]
        assert props["Timeout"] == timeout and props["EphemeralStorage"] == {"Size": 10240}
        env = props["Environment"]["Variables"]
        assert "POPULATION_BUCKET" in env
        assert ("PERSONAL_DATA_KEY_ID" in env) is (package != "population_reduce")
