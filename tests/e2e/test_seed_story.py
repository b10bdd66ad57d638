"""The seed story as `make run` tells it: alarm → one order → only its grid's worker notified → cleared."""

from __future__ import annotations

import pytest

from tools.demo import STORY_DEVICE, run_story


@pytest.fixture(scope="module")
def story():  # type: ignore[no-untyped-def]
    lines: list[str] = []
    return run_story(lines.append), lines


def test_given_mh0178_tilts_25_degrees_when_the_story_runs_then_one_order_for_its_grid(story) -> None:  # type: ignore[no-untyped-def]
    result, _ = story
    assert result.order_id.startswith("WO-") and STORY_DEVICE in result.order_id
    assert result.grid_id == "G07"
    assert result.order["device_id"] == STORY_DEVICE and result.order["category"] == "manhole_tilt"


def test_given_the_order_when_dispatched_then_only_its_grid_workers_receive_one_event_id(story) -> None:  # type: ignore[no-untyped-def]
    result, _ = story
    created = [d for d in result.deliveries if d.event_type == "order_created"]
    assert created, "the grid's workers were notified"
    assert {d.grid_id for d in created} == {"G07"}
    assert {d.event_id for d in created} == {f"{result.order_id}:v1"}
    assert len(created) == len({d.worker for d in created}), "each worker gets it once"
    assert len({d.worker for d in result.deliveries}) < result.workers, "other grids' workers got nothing"
    assert all("178号窨井盖" in d.text and "请立即查看并处置" in d.text for d in created)


def test_given_level_readings_for_the_clear_window_when_processed_then_the_order_shows_the_alarm_cleared(
    story,
) -> None:  # type: ignore[no-untyped-def]
    result, lines = story
    assert result.order["sensor_normal"] is True and result.order["version"] == 2
    assert [e["action"] for e in result.order["timeline"]] == ["raise", "alarm_cleared"]
    cleared = [d for d in result.deliveries if d.event_type == "alarm_cleared"]
    assert cleared and {d.grid_id for d in cleared} == {"G07"}
    assert any("ms]" in line for line in lines), "the story prints its timings"
