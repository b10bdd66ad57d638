"""Detections: cameras and drones → IoT rules / signed webhook → SQS buffer → detections function.

- Two IoT topic rules (SQL 2016-03-23): ``smartzone/camera/+/detections`` (camera id from the
  topic) and ``smartzone/drone/+/changes`` (flight id from the topic), both adding the receive
  time; action: the detections buffer queue; error action: the detections rule-errors queue.
- The detections function consumes the buffer in batches (partial batch responses): merged,
  routed work orders; bad detections go to its rejects queue. Its role may read and write the
  table (no Scan, no DeleteItem) and Query gsi2 (grid areas).
- The webhook function serves ``POST /v1/detections`` and ``POST /v1/detections/uploads`` on the
  REST API without the user authorizer but never open: per-vendor HMAC signatures (keys in the
  ``vendor_keys`` secret), replay guard, and an API key whose usage plan only limits rates.
- ``snapshots``: a private, KMS-encrypted bucket; vendors upload with presigned PUTs under
  ``snapshots/``; objects expire after ``snapshots_expiry_days``. The API function presigns
  short-lived GET links for order details.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.buckets import data_bucket
from infra.constructs.device_policy import THING_NAME
from infra.constructs.functions import FunctionSettings, SmartZoneFunction
from infra.constructs.queues import (
    MAX_RETENTION,
    EncryptedQueue,
    QueueRole,
    consume,
    grant_send,
    iot_rule_role,
    sqs_rule_action,
)
from infra.constructs.storage import TABLE_KEY_ACTIONS
from infra.nag import acknowledge
from smartzone.domain.detection_messages import SNAPSHOTS_PREFIX
from smartzone.repositories.keys import GSI1, GSI2

CAMERA_TOPIC_FILTER = "smartzone/camera/+/detections"
DRONE_TOPIC_FILTER = "smartzone/drone/+/changes"
CAMERA_SQL = (
    "SELECT ts, type, confidence, snapshot_url, track_id, topic(3) AS camera_id, timestamp() AS received_at "
    f"FROM '{CAMERA_TOPIC_FILTER}'"
)
DRONE_SQL = (
    "SELECT ts, type, lon, lat, polygon, before_image, after_image, confidence, change_id, "
    f"topic(3) AS flight_id, timestamp() AS received_at FROM '{DRONE_TOPIC_FILTER}'"
)
DETECTIONS_TIMEOUT = cdk.Duration.seconds(30)
DETECTIONS_BATCH_SIZE = 100
DETECTIONS_BATCHING_WINDOW = cdk.Duration.seconds(2)
WEBHOOK_TIMEOUT = cdk.Duration.seconds(10)
DETECTIONS_TABLE_ACTIONS = [
    "dynamodb:BatchGetItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:ConditionCheckItem",
]
"""TransactWriteItems is authorized by the Put/Update/ConditionCheckItem actions of its parts."""
WEBHOOK_PATH = "detections"
UPLOADS_PATH = "uploads"


@dataclass(frozen=True)
class DetectionSettings:
    snapshots_expiry_days: int = 365
    max_future_skew_s: int = 300
    max_reading_age_s: int = 7 * 24 * 3600
    vendor_rate: float = 20.0
    """Steady requests per second per vendor API key (usage plan)."""
    vendor_burst: int = 40


class Detections(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        table: dynamodb.ITable,
        access_logs: s3.IBucket,
        functions: FunctionSettings,
        rest_api: apigateway.RestApi,
        api_function: lambda_.Function,
        sweeper_function: lambda_.Function,
        settings: DetectionSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        if settings.snapshots_expiry_days < 1:
            raise ValueError("snapshots_expiry_days must be at least 1")

        self.snapshots = data_bucket(
            self,
            "Snapshots",
            key=key,
            access_logs=access_logs,
            logs_prefix="snapshots/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-snapshots",
                    expiration=cdk.Duration.days(settings.snapshots_expiry_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
        )
        snapshot_objects = self.snapshots.arn_for_objects(f"{SNAPSHOTS_PREFIX}*")
        bucket_token = (
            f"<{stack.get_logical_id(cast(cdk.CfnElement, self.snapshots.node.default_child))}.Arn>"
        )
        snapshots_finding = f"AwsSolutions-IAM5[Resource::{bucket_token}/{SNAPSHOTS_PREFIX}*]"

        # -- the buffer and the rules --------------------------------------------------------------
        visibility = cdk.Duration.seconds(
            6 * DETECTIONS_TIMEOUT.to_seconds() + DETECTIONS_BATCHING_WINDOW.to_seconds()
        )
        self.buffer = EncryptedQueue(self, "Buffer", key=key, visibility_timeout=visibility)
        self.errors = EncryptedQueue(
            self, "RuleErrors", key=key, retention_period=MAX_RETENTION, role=QueueRole.RULE_ERRORS
        )
        self.rejects = EncryptedQueue(
            self, "Rejects", key=key, retention_period=MAX_RETENTION, role=QueueRole.REJECTS
        )

        self.rule_role = iot_rule_role(
            self,
            "RuleRole",
            description="SmartZone detection rules: send to the detections buffer and errors queues",
        )
        grants = [grant_send(queue, self.rule_role) for queue in (self.buffer.queue, self.errors.queue)]
        self.camera_rule = self._rule(
            "CameraDetectionsRule",
            "Camera detections: camera id from the topic, receive time added",
            CAMERA_SQL,
        )
        self.drone_rule = self._rule(
            "DroneChangesRule",
            "Drone change detections: flight id from the topic, receive time added",
            DRONE_SQL,
        )
        for grant in grants:
            grant.apply_before(self.camera_rule, self.drone_rule)
        self.source_policy = self._source_policy()

        # -- the detections function -------------------------------------------------------------
        self.function = SmartZoneFunction(
            self,
            "Detections",
            package="detections",
            description="Merges camera detections into routed work orders; drone changes routed by location",
            settings=functions,
            timeout=DETECTIONS_TIMEOUT,
            memory_size=512,
            environment={
                "TABLE_NAME": table.table_name,
                "REJECTS_QUEUE_URL": self.rejects.queue.queue_url,
                "MAX_FUTURE_SKEW_S": str(settings.max_future_skew_s),
                "MAX_READING_AGE_S": str(settings.max_reading_age_s),
            },
        )
        fn = self.function.function
        iam.Grant.add_to_principal(
            grantee=fn, actions=DETECTIONS_TABLE_ACTIONS, resource_arns=[table.table_arn]
        )
        iam.Grant.add_to_principal(
            grantee=fn, actions=["dynamodb:Query"], resource_arns=[f"{table.table_arn}/index/{GSI2}"]
        )
        key.grant(fn, *TABLE_KEY_ACTIONS)
        grant_send(self.rejects.queue, fn)
        consume(
            fn,
            self.buffer.queue,
            batch_size=DETECTIONS_BATCH_SIZE,
            max_batching_window=DETECTIONS_BATCHING_WINDOW,
        )

        # -- vendor keys and the webhook -----------------------------------------------------------
        self.vendor_keys = secretsmanager.Secret(
            self,
            "VendorKeys",
            description="SmartZone detections webhook: JSON map vendor id -> HMAC-SHA256 key",
            encryption_key=key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template="{}", generate_string_key="_placeholder", exclude_punctuation=True
            ),
        )
        acknowledge(
            self.vendor_keys,
            "AwsSolutions-SMG4",
            "Vendor HMAC keys are shared with each vendor out of band: they are rotated per vendor with "
            "`python -m tools.vendor_keys rotate` (docs/detections.md), not by a rotation Lambda.",
        )
        self.webhook = SmartZoneFunction(
            self,
            "Webhook",
            package="webhook",
            description="Detections webhook: per-vendor HMAC signatures, replay guard, queues detections",
            settings=functions,
            timeout=WEBHOOK_TIMEOUT,
            memory_size=256,
            environment={
                "TABLE_NAME": table.table_name,
                "DETECTIONS_QUEUE_URL": self.buffer.queue.queue_url,
                "VENDOR_KEYS_SECRET_ARN": self.vendor_keys.secret_arn,
                "SNAPSHOTS_BUCKET": self.snapshots.bucket_name,
                "MAX_FUTURE_SKEW_S": str(settings.max_future_skew_s),
                "MAX_READING_AGE_S": str(settings.max_reading_age_s),
            },
        )
        hook = self.webhook.function
        iam.Grant.add_to_principal(
            grantee=hook, actions=["dynamodb:PutItem"], resource_arns=[table.table_arn]
        )
        key.grant(hook, *TABLE_KEY_ACTIONS)
        grant_send(self.buffer.queue, hook)
        iam.Grant.add_to_principal(
            grantee=hook,
            actions=["secretsmanager:GetSecretValue"],
            resource_arns=[self.vendor_keys.secret_arn],
        )
        iam.Grant.add_to_principal(grantee=hook, actions=["s3:PutObject"], resource_arns=[snapshot_objects])
        acknowledge(
            self.webhook.role,
            snapshots_finding,
            "The webhook presigns vendors' snapshot uploads (PutObject) under generated keys; the "
            f"wildcard is limited to the snapshots bucket's {SNAPSHOTS_PREFIX} prefix.",
        )

        v1 = rest_api.root.get_resource("v1")
        if v1 is None:
            raise ValueError("the REST API has no /v1 resource")
        integration = apigateway.LambdaIntegration(hook, proxy=True, allow_test_invoke=False)
        detections = v1.add_resource(WEBHOOK_PATH)
        self.webhook_methods = [
            resource.add_method(
                "POST",
                integration,
                authorization_type=apigateway.AuthorizationType.NONE,
                api_key_required=True,
            )
            for resource in (detections, detections.add_resource(UPLOADS_PATH))
        ]
        for method in self.webhook_methods:
            for finding in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
                acknowledge(
                    method,
                    finding,
                    "Vendors' machines push detections here: they have no user identity. Every request "
                    "is authenticated in the function by a per-vendor HMAC-SHA256 signature over the "
                    "timestamp and body (keys in Secrets Manager), with a 5-minute window and a replay "
                    "guard; an API key (usage plan) rate-limits each vendor.",
                )
        self.usage_plan = rest_api.add_usage_plan(
            "VendorPlan",
            name=f"{stack.stack_name}-detection-vendors",
            description="Detection vendors: rate limits only (authentication is the HMAC signature)",
            throttle=apigateway.ThrottleSettings(
                rate_limit=settings.vendor_rate, burst_limit=settings.vendor_burst
            ),
            api_stages=[apigateway.UsagePlanPerApiStage(api=rest_api, stage=rest_api.deployment_stage)],
        )

        # -- what the API function and the sweeper need -------------------------------------------
        api_function.add_environment("SNAPSHOTS_BUCKET", self.snapshots.bucket_name)
        iam.Grant.add_to_principal(
            grantee=api_function, actions=["s3:GetObject"], resource_arns=[snapshot_objects]
        )
        if api_function.role is not None:
            acknowledge(
                api_function.role,
                snapshots_finding,
                "The API presigns short-lived links (GetObject) to an order's snapshots and drone "
                f"images; the wildcard is limited to the snapshots bucket's {SNAPSHOTS_PREFIX} prefix.",
            )
        iam.Grant.add_to_principal(
            grantee=sweeper_function,
            actions=["dynamodb:Query"],
            resource_arns=[f"{table.table_arn}/index/{GSI1}"],
        )

    def _source_policy(self) -> iot.CfnPolicy:
        """IoT policy for camera and drone certificates: connect as itself, publish its own topic."""
        stack = cdk.Stack.of(self)

        def arn(resource: str, name: str) -> str:
            return stack.format_arn(service="iot", resource=resource, resource_name=name)

        document = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ConnectAsItself",
                    "Effect": "Allow",
                    "Action": "iot:Connect",
                    "Resource": arn("client", THING_NAME),
                    "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
                },
                {
                    "Sid": "PublishOwnDetections",
                    "Effect": "Allow",
                    "Action": "iot:Publish",
                    "Resource": [
                        arn("topic", f"smartzone/camera/{THING_NAME}/detections"),
                        arn("topic", f"smartzone/drone/{THING_NAME}-*/changes"),  # flight ids: <drone>-…
                    ],
                },
            ],
        }
        return iot.CfnPolicy(self, "SourcePolicy", policy_document=document)

    def _rule(self, construct_id: str, description: str, sql: str) -> iot.CfnTopicRule:
        return iot.CfnTopicRule(
            self,
            construct_id,
            topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                description=description,
                aws_iot_sql_version="2016-03-23",
                sql=sql,
                rule_disabled=False,
                actions=[sqs_rule_action(self.buffer.queue, self.rule_role)],
                error_action=sqs_rule_action(self.errors.queue, self.rule_role),
            ),
        )
