"""What the benchmarks share: the emulated-AWS environment, fresh-interpreter timings, results files."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def use_emulated_aws() -> None:
    """Environment for running the handlers in-process against moto (call before importing them)."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "cn-north-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "smartzone")


def subprocess_env() -> dict[str, str]:
    """This process's environment with the shared layer and the project on ``PYTHONPATH``."""
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'layers/shared/python'}{os.pathsep}{ROOT}"}


def import_ms(module: str, samples: int = 1) -> float:
    """Cold import time of ``module`` in a fresh interpreter (the median of ``samples`` runs)."""
    code = f"import time; t=time.perf_counter(); import {module}; print((time.perf_counter()-t)*1000)"
    times = []
    for _ in range(samples):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=subprocess_env(),
            cwd=ROOT,
            check=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return round(statistics.median(times), 1)


def peak_rss_mb() -> float:
    """Peak resident set of this process (``resource.getrusage`` maximum), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def as_json(figures: dict[str, Any]) -> str:
    return json.dumps(figures, indent=2, ensure_ascii=False)


def write_results(name: str, figures: dict[str, Any]) -> None:
    """``bench/results/<name>.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(as_json(figures) + "\n")
