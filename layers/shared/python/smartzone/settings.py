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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once; tests call ``get_settings.cache_clear()``)."""
    return Settings()
