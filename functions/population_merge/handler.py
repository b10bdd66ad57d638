"""Step 2 of the population merge workflow (one invocation per ID-key partition, Distributed Map 2).

Handler string: ``population_merge.handler.handler``. Event: ``{"partition": 0..255, "run_id"}``.
Runs the merge engine (:func:`smartzone.population.merge.merge_partition`, steward decisions
first) over the partition's rows, classifies the golden records and writes them, sealed, with the
review items (:func:`smartzone.repositories.population_runs.merge_partition_step`).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from smartzone.observability import logger
from smartzone.repositories.population_runs import PARTITIONS, merge_partition_step
from smartzone.settings import get_settings


class MergeEvent(BaseModel):
    partition: int = Field(ge=0, lt=PARTITIONS)
    run_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,80}$")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = MergeEvent.model_validate(event)
    settings = get_settings()
    result = merge_partition_step(
        bucket=settings.population_bucket,
        partition=request.partition,
        run_id=request.run_id,
        table_name=settings.table_name,
    )
    logger.info("partition merged", extra={k: result[k] for k in ("partition", "merged_rows", "golden")})
    return result
