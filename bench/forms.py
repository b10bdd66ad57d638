"""Forms benchmark: households surveyed, prefilled elsewhere, confirmed, then exported.

Runs the real API handler and exports function against emulated AWS (moto), in-process:
``HOUSEHOLDS`` household surveys (civil affairs), then for each household health's family-doctor
prefill and a sign-up confirming the shared facts. Prints and writes ``bench/results/forms.json``:
- ``own_ms_per_submission`` / ``own_ms_per_prefill``: time per request in our own code (the API
  handler in-process: routing, validation, JSON Schema, masking), time inside DynamoDB calls
  (the emulator: moto copies the whole table for every transaction item) subtracted;
- ``calls_per_submission`` / ``calls_per_prefill``: DynamoDB calls per request, by operation;
- ``prefill_ratio`` / ``confirmed_ratio``: what ``GET /v1/stats`` reports for the run;
- ``export_ms`` / ``export_bytes``: the CSV and XLSX export of all submissions.

Run: ``make bench`` (or ``python -m bench.forms``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from typing import Any

from moto import mock_aws

from bench.common import as_json, use_emulated_aws, write_results

use_emulated_aws()

HOUSEHOLDS = 40


class CallCounter:
    """DynamoDB calls by operation, and the time spent inside them (the emulator's time)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.inside_s = 0.0
        self._started = 0.0

    def __call__(self, model: Any, **_: Any) -> None:
        self.counts[model.name] += 1
        self._started = time.perf_counter()

    def done(self, **_: Any) -> None:
        self.inside_s += time.perf_counter() - self._started


def main() -> dict[str, Any]:
    with mock_aws():
        from smartzone.repositories.clients import client, reset_clients
        from smartzone.settings import get_settings

        reset_clients()
        from infra.local.resources import create_local_resources
        from tests.support.forms import EXPORTS_BUCKET, FORM_PEOPLE, ID_HMAC_SECRET, setup_forms

        resources = create_local_resources("bench")
        seeded = setup_forms(resources.table_name)
        from smartzone.repositories.users import UserRepository
        from tests.api.conftest import PROFILES

        for profile in PROFILES:
            UserRepository(resources.table_name).put(profile)
        os.environ.update(
            {
                **resources.environment(),
                "CURSOR_SECRET": "bench",
                "EXPORTS_BUCKET": EXPORTS_BUCKET,
                "EXPORTS_QUEUE_URL": seeded["queue_url"],
                "ID_HMAC_SECRET": ID_HMAC_SECRET,
                "UPLOADS_BUCKET": "",
            }
        )
        get_settings.cache_clear()
        from functions.exports.handler import process_job
        from smartzone.domain.idnumbers import check_char
        from smartzone.repositories.exports import ExportRepository
        from tests.support.api import ApiClient

        gw, health_gw, civil = (
            ApiClient(FORM_PEOPLE.gw_g03),
            ApiClient(FORM_PEOPLE.gw_g03),
            ApiClient(FORM_PEOPLE.civil),
        )
        counter = CallCounter()
        client("dynamodb").meta.events.register("before-call.dynamodb", counter)
        client("dynamodb").meta.events.register("after-call.dynamodb", counter.done)

        def timed(call: Any) -> tuple[Any, float, Counter[str]]:
            """The call's result, our own time (emulator subtracted) and its DynamoDB calls."""
            counter.counts.clear()
            counter.inside_s = 0.0
            start = time.perf_counter()
            result = call()
            return result, time.perf_counter() - start - counter.inside_s, Counter(counter.counts)

        submit_s = prefill_s = 0.0
        submit_calls: Counter[str] = Counter()
        prefill_calls: Counter[str] = Counter()
        for n in range(HOUSEHOLDS):
            first17 = f"11010219900101{n:03d}"
            resident = gw.post("/v1/subjects", {"id_number": first17 + check_char(first17)}).body["subject"]
            household = f"household:H-BENCH-{n:04d}"
            subjects = {"household": household, "resident": resident}
            survey = {
                "client_submission_id": str(uuid.uuid4()),
                "grid_id": "G03",
                "subjects": subjects,
                "values": {
                    "head_name": "张三丰",
                    "head_phone": f"138{n:08d}",
                    "household_size": 1 + n % 6,
                    "address": f"弋江区高新大道{n}号",
                    "low_income": n % 10 == 0,
                },
            }
            answer, seconds, calls = timed(
                lambda body=survey: gw.post("/v1/forms/household-survey/submissions", body)
            )
            assert answer.status == 201, answer.body
            submit_s += seconds
            submit_calls += calls
            _, seconds, calls = timed(
                lambda s=subjects: health_gw.get(
                    "/v1/forms/family-doctor-signup/prefill", subject=f"{s['household']},{s['resident']}"
                )
            )
            prefill_s += seconds
            prefill_calls += calls
            signup = {
                "client_submission_id": str(uuid.uuid4()),
                "grid_id": "G03",
                "subjects": subjects,
                "confirmed": ["name", "phone", "address", "family_members"],
                "values": {"doctor_team": "team-1"},
            }
            assert health_gw.post("/v1/forms/family-doctor-signup/submissions", signup).status == 201
        stats = ApiClient(FORM_PEOPLE.dispatcher).get("/v1/stats").body["prefill"]

        today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))
        exports: dict[str, dict[str, float]] = {}
        for fmt in ("csv", "xlsx"):
            job = civil.post(
                "/v1/forms/household-survey/exports", {"from": today, "to": today, "format": fmt}
            ).body
            start = time.perf_counter()
            process_job(job["export_id"])
            seconds = time.perf_counter() - start
            stored = ExportRepository(resources.table_name).get(job["export_id"])
            assert stored is not None and stored.object_key is not None
            size = client("s3").head_object(Bucket=EXPORTS_BUCKET, Key=stored.object_key)["ContentLength"]
            exports[fmt] = {
                "rows": float(stored.rows or 0),
                "ms": round(seconds * 1000, 1),
                "bytes": float(size),
            }

    results = {
        "households": HOUSEHOLDS,
        "own_ms_per_submission": round(submit_s / HOUSEHOLDS * 1000, 2),
        "own_ms_per_prefill": round(prefill_s / HOUSEHOLDS * 1000, 2),
        "calls_per_submission": {k: round(v / HOUSEHOLDS, 2) for k, v in sorted(submit_calls.items())},
        "calls_per_prefill": {k: round(v / HOUSEHOLDS, 2) for k, v in sorted(prefill_calls.items())},
        "prefill_ratio": stats["total"]["prefill_ratio"],
        "confirmed_ratio": stats["total"]["confirmed_ratio"],
        "by_form": {k: v["prefill_ratio"] for k, v in stats["by_form"].items()},
        "exports": exports,
    }
    print(as_json(results))
    write_results("forms", results)
    return results


if __name__ == "__main__":
    main()
