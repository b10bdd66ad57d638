"""The local merge run: import every source, spill rows to partitions, merge each, write results.

Memory is bounded by the largest partition, not by the input: rows are streamed from the files,
buffered per partition (at most ``FLUSH_ROWS`` each) and appended to spill files named by the
partition's hex prefix (never by an ID); then each partition is loaded and merged on its own
(:func:`smartzone.population.merge.merge_partition`, the same unit the cloud workflow fans out over).

Outputs in ``out``: ``golden.jsonl`` and ``reviews.jsonl`` (both PLAIN personal data: names,
phones, ID numbers of candidates and queued rows; local use only), ``rejects.jsonl``,
``report.json`` and ``summary.txt``.
"""

from __future__ import annotations

import json
import pickle
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from smartzone.population.classify import Classifier, Summary
from smartzone.population.merge import Decisions, apply_link, merge_partition, queue_item
from smartzone.population.models import (
    MergeReport,
    Reconciliation,
    Reject,
    ReviewItem,
    SourceRow,
    SourceStats,
    StewardDecision,
)
from smartzone.population.rules import Rules
from smartzone.population.sources import IdCache, SourceSpec, find_file, import_source

FLUSH_ROWS = 512

Progress = Callable[[int], None]
"""Called with the number of rows just processed."""


@dataclass
class RunResult:
    report: MergeReport
    out: Path
    golden_count: int = 0
    review_counts: dict[str, int] = field(default_factory=dict)


class Spill:
    """Per-partition spill files of pickled row batches."""

    def __init__(self, directory: Path, prefix: int) -> None:
        self.directory = directory
        self.prefix = prefix
        self.buffers: dict[str, list[SourceRow]] = {}
        directory.mkdir(parents=True, exist_ok=True)

    def add(self, row: SourceRow) -> None:
        part = row.id_key[: self.prefix]  # type: ignore[index]  # partition_of, inlined (hot path)
        buffer = self.buffers.get(part)
        if buffer is None:
            buffer = self.buffers[part] = []
        buffer.append(row)
        if len(buffer) >= FLUSH_ROWS:
            self._flush(part)

    def _flush(self, part: str) -> None:
        buffer = self.buffers.get(part)
        if buffer:
            with (self.directory / f"part-{part}.pkl").open("ab") as handle:
                pickle.dump([tuple(r) for r in buffer], handle, protocol=pickle.HIGHEST_PROTOCOL)
            buffer.clear()

    def close(self) -> list[str]:
        for part in list(self.buffers):
            self._flush(part)
        return sorted(p.stem.removeprefix("part-") for p in self.directory.glob("part-*.pkl"))

    def rows(self, part: str) -> list[SourceRow]:
        rows: list[SourceRow] = []
        with (self.directory / f"part-{part}.pkl").open("rb") as handle:
            while True:
                try:
                    batch = pickle.load(handle)
                except EOFError:
                    break
                rows.extend(SourceRow(*r) for r in batch)
        return rows


def run_merge(
    specs: list[SourceSpec],
    sources_dir: Path,
    out: Path,
    rules: Rules,
    secret: bytes,
    *,
    decisions: Iterable[StewardDecision] = (),
    classifier: Classifier | None = None,
    prefix: int = 2,
    today: date | None = None,
    progress: Progress | None = None,
) -> MergeReport:
    """Merge the source files of ``specs`` found in ``sources_dir``; write the outputs to ``out``."""
    started = datetime.now(UTC)
    clock = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    spill = Spill(out / ".spill", prefix)
    index = Decisions(decisions)
    cache = IdCache(secret, today or date.today())
    stats: list[SourceStats] = []
    queued = rejected = 0
    with (
        (out / "reviews.jsonl").open("w", encoding="utf-8") as reviews,
        (out / "rejects.jsonl").open("w", encoding="utf-8") as rejects,
    ):
        for spec in specs:
            path = find_file(spec, sources_dir)
            stat = SourceStats(source=spec.source, file=path.name if path else "")
            stats.append(stat)
            if path is None:
                continue
            pending = 0
            for item in import_source(spec, path, cache, stat):
                pending += 1
                if pending == 4096 and progress:
                    progress(pending)
                    pending = 0
                if isinstance(item, Reject):
                    rejected += 1
                    rejects.write(item.model_dump_json() + "\n")
                    continue
                if item.id_key is None and index.links:
                    item = apply_link(item, index.links, secret)
                if item.id_key is None:
                    queued += 1
                    reviews.write(queue_item(item).model_dump_json() + "\n")
                else:
                    spill.add(item)
            if progress and pending:
                progress(pending)
        parts = spill.close()
        counts: dict[str, int] = {"invalid_id": queued}
        kinds: dict[str, int] = {}
        summary = Summary()
        merged = golden_count = 0
        with (out / "golden.jsonl").open("wb") as golden:
            for part in parts:
                rows = spill.rows(part)
                result = merge_partition(rows, rules, index)
                merged += result.merged_rows
                for record in result.golden:
                    if classifier is not None:
                        record["classification"] = classifier.classify(record)
                        summary.add(record["classification"])
                    kinds[record["id_kind"]] = kinds.get(record["id_kind"], 0) + 1
                    golden.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
                golden_count += len(result.golden)
                for review in result.reviews:
                    counts[review.reason.value] = counts.get(review.reason.value, 0) + 1
                    reviews.write(review.model_dump_json() + "\n")
    shutil.rmtree(out / ".spill", ignore_errors=True)
    elapsed = time.perf_counter() - clock
    input_rows = sum(s.rows for s in stats)
    reconciliation = Reconciliation(
        input_rows=input_rows, merged_rows=merged, queued_rows=queued, rejected_rows=rejected
    )
    report = MergeReport(
        run_id=uuid.uuid4().hex[:12],
        rules_version=rules.version,
        started_at=started.isoformat().replace("+00:00", "Z"),
        finished_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        sources=stats,
        reconciliation=reconciliation,
        balanced=reconciliation.balanced,
        golden_records=golden_count,
        review_items=dict(sorted(counts.items())),
        id_kinds=dict(sorted(kinds.items())),
        partitions=len(parts),
        elapsed_s=round(elapsed, 3),
        rows_per_s=round(input_rows / elapsed, 1) if elapsed else 0.0,
        classification=summary.as_dict() if classifier else {},
    )
    write_report(report, out)
    return report


def write_report(report: MergeReport, out: Path) -> None:
    (out / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    (out / "summary.txt").write_text(human_summary(report), encoding="utf-8")


def human_summary(report: MergeReport) -> str:
    """A short text summary of a run (Chinese headings, numbers only: no personal data)."""
    r = report.reconciliation
    lines = [
        f"人口数据合并报告 run {report.run_id} · 规则版本 {report.rules_version}",
        f"输入行 {r.input_rows} = 已合并 {r.merged_rows} + 待审核 {r.queued_rows} + 拒收 {r.rejected_rows}"
        f" → {'平衡 balanced' if report.balanced else '不平衡 NOT BALANCED'}",
        f"标准人员记录 golden records: {report.golden_records}  分区 partitions: {report.partitions}",
        f"耗时 {report.elapsed_s:.1f} s, {report.rows_per_s:,.0f} rows/s",
        "审核事项 review items: " + ", ".join(f"{k} {v}" for k, v in report.review_items.items()),
        "证件类型 ID kinds: " + ", ".join(f"{k} {v}" for k, v in report.id_kinds.items()),
        "来源 sources:",
    ]
    for s in report.sources:
        problems = ", ".join(f"{k} {v}" for k, v in sorted(s.id_problems.items()))
        lines.append(
            f"  {s.source:<22} rows {s.rows:>8}  valid {s.valid_id:>8}  queued {s.queued:>6}"
            f"  rejected {s.rejected:>5}  15位 {s.converted_15:>5}  {problems}"
        )
    for key, counts in report.classification.items():
        lines.append(f"归类 {key}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if report.accuracy:
        lines.append("准确率 accuracy: " + json.dumps(report.accuracy, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_reviews(path: Path) -> list[ReviewItem]:
    return [ReviewItem.model_validate(r) for r in read_jsonl(path)]
