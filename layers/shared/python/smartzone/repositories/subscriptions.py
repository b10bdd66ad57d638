"""Grid workers' SNS subscriptions: each endpoint receives only its own grids' notifications.

A worker's e-mail address (protocol ``email``) and webhook (``https``, e.g. a WeCom/DingTalk group
robot) are subscribed to the notifications topic with the filter policy
``{"grid_id": [<grid>, …]}`` on the message attributes that the outbox sets.

Idempotent: an endpoint already subscribed with a policy that covers the grid is left alone; one
subscribed with a policy that does not is widened to the grid (SNS keeps one subscription per topic,
protocol and endpoint, so a worker responsible for two grids gets one subscription for both).
Moving a worker away from a grid is a separate, explicit change (not done here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from smartzone.domain.registry import GridWorker
from smartzone.repositories.clients import client

Protocol = Literal["email", "https"]
Status = Literal["created", "exists", "updated", "conflict", "narrowed", "removed", "absent"]
PENDING = "PendingConfirmation"
"""What SNS lists instead of an ARN while a subscription waits for its endpoint to confirm it."""
FILTER_ATTRIBUTE = "grid_id"


@dataclass(frozen=True, slots=True)
class WorkerEndpoint:
    protocol: Protocol
    endpoint: str


@dataclass(frozen=True, slots=True)
class SubscriptionOutcome:
    """What happened to one endpoint: ``created``, ``exists`` (nothing to do), ``updated`` (policy
    widened to the grid) or ``conflict`` (a subscription still pending confirmation has other
    attributes; it cannot be changed until it is confirmed)."""

    protocol: Protocol
    endpoint: str
    grid_id: str
    status: Status
    subscription_arn: str | None = None
    detail: str = ""


def worker_endpoints(worker: GridWorker) -> list[WorkerEndpoint]:
    """Every endpoint the worker can be reached at through SNS (e-mail, then webhook)."""
    endpoints = []
    if worker.email:
        endpoints.append(WorkerEndpoint("email", worker.email))
    if worker.webhook_url:
        endpoints.append(WorkerEndpoint("https", worker.webhook_url))
    return endpoints


def grid_filter_policy(*grid_ids: str) -> dict[str, list[str]]:
    """The filter policy that lets through only the given grids' messages."""
    return {FILTER_ATTRIBUTE: sorted(set(grid_ids))}


def _policy_json(policy: dict[str, Any]) -> str:
    return json.dumps(policy, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class TopicSubscriptions:
    """The subscriptions of one topic by (protocol, endpoint), listed once and kept up to date.

    Pass one instance to many :func:`subscribe_worker` calls to list the topic only once.
    """

    def __init__(self, topic_arn: str) -> None:
        self.topic_arn = topic_arn
        self._arns: dict[tuple[str, str], str] = {}
        paginator = client("sns").get_paginator("list_subscriptions_by_topic")
        for page in paginator.paginate(TopicArn=topic_arn):
            for sub in page.get("Subscriptions", []):
                self._arns[(sub["Protocol"], sub["Endpoint"])] = sub["SubscriptionArn"]

    def find(self, protocol: str, endpoint: str) -> str | None:
        """The subscription's ARN, :data:`PENDING`, or ``None`` when the endpoint is not subscribed."""
        return self._arns.get((protocol, endpoint))

    def remember(self, protocol: str, endpoint: str, arn: str) -> None:
        self._arns[(protocol, endpoint)] = arn

    def __len__(self) -> int:
        return len(self._arns)


def subscribe_endpoint(
    topic_arn: str,
    protocol: Protocol,
    endpoint: str,
    grid_id: str,
    *,
    existing: TopicSubscriptions | None = None,
) -> SubscriptionOutcome:
    """Subscribe one endpoint to the topic for ``grid_id`` (idempotent; see the module doc)."""
    if protocol == "https" and not endpoint.startswith("https://"):
        raise ValueError(f"an https endpoint must start with https://, got {endpoint!r}")
    if protocol == "email" and "@" not in endpoint:
        raise ValueError(f"not an e-mail address: {endpoint!r}")
    if protocol not in ("email", "https"):
        raise ValueError(f"protocol must be email or https, got {protocol!r}")
    subs = existing if existing is not None else TopicSubscriptions(topic_arn)
    sns = client("sns")
    arn = subs.find(protocol, endpoint)
    if arn is None or arn == PENDING:
        try:
            response = sns.subscribe(
                TopicArn=topic_arn,
                Protocol=protocol,
                Endpoint=endpoint,
                Attributes={
                    "FilterPolicy": _policy_json(grid_filter_policy(grid_id)),
                    "FilterPolicyScope": "MessageAttributes",
                },
                ReturnSubscriptionArn=True,
            )
        except ClientError as error:
            if arn == PENDING and error.response.get("Error", {}).get("Code") == "InvalidParameter":
                return SubscriptionOutcome(
                    protocol, endpoint, grid_id, "conflict", None, error.response["Error"].get("Message", "")
                )
            raise
        new_arn = response["SubscriptionArn"]
        subs.remember(protocol, endpoint, new_arn)
        return SubscriptionOutcome(protocol, endpoint, grid_id, "exists" if arn else "created", new_arn)

    attributes = sns.get_subscription_attributes(SubscriptionArn=arn).get("Attributes", {})
    raw_policy = attributes.get("FilterPolicy")
    policy: dict[str, Any] = json.loads(raw_policy) if raw_policy else {}
    scope = attributes.get("FilterPolicyScope", "MessageAttributes")
    grids = policy.get(FILTER_ATTRIBUTE)
    if scope == "MessageAttributes" and isinstance(grids, list) and grid_id in grids:
        return SubscriptionOutcome(protocol, endpoint, grid_id, "exists", arn)
    known = [g for g in grids if isinstance(g, str)] if isinstance(grids, list) else []
    policy[FILTER_ATTRIBUTE] = grid_filter_policy(*known, grid_id)[FILTER_ATTRIBUTE]
    if scope != "MessageAttributes":
        sns.set_subscription_attributes(
            SubscriptionArn=arn, AttributeName="FilterPolicyScope", AttributeValue="MessageAttributes"
        )
    sns.set_subscription_attributes(
        SubscriptionArn=arn, AttributeName="FilterPolicy", AttributeValue=_policy_json(policy)
    )
    return SubscriptionOutcome(protocol, endpoint, grid_id, "updated", arn)


def subscribe_worker(
    topic_arn: str,
    worker: GridWorker,
    grid_id: str,
    *,
    protocol: Protocol | None = None,
    endpoint: str | None = None,
    existing: TopicSubscriptions | None = None,
) -> list[SubscriptionOutcome]:
    """Subscribe a grid worker's endpoints (or just ``protocol``/``endpoint``) for ``grid_id``.

    With ``protocol`` alone, only the worker's endpoint of that protocol; with ``endpoint`` too,
    that endpoint (e.g. a webhook being registered). A worker without endpoints gets nothing.
    """
    if endpoint is not None and protocol is None:
        raise ValueError("an endpoint needs its protocol")
    if protocol is not None and endpoint is not None:
        targets = [WorkerEndpoint(protocol, endpoint)]
    else:
        targets = [t for t in worker_endpoints(worker) if protocol is None or t.protocol == protocol]
    subs = existing if existing is not None else TopicSubscriptions(topic_arn)
    return [subscribe_endpoint(topic_arn, t.protocol, t.endpoint, grid_id, existing=subs) for t in targets]


def unsubscribe_worker(
    topic_arn: str, worker: GridWorker, grid_id: str, *, existing: TopicSubscriptions | None = None
) -> list[SubscriptionOutcome]:
    """Stop a worker's endpoints receiving ``grid_id``: the grid leaves their filter policy, and an
    endpoint left with no grid is unsubscribed (offboarding: least privilege at once)."""
    subs = existing if existing is not None else TopicSubscriptions(topic_arn)
    sns = client("sns")
    outcomes: list[SubscriptionOutcome] = []
    for target in worker_endpoints(worker):
        arn = subs.find(target.protocol, target.endpoint)
        if arn is None or arn == PENDING:
            outcomes.append(SubscriptionOutcome(target.protocol, target.endpoint, grid_id, "absent", None))
            continue
        raw = sns.get_subscription_attributes(SubscriptionArn=arn).get("Attributes", {}).get("FilterPolicy")
        policy: dict[str, Any] = json.loads(raw) if raw else {}
        grids = [g for g in policy.get(FILTER_ATTRIBUTE, []) if isinstance(g, str) and g != grid_id]
        if grids:
            policy[FILTER_ATTRIBUTE] = grid_filter_policy(*grids)[FILTER_ATTRIBUTE]
            sns.set_subscription_attributes(
                SubscriptionArn=arn, AttributeName="FilterPolicy", AttributeValue=_policy_json(policy)
            )
            outcomes.append(SubscriptionOutcome(target.protocol, target.endpoint, grid_id, "narrowed", arn))
        else:
            sns.unsubscribe(SubscriptionArn=arn)
            outcomes.append(SubscriptionOutcome(target.protocol, target.endpoint, grid_id, "removed", arn))
    return outcomes
