"""Provisioning the template's resources into emulated AWS (moto, in-process)."""

from __future__ import annotations

import json

from infra.local.provision import Deployment, deploy
from infra.local.template import TemplateDescription
from smartzone.repositories.clients import client


def test_the_table_has_its_keys_indexes_and_stream(deployment: Deployment) -> None:
    (spec,) = deployment.description.tables.values()
    table = client("dynamodb").describe_table(TableName=deployment.ref(spec.logical_id))["Table"]
    assert table["KeySchema"] == [dict(k) for k in spec.key_schema]
    assert sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"]) == sorted(spec.index_names)
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert deployment.attribute(spec.logical_id, "StreamArn") == table["LatestStreamArn"]


def test_queues_exist_with_redrive_policies_to_their_dlqs(deployment: Deployment) -> None:
    sqs = client("sqs")
    for spec in deployment.description.queues.values():
        attributes = sqs.get_queue_attributes(
            QueueUrl=deployment.ref(spec.logical_id), AttributeNames=["All"]
        )["Attributes"]
        assert attributes["QueueArn"] == deployment.attribute(spec.logical_id, "Arn")
        assert attributes["VisibilityTimeout"] == str(spec.visibility_timeout_s)
        if spec.dlq_id is None:
            assert "RedrivePolicy" not in attributes
            continue
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == deployment.attribute(spec.dlq_id, "Arn")
        assert int(redrive["maxReceiveCount"]) == spec.max_receive_count


def test_topic_buckets_secret_and_delivery_stream_exist(deployment: Deployment) -> None:
    description = deployment.description
    topics = {t["TopicArn"] for t in client("sns").list_topics()["Topics"]}
    assert {deployment.ref(t) for t in description.topics} <= topics
    buckets = {b["Name"] for b in client("s3").list_buckets()["Buckets"]}
    assert {deployment.ref(b) for b in description.buckets} <= buckets
    for bucket in description.buckets.values():
        status = client("s3").get_bucket_versioning(Bucket=deployment.ref(bucket.logical_id)).get("Status")
        assert (status == "Enabled") is bucket.versioned
    for secret in description.secrets.values():
        value = client("secretsmanager").get_secret_value(SecretId=deployment.ref(secret.logical_id))
        generate = secret.generate or {}
        generated = value["SecretString"]
        if "GenerateStringKey" in generate:  # a JSON template with the generated value under that key
            generated = json.loads(generated)[generate["GenerateStringKey"]]
        assert len(generated) == int(generate.get("PasswordLength", 32))
    for stream in description.delivery_streams.values():
        found = client("firehose").describe_delivery_stream(
            DeliveryStreamName=deployment.ref(stream.logical_id)
        )
        destination = found["DeliveryStreamDescription"]["Destinations"][0]
        assert deployment.ref(stream.bucket_id) in json.dumps(destination, default=str)


def test_functions_schedules_and_rules_get_local_names_and_arns(deployment: Deployment) -> None:
    description = deployment.description
    for logical_id in [
        *description.functions,
        *description.schedules,
        *description.topic_rules,
        *description.api_keys,
    ]:
        assert deployment.ref(logical_id)
        assert deployment.attribute(logical_id, "Arn").startswith(f"arn:{deployment.resolver.partition}:")


def test_provisioning_again_reuses_the_same_resources(
    deployment: Deployment, description: TemplateDescription
) -> None:
    client("sqs").send_message(QueueUrl=deployment.ref(next(iter(description.queues))), MessageBody="kept")
    again = deploy(description)
    assert {k: v.ref for k, v in again.physical.items()} == {k: v.ref for k, v in deployment.physical.items()}
    messages = client("sqs").receive_message(QueueUrl=again.ref(next(iter(description.queues))))
    assert [m["Body"] for m in messages["Messages"]] == ["kept"]
