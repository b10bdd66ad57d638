"""CDK: the forms' export pipeline (issue 6): private exports bucket, job queue, exports function."""

from __future__ import annotations

import json

from tests.infra.conftest import Synth


def test_exports_bucket_is_private_encrypted_and_expiring(synth: Synth) -> None:
    _, bucket = synth.only("AWS::S3::Bucket", "FormsExports")
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    encryption = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert (rule["Prefix"], rule["ExpirationInDays"]) == ("exports/", 7)
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "exports/"


def test_exports_function_consumes_the_job_queue_one_at_a_time(synth: Synth) -> None:
    function_id, function = synth.only("AWS::Lambda::Function", "FormsExporter")
    assert function["Properties"]["Handler"] == "exports.handler.handler"
    assert set(function["Properties"]["Environment"]["Variables"]) >= {"TABLE_NAME", "EXPORTS_BUCKET"}
    (mapping,) = [
        m
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert mapping["Properties"]["BatchSize"] == 1
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue_id = mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
    queue = synth.template_json["Resources"][queue_id]["Properties"]
    assert "RedrivePolicy" in queue and "KmsMasterKeyId" in queue
    assert queue["VisibilityTimeout"] == 6 * function["Properties"]["Timeout"]


def test_the_api_may_queue_exports_and_presign_their_download(synth: Synth) -> None:
    _, api = synth.only("AWS::Lambda::Function", "ApiHandler")
    variables = api["Properties"]["Environment"]["Variables"]
    assert {"EXPORTS_BUCKET", "EXPORTS_QUEUE_URL"} <= set(variables)
    policies = [p for k, p in synth.resources("AWS::IAM::Policy").items() if k.startswith("ApiHandlerRole")]
    text = json.dumps(policies)
    assert "sqs:SendMessage" in text
    assert '"FormsExports' in text and "/exports/*" in text
