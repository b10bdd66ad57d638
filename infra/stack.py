"""The SmartZone stack: composes the constructs and exports what operators and scripts need.

Configuration comes from CDK context (``-c key=value`` or ``cdk.json``), never from code:

| context key              | default      | meaning                                              |
|--------------------------|--------------|------------------------------------------------------|
| ``log_retention_days``   | 365          | retention of every log group (a CloudWatch value)    |
| ``log_level``            | INFO         | ``LOG_LEVEL`` and Lambda's application log level     |
| ``archive_expiry_days``  | 1095         | raw readings are deleted after this many days (>180) |
| ``access_log_expiry_days`` | 365        | S3 server access logs are deleted after this         |
| ``heartbeat_interval_s`` | 900          | ``HEARTBEAT_INTERVAL_S`` of the telemetry function   |
| ``max_reading_age_s``    | 604800       | ``MAX_READING_AGE_S``                                |
| ``max_future_skew_s``    | 300          | ``MAX_FUTURE_SKEW_S``                                |
| ``publish_attempts``     | 3            | ``PUBLISH_ATTEMPTS`` of the outbox function          |
| ``uploads_expiry_days``  | 731          | uploaded photos are deleted after this many days     |
| ``exports_expiry_days``  | 7            | form export files are deleted after this many days   |
| ``sweep_minutes``        | 5            | the sweeper runs every this many minutes (1–60)      |
| ``snapshots_expiry_days`` | 365         | detection snapshots and drone images are deleted after this |
| ``api_throttle_rate``    | 50           | stage-wide steady requests per second                |
| ``api_throttle_burst``   | 100          | stage-wide burst                                     |
| ``cors_origins``         | ``*``        | allowed browser origins, comma-separated (or a list) |
| ``authorizer_cache_s``   | 300          | API Gateway caches an authorizer answer this long    |
| ``oidc_issuer``          | –            | aws-cn only (required): the OIDC issuer URL          |
| ``oidc_jwks_url``        | –            | aws-cn only (required): the issuer's JWKS URL        |
| ``oidc_audience``        | –            | aws-cn only (required): the expected ``aud``         |
| ``dashboard_site``       | false        | host the command-centre dashboard (S3 + CloudFront)  |
| ``dashboard_domain``     | –            | global only: the site's alternate domain name        |
| ``dashboard_certificate_arn`` | –       | global only: its ACM certificate (us-east-1)         |
| ``removal_policy``       | retain       | ``retain`` or ``destroy`` (dev) for tables, buckets, keys, logs |
| ``inbox_ttl_days``       | 180          | in-app inbox entries expire after this many days     |
| ``audit_retention_days`` | 1096         | audit-log entries expire after this (at least 3 years) |
| ``env``                  | –            | ``dev``/``staging``/``prod`` presets (``infra/environments.py``) |
| ``ops_alarm_email``, ``alarm_*``, ``fleet_*`` | | alarm settings (``infra/constructs/monitoring.py``) |
| ``sharing_departments``, ``sharing_rate``, ``sharing_burst``, ``sharing_quota_per_day`` | 13 departments, 10, 20, 50000 | per-department usage plans on ``/v1/data`` (``infra/constructs/sharing.py``) |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from aws_cdk import region_info
from constructs import Construct

from infra.constructs.api import Api, ApiSettings
from infra.constructs.dashboard_site import (
    PARTITIONS_WITHOUT_CLOUDFRONT_OAC,
    DashboardSite,
    DashboardSiteSettings,
)
from infra.constructs.datalake import DataLake
from infra.constructs.detections import Detections, DetectionSettings
from infra.constructs.device_policy import DevicePolicy
from infra.constructs.forms import Forms
from infra.constructs.functions import FunctionSettings
from infra.constructs.identity import Identity, IdentitySettings
from infra.constructs.ingest import Ingest, TelemetrySettings
from infra.constructs.layers import Layers
from infra.constructs.monitoring import Monitoring, MonitoringSettings
from infra.constructs.notifications import Notifications, OutboxSettings
from infra.constructs.ops_dashboard import OpsDashboard
from infra.constructs.population import Population
from infra.constructs.sharing import DataSharing, SharingSettings
from infra.constructs.storage import INDEXES, Storage
from infra.constructs.sweeper import MAX_SWEEP_MINUTES, Sweeper
from infra.environments import REMOVAL_POLICIES, RemovalPolicies, removal_policy_of

RETENTION_DAYS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}
"""The retention periods CloudWatch Logs accepts, in days."""

LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "WARN", "ERROR"})

PARTITIONS_WITHOUT_XRAY = frozenset({"aws-cn"})
"""AWS China offers no X-Ray for Lambda (DESIGN.md: "Where it runs")."""
PARTITIONS_WITHOUT_COGNITO_USER_POOLS = frozenset({"aws-cn"})
"""AWS China has no Cognito user pools: the API uses a Lambda TOKEN authorizer there."""


def partition_of(region: str) -> str:
    partition = region_info.RegionInfo.get(region).partition
    if not partition:
        raise ValueError(f"unknown AWS region {region!r}")
    return partition


@dataclass(frozen=True)
class StackConfig:
    log_retention_days: int = 365
    log_level: str = "INFO"
    archive_expiry_days: int = 3 * 365
    access_log_expiry_days: int = 365
    heartbeat_interval_s: int = 900
    max_reading_age_s: int = 7 * 24 * 3600
    max_future_skew_s: int = 300
    publish_attempts: int = 3
    uploads_expiry_days: int = 731
    sweep_minutes: int = 5
    api_throttle_rate: float = 50.0
    api_throttle_burst: int = 100
    cors_origins: str = "*"
    authorizer_cache_s: int = 300
    oidc_issuer: str = ""
    oidc_jwks_url: str = ""
    oidc_audience: str = ""
    dashboard_site: bool = False
    dashboard_domain: str = ""
    dashboard_certificate_arn: str = ""
    exports_expiry_days: int = 7
    removal_policy: str = "retain"
    snapshots_expiry_days: int = 365
    inbox_ttl_days: int = 180
    audit_retention_days: int = 1096

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return tuple(origin.strip() for origin in self.cors_origins.split(",") if origin.strip())

    @classmethod
    def from_context(cls, node: Any) -> StackConfig:
        """Read every field from CDK context when present (strings from ``-c`` are converted)."""
        values: dict[str, Any] = {}
        for name, default in cls().__dict__.items():
            raw = node.try_get_context(name)
            if raw is None:
                continue
            if isinstance(raw, list | tuple) and isinstance(default, str):
                raw = ",".join(str(item) for item in raw)  # e.g. cors_origins as a list in cdk.json
            if isinstance(default, bool):
                values[name] = _flag(name, raw)
                continue
            try:
                values[name] = type(default)(raw)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"context {name}={raw!r} is not a valid {type(default).__name__}") from exc
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        if self.log_retention_days not in RETENTION_DAYS:
            raise ValueError(
                f"log_retention_days={self.log_retention_days} is not one of {sorted(RETENTION_DAYS)}"
            )
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(f"log_level={self.log_level!r} is not one of {sorted(LOG_LEVELS)}")
        if self.archive_expiry_days <= 180:
            raise ValueError(
                "archive_expiry_days must exceed 180 (raw readings move to Glacier after 180 days)"
            )
        if min(self.heartbeat_interval_s, self.max_reading_age_s, self.max_future_skew_s) <= 0:
            raise ValueError("telemetry intervals must be positive")
        if self.publish_attempts < 1:
            raise ValueError("publish_attempts must be at least 1")
        if self.uploads_expiry_days < 1:
            raise ValueError("uploads_expiry_days must be at least 1")
        if self.exports_expiry_days < 1:
            raise ValueError("exports_expiry_days must be at least 1")
        if self.snapshots_expiry_days < 1:
            raise ValueError("snapshots_expiry_days must be at least 1")
        if not 1 <= self.sweep_minutes <= MAX_SWEEP_MINUTES:
            raise ValueError(f"sweep_minutes must be between 1 and {MAX_SWEEP_MINUTES}")
        if self.api_throttle_rate <= 0 or self.api_throttle_burst < 1:
            raise ValueError("api_throttle_rate and api_throttle_burst must be positive")
        if not self.cors_origin_list:
            raise ValueError("cors_origins needs at least one origin ('*' for development)")
        for origin in self.cors_origin_list:
            if origin != "*" and not origin.startswith(("https://", "http://localhost", "http://127.0.0.1")):
                raise ValueError(f"cors origin {origin!r} must be '*', https://… or a localhost URL")
        if not 0 <= self.authorizer_cache_s <= 3600:
            raise ValueError("authorizer_cache_s must be between 0 and 3600 (API Gateway's limit)")
        if self.removal_policy not in REMOVAL_POLICIES:
            raise ValueError(f"removal_policy={self.removal_policy!r} is not one of {REMOVAL_POLICIES}")
        if self.inbox_ttl_days < 1:
            raise ValueError("inbox_ttl_days must be at least 1")
        if self.audit_retention_days < 1096:
            raise ValueError("audit_retention_days must be at least 1096 (the audit log is kept three years)")
        if bool(self.dashboard_domain) != bool(self.dashboard_certificate_arn):
            raise ValueError(
                "dashboard_domain and dashboard_certificate_arn go together: set both or neither"
            )


def _flag(name: str, raw: object) -> bool:
    """A boolean context value: JSON true/false from cdk.json, or "true"/"false" from ``-c``."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no", ""}:
        return False
    raise ValueError(f"context {name}={raw!r} is not true or false")


class SmartZoneStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StackConfig | None = None, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config or StackConfig.from_context(self.node)
        if cdk.Token.is_unresolved(self.region):
            raise ValueError(
                "the SmartZone stack needs a concrete region (context 'region' or CDK_DEFAULT_REGION)"
            )
        self.partition_name = partition_of(self.region)
        self.tracing = self.partition_name not in PARTITIONS_WITHOUT_XRAY
        self.use_cognito = self.partition_name not in PARTITIONS_WITHOUT_COGNITO_USER_POOLS
        self.dashboard_cdn = self.partition_name not in PARTITIONS_WITHOUT_CLOUDFRONT_OAC
        if self.config.dashboard_site and not self.dashboard_cdn and self.config.dashboard_domain:
            raise ValueError(
                f"dashboard_domain and dashboard_certificate_arn do not apply in {self.partition_name}: "
                "there the stack creates the dashboard's bucket and deployment but no CloudFront "
                "distribution (no origin access control in AWS China; serving needs an ICP-recorded "
                "domain). See docs/deploy.md, 'Hosting the dashboard (optional)'."
            )

        layers = Layers(self, "Layers")
        functions = FunctionSettings(
            tracing=self.tracing,
            log_retention=RETENTION_DAYS[self.config.log_retention_days],
            log_level=self.config.log_level,
            layers=layers.all,
        )
        self.storage = Storage(
            self,
            "Storage",
            archive_expiry=cdk.Duration.days(self.config.archive_expiry_days),
            access_log_expiry=cdk.Duration.days(self.config.access_log_expiry_days),
            uploads_expiry=cdk.Duration.days(self.config.uploads_expiry_days),
            cors_origins=self.config.cors_origin_list,
        )
        self.ingest = Ingest(
            self,
            "Ingest",
            key=self.storage.key,
            table=self.storage.table,
            archive_bucket=self.storage.archive,
            functions=functions,
            telemetry=TelemetrySettings(
                heartbeat_interval_s=self.config.heartbeat_interval_s,
                max_reading_age_s=self.config.max_reading_age_s,
                max_future_skew_s=self.config.max_future_skew_s,
            ),
        )
        self.notifications = Notifications(
            self,
            "Notifications",
            key=self.storage.key,
            table=self.storage.table,
            functions=functions,
            outbox=OutboxSettings(
                publish_attempts=self.config.publish_attempts, inbox_ttl_days=self.config.inbox_ttl_days
            ),
        )
        self.device_policy = DevicePolicy(self, "DevicePolicy")
        self.identity = Identity(
            self,
            "Identity",
            settings=IdentitySettings(
                use_cognito=self.use_cognito,
                cache_ttl_s=self.config.authorizer_cache_s,
                oidc_issuer=self.config.oidc_issuer,
                oidc_jwks_url=self.config.oidc_jwks_url,
                oidc_audience=self.config.oidc_audience,
            ),
            functions=functions,
        )
        self.api = Api(
            self,
            "Api",
            key=self.storage.key,
            table=self.storage.table,
            index_names=INDEXES,
            uploads=self.storage.uploads,
            topic=self.notifications.topic,
            identity=self.identity,
            functions=functions,
            settings=ApiSettings(
                throttle_rate=self.config.api_throttle_rate,
                throttle_burst=self.config.api_throttle_burst,
                cors_origins=self.config.cors_origin_list,
                audit_retention_days=self.config.audit_retention_days,
            ),
        )
        self.sharing = DataSharing(
            self,
            "DataSharing",
            rest_api=self.api.rest_api,
            api_function=self.api.function.function,
            identity=self.identity,
            validator=self.api.validator,
            settings=SharingSettings.from_context(self.node),
        )
        self.datalake = DataLake(
            self,
            "DataLake",
            key=self.storage.key,
            table=self.storage.table,
            access_logs=self.storage.access_logs,
            functions=functions,
            api_function=self.api.function.function,
        )
        self.sweeper = Sweeper(
            self,
            "Sweeper",
            key=self.storage.key,
            table=self.storage.table,
            functions=functions,
            sweep_minutes=self.config.sweep_minutes,
        )
        self.population = Population(
            self,
            "Population",
            key=self.storage.key,
            table=self.storage.table,
            index_names=INDEXES,
            access_logs=self.storage.access_logs,
            api_function=self.api.function,
            functions=functions,
        )
        self.forms = Forms(
            self,
            "Forms",
            key=self.storage.key,
            table=self.storage.table,
            access_logs=self.storage.access_logs,
            api_function=self.api.function,
            functions=functions,
            exports_expiry=cdk.Duration.days(self.config.exports_expiry_days),
        )

        self.detections = Detections(
            self,
            "Detections",
            key=self.storage.key,
            table=self.storage.table,
            access_logs=self.storage.access_logs,
            functions=functions,
            rest_api=self.api.rest_api,
            api_function=self.api.function.function,
            sweeper_function=self.sweeper.function.function,
            settings=DetectionSettings(
                snapshots_expiry_days=self.config.snapshots_expiry_days,
                max_future_skew_s=self.config.max_future_skew_s,
                max_reading_age_s=self.config.max_reading_age_s,
            ),
        )

        self.dashboard: DashboardSite | None = None
        if self.config.dashboard_site:
            self.dashboard = DashboardSite(
                self,
                "DashboardSite",
                access_logs=self.storage.access_logs,
                settings=DashboardSiteSettings(
                    with_cdn=self.dashboard_cdn,
                    domain=self.config.dashboard_domain,
                    certificate_arn=self.config.dashboard_certificate_arn,
                    access_log_expiry=cdk.Duration.days(self.config.access_log_expiry_days),
                ),
            )

        # Last: the alarms cover every function, queue, stream consumer, API and schedule built above.
        removal_policy = removal_policy_of(self.config.removal_policy)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=MonitoringSettings.from_context(self.node),
            removal_policy=removal_policy,
        )
        self.ops_dashboard = OpsDashboard(self, "OpsDashboard", monitoring=self.monitoring)
        cdk.Aspects.of(self).add(RemovalPolicies(removal_policy))

        outputs = {
            "OpsTopicArn": (
                self.monitoring.topic.topic_arn,
                "Operators' alarm topic (subscribe e-mail here)",
            ),
            "OpsDashboardName": (self.ops_dashboard.dashboard_name, "CloudWatch operations dashboard"),
            "DetectionsBufferQueueUrl": (
                self.detections.buffer.queue.queue_url,
                "IoT detection rules and the webhook to the detections function",
            ),
            "DetectionRejectsQueueUrl": (
                self.detections.rejects.queue.queue_url,
                "Bad detections, with reasons",
            ),
            "SnapshotsBucketName": (
                self.detections.snapshots.bucket_name,
                "Detection snapshots under snapshots/",
            ),
            "VendorKeysSecretArn": (
                self.detections.vendor_keys.secret_arn,
                "Webhook vendors' HMAC keys (JSON map)",
            ),
            "VendorUsagePlanId": (
                self.detections.usage_plan.usage_plan_id,
                "Usage plan for vendors' API keys",
            ),
            "DetectionSourcePolicyName": (
                self.detections.source_policy.ref,
                "IoT policy for camera and drone certificates",
            ),
            "TableName": (self.storage.table.table_name, "The single table"),
            "NotificationsTopicArn": (
                self.notifications.topic.topic_arn,
                "SNS topic grid workers subscribe to",
            ),
            "TelemetryBufferQueueUrl": (self.ingest.buffer.queue.queue_url, "IoT rule to telemetry function"),
            "TelemetryBufferDlqUrl": (
                self.ingest.buffer.dlq.queue_url,
                "Buffer messages that failed 5 times",
            ),
            "RuleErrorsQueueUrl": (self.ingest.errors.queue.queue_url, "IoT rule action failures"),
            "RejectsQueueUrl": (self.ingest.rejects.queue.queue_url, "Bad readings, with reasons"),
            "PublishRetryQueueUrl": (
                self.notifications.retry.queue.queue_url,
                "Events that failed to publish",
            ),
            "StreamFailuresQueueUrl": (
                self.notifications.failures.queue.queue_url,
                "Outbox stream batches that exhausted retries (metadata)",
            ),
            "ArchiveBucketName": (
                self.storage.archive.bucket_name,
                "Raw readings under raw/manhole/year=YYYY/month=MM/day=DD/",
            ),
            "DevicePolicyName": (self.device_policy.policy_name, "IoT policy for device certificates"),
            "TelemetryRuleName": (self.ingest.rule.ref, "IoT topic rule for manhole telemetry"),
            "ApiUrl": (self.api.url, "Base URL of the HTTP API (…/v1/)"),
            "UploadsBucketName": (self.storage.uploads.bucket_name, "Work-order photos under uploads/"),
            "PopulationBucketName": (
                self.population.bucket.bucket_name,
                "Population source tables (incoming/<batch>/), config/ and reports/",
            ),
            "PopulationWorkflowArn": (
                self.population.state_machine.state_machine_arn,
                'Population merge workflow (input {"batch": ...})',
            ),
            "ExportsBucketName": (self.forms.bucket.bucket_name, "Form exports (CSV/XLSX) under exports/"),
            "ExportJobsQueueUrl": (self.forms.queue.queue.queue_url, "Form export jobs"),
            "AuthorizerMode": (
                self.identity.mode,
                "cognito (user pool authorizer) or oidc-token (Lambda TOKEN authorizer, aws-cn)",
            ),
        }
        if self.identity.user_pool is not None and self.identity.client is not None:
            outputs["UserPoolId"] = (self.identity.user_pool.user_pool_id, "Cognito user pool of the API")
            outputs["UserPoolClientId"] = (
                self.identity.client.user_pool_client_id,
                "App client (no secret) for the mobile app and the command centre",
            )
        if self.dashboard is not None:
            outputs["DashboardBucketName"] = (self.dashboard.bucket.bucket_name, "The dashboard's files")
            if self.dashboard.url is not None:
                outputs["DashboardSiteUrl"] = (
                    self.dashboard.url,
                    "The command-centre dashboard (CloudFront)",
                )
        for output_id, (value, description) in outputs.items():
            cdk.CfnOutput(self, output_id, value=value, description=description)
