"""What the operator tools share: where AWS is (real or the local platform) and what a stack holds.

- :func:`use_local_platform` points boto3 at the local platform (``.local/session.json`` has its
  ``aws_endpoint_url``); without it the tools use the usual AWS credentials and region
  (``AWS_PROFILE``, ``AWS_REGION=cn-north-1``, …).
- :func:`stack_name_of` gives the stack of an environment (``SmartZone-prod``; ``SmartZone``
  without one).
- :func:`stack_queues` finds the stack's queues by name prefix (CloudFormation names them
  ``<stack>-<LogicalId>-<suffix>``, the local platform ``<stack>-<LogicalId>``), with each queue's
  role tag (``smartzone:queue``) and, for a dead-letter queue, the source queue whose redrive
  policy names it.
- :func:`stack_output` reads a stack output (CloudFormation), falling back to a name search.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from smartzone.repositories.clients import client, reset_clients
from smartzone.settings import get_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
SESSION_FILE = REPO_ROOT / ".local" / "session.json"
LOCAL_REGION = "ap-southeast-1"
"""The local platform's region (``infra/local/platform.py``)."""
DEFAULT_STACK = "SmartZone"
QUEUE_ROLE_TAG = "smartzone:queue"
"""Same tag as ``infra/constructs/queues.py`` (not imported: that module needs aws-cdk)."""
STACK_TAG = "aws:cloudformation:stack-name"


def use_local_platform(session_file: Path | str = SESSION_FILE) -> str:
    """Point every boto3 client at the running local platform; returns its endpoint."""
    path = Path(session_file)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: start the local platform first (make run)")
    session = json.loads(path.read_text(encoding="utf-8"))
    endpoint = session.get("aws_endpoint_url")
    if not endpoint:
        raise ValueError(f"{path} has no aws_endpoint_url")
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": str(endpoint),
            "AWS_DEFAULT_REGION": str(session.get("region", LOCAL_REGION)),
            "AWS_REGION": str(session.get("region", LOCAL_REGION)),
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    reset_clients()
    get_settings.cache_clear()
    return str(endpoint)


def stack_name_of(env: str | None, stack: str | None = None) -> str:
    if stack:
        return stack
    return f"{DEFAULT_STACK}-{env}" if env else DEFAULT_STACK


@dataclass
class QueueInfo:
    url: str
    name: str
    arn: str
    role: str | None
    """The ``smartzone:queue`` tag (telemetry-buffer, rejects, rule-errors, publish-retry, …)."""
    fifo: bool
    visible: int
    in_flight: int
    source_url: str | None = None
    """For a dead-letter queue: the queue whose redrive policy sends its failures here."""

    @property
    def is_dlq(self) -> bool:
        return self.source_url is not None


def _all_queue_urls(prefix: str) -> list[str]:
    sqs = client("sqs")
    urls: list[str] = []
    kwargs: dict[str, Any] = {"QueueNamePrefix": prefix, "MaxResults": 1000}
    while True:
        page = sqs.list_queues(**kwargs)
        urls.extend(page.get("QueueUrls", []))
        token = page.get("NextToken")
        if not token:
            return urls
        kwargs["NextToken"] = token


def _belongs(name: str, tags: dict[str, str], stack: str) -> bool:
    if STACK_TAG in tags:
        return tags[STACK_TAG] == stack
    # CDK logical ids start with an upper-case construct id: ``SmartZone-Ingest…`` is stack
    # ``SmartZone``, ``SmartZone-dev-Ingest…`` is stack ``SmartZone-dev``.
    rest = name.removeprefix(f"{stack}-")
    return rest != name and rest[:1].isupper()


def stack_queues(stack: str) -> list[QueueInfo]:
    """Every queue of ``stack``, dead-letter queues linked to their source queue."""
    sqs = client("sqs")
    found: list[QueueInfo] = []
    redrive: dict[str, str] = {}  # DLQ ARN -> source queue URL
    for url in _all_queue_urls(f"{stack}-"):
        name = url.rstrip("/").rsplit("/", 1)[-1]
        tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {}) or {}
        if not _belongs(name, tags, stack):
            continue
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "QueueArn",
                "RedrivePolicy",
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        policy = attributes.get("RedrivePolicy")
        if policy:
            redrive[json.loads(policy)["deadLetterTargetArn"]] = url
        found.append(
            QueueInfo(
                url=url,
                name=name,
                arn=attributes["QueueArn"],
                role=tags.get(QUEUE_ROLE_TAG),
                fifo=name.endswith(".fifo"),
                visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
                in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
            )
        )
    for queue in found:
        queue.source_url = redrive.get(queue.arn)
    return sorted(found, key=lambda q: q.name)


def queue_with_role(queues: list[QueueInfo], role: str) -> QueueInfo | None:
    matches = [q for q in queues if q.role == role]
    return matches[0] if len(matches) == 1 else None


def stack_output(stack: str, key: str) -> str | None:
    """A CloudFormation output of ``stack`` (``None`` where there is no such stack, e.g. locally)."""
    try:
        stacks = client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except (ClientError, BotoCoreError):
        return None
    for output in stacks[0].get("Outputs", []) if stacks else []:
        if output.get("OutputKey") == key:
            return str(output["OutputValue"])
    return None


def find_topic(stack: str, logical_prefix: str) -> str | None:
    """A topic named ``<stack>-<logical_prefix>…`` (how CloudFormation and the local platform name it)."""
    sns = client("sns")
    kwargs: dict[str, Any] = {}
    while True:
        page = sns.list_topics(**kwargs)
        for topic in page.get("Topics", []):
            arn = topic["TopicArn"]
            if arn.rsplit(":", 1)[-1].startswith(f"{stack}-{logical_prefix}"):
                return str(arn)
        token = page.get("NextToken")
        if not token:
            return None
        kwargs["NextToken"] = token


def find_bucket(stack: str, logical_prefix: str) -> str | None:
    """A bucket named ``<stack>-<logical_prefix>…`` in lower case (CloudFormation and local)."""
    prefix = f"{stack}-{logical_prefix}".lower()
    for bucket in client("s3").list_buckets().get("Buckets", []):
        if bucket["Name"].startswith(prefix):
            return str(bucket["Name"])
    return None


def find_table(stack: str) -> str | None:
    """The stack's table: output ``TableName``, else a table named ``<stack>-Storage…``."""
    output = stack_output(stack, "TableName")
    if output:
        return output
    names: list[str] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = client("dynamodb").list_tables(**kwargs)
        names.extend(page.get("TableNames", []))
        if not page.get("LastEvaluatedTableName"):
            break
        kwargs["ExclusiveStartTableName"] = page["LastEvaluatedTableName"]
    matches = [n for n in names if n.startswith(f"{stack}-StorageTable")]
    return matches[0] if len(matches) == 1 else None
