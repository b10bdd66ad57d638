"""The HTTP API's test environment on top of the emulated platform: used by the ``api_env`` fixture
(tests/api/conftest.py, one platform per test) and by module-wide platforms such as the forms
tests' ``forms_env``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from smartzone.domain.users import UserProfile

UPLOADS_BUCKET = "smartzone-uploads-test"
CURSOR_SECRET = "test-cursor-secret"


def clear_api_caches() -> None:
    """Forget the settings and the API's cached users and cursor key (read from the environment)."""
    from functions.api import context
    from smartzone.settings import get_settings

    get_settings.cache_clear()
    context.users.cache_clear()
    context.cursor_secret.cache_clear()


def prepare_api(table_name: str, env: pytest.MonkeyPatch, profiles: Iterable[UserProfile]) -> None:
    """What the API needs beyond the platform's resources: the uploads bucket, the cursor key and
    the people (``profiles``) in the user registry."""
    from smartzone.repositories.clients import client
    from smartzone.repositories.users import UserRepository

    client("s3").create_bucket(
        Bucket=UPLOADS_BUCKET, CreateBucketConfiguration={"LocationConstraint": "cn-north-1"}
    )
    env.setenv("UPLOADS_BUCKET", UPLOADS_BUCKET)
    env.setenv("CURSOR_SECRET", CURSOR_SECRET)
    clear_api_caches()
    registry = UserRepository(table_name)
    for profile in profiles:
        registry.put(profile)


@contextmanager
def emulated_platform() -> Iterator[tuple[Any, pytest.MonkeyPatch]]:
    """An emulated AWS account with the platform's resources and the functions' environment set,
    for set-ups wider than one test (the ``resources`` fixture is per test)."""
    from moto import mock_aws

    from infra.local.resources import create_local_resources
    from smartzone.repositories.clients import reset_clients
    from smartzone.settings import get_settings

    with mock_aws(), pytest.MonkeyPatch.context() as env:
        reset_clients()
        get_settings.cache_clear()
        resources = create_local_resources()
        for key, value in resources.environment().items():
            env.setenv(key, value)
        get_settings.cache_clear()
        yield resources, env
    reset_clients()
    get_settings.cache_clear()
