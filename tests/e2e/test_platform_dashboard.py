"""The command-centre dashboard (指挥中心大屏) of a started local platform, in headless Chromium.

The page loads from the platform's dashboard URL and draws the seeded district (600 covers,
12 grids); an MQTT tilt on MH-0042 then creates an order that appears on the page within
seconds: in the latest-orders list, and as the cover's alarm colour. A screenshot is saved to
``.local/screenshots/platform-dashboard.png``.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e.platform_fixtures import (
    Session,
    api_ok,
    minutes_ago,
    platform_fixture,
    publish,
    session_fixture,
)
from tests.support.browser import launch, sync_playwright_or_fail, watched_page

__all__ = ["platform_fixture", "session_fixture"]  # one platform for this module's tests

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / ".local" / "screenshots" / "platform-dashboard.png"
DEVICE = "MH-0042"  # 科技路, grid G05 (events/seed/district.json)
NEIGHBOUR = "MH-0043"  # keeps its state: the colour to compare with
ON_PAGE_S = 10.0
"""'Within seconds': from the MQTT PUBACK to the order on the page (the page polls every 2 s)."""
PATIENCE_S = 30.0
"""How long the test waits at most, so that a slow page fails with the time it took."""


def state_json(session: Session) -> dict[str, Any]:
    url = session["dashboard_url"].rstrip("/") + "/state.json"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200, url
        return dict(json.loads(response.read()))


def order_row_js(device_id: str) -> str:
    """JS: the latest-orders row whose subject cell is ``device_id`` (or null)."""
    return (
        "Array.from(document.querySelectorAll('#orders tr[data-order-id]'))"
        f".find(tr => tr.cells[2] && tr.cells[2].textContent.trim() === {json.dumps(device_id)}) || null"
    )


def cover_fill(page: Any, device_id: str) -> str:
    return str(
        page.evaluate(
            'id => getComputedStyle(document.querySelector(`#map [data-device-id="${id}"]`)).fill', device_id
        )
    )


def test_given_the_dashboard_when_mh0042_tilts_over_mqtt_then_its_order_appears_within_seconds(
    session: Session,
) -> None:

    # Given the platform's state document: the seeded district, no alarm, no order yet (without the
    # simulator no cover has reported, so all show as offline: never seen is offline)
    state = state_json(session)
    assert (len(state["devices"]), len(state["grids"])) == (600, 12)
    before = {d["device_id"]: d["state"] for d in state["devices"]}
    assert len(set(before.values())) == 1 and before[DEVICE] != "alarm", set(before.values())
    assert state["orders"] == []
    labels = state["labels"]

    problems: list[str] = []
    with sync_playwright_or_fail() as playwright:
        browser = launch(playwright)
        try:
            page = watched_page(browser, problems)
            # Given the page loaded from the platform: 600 covers and 12 grids drawn, connected
            page.goto(session["dashboard_url"])
            page.wait_for_function("document.getElementById('map').dataset.covers === '600'", timeout=10_000)
            assert page.locator("#map circle.cover").count() == 600
            assert page.locator("#map .grid-area").count() == 12
            assert page.locator("#n-covers").inner_text() == "600"
            assert page.locator("#n-grids").inner_text() == "12"
            assert page.locator(f"#n-{before[DEVICE]}").inner_text() == "600"
            assert page.locator("#n-alarm").inner_text() == "0"
            assert page.locator("#conn").get_attribute("data-state") == "ok"
            assert page.locator("#orders tr[data-order-id]").count() == 0
            before_fill = cover_fill(page, DEVICE)

            # When MH-0042 reports a tilt of 25.3° over MQTT
            publish(session, DEVICE, 25.3, ts=minutes_ago(1), battery=77)
            published = time.perf_counter()

            # Then its order appears in the latest-orders list within seconds, as dispatched
            page.wait_for_function(order_row_js(DEVICE), timeout=PATIENCE_S * 1000)
            shown_after = time.perf_counter() - published
            print(f"\norder for {DEVICE} on the page {shown_after:.2f} s after the MQTT PUBACK")
            row = page.locator("#orders tr[data-order-id]").filter(has_text=DEVICE)
            assert row.count() == 1
            order_id = row.get_attribute("data-order-id")
            assert row.get_attribute("data-status") == "dispatched"
            text = row.inner_text()
            assert labels["category"]["manhole_tilt"] in text and labels["status"]["dispatched"] in text, text
            assert "G05" in text, text

            # ... the same order the API gives the dispatcher
            orders = api_ok(session, "dispatcher-01", "GET", "/v1/workorders")["items"]
            assert [(o["order_id"], o["device_id"]) for o in orders] == [(order_id, DEVICE)]

            # ... and the cover turns to the alarm colour (the only one)
            page.wait_for_function(
                f"document.querySelector('#map [data-device-id=\"{DEVICE}\"]').getAttribute('data-state') === 'alarm'",
                timeout=PATIENCE_S * 1000,
            )
            assert page.locator("#map circle.cover.alarm").count() == 1
            assert page.locator("#n-alarm").inner_text() == "1"
            alarm_fill = cover_fill(page, DEVICE)
            assert alarm_fill != before_fill, f"alarm colour {alarm_fill} equals the colour before"
            assert cover_fill(page, NEIGHBOUR) == before_fill
            assert labels["category"]["manhole_tilt"] in page.locator("#open-by-category").inner_text()
            assert page.locator("#k-alarms-today").inner_text().startswith("1")

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()
    assert problems == [], problems
    assert SCREENSHOT.stat().st_size > 10_000
    assert shown_after < ON_PAGE_S, f"the order took {shown_after:.1f} s to appear on the page"
