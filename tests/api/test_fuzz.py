"""Fuzzing every operation of the generated OpenAPI document (schemathesis), in-process.

Requests go through the emulated API Gateway (``infra/local/gateway.py``) as a WSGI app, with a
dispatcher's real ID token from the (moto) user pool, to the API handler on emulated AWS. For each
operation: schema-valid requests (positive), schema-violating ones (negative) and, for operations
whose path names a seeded object (``order_id``, ``device_id``, ``grid_id``), requests against that
object. Every response must be no server error, have a documented status code and content type,
and match the documented schema for that status.

The operations are read from the document at collection time, so routes added later are fuzzed
too. Deterministic (``derandomize``) and bounded (``MAX_EXAMPLES`` per operation and mode).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from functions.api.app import openapi_document
from infra.local.gateway import LocalGateway
from tests.api.gateway_fixtures import bearer, make_pool
from tests.support.orders import cover, tilt_order

MAX_EXAMPLES = 25
DISPATCHER = "disp-01"
UPLOADS_BUCKET = "smartzone-uploads-fuzz"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
_METHODS = ("get", "put", "post", "patch", "delete")

DOCUMENT: dict[str, Any] = openapi_document()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = [
    (method.upper(), path)
    for path, item in sorted(DOCUMENT.get("paths", {}).items())
    for method in _METHODS
    if method in item
]


def _path_parameters(path: str, method: str) -> set[str]:
    item = DOCUMENT["paths"][path]
    parameters = [*item.get("parameters", []), *item[method.lower()].get("parameters", [])]
    return {p["name"] for p in parameters if p.get("in") == "path"}


@dataclass(frozen=True)
class World:
    gateway: LocalGateway
    token: str
    known_ids: dict[str, str]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """One emulated AWS for the whole module (as ``api_env`` sets it up, once: fuzzing is long).

    Holds the platform's resources, the uploads bucket, the cursor key, the dispatcher in the
    registry and in the user pool, and objects that exist (the seed story's cover, grid and order)
    so that fuzzing reaches past 404.
    """
    from moto import mock_aws

    from functions.api import context
    from infra.local.resources import create_local_resources
    from smartzone.domain.registry import Grid
    from smartzone.domain.users import UserProfile
    from smartzone.repositories.clients import client, reset_clients
    from smartzone.repositories.codec import to_item
    from smartzone.repositories.devices import DeviceRepository
    from smartzone.repositories.users import UserRepository
    from smartzone.repositories.workorders import order_item
    from smartzone.settings import get_settings

    def forget() -> None:
        reset_clients()
        get_settings.cache_clear()
        context.users.cache_clear()
        context.cursor_secret.cache_clear()

    with pytest.MonkeyPatch.context() as env, mock_aws():
        forget()
        resources = create_local_resources()
        for key, value in resources.environment().items():
            env.setenv(key, value)
        client("s3").create_bucket(
            Bucket=UPLOADS_BUCKET, CreateBucketConfiguration={"LocationConstraint": "cn-north-1"}
        )
        env.setenv("UPLOADS_BUCKET", UPLOADS_BUCKET)
        env.setenv("CURSOR_SECRET", "fuzz-cursor-secret")
        env.setenv("ID_HMAC_SECRET", "fuzz-id-hmac-secret")
        env.setenv("PERSONAL_DATA_LOCAL_KEY", base64.b64encode(b"f" * 32).decode())
        forget()
        UserRepository(resources.table_name).put(
            UserProfile(username=DISPATCHER, name="陈调度", roles=["dispatcher"])
        )
        device = cover()
        grid = Grid(grid_id=device.grid_id, name="高新三网格", community="高新社区")
        DeviceRepository(resources.table_name).put_many([device], [grid])
        order = tilt_order(device)
        client("dynamodb").put_item(TableName=resources.table_name, Item=to_item(order_item(order)))
        pool = make_pool()
        yield World(
            gateway=LocalGateway.for_user_pool(pool),
            token=pool.id_token(DISPATCHER),
            known_ids={"order_id": order.order_id, "device_id": device.device_id, "grid_id": device.grid_id},
        )
    forget()


def _fuzz(
    gateway: LocalGateway, token: str, method: str, path: str, mode: GenerationMode, **kwargs: Any
) -> None:
    operation = SCHEMA[path][method]
    headers = bearer(token)

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, **kwargs))
    def run(case: Any) -> None:
        response = case.call(app=gateway.wsgi, headers=headers)
        case.validate_response(
            response, checks=CHECKS, headers=headers, transport_kwargs={"app": gateway.wsgi}
        )

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_survives_fuzzing(world: World, method: str, path: str, mode: GenerationMode) -> None:
    _fuzz(world.gateway, world.token, method, path, mode)


KNOWN_PATH_OPERATIONS = [
    (m, p)
    for m, p in OPERATIONS
    if _path_parameters(p, m) and _path_parameters(p, m) <= {"order_id", "device_id", "grid_id"}
]


@pytest.mark.parametrize(
    ("method", "path"), KNOWN_PATH_OPERATIONS, ids=[f"{m} {p}" for m, p in KNOWN_PATH_OPERATIONS]
)
def test_operation_on_an_existing_object_survives_fuzzing(world: World, method: str, path: str) -> None:
    names = _path_parameters(path, method)
    known = {name: world.known_ids[name] for name in names}
    _fuzz(world.gateway, world.token, method, path, GenerationMode.POSITIVE, path_parameters=known)


def test_the_document_has_operations() -> None:
    assert OPERATIONS, "the OpenAPI document lists no operation"
