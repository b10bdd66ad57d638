"""Step 1 of the population merge workflow (one invocation per source mapping, Distributed Map 1).

Handler string: ``population_partition.handler.handler``. Event (the map's item selector):
``{"mapping_key": "config/sources/<source>.json", "batch": "<delivery>", "run_id": "<execution>"}``.
Imports the source table of the delivery, queues rows without a valid ID as review items and
spills the others to ``work/<run_id>/rows/p=<hh>/`` (:mod:`smartzone.repositories.population_runs`).
Logs and returns counts only.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from smartzone.observability import logger
from smartzone.repositories.personal_data import id_hmac_key
from smartzone.repositories.population_runs import MAPPINGS_PREFIX, partition_source
from smartzone.settings import get_settings


class PartitionEvent(BaseModel):
    mapping_key: str = Field(pattern=rf"^{MAPPINGS_PREFIX}[a-z][a-z0-9_]*\.json$")
    batch: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    run_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,80}$")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PartitionEvent.model_validate(event)
    settings = get_settings()
    result = partition_source(
        bucket=settings.population_bucket,
        mapping_key=request.mapping_key,
        batch=request.batch,
        run_id=request.run_id,
        table_name=settings.table_name,
        secret=id_hmac_key(),
    )
    logger.info(
        "source partitioned",
        extra={k: result[k] for k in ("source", "queued", "rejected", "spilled")},
    )
    return result
