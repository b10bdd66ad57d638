"""Where SmartZone keeps its data: the data key, the single table and the raw-reading archive.

- ``key``: one customer-managed KMS key (yearly rotation, retained) for the table, its stream,
  the queues and the topic. A customer-managed key rather than an AWS-managed one because the
  district keeps personal data here (grid workers' phones today, residents' ID numbers later):
  its key policy and CloudTrail record are the district's own, access can be revoked in one
  place, and AWS-managed SQS/SNS keys cannot be used by other services' principals (an IoT rule
  or SNS delivering to an encrypted queue needs a key whose policy we control).
- ``table``: single-table design (``pk``/``sk``; ``gsi1`` … ``gsi4``, see
  ``smartzone.repositories.keys``), on demand, stream
  NEW_AND_OLD_IMAGES (the outbox's source), point-in-time recovery, TTL ``expires_at``,
  deletion protection, retained on stack deletion.
- ``archive``: raw readings as Firehose delivers them (GZIP JSON lines, partitioned by date),
  SSE-S3, TLS-only, no public access, versioned, lifecycle (Standard-IA after 30 days, Glacier
  after 180, expiry configurable), server access logs to ``access_logs``.
- ``uploads``: work-order photos, uploaded by browsers and the mobile app with presigned S3 POSTs
  under ``uploads/``; SSE-KMS with the data key (bucket key on), TLS-only, no public access,
  CORS for browser POSTs from the configured origins, expiry configurable (default two years),
  server access logs to ``access_logs``.

GSIs: DynamoDB creates (or deletes) at most one GSI per table update, so adding several indexes
to a deployed table needs one deploy per index (``docs/deploy.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.buckets import private_bucket
from smartzone.repositories.keys import GSI1, GSI2, GSI3, GSI4

TTL_ATTRIBUTE = "expires_at"
INDEXES = (GSI1, GSI2, GSI3, GSI4)
UPLOADS_PREFIX = "uploads/"
TABLE_KEY_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
"""What a function that reads and writes the table (or the uploads) needs of the data key."""


class Storage(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        archive_expiry: cdk.Duration,
        access_log_expiry: cdk.Duration,
        uploads_expiry: cdk.Duration,
        cors_origins: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "DataKey",
            description="SmartZone data key: table, stream, queues, topic, uploads, cursor secret",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            time_to_live_attribute=TTL_ATTRIBUTE,
            deletion_protection=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        for index in INDEXES:
            self.table.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=f"{index}pk", type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=f"{index}sk", type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.ALL,
            )

        self.access_logs = private_bucket(
            self,
            "AccessLogs",
            # SSE-S3 (the default) on purpose: S3 server access logs can only be delivered to such a bucket.
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=access_log_expiry)],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.archive = private_bucket(
            self,
            "Archive",
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="archive/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="tier-and-expire-raw-readings",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=cdk.Duration.days(30),
                        ),
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER,
                            transition_after=cdk.Duration.days(180),
                        ),
                    ],
                    expiration=archive_expiry,
                    noncurrent_version_expiration=cdk.Duration.days(30),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.uploads = private_bucket(
            self,
            "Uploads",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="uploads/",
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.POST, s3.HttpMethods.GET],
                    allowed_origins=list(cors_origins),
                    allowed_headers=["*"],
                    exposed_headers=["ETag", "Location"],
                    max_age=3000,
                )
            ],
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-uploads",
                    expiration=uploads_expiry,
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
