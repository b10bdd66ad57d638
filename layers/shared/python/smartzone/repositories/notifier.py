"""Publishing outbound events to the notifications topic, and parking those SNS would not take.

SNS message (``MessageStructure="json"``): e-mail subscribers get the Chinese text, every other
protocol (HTTPS webhooks, SQS, Lambda) gets ``default``, the event as JSON. Message attributes
``grid_id``, ``category``, ``severity``, ``event_type`` and ``event_id`` let subscriptions filter
(grid workers: ``{"grid_id": ["G03"]}``) and consumers deduplicate.

An event SNS still refuses after ``attempts`` is *parked*: sent in full (a :class:`ParkedEvent`)
to the outbox retry queue, from which ``tools/redrive_notifications.py`` publishes it again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from smartzone.domain.notifications import OutboundEvent
from smartzone.domain.timeutil import now_ms, to_iso
from smartzone.repositories.clients import client
from smartzone.settings import Settings, get_settings

PARKED_KIND = "smartzone.outbox.parked"
MAX_ERROR_CHARS = 1000
PERMANENT_ERROR_CODES = frozenset(
    {"InvalidParameter", "InvalidParameterValue", "ParameterValueInvalid", "NotFound", "AuthorizationError"}
)
"""SNS errors that another attempt cannot fix: the event is parked at once."""


class PublishError(Exception):
    """SNS did not accept the event within the attempts."""

    def __init__(self, event_id: str, attempts: int, cause: BaseException) -> None:
        super().__init__(f"publishing {event_id} failed after {attempts} attempt(s): {describe_error(cause)}")
        self.event_id = event_id
        self.attempts = attempts
        self.cause = cause


class ParkError(Exception):
    """The retry queue did not accept a parked event either: the stream must deliver it again."""


class ParkedEvent(BaseModel):
    """The retry queue's message body: everything needed to publish the event again."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["smartzone.outbox.parked"] = "smartzone.outbox.parked"
    event: OutboundEvent
    error: str
    attempts: int
    parked_at: str
    topic_arn: str
    """The topic the event was meant for (the redrive publishes to the configured topic)."""


def describe_error(exc: BaseException) -> str:
    """A short, log-safe description (error code and message, never request payloads)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        text = f"{error.get('Code', 'ClientError')}: {error.get('Message', '')}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_CHARS]


def _is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in PERMANENT_ERROR_CODES


def sns_message(event: OutboundEvent) -> str:
    """The ``Message`` of a ``MessageStructure="json"`` publish."""
    return json.dumps({"default": event.to_json(), "email": event.text}, ensure_ascii=False)


def publish_request(topic_arn: str, event: OutboundEvent) -> dict[str, Any]:
    """Keyword arguments of ``sns.publish`` for one event (the same for the dispatcher and redrive)."""
    return {
        "TopicArn": topic_arn,
        "Message": sns_message(event),
        "MessageStructure": "json",
        "Subject": event.subject,
        "MessageAttributes": event.message_attributes(),
    }


class CircuitOpenError(Exception):
    """SNS kept failing moments ago: the event is parked without another call."""


class Notifier:
    """Publishes outbound events with bounded retries; parks what SNS would not take.

    A small circuit breaker keeps an SNS outage from eating the function's time (each call
    already carries botocore's own retries): once an event has used up its attempts on errors
    that may pass, publishing pauses for ``cooldown_s`` (events fail at once and get parked);
    then one event probes with a single attempt, and a success closes the circuit again.
    Permanent errors (bad parameters, authorization) are the event's, not SNS's: they never
    open the circuit.
    """

    def __init__(
        self,
        topic_arn: str,
        retry_queue_url: str,
        *,
        attempts: int = 3,
        backoff_s: float = 0.05,
        max_backoff_s: float = 1.0,
        cooldown_s: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic_arn = topic_arn
        self.retry_queue_url = retry_queue_url
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.cooldown_s = cooldown_s
        self._sleep = sleep
        self._clock = clock
        self._open_until = float("-inf")
        self._tripped = False

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Notifier:
        settings = settings or get_settings()
        return cls(
            settings.notifications_topic_arn, settings.retry_queue_url, attempts=settings.publish_attempts
        )

    @property
    def circuit_open(self) -> bool:
        """True while publishing is paused after SNS kept failing."""
        return self._clock() < self._open_until

    def publish(self, event: OutboundEvent) -> str:
        """Publish the event; its SNS message id. Raises :class:`PublishError` when all attempts
        fail (or, while the circuit is open, at once)."""
        if self.circuit_open:
            raise PublishError(
                event.event_id,
                0,
                CircuitOpenError(f"SNS failing: publishing paused for {self.cooldown_s:g} s"),
            )
        request = publish_request(self.topic_arn, event)
        attempts = 1 if self._tripped else self.attempts
        for attempt in range(1, attempts + 1):
            try:
                message_id: str = client("sns").publish(**request)["MessageId"]
            except (ClientError, BotoCoreError) as exc:
                if _is_permanent(exc):
                    raise PublishError(event.event_id, attempt, exc) from exc
                if attempt == attempts:
                    self._tripped = True
                    self._open_until = self._clock() + self.cooldown_s
                    raise PublishError(event.event_id, attempt, exc) from exc
                self._sleep(min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s))
            else:
                self._tripped = False
                self._open_until = float("-inf")
                return message_id
        raise AssertionError("unreachable")  # pragma: no cover

    def park(self, event: OutboundEvent, error: BaseException | str) -> str:
        """Keep the event in full in the retry queue; its SQS message id. Raises :class:`ParkError`."""
        attempts = error.attempts if isinstance(error, PublishError) else 0
        reason = str(error) if isinstance(error, PublishError | str) else describe_error(error)
        parked = ParkedEvent(
            event=event,
            error=reason[:MAX_ERROR_CHARS],
            attempts=attempts,
            parked_at=to_iso(now_ms()),
            topic_arn=self.topic_arn,
        )
        try:
            response = client("sqs").send_message(
                QueueUrl=self.retry_queue_url,
                MessageBody=parked.model_dump_json(),
                MessageAttributes={
                    name: event.message_attributes()[name] for name in ("event_id", "event_type", "grid_id")
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise ParkError(f"parking {event.event_id} failed: {describe_error(exc)}") from exc
        return str(response["MessageId"])


def parse_parked(body: str) -> ParkedEvent:
    """A retry-queue message body as a parked event (raises ``pydantic.ValidationError``)."""
    return ParkedEvent.model_validate_json(body)
