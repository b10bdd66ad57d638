"""The local merge over a generated 16-table population with known truth (small: ~2,000 rows)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from smartzone.domain.idnumbers import id_key
from smartzone.population.models import GoldenRecord, MergeReport
from smartzone.population.pipeline import read_jsonl
from tools import population_generate, population_merge

PERSONS = 300
SEED = 5


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    directory = tmp_path_factory.mktemp("population")
    truth = population_generate.generate(PERSONS, SEED, directory)
    return directory, truth


@pytest.fixture(scope="module")
def merged(generated: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    sources, _ = generated
    out = tmp_path_factory.mktemp("merged")
    argv = ["--sources", str(sources), "--out", str(out), "--truth", str(sources / "truth.json")]
    assert population_merge.main([*argv, "--as-of", "2024-06-30", "--no-progress", "--prefix", "1"]) == 0
    return out


def report_of(out: Path) -> MergeReport:
    return MergeReport.model_validate_json((out / "report.json").read_text(encoding="utf-8"))


def test_given_generated_tables_when_written_then_16_sources_in_csv_and_xlsx_with_errors_exist(
    generated: tuple[Path, dict[str, Any]],
) -> None:
    sources, truth = generated
    files = sorted(p.name for p in sources.iterdir() if p.suffix in (".csv", ".xlsx"))
    assert len(files) == 16 and {"police_hukou.xlsx", "visit_2023.xlsx"} <= set(files)
    outcomes = "".join(r["outcome"] for r in truth["rows"].values())
    assert outcomes.count("q") > 0 and outcomes.count("m") > 1500
    assert (sources / "census_2010.csv").read_bytes().decode("gb18030").startswith("身份证号码")


def test_given_the_same_seed_when_generated_again_then_the_data_is_identical(tmp_path: Path) -> None:
    first = population_generate.generate(20, 9, tmp_path / "a", xlsx=())
    second = population_generate.generate(20, 9, tmp_path / "b", xlsx=())
    assert first == second
    assert (tmp_path / "a" / "census_2020.csv").read_bytes() == (
        tmp_path / "b" / "census_2020.csv"
    ).read_bytes()


def test_given_a_run_when_reported_then_input_rows_reconcile_to_merged_queued_and_rejected(
    merged: Path,
) -> None:
    report = report_of(merged)
    r = report.reconciliation
    assert report.balanced and r.input_rows == r.merged_rows + r.queued_rows + r.rejected_rows
    assert r.queued_rows > 0 and report.review_items["invalid_id"] == r.queued_rows
    assert len(report.sources) == 16 and report.golden_records == PERSONS
    summary = (merged / "summary.txt").read_text(encoding="utf-8")
    assert "平衡 balanced" in summary and "golden records" in summary


def test_given_known_truth_when_merged_then_every_valid_id_person_has_one_correct_record(
    merged: Path,
) -> None:
    accuracy = report_of(merged).accuracy
    assert accuracy is not None
    assert accuracy["linking"]["precision"] == 1.0 and accuracy["linking"]["recall"] == 1.0
    assert accuracy["persons"]["exactly_one_record"] == accuracy["persons"]["with_valid_id"] == PERSONS
    assert accuracy["persons"]["split_or_missing"] == 0 and accuracy["persons"]["records_of_unknown_ids"] == 0
    assert set(accuracy["golden_fields"].values()) == {1.0}
    assert (
        accuracy["queue"]["expected_and_queued"]
        == accuracy["queue"]["expected"]
        == accuracy["queue"]["queued"]
    )
    assert accuracy["queue"]["rejects_found"] == accuracy["queue"]["expected_rejects"]
    assert accuracy["classification"] == {"residence": 1.0, "grid": 1.0}


def test_given_golden_records_when_read_then_they_validate_and_carry_full_lineage(merged: Path) -> None:
    for data in read_jsonl(merged / "golden.jsonl"):
        record = GoldenRecord.model_validate(data)
        assert record.id_key == id_key(record.id_number, population_merge.DEV_KEY)
        assert record.sources and record.classification["residence"] in ("registered", "floating")
        for field in record.fields.values():
            assert field.lineage.source and field.lineage.row >= 1 and field.lineage.rule


def test_given_invalid_rows_when_merged_then_queued_with_reasons_and_no_plain_id_in_outputs_or_report(
    merged: Path, generated: tuple[Path, dict[str, Any]]
) -> None:
    items = [r for r in read_jsonl(merged / "reviews.jsonl") if r["reason"] == "invalid_id"]
    assert items and all(r["details"] and r["source"] and r["row"] for r in items)
    _, truth = generated
    some_ids = [p["id_number"] for p in truth["persons"][:50]]
    for name in ("report.json", "summary.txt", "rejects.jsonl"):
        text = (merged / name).read_text(encoding="utf-8")
        assert not any(number in text for number in some_ids), name


def test_given_steward_decisions_when_re_run_then_they_survive_and_linked_rows_merge(
    generated: tuple[Path, dict[str, Any]], merged: Path, tmp_path: Path
) -> None:
    sources, _ = generated
    golden = read_jsonl(merged / "golden.jsonl")
    queued = next(r for r in read_jsonl(merged / "reviews.jsonl") if r["reason"] == "invalid_id")
    target = golden[0]
    decisions = [
        {"decision_id": "d1", "action": "set_field", "id_key": target["id_key"], "field": "phone",
         "value": "13000000000", "steward": "steward-01", "decided_at": "2026-11-29T01:00:00Z"},
        {"decision_id": "d2", "action": "link_row", "source": queued["source"], "row": queued["row"],
         "id_key": target["id_key"], "id_number": target["id_number"], "steward": "steward-01",
         "decided_at": "2026-11-29T01:01:00Z"},
    ]  # fmt: skip
    path = tmp_path / "decisions.json"
    path.write_text(json.dumps(decisions), encoding="utf-8")
    for run in ("one", "two"):
        out = tmp_path / run
        argv = ["--sources", str(sources), "--out", str(out), "--decisions", str(path)]
        assert population_merge.main([*argv, "--as-of", "2024-06-30", "--no-progress", "--prefix", "1"]) == 0
        record = next(g for g in read_jsonl(out / "golden.jsonl") if g["id_key"] == target["id_key"])
        assert record["fields"]["phone"]["value"] == "13000000000"
        assert record["fields"]["phone"]["lineage"]["rule"] == "steward_decision"
        assert {"source": queued["source"], "row": queued["row"]} in [
            {"source": s["source"], "row": s["row"]} for s in record["sources"]
        ]
        report = report_of(out)
        assert (
            report.balanced
            and report.reconciliation.queued_rows == report_of(merged).reconciliation.queued_rows - 1
        )


def test_given_a_key_in_the_environment_when_merging_then_it_keys_the_records(
    generated: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTZONE_ID_HMAC_KEY", b"another-key".hex())
    assert population_merge.secret_of(None) == (b"another-key", False)
    monkeypatch.delenv("SMARTZONE_ID_HMAC_KEY")
    assert population_merge.secret_of(None) == (population_merge.DEV_KEY, True)
    assert os.environ.get("SMARTZONE_ID_HMAC_KEY") is None
