"""Settings read once from the environment (each Lambda's variables are set by the CDK stack)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a function needs to know about its environment.

    Field names map to upper-case environment variables (``table_name`` ← ``TABLE_NAME``).
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    table_name: str = "smartzone"
    rejects_queue_url: str = ""
    retry_queue_url: str = ""
    notifications_topic_arn: str = ""
    # Telemetry
    heartbeat_interval_s: int = 900
    """A normal reading writes the device's last-seen time at most once per this interval."""
    max_reading_age_s: int = 7 * 24 * 3600
    """Readings older than this (device time vs. now) are rejected as too old."""
    max_future_skew_s: int = 300
    """Readings more than this far in the future (device clock skew) are rejected."""
    # API
    uploads_bucket: str = ""
    cursor_secret: str = ""
    """Key that signs pagination cursors (locally); in the cloud read from ``cursor_secret_arn``."""
    cursor_secret_arn: str = ""
    max_body_bytes: int = 256 * 1024
    # Outbox
    publish_attempts: int = 3
    """Attempts to publish one event to SNS before it is parked in the retry queue."""
    inbox_ttl_days: int = 180
    """Inbox entries expire (DynamoDB TTL ``expires_at``) this many days after their event."""
    event_marker_ttl_days: int = 14
    """Per-event deduplication markers (``EVENT#<event_id>``) of the statistics expire after this:
    far longer than any redelivery (stream records live 24 h)."""

    # Sweeper
    incident_min_devices: int = 5
    """At least this many devices of one grid going offline in one sweep make one incident order."""
    sweep_limit: int = 500
    """Overdue orders escalated per sweeper run (the rest wait for the next run, earliest first)."""

    # Forms (issue 6, docs/forms.md)
    exports_bucket: str = ""
    """Private bucket of form exports (CSV/XLSX), fetched through short-lived presigned links."""
    exports_queue_url: str = ""
    """Queue of export jobs, consumed by the exports function."""

    # Detections (issue 5, docs/detections.md)
    detections_queue_url: str = ""
    """The detections buffer (the webhook puts vendors' detections there)."""
    snapshots_bucket: str = ""
    """Private bucket of detection snapshots and drone images (keys under ``snapshots/``)."""
    snapshot_link_ttl_s: int = 900
    """Presigned snapshot links in order details (and vendors' upload URLs) expire after this."""
    vendor_keys_secret_arn: str = ""
    """Secrets Manager secret: JSON map vendor id → HMAC key of the detections webhook."""
    vendor_keys: str = ""
    """Locally (no Secrets Manager): the same JSON map."""
    webhook_max_skew_s: int = 300
    """A webhook request's timestamp may differ from now by at most this (replays refused)."""
    route_fallback_m: float = 500.0
    """Routing by location: outside every grid, the nearest grid within this distance."""

    # Residents (issue 7) and the audit log
    audit_retention_days: int = 1096
    """Audit entries expire (DynamoDB TTL ``expires_at``) this many days after they were written
    (at least three years)."""
    id_hmac_secret: str = ""
    """Key of the ID-number HMAC (``id_key``) locally; in the cloud read from ``id_hmac_secret_arn``."""
    id_hmac_secret_arn: str = ""
    personal_data_key_id: str = ""
    """KMS key (ARN) that wraps the data keys of residents' personal fields (envelope encryption)."""
    personal_data_local_key: str = ""
    """Locally (no KMS): base64 of a 32-byte key that wraps the data keys instead."""
    population_bucket: str = ""
    """The private bucket of population source tables, partition files and reports."""

    # Data lake (issue 8): ingest and queries of department datasets (docs/datalake.md)
    datalake_bucket: str = ""
    """The private data-lake bucket (incoming/, datalake/, rejects/, reports/)."""
    query_engine: str = "duckdb"
    """``duckdb`` (embedded, over the Parquet files mirrored from the bucket) or ``athena``."""
    glue_database: str = ""
    athena_workgroup: str = ""
    athena_output: str = ""
    """The workgroup's result location (``s3://<results bucket>/athena/``): exports link to the file."""
    athena_timeout_s: int = 25
    """An Athena query still running after this is stopped (API Gateway answers within 29 s)."""
    datalake_cache_dir: str = "/tmp/smartzone-datalake"
    """Where the embedded engine mirrors Parquet files and spills (Lambda: ephemeral /tmp)."""
    datalake_memory_limit: str = "256MB"
    """DuckDB's memory limit for ingest and queries (it spills to the cache dir beyond it)."""
    # -- issue 8: data sharing ---------------------------------------------------------------------
    department_api_keys: str = ""
    """JSON map department id → API Gateway key id of the data routes' usage plans (set by the stack).
    A request with another department's key is refused; keys only throttle, never authenticate."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once; tests call ``get_settings.cache_clear()``)."""
    return Settings()
