"""The cloud merge workflow's three steps, over S3 and the table (the Lambdas are thin wrappers).

Bucket layout (the private population bucket, SSE-KMS with the stack's key):

- ``config/sources/<source>.json`` the declarative mappings, ``config/rules.json`` the
  survivorship rules, ``config/classification.json`` the classification rules and optionally
  ``config/district.json`` (grid polygons) — uploaded by ``tools/population_upload.py``;
- ``incoming/<batch>/<file>.csv|.xlsx`` the source tables of one delivery;
- ``work/<run_id>/rows/p=<hh>/<source>.jsonl.gz`` imported rows by ID-key partition (PLAIN
  personal data: the prefix expires after a few days; names carry no ID, only the hex prefix of
  the keyed HMAC), ``work/<run_id>/rejects/<source>.jsonl`` (reasons, no values),
  ``work/<run_id>/counts/p=<hh>.json`` per-partition counts;
- ``reports/<run_id>.json`` the reconciliation report.

Steps: :func:`partition_source` (one per mapping, Distributed Map 1) streams one source file
from local disk (downloaded to /tmp: memory independent of file size) through the import,
queues rows without a valid ID as review items and spills the rest by partition;
:func:`merge_partition_step` (one per partition, Distributed Map 2) merges, classifies and writes
golden records and review items; :func:`reduce_run` sums up, replaces the count items and
writes the report. No function logs a value or an ID.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections import Counter
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from smartzone.domain.residents import resident_from_golden
from smartzone.population.classify import Classifier, grids_from_district, load_config
from smartzone.population.merge import Decisions, apply_link, merge_partition, partition_of, queue_item
from smartzone.population.models import (
    GoldenRecord,
    MergeReport,
    Reconciliation,
    Reject,
    SourceRow,
    SourceStats,
)
from smartzone.population.rules import Rules
from smartzone.population.sources import TABLE_SUFFIXES, IdCache, SourceSpec, import_source
from smartzone.repositories.clients import client
from smartzone.repositories.residents import ResidentRepository, counts_of

PREFIX_CHARS = 2
PARTITIONS = 16**PREFIX_CHARS
CONFIG_PREFIX = "config/"
MAPPINGS_PREFIX = "config/sources/"
INCOMING_PREFIX = "incoming/"


def partition_name(number: int) -> str:
    return f"{number:0{PREFIX_CHARS}x}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _get_json(bucket: str, key: str) -> Any:
    return json.loads(client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def _put_json(bucket: str, key: str, value: Any) -> None:
    client("s3").put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(value, ensure_ascii=False).encode(),
        ContentType="application/json",
    )


def _keys(bucket: str, prefix: str) -> list[str]:
    found: list[str] = []
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [str(o["Key"]) for o in page.get("Contents", [])]
    return found


def _source_object(bucket: str, batch: str, spec: SourceSpec) -> str | None:
    present = set(_keys(bucket, f"{INCOMING_PREFIX}{batch}/{spec.file}"))
    for suffix in TABLE_SUFFIXES:
        key = f"{INCOMING_PREFIX}{batch}/{spec.file}{suffix}"
        if key in present:
            return key
    return None


# -- step 1: partition one source ---------------------------------------------------------------------
def partition_source(
    *,
    bucket: str,
    mapping_key: str,
    batch: str,
    run_id: str,
    table_name: str,
    secret: bytes,
    today: date | None = None,
) -> dict[str, Any]:
    """Import one source table and spill its valid rows by partition; returns its statistics."""
    spec = SourceSpec.model_validate(_get_json(bucket, mapping_key))
    key = _source_object(bucket, batch, spec)
    stats = SourceStats(source=spec.source, file=key.rsplit("/", 1)[-1] if key else "")
    queued = rejected = 0
    if key is None:
        return {"source": spec.source, "stats": stats.model_dump(), "queued": 0, "rejected": 0, "spilled": 0}
    repo = ResidentRepository(table_name)
    links = Decisions(repo.decisions()).links
    with tempfile.TemporaryDirectory() as work:
        local = Path(work) / key.rsplit("/", 1)[-1]
        client("s3").download_file(bucket, key, str(local))
        spill_dir = Path(work) / "parts"
        spill_dir.mkdir()
        handles: dict[str, Any] = {}
        rejects, reviews = [], []
        spilled = 0
        try:
            for item in import_source(spec, local, IdCache(secret, today or date.today()), stats):
                if isinstance(item, Reject):
                    rejected += 1
                    rejects.append(item.model_dump())
                    continue
                row = item
                if row.id_key is None and links:
                    row = apply_link(row, links, secret)
                if row.id_key is None:
                    queued += 1
                    reviews.append(queue_item(row))
                    if len(reviews) >= 500:
                        repo.write_reviews(reviews, _now())
                        reviews.clear()
                    continue
                part = partition_of(row.id_key, PREFIX_CHARS)
                handle = handles.get(part)
                if handle is None:
                    handle = handles[part] = gzip.open(  # noqa: SIM115 - one per partition, closed below
                        spill_dir / f"{part}.jsonl.gz", "wt", encoding="utf-8"
                    )
                handle.write(json.dumps(list(row), ensure_ascii=False) + "\n")
                spilled += 1
        finally:
            for handle in handles.values():
                handle.close()
        if reviews:
            repo.write_reviews(reviews, _now())
        for part in sorted(handles):
            client("s3").upload_file(
                str(spill_dir / f"{part}.jsonl.gz"),
                bucket,
                f"work/{run_id}/rows/p={part}/{spec.source}.jsonl.gz",
            )
    if rejects:
        body = "\n".join(json.dumps(r, ensure_ascii=False) for r in rejects).encode()
        client("s3").put_object(Bucket=bucket, Key=f"work/{run_id}/rejects/{spec.source}.jsonl", Body=body)
    return {
        "source": spec.source,
        "stats": stats.model_dump(),
        "queued": queued,
        "rejected": rejected,
        "spilled": spilled,
    }


# -- step 2: merge one partition ------------------------------------------------------------------------
def _rows(bucket: str, key: str) -> list[SourceRow]:
    raw = gzip.decompress(client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()).decode("utf-8")
    rows = []
    for line in raw.splitlines():
        if line:
            values = json.loads(line)
            values[7] = tuple(values[7])
            rows.append(SourceRow(*values))
    return rows


@lru_cache(maxsize=4)
def classifier_from(bucket: str, as_of: date) -> Classifier:
    """The classification rules (and grid polygons) of the bucket's config, read once per process."""
    config_keys = set(_keys(bucket, CONFIG_PREFIX))
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "classification.json"
        client("s3").download_file(bucket, f"{CONFIG_PREFIX}classification.json", str(path))
        config = load_config(path)
    grids = None
    if f"{CONFIG_PREFIX}district.json" in config_keys:
        grids = grids_from_district(_get_json(bucket, f"{CONFIG_PREFIX}district.json"))
    return Classifier(config, as_of, grids)


@lru_cache(maxsize=4)
def rules_from(bucket: str) -> Rules:
    """The survivorship rules of the bucket's config, read once per process."""
    return Rules.model_validate(_get_json(bucket, f"{CONFIG_PREFIX}rules.json"))


def merge_partition_step(
    *, bucket: str, partition: int | str, run_id: str, table_name: str, as_of: date | None = None
) -> dict[str, Any]:
    """Merge one partition's rows; write its golden records, review items and counts."""
    part = partition if isinstance(partition, str) else partition_name(partition)
    keys = _keys(bucket, f"work/{run_id}/rows/p={part}/")
    rows = [row for key in sorted(keys) for row in _rows(bucket, key)]
    if not rows:
        _put_json(bucket, f"work/{run_id}/counts/p={part}.json", {})
        return {"partition": part, "merged_rows": 0, "golden": 0, "reviews": {}}
    rules = rules_from(bucket)
    repo = ResidentRepository(table_name)
    result = merge_partition(rows, rules, repo.decisions())
    classifier = classifier_from(bucket, as_of or date.today())
    at = _now()
    residents = []
    for data in result.golden:
        record = GoldenRecord.model_validate(data)
        record.classification = classifier.classify(record)
        residents.append(resident_from_golden(record, run_id=run_id, at=at))
    written = repo.write_residents(residents)  # skips erased residents (tombstones)
    review_outcome = repo.write_reviews(result.reviews, at)  # skips erased residents' items too
    _put_json(bucket, f"work/{run_id}/counts/p={part}.json", dict(counts_of(written)))
    return {
        "partition": part,
        "merged_rows": result.merged_rows,
        "golden": len(written),
        "skipped_erased": len(residents) - len(written),
        "reviews": dict(Counter(r.reason.value for r in result.reviews)),
        "review_writes": review_outcome,
    }


# -- step 3: reduce --------------------------------------------------------------------------------------
def reduce_run(
    *,
    bucket: str,
    run_id: str,
    table_name: str,
    sources: list[dict[str, Any]],
    partitions: list[dict[str, Any]],
    rules_version: str = "",
    started_at: str = "",
) -> dict[str, Any]:
    """Sum the steps' results, replace the resident counts, write and return the report."""
    counts: Counter[str] = Counter()
    for key in _keys(bucket, f"work/{run_id}/counts/"):
        counts.update(_get_json(bucket, key))
    ResidentRepository(table_name).replace_counts(dict(counts))
    stats = [SourceStats.model_validate(s["stats"]) for s in sources]
    reviews: Counter[str] = Counter()
    for p in partitions:
        reviews.update(p.get("reviews") or {})
    queued = sum(int(s["queued"]) for s in sources)
    if queued:
        reviews["invalid_id"] += queued
    reconciliation = Reconciliation(
        input_rows=sum(s.rows for s in stats),
        merged_rows=sum(int(p["merged_rows"]) for p in partitions),
        queued_rows=queued,
        rejected_rows=sum(int(s["rejected"]) for s in sources),
    )
    finished = _now()
    report = MergeReport(
        run_id=run_id,
        rules_version=rules_version
        or str(_get_json(bucket, f"{CONFIG_PREFIX}rules.json").get("version", "")),
        started_at=started_at or finished,
        finished_at=finished,
        sources=sorted(stats, key=lambda s: s.source),
        reconciliation=reconciliation,
        balanced=reconciliation.balanced,
        golden_records=sum(int(p["golden"]) for p in partitions),
        review_items=dict(sorted(reviews.items())),
        id_kinds={},
        partitions=sum(1 for p in partitions if p["merged_rows"]),
        elapsed_s=0.0,
        rows_per_s=0.0,
        classification={},
    )
    _put_json(bucket, f"reports/{run_id}.json", report.model_dump(mode="json"))
    return {
        "run_id": run_id,
        "report_key": f"reports/{run_id}.json",
        "balanced": report.balanced,
        "reconciliation": reconciliation.model_dump(),
        "golden_records": report.golden_records,
    }
