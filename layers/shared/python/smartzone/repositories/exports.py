"""Export jobs (``EXPORT#<export_id>`` / ``EXPORT``), expiring with the TTL attribute ``expires_at``.

The API writes a job (``queued``) and sends ``{"export_id"}`` to the exports queue; the exports
function renders the file into the exports bucket and marks the job ``done`` (or ``failed``).
"""

from __future__ import annotations

import json

from smartzone.domain.form_exports import ExportJob, ExportStatus
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item

JOB_TTL_S = 7 * 24 * 3600
"""Jobs (and, by the bucket's lifecycle rule, their files) are kept for a week."""


def export_key(export_id: str) -> dict[str, str]:
    return {"pk": f"EXPORT#{export_id}", "sk": "EXPORT"}


class ExportRepository:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def put(self, job: ExportJob, created_s: int) -> None:
        client("dynamodb").put_item(
            TableName=self.table_name,
            Item=to_item(
                {
                    **export_key(job.export_id),
                    "entity": "form_export",
                    **job.model_dump(mode="json"),
                    "expires_at": created_s + JOB_TTL_S,
                }
            ),
        )

    def get(self, export_id: str) -> ExportJob | None:
        item = (
            client("dynamodb")
            .get_item(TableName=self.table_name, Key=to_item(export_key(export_id)), ConsistentRead=True)
            .get("Item")
        )
        if not item:
            return None
        data = from_item(item)
        return ExportJob.model_validate({k: v for k, v in data.items() if k in ExportJob.model_fields})

    def finish(self, job: ExportJob) -> None:
        """Record the outcome of a queued job (done or failed) with its file, rows and columns."""
        fields = {
            "status": job.status.value,
            "finished_at": job.finished_at,
            "object_key": job.object_key,
            "rows": job.rows,
            "error": job.error,
            "columns": job.columns,
        }
        present = {k: v for k, v in fields.items() if v is not None}
        names = {f"#f{i}": k for i, k in enumerate(present)}
        values = {f":f{i}": v for i, v in enumerate(present.values())}
        client("dynamodb").update_item(
            TableName=self.table_name,
            Key=to_item(export_key(job.export_id)),
            UpdateExpression="SET " + ", ".join(f"{n} = :{n[1:]}" for n in names),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values),
        )


def enqueue(queue_url: str, export_id: str) -> None:
    client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps({"export_id": export_id}))


__all__ = ["ExportRepository", "ExportStatus", "enqueue", "export_key"]
