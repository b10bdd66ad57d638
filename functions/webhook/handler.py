"""Detections webhook Lambda: vendors push detections over HTTPS, signed per vendor.

Routes (REST API methods without the user authorizer, but never open):

- ``POST /v1/detections`` ``{"detections": [...], "changes": [...]}`` → 202 ``{"accepted", "detections",
  "changes"}``; the items are put on the detections buffer, so both vendor paths (MQTT and HTTPS)
  share one processing path;
- ``POST /v1/detections/uploads`` ``{"files": [{"content_type": "image/jpeg"}]}`` → 200 presigned
  PUT URLs under ``snapshots/<vendor>/…``: the keys to send as ``snapshot_url`` / drone images.

Every request is authenticated first (:mod:`smartzone.domain.webhook_auth`: vendor, timestamp
within 5 minutes, HMAC-SHA256 signature, replay guard): any failure is 401 without detail. Then the
body: malformed JSON or a malformed detection is 422 naming the field (``detections.3.confidence``).
Images (``snapshot_url``, drone ``before_image`` / ``after_image``) must be the vendor's own
uploads, under ``snapshots/<vendor>/``: another vendor's key is 422 naming the field.
A camera detection carries the signing vendor's id, so the pipeline rejects one of another vendor's
camera. The API key of the usage plan only limits rates; it authenticates nothing.
"""

from __future__ import annotations

import json
import uuid
from functools import cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from smartzone.domain.detection_messages import (
    SNAPSHOTS_PREFIX,
    CameraDetection,
    DetectionRejection,
    DetectionRejectReason,
    DroneChange,
    outside_vendor_prefix,
    parse_detection,
    vendor_prefix,
)
from smartzone.domain.timeutil import now_ms, to_iso
from smartzone.domain.webhook_auth import AuthFailure, SignedRequest, Unauthenticated, verify
from smartzone.observability import logger, metrics, tracer
from smartzone.repositories.vendor_webhook import DetectionQueue, ReplayGuard, SnapshotStore, VendorKeys
from smartzone.settings import get_settings

MAX_ITEMS = 100
MAX_UPLOADS = 20
CONTENT_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}

app = APIGatewayRestResolver()


class CameraDetectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera_id: Annotated[str, StringConstraints(max_length=64)]
    ts: int | float | str
    type: Annotated[str, StringConstraints(max_length=64)]
    confidence: float
    snapshot_url: Annotated[str, StringConstraints(max_length=1024)] | None = None
    track_id: Annotated[str, StringConstraints(max_length=64)] | int | None = None


class DroneChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flight_id: Annotated[str, StringConstraints(max_length=64)]
    ts: int | float | str
    type: Annotated[str, StringConstraints(max_length=64)]
    lon: float
    lat: float
    polygon: list[list[float]] | None = None
    before_image: Annotated[str, StringConstraints(max_length=1024)] | None = None
    after_image: Annotated[str, StringConstraints(max_length=1024)] | None = None
    confidence: float | None = None
    change_id: Annotated[str, StringConstraints(max_length=64)] | None = None


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detections: list[CameraDetectionIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    changes: list[DroneChangeIn] = Field(default_factory=list, max_length=MAX_ITEMS)


class UploadFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_type: Literal["image/jpeg", "image/png", "image/webp"] = "image/jpeg"


class UploadsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: list[UploadFile] = Field(min_length=1, max_length=MAX_UPLOADS)


_FIELD_OF_REASON = {
    DetectionRejectReason.UNKNOWN_TYPE: "type",
    DetectionRejectReason.CONFIDENCE_OUT_OF_RANGE: "confidence",
    DetectionRejectReason.BAD_TIMESTAMP: "ts",
    DetectionRejectReason.FUTURE_TIMESTAMP: "ts",
    DetectionRejectReason.TOO_OLD: "ts",
    DetectionRejectReason.INVALID_CAMERA_ID: "camera_id",
    DetectionRejectReason.INVALID_SNAPSHOT: "snapshot_url",
}


class Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body


def _json(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, ensure_ascii=False),
    )


def _invalid(field: str, message: str) -> Refused:
    return Refused(422, {"error": "invalid_field", "message": f"{field}: {message}", "field": field})


@cache
def _vendor_keys() -> VendorKeys:
    settings = get_settings()
    return VendorKeys(secret_arn=settings.vendor_keys_secret_arn, local_json=settings.vendor_keys)


def _authenticate() -> tuple[SignedRequest, str]:
    """The signed request and its body text, or 401 (the reason is logged, never answered)."""
    settings = get_settings()
    event = app.current_event
    body = event.decoded_body or ""
    now = now_ms()
    try:
        signed = verify(
            event.headers or {},
            body,
            _vendor_keys().get(),
            now_ms=now,
            max_skew_s=settings.webhook_max_skew_s,
        )
        expires = (signed.timestamp_ms // 1000) + 2 * settings.webhook_max_skew_s
        if not ReplayGuard(settings.table_name).first_use(signed.vendor_id, signed.signature, expires):
            raise Unauthenticated(AuthFailure.REPLAYED)
    except Unauthenticated as exc:
        logger.info("webhook request refused", extra={"reason": exc.failure.value})
        metrics.add_metric(name="WebhookUnauthenticated", unit=MetricUnit.Count, value=1)
        raise Refused(
            401, {"error": "unauthorized", "message": "a valid vendor signature is required"}
        ) from None
    logger.append_keys(vendor_id=signed.vendor_id)
    return signed, body


def _parse(model: type[BaseModel], body: str) -> Any:
    try:
        data = json.loads(body) if body else None
    except ValueError:
        raise _invalid("body", "not valid JSON") from None
    if not isinstance(data, dict):
        raise _invalid("body", "must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        raise _invalid(field, str(error["msg"])) from None


def _field_of(rejection: DetectionRejection) -> str:
    if rejection.reason in _FIELD_OF_REASON:
        return _FIELD_OF_REASON[rejection.reason]
    head = rejection.detail.split(":", 1)[0]
    return head if head.isidentifier() else "body"


def _image_keys(parsed: CameraDetection | DroneChange) -> list[tuple[str, str | None]]:
    """The image keys a detection or change references, by field."""
    if isinstance(parsed, DroneChange):
        return [("before_image", parsed.before_image), ("after_image", parsed.after_image)]
    return [("snapshot_url", parsed.snapshot)]


@app.post("/v1/detections")
def post_detections() -> Response[str]:
    signed, body = _authenticate()
    request: WebhookBody = _parse(WebhookBody, body)
    if not request.detections and not request.changes:
        raise _invalid("detections", "at least one detection or change is required")
    settings = get_settings()
    now = now_ms()
    messages: list[dict[str, Any]] = []
    for name, items in (("detections", request.detections), ("changes", request.changes)):
        for index, item in enumerate(items):
            data = item.model_dump(exclude_none=True)
            parsed = parse_detection(
                data,
                now_ms=now,
                max_future_skew_s=settings.max_future_skew_s,
                max_age_s=settings.max_reading_age_s,
            )
            if isinstance(parsed, DetectionRejection):
                raise _invalid(f"{name}.{index}.{_field_of(parsed)}", parsed.detail)
            for field, key in _image_keys(parsed):
                if outside_vendor_prefix(key, signed.vendor_id):
                    raise _invalid(
                        f"{name}.{index}.{field}",
                        f"must be one of your uploads, under {vendor_prefix(signed.vendor_id)}",
                    )
            messages.append({**data, "vendor_id": signed.vendor_id, "received_at": now})
    if DetectionQueue(settings.detections_queue_url).send(messages):
        return _json(
            503, {"error": "unavailable", "message": "detections could not be queued; send them again"}
        )
    metrics.add_metric(name="WebhookDetectionsQueued", unit=MetricUnit.Count, value=len(messages))
    return _json(
        202,
        {"accepted": len(messages), "detections": len(request.detections), "changes": len(request.changes)},
    )


@app.post("/v1/detections/uploads")
def post_uploads() -> Response[str]:
    signed, body = _authenticate()
    request: UploadsBody = _parse(UploadsBody, body)
    settings = get_settings()
    store = SnapshotStore(settings.snapshots_bucket)
    now = now_ms()
    day = to_iso(now)[:10].replace("-", "/")
    uploads = []
    for file in request.files:
        key = f"{SNAPSHOTS_PREFIX}{signed.vendor_id}/{day}/{uuid.uuid4().hex}.{CONTENT_TYPES[file.content_type]}"
        uploads.append(
            {
                "key": key,
                "url": store.upload_url(key, file.content_type, settings.snapshot_link_ttl_s),
                "method": "PUT",
                "headers": {"Content-Type": file.content_type},
                "expires_at": to_iso(now + settings.snapshot_link_ttl_s * 1000),
            }
        )
    return _json(200, {"uploads": uploads})


@app.exception_handler(Refused)
def _refused(exc: Refused) -> Response[str]:
    return _json(exc.status, exc.body)


@app.not_found
def _not_found(exc: Exception) -> Response[str]:
    return _json(404, {"error": "not_found", "message": "no such resource"})


@logger.inject_lambda_context(clear_state=True, correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
