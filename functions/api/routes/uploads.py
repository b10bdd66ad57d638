"""`/v1/uploads`: a presigned S3 POST for one photo.

The app asks for a ticket (content type, size, purpose), then POSTs the file straight to S3 with
the returned ``url`` and ``fields``; the ``key`` goes into a report's or a transition's ``photos``.
The policy S3 enforces: exactly this key, exactly this content type (JPEG, PNG or WebP), a length
between 1 byte and the declared size (at most 10 MB), and an expiry of 10 minutes.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain.timeutil import now_ms, to_iso
from smartzone.repositories.clients import client
from smartzone.settings import get_settings

from ..context import caller_of
from .workorders import UPLOAD_PREFIX

router = Router()

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
EXPIRES_S = 600
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


class ImageType(StrEnum):
    JPEG = "image/jpeg"
    PNG = "image/png"
    WEBP = "image/webp"


class UploadPurpose(StrEnum):
    ORDER_PHOTO = "order_photo"
    """A photo for a transition or comment on a work order."""
    REPORT_PHOTO = "report_photo"
    """A photo for a patrol report."""


class UploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_type: ImageType
    size_bytes: int = Field(ge=1, le=MAX_UPLOAD_BYTES)
    purpose: UploadPurpose


class UploadTicket(BaseModel):
    url: str
    fields: dict[str, str]
    """Form fields to send with the file (the file itself goes last, as ``file``)."""
    key: str
    """The object key to put into ``photos``."""
    expires_at: str
    max_bytes: int


_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


def upload_key(username: str, content_type: ImageType, at_ms: int) -> str:
    """``uploads/<yyyy>/<mm>/<dd>/<username>/<uuid>.<ext>`` (username made key-safe)."""
    day = datetime.fromtimestamp(at_ms / 1000, tz=UTC).strftime("%Y/%m/%d")
    who = _UNSAFE.sub("_", username)[:128] or "unknown"
    return f"{UPLOAD_PREFIX}{day}/{who}/{uuid.uuid4().hex}.{EXTENSIONS[content_type.value]}"


def photo_ticket(username: str, content_type: ImageType, size_bytes: int) -> UploadTicket:
    """A presigned POST for one photo of ``username`` (also used for form attachments)."""
    bucket = get_settings().uploads_bucket
    if not bucket:
        raise RuntimeError("UPLOADS_BUCKET is not configured")
    at = now_ms()
    key = upload_key(username, content_type, at)
    conditions: list[Any] = [  # boto3 adds the bucket and the exact key itself
        {"Content-Type": content_type.value},
        ["content-length-range", 1, size_bytes],
    ]
    post = client("s3").generate_presigned_post(
        Bucket=bucket,
        Key=key,
        Fields={"Content-Type": content_type.value},
        Conditions=conditions,
        ExpiresIn=EXPIRES_S,
    )
    return UploadTicket(
        url=post["url"],
        fields={k: str(v) for k, v in post["fields"].items()},
        key=key,
        expires_at=to_iso(at + EXPIRES_S * 1000),
        max_bytes=size_bytes,
    )


@router.post("/", summary="A presigned S3 POST for one photo", tags=["uploads"], status_code=201)
def post_upload(request: Annotated[UploadRequest, Body(embed=False)]) -> UploadTicket:
    return photo_ticket(caller_of(router).username, request.content_type, request.size_bytes)
