"""The command-centre dashboard: its state document, its server, and the page in headless Chromium."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.dashboard_server import (
    DashboardServer,
    SeedStateProvider,
    dashboard_state,
    demo_orders,
    order_counters,
)
from smartzone.domain.timeutil import from_iso, to_iso
from tests.support.browser import launch, sync_playwright_or_fail, watched_page

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / ".local" / "screenshots" / "dashboard.png"
NOW = from_iso("2026-11-29T06:05:00Z")  # 14:05 in Beijing


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def provider() -> SeedStateProvider:
    return SeedStateProvider()


@pytest.fixture
def server(provider: SeedStateProvider) -> Iterator[DashboardServer]:
    with DashboardServer(provider) as running:
        yield running


# -- the state document ----------------------------------------------------------------------------


def test_seed_state_has_the_district_map(provider: SeedStateProvider) -> None:
    state = provider()
    assert len(state["grids"]) == 12 and all(g["boundary"]["type"] == "Polygon" for g in state["grids"])
    assert len(state["devices"]) == 600 and {d["state"] for d in state["devices"]} == {"normal"}
    assert len(state["cameras"]) == 20
    assert {line["kind"] for line in state["lines"]} == {"road", "river"}
    assert state["labels"]["status"]["closed"] == "预警消除"
    assert state["labels"]["category"]["manhole_tilt"] == "窨井盖倾斜"
    assert state["orders"] == [] and state["counters"]["alarms_today"] == 0


def test_counters_from_orders() -> None:
    minute = 60_000
    orders = [
        {
            "order_id": "A",
            "category": "manhole_tilt",
            "status": "dispatched",
            "created_at": to_iso(NOW - 5 * minute),
        },
        {
            "order_id": "B",
            "category": "manhole_tilt",
            "status": "closed",
            "created_at": to_iso(NOW - 90 * minute),
            "closed_at": to_iso(NOW - 26 * minute),
        },  # 64 min: the district's real case
        {
            "order_id": "C",
            "category": "straw_burning",
            "status": "closed",
            "created_at": to_iso(NOW - 60 * minute),
            "closed_at": to_iso(NOW - 30 * minute),
        },
        {
            "order_id": "D",
            "category": "illegal_fishing",
            "status": "handling",
            "created_at": "2026-11-28T15:00:00Z",
        },  # 23:00 Beijing, yesterday
        {
            "order_id": "E",
            "category": "device_offline",
            "status": "cancelled",
            "created_at": to_iso(NOW - minute),
        },
    ]
    counters = order_counters(orders, NOW)
    assert counters == {
        "open_orders_by_category": {"manhole_tilt": 1, "illegal_fishing": 1},
        "alarms_today": 4,
        "median_alarm_to_clearance_s": (64 * 60 + 30 * 60) / 2,
        "covers_repaired": 1,
        "illegal_fishing_stopped": 0,
        "straw_burning_handled": 1,
    }


def test_device_states_follow_open_orders_unless_given(provider: SeedStateProvider) -> None:
    static = provider.static
    orders = [
        {
            "order_id": "A",
            "category": "manhole_tilt",
            "status": "handling",
            "subject": "MH-0178",
            "created_at": to_iso(NOW),
        },
        {
            "order_id": "B",
            "category": "device_offline",
            "status": "dispatched",
            "subject": "MH-0001",
            "created_at": to_iso(NOW),
        },
        {
            "order_id": "C",
            "category": "manhole_tilt",
            "status": "closed",
            "subject": "MH-0002",
            "created_at": to_iso(NOW),
        },
    ]
    state = dashboard_state(static, orders, device_states={"MH-0003": "maintenance"}, now=NOW)
    states = {d["device_id"]: d["state"] for d in state["devices"]}
    assert (states["MH-0178"], states["MH-0001"], states["MH-0002"], states["MH-0003"]) == (
        "alarm",
        "offline",
        "normal",
        "maintenance",
    )
    assert [o["order_id"] for o in state["orders"]] == ["A", "B", "C"]
    assert state["generated_at"] == "2026-11-29T06:05:00.000Z"


# -- the server ------------------------------------------------------------------------------------


def test_server_routes(server: DashboardServer) -> None:
    base = f"http://{server.host}:{server.port}"
    status, headers, body = _get(base + "/dashboard/")
    assert (
        status == 200 and headers["Content-Type"].startswith("text/html") and "指挥中心大屏".encode() in body
    )
    for name, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        status, headers, _ = _get(f"{base}/dashboard/{name}")
        assert status == 200 and headers["Content-Type"].startswith(kind)
    status, headers, body = _get(base + "/dashboard/state.json")
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert len(json.loads(body)["devices"]) == 600
    assert _get(base + "/")[0] == 200  # redirected to the page
    assert _get(base + "/dashboard/../pyproject.toml")[0] == 404
    assert _get(base + "/etc/passwd")[0] == 404


def test_a_failing_provider_answers_503_with_a_reason() -> None:
    def broken() -> dict[str, Any]:
        raise ConnectionError("table unreachable")

    with DashboardServer(broken) as server:
        status, _, body = _get(f"http://{server.host}:{server.port}/dashboard/state.json")
    assert status == 503
    assert json.loads(body) == {"error": "state_unavailable", "message": "ConnectionError: table unreachable"}


def test_the_page_uses_no_external_resource() -> None:
    for name in ("index.html", "dashboard.js", "dashboard.css"):
        text = (REPO / "infra" / "local" / "dashboard" / name).read_text(encoding="utf-8")
        for marker in ("http://", "https://", "//cdn", "@import", "url("):
            assert marker not in text.replace("http://www.w3.org/2000/svg", ""), (name, marker)


# -- the page in headless Chromium -----------------------------------------------------------------


def test_dashboard_in_headless_chromium(server: DashboardServer, provider: SeedStateProvider) -> None:

    for order in demo_orders()[1:]:
        provider.add_order(order)
    provider.device_states.update({"MH-0300": "offline", "MH-0301": "maintenance"})
    problems: list[str] = []
    with sync_playwright_or_fail() as playwright:
        browser = launch(playwright)
        try:
            page = watched_page(browser, problems)
            page.goto(server.url)

            # the seeded district: 600 covers, 12 grids, 20 cameras drawn from their coordinates
            page.wait_for_function("document.getElementById('map').dataset.covers === '600'", timeout=10_000)
            assert page.locator("#map circle.cover").count() == 600
            assert page.locator("#map .grid-area").count() == 12
            assert page.locator("#map .camera").count() == 20
            assert page.locator("#map circle.cover.offline").count() == 1
            assert page.locator("#map circle.cover.maintenance").count() == 1
            assert page.locator("#n-covers").inner_text() == "600"
            assert page.locator("#n-grids").inner_text() == "12"
            assert page.locator("#orders tr[data-order-id]").count() == 5
            assert page.locator("#conn").get_attribute("data-state") == "ok"

            # an order appears within seconds of being created, its cover turns red
            started = time.perf_counter()
            created = dict(
                demo_orders()[0], order_id="WO-178", created_at=to_iso(int(time.time() * 1000) - 65_000)
            )
            provider.add_order(created)
            row = page.locator('#orders tr[data-order-id="WO-178"]')
            row.wait_for(timeout=6_000)
            shown_after = time.perf_counter() - started
            print(f"\nnew order shown after {shown_after:.2f} s")
            assert shown_after < 5
            assert "窨井盖倾斜" in row.inner_text() and "已派单" in row.inner_text()
            assert row.locator(".elapsed").inner_text().startswith("1分")
            page.wait_for_function(
                "document.querySelector('[data-device-id=\"MH-0178\"]').getAttribute('data-state') === 'alarm'",
                timeout=6_000,
            )
            assert page.locator("#k-covers-repaired").inner_text().startswith("1")
            assert "窨井盖倾斜" in page.locator("#open-by-category").inner_text()

            # the order moves on: the stage follows
            provider.update_order("WO-178", status="handling")
            page.wait_for_function(
                "document.querySelector('tr[data-order-id=\"WO-178\"]').dataset.status === 'handling'",
                timeout=6_000,
            )
            assert "处置中" in row.inner_text()

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()
    assert problems == []
    assert SCREENSHOT.stat().st_size > 10_000
