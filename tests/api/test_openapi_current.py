"""The committed OpenAPI document (``docs/openapi.json``) is the one the routes generate, and served."""

from __future__ import annotations

import json

from tests.support.api import ApiClient
from tools.openapi import DEFAULT_PATH, main, render


def test_committed_openapi_document_is_current() -> None:
    committed = DEFAULT_PATH.read_text(encoding="utf-8") if DEFAULT_PATH.is_file() else ""

    assert committed == render(), "docs/openapi.json is stale: run `python -m tools.openapi`"


def test_served_document_is_the_generated_one(api_env) -> None:  # type: ignore[no-untyped-def]
    """Served without a token; equal to the committed file whenever that one is current."""
    response = ApiClient(None).get("/v1/openapi.json")

    assert response.status == 200
    assert response.body == json.loads(render())


def test_document_declares_bearer_jwt_and_the_error_shape() -> None:
    document = json.loads(render())

    assert document["servers"] == [{"url": "/"}]
    assert document["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "ID token of the platform's identity provider: `Authorization: Bearer <ID token>`",
    }
    for path, item in document["paths"].items():
        assert path.startswith("/v1/")
        for method, operation in item.items():
            assert {"400", "401", "404"} <= set(operation["responses"]), f"{method.upper()} {path}"


def test_check_mode_reports_a_stale_file(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "openapi.json"

    assert main(["--check", "--out", str(target)]) == 1
    assert main(["--out", str(target)]) == 0
    assert main(["--check", "--out", str(target)]) == 0
    target.write_text(target.read_text(encoding="utf-8").replace("SmartZone API", "Other"), encoding="utf-8")
    assert main(["--check", "--out", str(target)]) == 1
    assert "run `python -m tools.openapi`" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8").endswith("}\n")
