"""Classification (精准归类): residence, age bands, community / grid by address or location, care categories."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from smartzone.population.classify import Classifier, grids_from_district, load_config, summarise

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(ROOT / "events" / "population" / "classification.json")
DISTRICT = json.loads((ROOT / "events" / "seed" / "district.json").read_text(encoding="utf-8"))
CLASSIFIER = Classifier(CONFIG, date(2024, 6, 30), grids_from_district(DISTRICT))


def record(**values: str) -> dict[str, Any]:
    lineage = {"source": "t", "row": 1, "source_date": "2024-01-01", "rule": "most_recent", "candidates": 1}
    return {"fields": {k: {"value": v, "lineage": lineage} for k, v in values.items()}}


def test_given_a_local_hukou_when_classified_then_registered_otherwise_floating() -> None:
    assert (
        CLASSIFIER.classify(record(hukou_address="安徽省芜湖市示范高新区长江路1号"))["residence"]
        == "registered"
    )
    floating = record(hukou_address="江苏省苏州市东城区9号", address="示范高新区长江路8号江畔花园1栋101室")
    assert CLASSIFIER.classify(floating)["residence"] == "floating"
    assert CLASSIFIER.classify(record(residence_hint="floating"))["residence"] == "floating"
    assert CLASSIFIER.classify(record())["residence"] == "unknown"


def test_given_birth_dates_when_classified_then_age_and_band_are_on_the_as_of_date() -> None:
    assert CLASSIFIER.classify(record(birth_date="1944-06-30"))["age_band"] == "80+"
    older = CLASSIFIER.classify(record(birth_date="1944-07-01"))
    assert older["age"] == 79 and older["age_band"] == "60-79"
    assert CLASSIFIER.classify(record(birth_date="2020-01-01"))["age_band"] == "0-6"


def test_given_an_address_of_a_known_compound_when_classified_then_community_and_grid_follow() -> None:
    result = CLASSIFIER.classify(record(address="示范高新区长江路8号江畔花园1栋101室"))
    assert (result["community"], result["grid_id"], result["placed_by"]) == ("滨江社区", "G01", "address")
    assert CLASSIFIER.classify(record(address="别处某路1号"))["grid_id"] is None


def test_given_coordinates_when_classified_then_the_grid_polygon_decides_before_the_address() -> None:
    lon, lat = 118.305, 31.345  # inside G01's boundary (seed district)
    result = CLASSIFIER.classify(record(lon=str(lon), lat=str(lat), address="示范高新区学府路1号学府花园1栋"))
    assert (
        result["grid_id"] == "G01" and result["placed_by"] == "location" and result["community"] == "滨江社区"
    )


def test_given_care_rules_when_classified_then_categories_follow_the_configuration() -> None:
    elder = CLASSIFIER.classify(
        record(birth_date="1940-01-01", living_alone="true", disability_level="一级", low_income="true")
    )
    assert set(elder["categories"]) == {
        "elderly_living_alone",
        "oldest_old",
        "disabled",
        "severely_disabled",
        "low_income",
    }
    child = CLASSIFIER.classify(record(birth_date="2015-01-01", living_alone="false"))
    assert child["categories"] == ["minor"]


def test_given_classifications_when_summarised_then_counts_by_dimension_are_returned() -> None:
    summary = summarise([CLASSIFIER.classify(record(birth_date="2015-01-01")), CLASSIFIER.classify(record())])
    assert summary["age_band"] == {"7-17": 1, "None": 1} and summary["categories"] == {"minor": 1}
