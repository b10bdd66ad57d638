"""Fixtures for tests through the emulated API Gateway with real, moto-issued ID tokens.

``pool``: a moto Cognito user pool (``infra/local/userpool.py``) with the API tests' people
(``tests/api/conftest.py``) as users in their groups; ``gateway``: the Cognito-shaped
``LocalGateway`` in front of the API handler. Import the fixtures into a test module by name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from infra.local.gateway import LocalGateway
from infra.local.userpool import LocalUserPool

POOL_USERS = {
    # username: (groups, grid)
    "disp-01": (("dispatcher",), None),
    "admin-01": (("admin",), None),
    "gw-g03-01": (("grid_worker",), "G03"),
    "tech-07": (("technician",), None),
    "nobody": ((), None),
}


class RosterPool(LocalUserPool):
    """A pool whose :data:`POOL_USERS` are created on their first sign-in (keeps setup fast)."""

    def tokens(self, username: str, *, client_id: str | None = None) -> Mapping[str, Any]:
        if username not in self.users and username in POOL_USERS:
            groups, grid = POOL_USERS[username]
            self.add_user(username, groups, grid_id=grid)
        return super().tokens(username, client_id=client_id)


def make_pool() -> LocalUserPool:
    """A user pool for :data:`POOL_USERS` (call inside ``mock_aws``)."""
    base = LocalUserPool.create()
    return RosterPool(pool_id=base.pool_id, client_id=base.client_id, region=base.region)


@pytest.fixture
def pool(api_env) -> Iterator[LocalUserPool]:  # type: ignore[no-untyped-def]
    yield make_pool()


@pytest.fixture
def gateway(pool: LocalUserPool) -> LocalGateway:
    return LocalGateway.for_user_pool(pool)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
