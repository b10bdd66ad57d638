"""Step 3 of the population merge workflow: reconcile, replace the resident counts, write the report.

Handler string: ``population_reduce.handler.handler``. Event: ``{"run_id", "started_at",
"sources": [step 1 results], "partitions": [step 2 results]}``; returns the reconciliation
(``balanced``: input rows = merged + queued + rejected) and the report's key.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from smartzone.observability import logger
from smartzone.repositories.population_runs import reduce_run
from smartzone.settings import get_settings


class ReduceEvent(BaseModel):
    run_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,80}$")
    started_at: str = ""
    sources: list[dict[str, Any]]
    partitions: list[dict[str, Any]]


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ReduceEvent.model_validate(event)
    settings = get_settings()
    result = reduce_run(
        bucket=settings.population_bucket,
        run_id=request.run_id,
        table_name=settings.table_name,
        sources=request.sources,
        partitions=request.partitions,
        started_at=request.started_at,
    )
    logger.info("merge run reconciled", extra={"run_id": result["run_id"], "balanced": result["balanced"]})
    if not result["balanced"]:
        raise RuntimeError(f"run {request.run_id} does not reconcile: {result['reconciliation']}")
    return result
