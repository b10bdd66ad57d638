"""Creates the template's resources in emulated AWS (moto) and returns their local identities.

:func:`provision` takes a :class:`~infra.local.template.TemplateDescription` and creates, through
boto3 clients pointing at moto (a ``ThreadedMotoServer`` via ``AWS_ENDPOINT_URL``, or the
in-process ``mock_aws``):

- DynamoDB tables with their key schema, GSIs/LSIs, stream (view type) and TTL attribute;
- SQS queues (dead-letter queues first, then the queues whose redrive policy names them, with
  ``maxReceiveCount``: moto moves a message to the DLQ after that many receives), with their
  visibility timeout, retention and delay;
- SNS topics, S3 buckets (versioning), Secrets Manager secrets (``GenerateSecretString`` honoured),
  Firehose DirectPut delivery streams into their bucket.

API Gateway API keys are not created (the local gateway checks none) but get a local key id, so
that references to them (the API function's ``DEPARTMENT_API_KEYS``) resolve.

It returns ``logical id → Physical`` (``Ref`` value and ``Fn::GetAtt`` attributes), which
:meth:`TemplateDescription.resolver` turns into a resolver for the functions' environment. Functions,
schedules and topic rules are not created in moto (the platform runs them itself) but get local
names and ARNs, so references to them resolve too. Resources provisioned elsewhere (the Cognito
user pool of :mod:`infra.local.userpool`) are passed in ``extra``.

Physical names are deterministic (``<stack>-<logical id>``, shortened to each service's limit), so
a restarted platform finds the same resources; provisioning is idempotent (existing resources are
reused), which lets it run over a restored snapshot.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets as random_secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from infra.local.template import (
    DEFAULT_ACCOUNT_ID,
    Physical,
    Resolver,
    TemplateDescription,
    TemplateError,
    partition_of,
)

ClientFactory = Callable[[str], Any]
LOCAL_ROLE = "local-platform"
"""The role name in ARNs the emulator wants but does not check (e.g. Firehose's RoleARN)."""


def _default_clients(service: str) -> Any:
    from smartzone.repositories.clients import client

    return client(service)


def physical_name(stack_name: str, logical_id: str, limit: int, *, lower: bool = False) -> str:
    """``<stack>-<logical id>`` within ``limit`` characters (the logical id's hash suffix kept)."""
    name = f"{stack_name}-{logical_id}"
    if len(name) > limit:
        name = name[: limit - 9] + "-" + logical_id[-8:]
    name = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    return name.lower() if lower else name


@dataclass
class Deployment:
    """A provisioned template: its description, the physical values and their resolver."""

    description: TemplateDescription
    physical: dict[str, Physical]
    resolver: Resolver

    def environment(self, function_id: str) -> dict[str, str]:
        """The resolved environment variables of one function."""
        return self.description.functions[function_id].environment(self.resolver)

    def ref(self, logical_id: str) -> str:
        return self.resolver.ref(logical_id)

    def attribute(self, logical_id: str, name: str) -> str:
        return self.resolver.get_att(logical_id, name)


class _Provisioner:
    def __init__(
        self, description: TemplateDescription, clients: ClientFactory, region: str, account_id: str
    ) -> None:
        self.d = description
        self.clients = clients
        self.region = region
        self.account_id = account_id
        self.partition = partition_of(region)
        self.physical: dict[str, Physical] = {}
        self.stack = description.stack_name

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )

    def run(self) -> dict[str, Physical]:
        for spec in self.d.buckets.values():
            self.bucket(spec.logical_id, spec.bucket_name, spec.versioned)
        for table in self.d.tables.values():
            self.table(table.logical_id)
        self.queues()
        for topic in self.d.topics.values():
            self.topic(topic.logical_id)
        for secret in self.d.secrets.values():
            self.secret(secret.logical_id)
        for stream in self.d.delivery_streams.values():
            self.delivery_stream(stream.logical_id)
        self.virtual()
        return self.physical

    # -- S3 ----------------------------------------------------------------------------------

    def bucket(self, logical_id: str, explicit: str | None, versioned: bool) -> None:
        s3 = self.clients("s3")
        name = explicit or physical_name(self.stack, logical_id, 63, lower=True)
        kwargs: dict[str, Any] = {"Bucket": name}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(**kwargs)
        if versioned:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        suffix = "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"
        self.physical[logical_id] = Physical(
            name,
            {
                "Arn": f"arn:{self.partition}:s3:::{name}",
                "DomainName": f"{name}.s3.{suffix}",
                "RegionalDomainName": f"{name}.s3.{self.region}.{suffix}",
            },
        )

    # -- DynamoDB ----------------------------------------------------------------------------

    def table(self, logical_id: str) -> None:
        spec = self.d.tables[logical_id]
        ddb = self.clients("dynamodb")
        name = spec.table_name or physical_name(self.stack, logical_id, 255)
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": [dict(a) for a in spec.attribute_definitions],
            "KeySchema": [dict(k) for k in spec.key_schema],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if spec.global_secondary_indexes:
            kwargs["GlobalSecondaryIndexes"] = [
                {k: v for k, v in index.items() if k in {"IndexName", "KeySchema", "Projection"}}
                for index in spec.global_secondary_indexes
            ]
        if spec.local_secondary_indexes:
            kwargs["LocalSecondaryIndexes"] = [
                {k: v for k, v in index.items() if k in {"IndexName", "KeySchema", "Projection"}}
                for index in spec.local_secondary_indexes
            ]
        if spec.stream_view_type:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": spec.stream_view_type}
        try:
            table = ddb.create_table(**kwargs)["TableDescription"]
        except ddb.exceptions.ResourceInUseException:
            table = ddb.describe_table(TableName=name)["Table"]
        if spec.ttl_attribute:
            try:
                ddb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
                )
            except ddb.exceptions.ClientError as exc:  # already enabled on a reused table
                if "already enabled" not in str(exc).lower():
                    raise
        attributes = {"Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            attributes["StreamArn"] = table["LatestStreamArn"]
        self.physical[logical_id] = Physical(name, attributes)

    # -- SQS ---------------------------------------------------------------------------------

    def queues(self) -> None:
        pending = dict(self.d.queues)
        while pending:
            ready = [q for q in pending.values() if q.dlq_id is None or q.dlq_id in self.physical]
            if not ready:
                raise TemplateError(
                    f"queues whose dead-letter queue is not a queue of this stack: {sorted(pending)}"
                )
            for spec in ready:
                self.queue(spec.logical_id)
                del pending[spec.logical_id]

    def queue(self, logical_id: str) -> None:
        spec = self.d.queues[logical_id]
        sqs = self.clients("sqs")
        name = spec.queue_name or (
            physical_name(self.stack, logical_id, 75) + ".fifo"
            if spec.fifo
            else physical_name(self.stack, logical_id, 80)
        )
        attributes = {"VisibilityTimeout": str(spec.visibility_timeout_s)}
        if spec.retention_s is not None:
            attributes["MessageRetentionPeriod"] = str(spec.retention_s)
        if spec.delay_s is not None:
            attributes["DelaySeconds"] = str(spec.delay_s)
        if spec.fifo:
            attributes["FifoQueue"] = "true"
        if spec.dlq_id is not None:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": self.physical[spec.dlq_id].attributes["Arn"],
                    "maxReceiveCount": spec.max_receive_count or 10,
                }
            )
        url = sqs.create_queue(QueueName=name, Attributes=attributes, tags=dict(spec.tags))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.physical[logical_id] = Physical(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    # -- SNS, Secrets Manager, Firehose ------------------------------------------------------

    def topic(self, logical_id: str) -> None:
        spec = self.d.topics[logical_id]
        name = spec.topic_name or physical_name(self.stack, logical_id, 251 if spec.fifo else 256)
        attributes: dict[str, str] = {}
        if spec.fifo:
            name = name if name.endswith(".fifo") else name + ".fifo"
            attributes["FifoTopic"] = "true"
        if spec.display_name:
            attributes["DisplayName"] = spec.display_name
        arn = self.clients("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
        self.physical[logical_id] = Physical(arn, {"TopicArn": arn, "TopicName": name})

    def secret(self, logical_id: str) -> None:
        spec = self.d.secrets[logical_id]
        client = self.clients("secretsmanager")
        name = spec.name or physical_name(self.stack, logical_id, 512)
        try:
            arn = client.describe_secret(SecretId=name)["ARN"]
        except client.exceptions.ResourceNotFoundException:
            value = spec.secret_string if spec.secret_string is not None else _generate(spec.generate or {})
            arn = client.create_secret(Name=name, Description=spec.description, SecretString=value)["ARN"]
        self.physical[logical_id] = Physical(arn, {"Id": arn, "Name": name})

    def delivery_stream(self, logical_id: str) -> None:
        spec = self.d.delivery_streams[logical_id]
        firehose = self.clients("firehose")
        name = spec.name or physical_name(self.stack, logical_id, 64)
        try:
            arn = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"][
                "DeliveryStreamARN"
            ]
        except firehose.exceptions.ResourceNotFoundException:
            arn = firehose.create_delivery_stream(
                DeliveryStreamName=name,
                DeliveryStreamType="DirectPut",
                ExtendedS3DestinationConfiguration={
                    "RoleARN": self.arn("iam", f"role/{LOCAL_ROLE}", region=False),
                    "BucketARN": self.physical[spec.bucket_id].attributes["Arn"],
                    "Prefix": spec.prefix,
                    "ErrorOutputPrefix": spec.error_prefix,
                    "CompressionFormat": spec.compression,
                    "BufferingHints": {
                        "IntervalInSeconds": spec.buffer_interval_s,
                        "SizeInMBs": spec.buffer_size_mb,
                    },
                },
            )["DeliveryStreamARN"]
        self.physical[logical_id] = Physical(name, {"Arn": arn})

    # -- run by the platform itself ----------------------------------------------------------

    def virtual(self) -> None:
        for fn in self.d.functions.values():
            name = fn.function_name or physical_name(self.stack, fn.logical_id, 64)
            self.physical[fn.logical_id] = Physical(name, {"Arn": self.arn("lambda", f"function:{name}")})
        for schedule in self.d.schedules.values():
            name = schedule.rule_name or physical_name(self.stack, schedule.logical_id, 64)
            self.physical[schedule.logical_id] = Physical(name, {"Arn": self.arn("events", f"rule/{name}")})
        for rule in self.d.topic_rules.values():
            name = rule.rule_name or re.sub(r"\W", "_", f"{self.stack}_{rule.logical_id}")[:128]
            self.physical[rule.logical_id] = Physical(name, {"Arn": self.arn("iot", f"rule/{name}")})
        for key in self.d.api_keys.values():
            # A local key id (API Gateway's are 10 lower-case alphanumerics), stable across restarts.
            # The local gateway checks no key and passes no apiKeyId to the functions.
            key_id = local_api_key_id(self.stack, key.logical_id)
            self.physical[key.logical_id] = Physical(
                key_id,
                {"APIKeyId": key_id, "Arn": self.arn("apigateway", f"/apikeys/{key_id}", account=False)},
            )


def local_api_key_id(stack_name: str, logical_id: str) -> str:
    """The local id of an API key: 10 lower-case hex digits of its stack and logical id."""
    return hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:10]


def _generate(options: Mapping[str, Any]) -> str:
    """A value as Secrets Manager's ``GenerateSecretString`` would make it (no template keys)."""
    if "SecretStringTemplate" in options or "GenerateStringKey" in options:
        template = json.loads(str(options.get("SecretStringTemplate", "{}")))
        template[str(options.get("GenerateStringKey", "password"))] = _generate(
            {k: v for k, v in options.items() if k not in {"SecretStringTemplate", "GenerateStringKey"}}
        )
        return json.dumps(template)
    alphabet = ""
    if not options.get("ExcludeLowercase"):
        alphabet += string.ascii_lowercase
    if not options.get("ExcludeUppercase"):
        alphabet += string.ascii_uppercase
    if not options.get("ExcludeNumbers"):
        alphabet += string.digits
    if not options.get("ExcludePunctuation"):
        alphabet += "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    if options.get("IncludeSpace"):
        alphabet += " "
    excluded = set(str(options.get("ExcludeCharacters", "")))
    alphabet = "".join(c for c in alphabet if c not in excluded) or string.ascii_letters
    length = int(options.get("PasswordLength", 32))
    return "".join(random_secrets.choice(alphabet) for _ in range(length))


def provision(
    description: TemplateDescription,
    *,
    clients: ClientFactory | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
    extra: Mapping[str, Physical] | None = None,
) -> dict[str, Physical]:
    """Create the template's resources; ``logical id → Physical`` (``extra`` added as given).

    ``clients(service)`` returns a boto3 client (default: the shared layer's cached clients,
    which follow ``AWS_ENDPOINT_URL`` and ``AWS_DEFAULT_REGION``); its region is the local region.
    """
    factory = clients or _default_clients
    region = factory("sqs").meta.region_name
    physical = _Provisioner(description, factory, region, account_id).run()
    physical.update(extra or {})
    return physical


def deploy(
    description: TemplateDescription,
    *,
    clients: ClientFactory | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
    extra: Mapping[str, Physical] | None = None,
) -> Deployment:
    """:func:`provision`, with the resolver over the result (in the clients' region)."""
    factory = clients or _default_clients
    physical = provision(description, clients=factory, account_id=account_id, extra=extra)
    resolver = description.resolver(physical, region=factory("sqs").meta.region_name, account_id=account_id)
    return Deployment(description, physical, resolver)
