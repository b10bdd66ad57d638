"""Forms (issue 6): the asynchronous export of a form's submissions (CSV / XLSX).

- ``bucket``: private exports bucket (all public access blocked, TLS-only, SSE-KMS with the data
  key: exports hold personal data), objects under ``exports/`` expire after
  ``exports_expiry`` (default 7 days, as the jobs do), server access logs to ``access_logs``.
- ``queue``: export jobs ``{"export_id"}`` (KMS, TLS-only, its own DLQ after 3 receives); the
  visibility timeout is six times the function's timeout (AWS's advice for SQS event sources).
- ``function``: ``functions/exports``: reads the job, the form and its submissions (key reads and
  queries on ``gsi1``), writes the file to ``exports/`` and updates the job.
- The API function gets ``EXPORTS_BUCKET`` / ``EXPORTS_QUEUE_URL``, may send to the queue and
  presign GETs of ``exports/*`` (short-lived download links).
"""

from __future__ import annotations

from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.buckets import data_bucket
from infra.constructs.functions import FunctionSettings, SmartZoneFunction
from infra.constructs.queues import EncryptedQueue, consume, grant_send
from infra.constructs.storage import TABLE_KEY_ACTIONS
from infra.nag import acknowledge

EXPORTS_PREFIX = "exports/"
EXPORTS_TIMEOUT = cdk.Duration.minutes(5)
EXPORT_TABLE_ACTIONS = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"]


class Forms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        table: dynamodb.ITable,
        access_logs: s3.IBucket,
        api_function: SmartZoneFunction,
        functions: FunctionSettings,
        exports_expiry: cdk.Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.bucket = data_bucket(
            self,
            "Exports",
            key=key,
            access_logs=access_logs,
            logs_prefix="exports/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-exports",
                    prefix=EXPORTS_PREFIX,
                    expiration=exports_expiry,
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
        )
        self.queue = EncryptedQueue(
            self,
            "ExportJobs",
            key=key,
            visibility_timeout=cdk.Duration.seconds(EXPORTS_TIMEOUT.to_seconds() * 6),
            max_receive_count=3,
        )
        self.function = SmartZoneFunction(
            self,
            "Exporter",
            package="exports",
            description="Form exports: a period's submissions as CSV (UTF-8 with BOM) or XLSX to S3",
            settings=functions,
            timeout=EXPORTS_TIMEOUT,
            memory_size=1024,
            environment={"TABLE_NAME": table.table_name, "EXPORTS_BUCKET": self.bucket.bucket_name},
        )
        fn = self.function.function
        iam.Grant.add_to_principal(grantee=fn, actions=EXPORT_TABLE_ACTIONS, resource_arns=[table.table_arn])
        iam.Grant.add_to_principal(
            grantee=fn, actions=["dynamodb:Query"], resource_arns=[f"{table.table_arn}/index/gsi1"]
        )
        key.grant(fn, *TABLE_KEY_ACTIONS)
        objects = self.bucket.arn_for_objects(f"{EXPORTS_PREFIX}*")
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:PutObject"], resource_arns=[objects])
        consume(fn, self.queue.queue, batch_size=1)

        api = api_function.function
        api.add_environment("EXPORTS_BUCKET", self.bucket.bucket_name)
        api.add_environment("EXPORTS_QUEUE_URL", self.queue.queue.queue_url)
        grant_send(self.queue.queue, api)
        iam.Grant.add_to_principal(grantee=api, actions=["s3:GetObject"], resource_arns=[objects])

        bucket_token = f"<{stack.get_logical_id(cast(cdk.CfnElement, self.bucket.node.default_child))}.Arn>"
        finding = f"AwsSolutions-IAM5[Resource::{bucket_token}/{EXPORTS_PREFIX}*]"
        acknowledge(
            self.function.role,
            finding,
            "The exports function writes one object per export job with a generated name; the "
            f"wildcard is limited to the exports bucket's {EXPORTS_PREFIX} prefix (PutObject only).",
        )
        acknowledge(
            api_function.role,
            finding,
            "The API presigns short-lived download links (GetObject) for export files with generated "
            f"names; the wildcard is limited to the exports bucket's {EXPORTS_PREFIX} prefix.",
        )
