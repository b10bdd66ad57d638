"""Population merge benchmark: ~1,000,000 synthetic rows in 16 tables merged on one core.

Generates (once, cached under ``.local/bench/``) a seeded population with
``tools/population_generate.py`` in a subprocess, then runs the full local pipeline in this
process (import, partition spill, merge, classification, outputs) and prints and writes
``bench/results/population.json``:

- ``rows``, ``persons``, ``golden_records``, ``balanced`` (input = merged + queued + rejected);
- ``wall_s`` / ``rows_per_s`` and ``cpu_s`` / ``rows_per_cpu_s`` (process CPU time: on a busy
  machine wall time includes waiting for the CPU);
- ``peak_rss_mb`` (``resource.getrusage`` maximum resident set; generation ran in another process),
  for the small and the large run;
- the small run has two XLSX tables (its accuracy covers that path); the large run is CSV only and
  ``xlsx_rows_per_cpu_s`` reports the XLSX reader's own rate (openpyxl read-only is several times
  slower per row than CSV);
- ``accuracy`` of the small run against its truth.

Run: ``make bench`` (or ``python -m bench.population [--persons N]``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.common import ROOT, peak_rss_mb, subprocess_env, write_results
from smartzone.population.accuracy import evaluate
from smartzone.population.classify import Classifier, grids_from_district, load_config
from smartzone.population.pipeline import read_jsonl, run_merge
from smartzone.population.readers import read_rows
from smartzone.population.rules import load_rules
from smartzone.population.sources import load_specs

CACHE = ROOT / ".local" / "bench"
EVENTS = ROOT / "events" / "population"
PERSONS_1M = 138_000  # ≈ 7.2 rows per person → ≈ 1,000,000 rows
SEED = 20261129
AS_OF = date(2024, 6, 30)
KEY = b"bench-only-hmac-key"
GENERATOR_VERSION = "g2"
"""Bump when tools/population_generate.py changes (the cached data sets are regenerated)."""


def dataset(persons: int, xlsx: bool) -> Path:
    directory = CACHE / f"population-{persons}-{SEED}-{GENERATOR_VERSION}{'' if xlsx else '-csv'}"
    if not (directory / "truth.json").exists():
        command = [sys.executable, "-m", "tools.population_generate", "--persons", str(persons)]
        command += ["--seed", str(SEED), "--out", str(directory)] + ([] if xlsx else ["--csv-only"])
        subprocess.run(command, check=True, cwd=ROOT, env=subprocess_env())
    return directory


def xlsx_rate(directory: Path) -> dict[str, Any]:
    """Rows per CPU-second of the XLSX reader alone (openpyxl read-only) on the small run's XLSX tables."""
    rows, cpu = 0, time.process_time()
    for path in sorted(directory.glob("*.xlsx")):
        _, cells = read_rows(path)
        rows += sum(1 for _ in cells)
    cpu = time.process_time() - cpu
    return {
        "xlsx_rows": rows,
        "xlsx_cpu_s": round(cpu, 2),
        "xlsx_rows_per_cpu_s": round(rows / cpu) if cpu else None,
    }


def run(persons: int, with_accuracy: bool, xlsx: bool) -> dict[str, Any]:
    sources = dataset(persons, xlsx)
    out = CACHE / f"population-out-{persons}"
    district = json.loads((ROOT / "events/seed/district.json").read_text(encoding="utf-8"))
    classifier = Classifier(load_config(EVENTS / "classification.json"), AS_OF, grids_from_district(district))
    wall, cpu = time.perf_counter(), time.process_time()
    report = run_merge(
        load_specs(EVENTS / "sources"), sources, out, load_rules(EVENTS / "rules.json"), KEY,
        classifier=classifier, today=AS_OF,
    )  # fmt: skip
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows = report.reconciliation.input_rows
    result: dict[str, Any] = {
        "persons": persons,
        "rows": rows,
        "golden_records": report.golden_records,
        "balanced": report.balanced,
        "queued_rows": report.reconciliation.queued_rows,
        "rejected_rows": report.reconciliation.rejected_rows,
        "review_items": report.review_items,
        "partitions": report.partitions,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "rows_per_s": round(rows / wall),
        "rows_per_cpu_s": round(rows / cpu),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "formats": "CSV + 2 XLSX tables" if xlsx else "CSV (16 tables)",
    }
    if xlsx:
        result.update(xlsx_rate(sources))
    if with_accuracy:
        truth = json.loads((sources / "truth.json").read_text(encoding="utf-8"))
        reviews = read_jsonl(out / "reviews.jsonl")
        queued = [(r["source"], r["row"]) for r in reviews if r["reason"] == "invalid_id"]
        rejects = [(r["source"], r["row"]) for r in read_jsonl(out / "rejects.jsonl")]
        result["accuracy"] = evaluate(truth, read_jsonl(out / "golden.jsonl"), queued, rejects)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="population merge benchmark")
    parser.add_argument("--persons", type=int, default=PERSONS_1M)
    args = parser.parse_args(argv)
    small = run(max(args.persons // 10, 100), with_accuracy=True, xlsx=True)
    large = run(args.persons, with_accuracy=False, xlsx=False)
    figures = {
        "target": "1,000,000 rows on one core well under 60 s of CPU, memory bounded",
        "load_average_1m": round(os.getloadavg()[0], 2),
        "small": small,
        "large": large,
        "memory_growth_mb": round(large["peak_rss_mb"] - small["peak_rss_mb"], 1),
    }
    write_results("population", figures)
    for name in ("small", "large"):
        r = figures[name]
        print(
            f"population {name}: {r['rows']:,} rows → {r['golden_records']:,} records in {r['wall_s']} s wall "
            f"({r['rows_per_s']:,} rows/s), {r['cpu_s']} s CPU ({r['rows_per_cpu_s']:,} rows/CPU-s), "
            f"peak RSS {r['peak_rss_mb']} MB, balanced={r['balanced']}"
        )
    accuracy = small["accuracy"]
    print(
        f"accuracy (small): linking precision {accuracy['linking']['precision']}, recall "
        f"{accuracy['linking']['recall']}, all fields right {accuracy['persons_all_fields_right']}"
    )


if __name__ == "__main__":
    main()
