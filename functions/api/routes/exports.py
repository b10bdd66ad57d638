"""`/v1/exports/{id}`: an export job's status and, when done, a short-lived presigned link.

Only the person who asked for the export (or an admin) sees it; anyone else gets 404. The link
is valid for :data:`LINK_EXPIRES_S` seconds. Fetching an export made unmasked is audited.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel

from smartzone.domain.form_exports import CONTENT_TYPES, ExportStatus
from smartzone.domain.timeutil import now_ms, to_iso
from smartzone.repositories.clients import client
from smartzone.repositories.exports import ExportRepository
from smartzone.settings import get_settings

from ..context import caller_of
from ..errors import NotFoundError
from .form_access import audit_unmasked

router = Router()

LINK_EXPIRES_S = 300


class ExportOut(BaseModel):
    export_id: str
    form_id: str
    from_day: str
    to_day: str
    format: str
    status: str
    masked: bool
    created_at: str
    finished_at: str | None = None
    rows: int | None = None
    error: str | None = None
    url: str | None = None
    """Presigned GET link (only when ``done``)."""
    url_expires_at: str | None = None


@router.get("/<export_id>", summary="An export's status and, when done, its download link", tags=["forms"])
def get_export(export_id: Annotated[str, Path(max_length=64)]) -> ExportOut:
    caller = caller_of(router)
    job = ExportRepository(get_settings().table_name).get(export_id)
    if job is None or not (caller.is_admin or job.requested_by == caller.username):
        raise NotFoundError("no such export", field="export_id")
    url = expires = None
    if job.status is ExportStatus.DONE and job.object_key:
        url = client("s3").generate_presigned_url(
            "get_object",
            Params={
                "Bucket": get_settings().exports_bucket,
                "Key": job.object_key,
                "ResponseContentType": CONTENT_TYPES[job.format],
                "ResponseContentDisposition": f'attachment; filename="{job.form_id}-{job.from_day}-{job.to_day}.{job.format.value}"',
            },
            ExpiresIn=LINK_EXPIRES_S,
        )
        expires = to_iso(now_ms() + LINK_EXPIRES_S * 1000)
        if job.unmasked:
            audit_unmasked(
                caller, f"FORMEXPORT#{job.export_id}", f"export of form {job.form_id}", job.columns
            )
    return ExportOut(
        export_id=job.export_id,
        form_id=job.form_id,
        from_day=job.from_day,
        to_day=job.to_day,
        format=job.format.value,
        status=job.status.value,
        masked=not job.unmasked,
        created_at=job.created_at,
        finished_at=job.finished_at,
        rows=job.rows,
        error=job.error,
        url=url,
        url_expires_at=expires,
    )
