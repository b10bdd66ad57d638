"""Shared fixtures: a clean environment and an emulated AWS (moto) with the platform's resources."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("AWS_DEFAULT_REGION", "cn-north-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SECURITY_TOKEN", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
os.environ["POWERTOOLS_IDEMPOTENCY_DISABLED"] = "true"
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "SmartZone")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "smartzone")
os.environ.setdefault("POWERTOOLS_DEV", "false")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@pytest.fixture
def aws() -> Iterator[None]:
    """An empty emulated AWS account; boto3 clients are recreated inside it."""
    from moto import mock_aws

    from smartzone.repositories.clients import reset_clients
    from smartzone.settings import get_settings

    with mock_aws():
        reset_clients()
        get_settings.cache_clear()
        yield
    reset_clients()
    get_settings.cache_clear()


@pytest.fixture
def resources(aws: None, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The platform's table, queues and topic, with the functions' environment variables set."""
    from infra.local.resources import create_local_resources
    from smartzone.settings import get_settings

    res = create_local_resources()
    for key, value in res.environment().items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return res
