"""The data lake of department datasets (issue 8): bucket, ingest function, Glue catalogue, Athena.

- ``bucket``: private, TLS-only, SSE-KMS with the data key (bucket key on), versioned,
  access-logged, EventBridge notifications on (an L1 property: no notification custom resource).
  Layout (``smartzone.datalake.layout``): ``incoming/<resource>/`` files dropped by departments,
  ``datalake/resource=<resource>/dt=<date>/`` Parquet, ``rejects/``, ``reports/``,
  ``processed/``. Lifecycle: ``processed/`` after ``processed_expiry_days``, ``rejects/`` and
  ``reports/`` after ``reports_expiry_days``, old versions after 30 days.
- ``ingest``: the ``datalake`` function (DuckDB in its own layer, 2 GB memory, 4 GB of ``/tmp``),
  run by an EventBridge rule for ``Object Created`` under ``incoming/`` and by a daily schedule
  (the stale check, 01:00 UTC = 09:00 Beijing). Failed runs (after Lambda's two retries) and
  undeliverable events go to an encrypted dead-letter queue.
- ``database``: a Glue database; the ingest function creates one table per resource from its
  information items (partition ``dt`` by partition projection, no crawler).
- ``workgroup``: Athena engine v3, configuration enforced, results SSE-KMS in their own bucket
  (expiring after ``results_expiry_days``), a bytes-scanned limit per query, CloudWatch metrics.
- The API function gets the data-lake layer, the query settings (``QUERY_ENGINE=athena``) and the
  grants it needs to push batches and run Athena queries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs import REPO_ROOT
from infra.constructs.buckets import data_bucket
from infra.constructs.functions import ARCHITECTURE, RUNTIME, FunctionSettings, SmartZoneFunction
from infra.constructs.layers import PipLayerBundler
from infra.constructs.queues import dead_letter_queue
from infra.constructs.storage import TABLE_KEY_ACTIONS
from infra.nag import acknowledge
from smartzone.datalake.layout import DATALAKE, INCOMING, PROCESSED, REJECTS, REPORTS
from smartzone.repositories.keys import GSI2

DATALAKE_LAYER_DIR = REPO_ROOT / "layers" / "datalake"
DATALAKE_LAYER_PLATFORM = "manylinux_2_28_aarch64"
"""DuckDB's aarch64 wheels for current CPython are manylinux_2_28 (Lambda's AL2023: glibc 2.34)."""
RESULTS_PREFIX = "athena/"
INGEST_TABLE_ACTIONS = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"]
"""Catalogue reads (get, and the gsi2 ``CATALOGUE`` list for the stale check) and ``record_load``."""
GLUE_WRITE_ACTIONS = ["glue:GetDatabase", "glue:GetTable", "glue:CreateTable", "glue:UpdateTable"]
GLUE_READ_ACTIONS = ["glue:GetDatabase", "glue:GetTable", "glue:GetPartition", "glue:GetPartitions"]
ATHENA_ACTIONS = [
    "athena:StartQueryExecution",
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "athena:StopQueryExecution",
    "athena:GetWorkGroup",
]


@dataclass(frozen=True)
class DataLakeSettings:
    processed_expiry_days: int = 90
    """Ingested files (kept under ``processed/``) are deleted after this many days."""
    reports_expiry_days: int = 365
    """Batch reports and rejects files are deleted after this many days."""
    results_expiry_days: int = 7
    """Athena query results are deleted after this many days."""
    bytes_scanned_limit: int = 10 * 1024**3
    """Athena cancels a query that would scan more than this (bytes; at least 10 MB)."""
    athena_timeout_s: int = 25
    """The API stops an Athena query still running after this (API Gateway answers within 29 s)."""

    def validate(self) -> None:
        if min(self.processed_expiry_days, self.reports_expiry_days, self.results_expiry_days) < 1:
            raise ValueError("data-lake expiries must be at least one day")
        if self.bytes_scanned_limit < 10 * 1024**2:
            raise ValueError("Athena's bytes-scanned limit is at least 10 MB")
        if not 1 <= self.athena_timeout_s <= 28:
            raise ValueError("athena_timeout_s must be between 1 and 28 (API Gateway's 29 s limit)")


def glue_name(stack_name: str) -> str:
    """A Glue database name from the stack's (lower case, letters, digits and ``_``)."""
    return re.sub(r"[^a-z0-9_]", "_", stack_name.lower()) + "_datalake"


class DataLake(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        table: dynamodb.ITable,
        access_logs: s3.IBucket,
        functions: FunctionSettings,
        api_function: lambda_.Function,
        settings: DataLakeSettings | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = settings or DataLakeSettings()
        settings.validate()
        stack = cdk.Stack.of(self)

        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            description="SmartZone data lake: DuckDB (embedded SQL engine) and sqlglot",
            code=lambda_.Code.from_asset(
                str(DATALAKE_LAYER_DIR),
                bundling=cdk.BundlingOptions(
                    image=RUNTIME.bundling_image,
                    local=cast(
                        cdk.ILocalBundling,
                        PipLayerBundler(
                            DATALAKE_LAYER_DIR / "requirements.txt", RUNTIME, platform=DATALAKE_LAYER_PLATFORM
                        ),
                    ),
                    command=[
                        "bash",
                        "-c",
                        "pip install --no-compile -r requirements.txt -t /asset-output/python",
                    ],
                ),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
        )

        self.bucket = data_bucket(
            self,
            "Bucket",
            key=key,
            access_logs=access_logs,
            logs_prefix="datalake/",
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-processed",
                    prefix=PROCESSED,
                    expiration=cdk.Duration.days(settings.processed_expiry_days),
                ),
                s3.LifecycleRule(
                    id="expire-rejects",
                    prefix=REJECTS,
                    expiration=cdk.Duration.days(settings.reports_expiry_days),
                ),
                s3.LifecycleRule(
                    id="expire-reports",
                    prefix=REPORTS,
                    expiration=cdk.Duration.days(settings.reports_expiry_days),
                ),
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=cdk.Duration.days(30),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                ),
            ],
        )
        cfn_bucket = cast(s3.CfnBucket, self.bucket.node.default_child)
        cfn_bucket.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )

        self.results = data_bucket(
            self,
            "Results",
            key=key,
            access_logs=access_logs,
            logs_prefix="athena-results/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-results",
                    expiration=cdk.Duration.days(settings.results_expiry_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
        )

        self.database_name = glue_name(stack.stack_name)
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="SmartZone data lake: one table per catalogue resource (created by ingest)",
            ),
        )
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=f"{stack.stack_name}-datalake",
            description="SmartZone data-lake queries (API): enforced settings, encrypted results",
            state="ENABLED",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=settings.bytes_scanned_limit,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=self.results.s3_url_for_object(RESULTS_PREFIX),
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=key.key_arn
                    ),
                    expected_bucket_owner=stack.account,
                ),
            ),
        )

        catalog_arn = stack.format_arn(service="glue", resource="catalog")
        database_arn = stack.format_arn(service="glue", resource="database", resource_name=self.database_name)
        tables_arn = stack.format_arn(
            service="glue", resource="table", resource_name=f"{self.database_name}/*"
        )
        workgroup_arn = stack.format_arn(
            service="athena", resource="workgroup", resource_name=self.workgroup.name
        )

        # -- the ingest function ---------------------------------------------------------------------
        self.function = SmartZoneFunction(
            self,
            "Ingest",
            package="datalake",
            description="Data lake: validates dropped department files into Parquet; daily stale check",
            settings=functions,
            timeout=cdk.Duration.minutes(15),
            memory_size=2048,
            environment={
                "TABLE_NAME": table.table_name,
                "DATALAKE_BUCKET": self.bucket.bucket_name,
                "GLUE_DATABASE": self.database_name,
                "DATALAKE_CACHE_DIR": "/tmp/datalake",
                "DATALAKE_MEMORY_LIMIT": "1GB",
            },
        )
        fn = self.function.function
        fn.add_layers(self.layer)
        cast(lambda_.CfnFunction, fn.node.default_child).add_property_override("EphemeralStorage.Size", 4096)
        bucket_arn = self.bucket.bucket_arn
        iam.Grant.add_to_principal(
            grantee=fn,
            actions=["s3:GetObject", "s3:DeleteObject"],
            resource_arns=[f"{bucket_arn}/{INCOMING}*"],
        )
        iam.Grant.add_to_principal(
            grantee=fn,
            actions=["s3:PutObject"],
            resource_arns=[f"{bucket_arn}/{p}*" for p in (DATALAKE, REJECTS, REPORTS, PROCESSED)],
        )
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:ListBucket"], resource_arns=[bucket_arn])
        iam.Grant.add_to_principal(
            grantee=fn, actions=INGEST_TABLE_ACTIONS[:2], resource_arns=[table.table_arn]
        )
        iam.Grant.add_to_principal(
            grantee=fn, actions=["dynamodb:Query"], resource_arns=[f"{table.table_arn}/index/{GSI2}"]
        )
        iam.Grant.add_to_principal(
            grantee=fn, actions=GLUE_WRITE_ACTIONS, resource_arns=[catalog_arn, database_arn, tables_arn]
        )
        key.grant(fn, *TABLE_KEY_ACTIONS)

        self.dlq = dead_letter_queue(self, "Dlq", key=key)
        acknowledge(
            self.dlq,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter destination of the data-lake ingest function (failed "
            "runs after Lambda's retries, undeliverable EventBridge events); nothing consumes it automatically.",
        )
        key.grant(iam.ServicePrincipal("events.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey")
        # Exact grants (SqsDestination would add kms:ReEncrypt* and kms:GenerateDataKey*): the role
        # already holds GenerateDataKey and Decrypt on the data key (TABLE_KEY_ACTIONS).
        iam.Grant.add_to_principal(
            grantee=fn, actions=["sqs:SendMessage"], resource_arns=[self.dlq.queue_arn]
        )
        self.invoke_config = lambda_.CfnEventInvokeConfig(
            self,
            "AsyncConfig",
            function_name=fn.function_name,
            qualifier="$LATEST",
            maximum_retry_attempts=2,
            destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(destination=self.dlq.queue_arn)
            ),
        )

        self.dropped_rule = events.Rule(
            self,
            "Dropped",
            description="A department file dropped under incoming/ in the data-lake bucket",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [self.bucket.bucket_name]},
                    "object": {"key": [{"prefix": INCOMING}]},
                },
            ),
            targets=[targets.LambdaFunction(fn, retry_attempts=4, dead_letter_queue=self.dlq)],
        )
        self.stale_rule = events.Rule(
            self,
            "StaleCheck",
            description="Daily data-lake stale check (resources not loaded within their update cycle)",
            schedule=events.Schedule.cron(minute="0", hour="1"),
            targets=[targets.LambdaFunction(fn, retry_attempts=2)],
        )

        # -- the API: pushed batches and queries -------------------------------------------------------
        api_function.add_layers(self.layer)
        for name, value in {
            "DATALAKE_BUCKET": self.bucket.bucket_name,
            "QUERY_ENGINE": "athena",
            "GLUE_DATABASE": self.database_name,
            "ATHENA_WORKGROUP": self.workgroup.name,
            "ATHENA_OUTPUT": self.results.s3_url_for_object(RESULTS_PREFIX),
            "ATHENA_TIMEOUT_S": str(settings.athena_timeout_s),
            "DATALAKE_CACHE_DIR": "/tmp/datalake",
        }.items():
            api_function.add_environment(name, value)
        iam.Grant.add_to_principal(
            grantee=api_function,
            actions=["s3:GetObject", "s3:PutObject"],
            resource_arns=[f"{bucket_arn}/{p}*" for p in (DATALAKE, REJECTS, REPORTS)],
        )
        iam.Grant.add_to_principal(
            grantee=api_function, actions=["s3:ListBucket"], resource_arns=[bucket_arn]
        )
        iam.Grant.add_to_principal(
            grantee=api_function,
            actions=sorted(set(GLUE_WRITE_ACTIONS) | set(GLUE_READ_ACTIONS)),
            resource_arns=[catalog_arn, database_arn, tables_arn],
        )
        iam.Grant.add_to_principal(
            grantee=api_function, actions=ATHENA_ACTIONS, resource_arns=[workgroup_arn]
        )
        iam.Grant.add_to_principal(
            grantee=api_function,
            actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            resource_arns=[f"{self.results.bucket_arn}/{RESULTS_PREFIX}*"],
        )
        iam.Grant.add_to_principal(
            grantee=api_function,
            actions=["s3:GetBucketLocation", "s3:ListBucket"],
            resource_arns=[self.results.bucket_arn],
        )
        key.grant(api_function, *TABLE_KEY_ACTIONS)

        _acknowledge_wildcards(self, fn.role, api_function.role)


def _acknowledge_wildcards(lake: DataLake, ingest_role: iam.IRole | None, api_role: iam.IRole | None) -> None:
    """Object and table ARNs need wildcards: each is limited to one prefix or this database."""
    bucket = cast(cdk.CfnResource, lake.bucket.node.default_child).logical_id
    results = cast(cdk.CfnResource, lake.results.node.default_child).logical_id
    stack = cdk.Stack.of(lake)
    bucket_id = stack.resolve(bucket)
    results_id = stack.resolve(results)
    tables = (
        f"Resource::arn:<AWS::Partition>:glue:{stack.region}:<AWS::AccountId>:table/{lake.database_name}/*"
    )
    prefixes = {
        INCOMING: "departments drop files with names of their choosing under incoming/<resource>/; the function "
        "reads each one and deletes it once ingested (moved to processed/)",
        DATALAKE: "Parquet files are written under datalake/resource=<resource>/dt=<date>/ with generated names",
        REJECTS: "rejected rows are written as one generated file per batch under rejects/",
        REPORTS: "batch reports are written as one generated file per batch under reports/",
        PROCESSED: "ingested files are moved under processed/<resource>/ with the name they were dropped with",
    }
    if ingest_role is not None:
        for prefix, reason in prefixes.items():
            acknowledge(
                ingest_role,
                f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{prefix}*]",
                f"Data-lake ingest: {reason}; the wildcard is limited to that prefix of the data-lake bucket.",
            )
        acknowledge(
            ingest_role,
            f"AwsSolutions-IAM5[{tables}]",
            "Data-lake ingest creates and updates one Glue table per catalogue resource (names derived from "
            "resource codes, unknown at deploy time); limited to the data lake's own database.",
        )
    if api_role is not None:
        for prefix in (DATALAKE, REJECTS, REPORTS):
            acknowledge(
                api_role,
                f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{prefix}*]",
                f"The API ingests pushed batches and serves their reports: {prefixes[prefix]}; Athena reads "
                "the Parquet files with the API's credentials. Limited to that prefix of the data-lake bucket.",
            )
        acknowledge(
            api_role,
            f"AwsSolutions-IAM5[{tables}]",
            "Athena reads (and pushed batches create) one Glue table per catalogue resource, names unknown at "
            "deploy time; limited to the data lake's own database.",
        )
        acknowledge(
            api_role,
            f"AwsSolutions-IAM5[Resource::<{results_id}.Arn>/{RESULTS_PREFIX}*]",
            "Athena writes query results with generated names under athena/ in the results bucket with the "
            "caller's credentials; limited to that prefix.",
        )
