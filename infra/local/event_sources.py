"""Event sources emulated in-process: our real handlers invoked the way Lambda invokes them.

moto stores event-source mappings and schedules but cannot run Lambda code without Docker, so
the local platform polls the sources itself and calls the handlers in this process:

- :class:`SqsPoller` (an SQS event-source mapping): receives up to the batch size within the
  batching window, drops (deletes) messages the mapping's filter rejects, builds the SQS event as
  Lambda does, invokes the handler, then deletes every message except those listed in
  ``batchItemFailures`` (with ``ReportBatchItemFailures``; an invalid response fails the whole
  batch). Failed messages are left alone: they reappear after the queue's visibility timeout, and
  moto moves them to the dead-letter queue once their receive count passes ``maxReceiveCount``.
  A function error deletes nothing.
- :class:`StreamPoller` (a DynamoDB-stream mapping, via :class:`infra.local.streams.StreamReader`):
  applies the mapping's filter, delivers batches in order, retries a failed batch (from the first
  failed record with ``ReportBatchItemFailures``; halved with ``BisectBatchOnFunctionError``) up to
  ``MaximumRetryAttempts``, drops records older than ``MaximumRecordAgeInSeconds``, and sends the
  metadata of what it gives up on to the on-failure destination (SQS or SNS), as Lambda does.
- :class:`ScheduleRunner` (an EventBridge schedule rule): invokes the target with a scheduled
  event (``aws.events`` / ``Scheduled Event``) every period (the rule's ``rate``, overridable).

Every poller is steppable (``poll_once()``, for tests) and runnable in a thread
(``run(stop_event)`` / ``start(stop_event)``).

Function environments. Handlers read their settings once per process (``get_settings()`` is
cached) and some keep module-level caches built from them (``functions.telemetry.handler``'s
``pipeline()``); in Lambda every function has its own process. Here all functions share one
process, so :class:`Invoker` isolates them this way:

1. invocations are serialized by one process-wide lock (``INVOKE_LOCK``; Lambda runs one
   invocation at a time per execution environment anyway) — anything else that invokes handlers
   in this process (the local API gateway) must go through an :class:`Invoker` too;
2. under the lock, the function's resolved environment (plus Lambda's runtime variables and the
   invoker's overrides) is applied to ``os.environ``, and the variables it changed are restored
   afterwards;
3. ``get_settings`` is cleared before and after each invocation, so a function never sees another
   function's settings;
4. module-level ``functools`` caches of the function's own package (``functions.<package>.*``) are
   cleared whenever that package is invoked with a different environment than last time (and by
   :func:`reset_function_caches`), so clients and repositories built from settings are rebuilt.

Timeouts: a handler cannot be interrupted in-process. An invocation that runs past the function's
timeout is logged and, with ``enforce_timeouts=True``, treated as a function error (its batch is
retried), as Lambda would.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.local.provision import Deployment
from infra.local.streams import StartingPosition, StreamReader
from infra.local.template import (
    DEFAULT_ACCOUNT_ID,
    EventSourceMappingSpec,
    FunctionSpec,
    ScheduleSpec,
    ScheduleTarget,
    TemplateError,
)

log = logging.getLogger("smartzone.local.events")

ClientFactory = Callable[[str], Any]
INVOKE_LOCK = threading.RLock()
"""Serializes handler invocations in this process (``os.environ`` is process-wide)."""
DEFAULT_OVERRIDES: Mapping[str, str] = {"POWERTOOLS_TRACE_DISABLED": "true"}
"""Applied over every function's environment: X-Ray is not emulated."""
SQS_RECEIVE_MAX = 10
"""At most this many messages per ReceiveMessage call."""

_last_environment: dict[str, Mapping[str, str]] = {}


def _default_clients(service: str) -> Any:
    from smartzone.repositories.clients import client

    return client(service)


def _clear_settings() -> None:
    from smartzone.settings import get_settings

    get_settings.cache_clear()


def reset_function_caches(package: str | None = None) -> None:
    """Clear the module-level ``functools`` caches of ``functions.<package>`` (all when ``None``)."""
    with INVOKE_LOCK:
        prefix = f"functions.{package}" if package else "functions"
        for name, module in list(sys.modules.items()):
            if module is None or not (name == prefix or name.startswith(prefix + ".")):
                continue
            for value in list(vars(module).values()):
                clear = getattr(value, "cache_clear", None)
                if callable(clear) and getattr(value, "__module__", None) == name:
                    clear()
        if package is None:
            _last_environment.clear()
        else:
            _last_environment.pop(package, None)


# ---------------------------------------------------------------------------------------------
# Functions and invocations


@dataclass(frozen=True)
class LocalFunction:
    """A function of the template, deployed locally: its spec, name, ARN and resolved environment."""

    spec: FunctionSpec
    name: str
    arn: str
    environment: Mapping[str, str]

    @property
    def logical_id(self) -> str:
        return self.spec.logical_id


class LocalContext:
    """The Lambda context object handed to the handler."""

    function_version = "$LATEST"
    identity = None
    client_context = None

    def __init__(self, function: LocalFunction, request_id: str) -> None:
        self.function_name = function.name
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.spec.memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = f"local/[$LATEST]{request_id.replace('-', '')}"
        self._deadline = time.monotonic() + function.spec.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    function_id: str
    request_id: str
    event: Any = None
    result: Any = None
    error: BaseException | None = None
    duration_ms: float = 0.0
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


class FunctionTimeout(Exception):
    """The handler ran longer than the function's timeout (``enforce_timeouts``)."""


class Invoker:
    """Invokes handlers in-process, one at a time, each with its own function environment."""

    def __init__(
        self,
        *,
        region: str,
        overrides: Mapping[str, str] | None = None,
        enforce_timeouts: bool = False,
    ) -> None:
        self.region = region
        self.overrides = {**DEFAULT_OVERRIDES, **(overrides or {})}
        self.enforce_timeouts = enforce_timeouts
        self.invocations = 0
        reset_function_caches()

    def runtime_environment(self, function: LocalFunction) -> dict[str, str]:
        """Lambda's own variables, then the function's, then the overrides."""
        spec = function.spec
        return {
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_REGION": self.region,
            "_HANDLER": spec.handler,
            **function.environment,
            **self.overrides,
        }

    def invoke(self, function: LocalFunction, event: Any) -> Invocation:
        invocation = Invocation(function.logical_id, str(uuid.uuid4()), event)
        environment = self.runtime_environment(function)
        with INVOKE_LOCK:
            saved = {name: os.environ.get(name) for name in environment}
            os.environ.update(environment)
            _clear_settings()
            try:
                package = function.spec.package
                if _last_environment.get(package) != environment:
                    reset_function_caches(package)
                    _last_environment[package] = environment
                handler = _load_handler(function.spec)
                context = LocalContext(function, invocation.request_id)
                started = time.monotonic()
                try:
                    invocation.result = handler(event, context)
                except Exception as exc:  # a function error, reported as Lambda does
                    invocation.error = exc
                    log.exception("%s: function error", function.name)
                invocation.duration_ms = (time.monotonic() - started) * 1000
                if invocation.duration_ms > function.spec.timeout_s * 1000:
                    invocation.timed_out = True
                    log.warning(
                        "%s ran %.0f ms, past its %d s timeout",
                        function.name,
                        invocation.duration_ms,
                        function.spec.timeout_s,
                    )
                    if self.enforce_timeouts and invocation.error is None:
                        invocation.error = FunctionTimeout(f"{function.name}: task timed out")
            finally:
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
                _clear_settings()
                self.invocations += 1
        return invocation


def _load_handler(spec: FunctionSpec) -> Callable[[Any, Any], Any]:
    module = importlib.import_module(spec.module)
    handler = getattr(module, spec.attribute, None)
    if not callable(handler):
        raise TemplateError(f"{spec.logical_id}: {spec.module}.{spec.attribute} is not callable")
    return handler  # type: ignore[no-any-return]


def local_functions(deployment: Deployment) -> dict[str, LocalFunction]:
    """Every function of the template with its local name, ARN and resolved environment."""
    functions: dict[str, LocalFunction] = {}
    for logical_id, spec in deployment.description.functions.items():
        functions[logical_id] = LocalFunction(
            spec=spec,
            name=deployment.ref(logical_id),
            arn=deployment.attribute(logical_id, "Arn"),
            environment=deployment.environment(logical_id),
        )
    return functions


# ---------------------------------------------------------------------------------------------
# Pollers


@dataclass
class PollResult:
    received: int = 0
    """Messages or records read from the source in this step."""
    filtered: int = 0
    """Dropped by the mapping's filter criteria (never delivered)."""
    delivered: int = 0
    """Handed to the handler."""
    succeeded: int = 0
    failed: int = 0
    discarded: int = 0
    """Given up on (stream: retries or record age exhausted; sent to the on-failure destination)."""
    invocation: Invocation | None = None

    @property
    def idle(self) -> bool:
        return self.received == 0 and self.delivered == 0


class Poller:
    """Something the platform steps or runs in a thread."""

    name = "poller"
    idle_delay_s = 0.2

    def poll_once(self) -> PollResult:
        raise NotImplementedError

    def delay_after(self, result: PollResult) -> float:
        return self.idle_delay_s if result.idle else 0.0

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                result = self.poll_once()
            except Exception:
                log.exception("%s: poll failed", self.name)
                result = PollResult()
                delay = max(self.idle_delay_s, 1.0)
            else:
                delay = self.delay_after(result)
            if delay:
                stop.wait(delay)

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name=self.name, daemon=True)
        thread.start()
        return thread


def _batch_item_failures(invocation: Invocation, identifiers: Sequence[str]) -> set[str] | None:
    """The failed identifiers of a partial batch response; ``None`` when the response is invalid
    (then Lambda treats the whole batch as failed)."""
    result = invocation.result
    if not isinstance(result, Mapping) or result.get("batchItemFailures") is None:
        return set()
    failures = result["batchItemFailures"]
    if not isinstance(failures, list):
        return None
    failed: set[str] = set()
    known = set(identifiers)
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(identifier, str) or identifier not in known:
            return None
        failed.add(identifier)
    return failed


def sqs_lambda_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ReceiveMessage message as a record of Lambda's SQS event."""
    attributes: dict[str, Any] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        attributes[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": base64.b64encode(value["BinaryValue"]).decode("ascii")
            if value.get("BinaryValue") is not None
            else None,
            "stringListValues": list(value.get("StringListValues") or []),
            "binaryListValues": [
                base64.b64encode(v).decode("ascii") for v in value.get("BinaryListValues") or []
            ],
            "dataType": value.get("DataType"),
        }
        attributes[name] = {k: v for k, v in attributes[name].items() if v is not None}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _sqs_filter_view(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """What filter patterns see of an SQS record: the body parsed when it is JSON."""
    try:
        body = json.loads(record.get("body", ""))
    except ValueError:
        return record
    return {**record, "body": body}


class SqsPoller(Poller):
    """An SQS event-source mapping."""

    def __init__(
        self,
        mapping: EventSourceMappingSpec,
        function: LocalFunction,
        invoker: Invoker,
        *,
        queue_url: str,
        queue_arn: str,
        region: str,
        clients: ClientFactory | None = None,
        batching_window_s: float | None = None,
        failure_visibility_timeout_s: int | None = None,
        receive_wait_s: float = 0.05,
    ) -> None:
        self.mapping = mapping
        self.function = function
        self.invoker = invoker
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.clients = clients or _default_clients
        self.batch_size = mapping.batch_size
        self.batching_window_s = mapping.batching_window_s if batching_window_s is None else batching_window_s
        self.failure_visibility_timeout_s = failure_visibility_timeout_s
        """``None``: failed messages wait out the queue's visibility timeout, as in AWS; a number
        (e.g. 0) makes them visible again that much sooner (faster local retries)."""
        self.receive_wait_s = receive_wait_s
        self.name = f"sqs:{queue_arn.rsplit(':', 1)[-1]}→{function.name}"

    def _receive(self) -> list[dict[str, Any]]:
        sqs = self.clients("sqs")
        messages: list[dict[str, Any]] = []
        seen: set[str] = set()
        deadline: float | None = None
        while len(messages) < self.batch_size:
            response = sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(SQS_RECEIVE_MAX, self.batch_size - len(messages)),
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            got = [m for m in response.get("Messages", []) if m["MessageId"] not in seen]
            if got:
                messages.extend(got)
                seen.update(m["MessageId"] for m in got)
                if deadline is None:
                    deadline = time.monotonic() + self.batching_window_s
                continue
            now = time.monotonic()
            if deadline is None or now >= deadline:
                break
            time.sleep(min(self.receive_wait_s, deadline - now))
        return messages

    def _delete(self, records: Iterable[Mapping[str, Any]]) -> int:
        sqs = self.clients("sqs")
        entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(records)]
        for start in range(0, len(entries), SQS_RECEIVE_MAX):
            chunk = entries[start : start + SQS_RECEIVE_MAX]
            response = sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=chunk)
            for failure in response.get("Failed", []):
                log.warning("%s: could not delete a message: %s", self.name, failure)
        return len(entries)

    def _release(self, records: Iterable[Mapping[str, Any]]) -> None:
        if self.failure_visibility_timeout_s is None:
            return
        sqs = self.clients("sqs")
        for record in records:
            sqs.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=record["receiptHandle"],
                VisibilityTimeout=self.failure_visibility_timeout_s,
            )

    def poll_once(self) -> PollResult:
        messages = self._receive()
        result = PollResult(received=len(messages))
        if not messages:
            return result
        records = [sqs_lambda_record(m, self.queue_arn, self.region) for m in messages]
        accepted = [r for r in records if self.mapping.accepts(_sqs_filter_view(r))]
        rejected = [r for r in records if r not in accepted]
        if rejected:  # Lambda deletes messages its filter criteria reject
            result.filtered = self._delete(rejected)
        if not accepted:
            return result
        invocation = self.invoker.invoke(self.function, {"Records": accepted})
        result.invocation = invocation
        result.delivered = len(accepted)
        if not invocation.ok:
            failed_ids: set[str] | None = None
        elif self.mapping.report_batch_item_failures:
            failed_ids = _batch_item_failures(invocation, [r["messageId"] for r in accepted])
            if failed_ids is None:
                log.warning("%s: invalid batchItemFailures: the whole batch is retried", self.name)
        else:
            failed_ids = set()
        if failed_ids is None:
            failed = accepted
        else:
            failed = [r for r in accepted if r["messageId"] in failed_ids]
            result.succeeded = self._delete(r for r in accepted if r["messageId"] not in failed_ids)
        result.failed = len(failed)
        self._release(failed)
        return result


class StreamPoller(Poller):
    """A DynamoDB-stream event-source mapping."""

    def __init__(
        self,
        mapping: EventSourceMappingSpec,
        function: LocalFunction,
        invoker: Invoker,
        *,
        table_name: str,
        on_failure: tuple[str, str] | None = None,
        clients: ClientFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``on_failure``: ``("sqs", queue_url)`` or ``("sns", topic_arn)``."""
        self.mapping = mapping
        self.function = function
        self.invoker = invoker
        self.table_name = table_name
        self.on_failure = on_failure
        self.clients = clients or _default_clients
        self.clock = clock
        starting: StartingPosition = "LATEST" if mapping.starting_position == "LATEST" else "TRIM_HORIZON"
        self.reader = StreamReader(table_name, key_prefix=None, starting_position=starting)
        self.name = f"stream:{table_name}→{function.name}"
        self._backlog: list[dict[str, Any]] = []
        self._limit = mapping.batch_size
        self._attempts = 0
        self.sent_to_destination: list[dict[str, Any]] = []

    def _fetch(self) -> tuple[int, int]:
        records = self.reader.poll()["Records"]
        accepted = [r for r in records if self.mapping.accepts(r)]
        self._backlog.extend(accepted)
        return len(records), len(records) - len(accepted)

    def _expired(self, record: Mapping[str, Any]) -> bool:
        created = (record.get("dynamodb") or {}).get("ApproximateCreationDateTime")
        max_age = self.mapping.max_record_age_s
        return max_age is not None and isinstance(created, int | float) and self.clock() - created > max_age

    def poll_once(self) -> PollResult:
        received, filtered = self._fetch()
        result = PollResult(received=received, filtered=filtered)
        expired = []
        while self._backlog and self._expired(self._backlog[0]):
            expired.append(self._backlog.pop(0))
        if expired:
            self._give_up(expired, "RecordAgeExceeded", None)
            result.discarded += len(expired)
        if not self._backlog:
            return result
        batch = self._backlog[: self._limit]
        invocation = self.invoker.invoke(self.function, {"Records": batch})
        result.invocation = invocation
        result.delivered = len(batch)
        sequence = [r["dynamodb"]["SequenceNumber"] for r in batch]
        retry_from: int | None
        if not invocation.ok:
            retry_from = 0
        elif self.mapping.report_batch_item_failures:
            failed = _batch_item_failures(invocation, sequence)
            # Lambda resumes from the lowest failed sequence number (records before it are done).
            retry_from = 0 if failed is None else (min(sequence.index(s) for s in failed) if failed else None)
        else:
            retry_from = None
        if retry_from is None:
            del self._backlog[: len(batch)]
            self._attempts = 0
            self._limit = self.mapping.batch_size
            result.succeeded = len(batch)
            return result
        done = batch[:retry_from]
        del self._backlog[:retry_from]
        result.succeeded = len(done)
        remaining = batch[retry_from:]
        result.failed = len(remaining)
        if done:
            self._attempts = 0
        self._attempts += 1
        retries = self.mapping.max_retry_attempts
        if retries is not None and self._attempts > retries:
            del self._backlog[: len(remaining)]
            self._give_up(remaining, "RetryAttemptsExhausted", invocation)
            result.discarded += len(remaining)
            self._attempts = 0
            self._limit = self.mapping.batch_size
        elif not invocation.ok and self.mapping.bisect_on_error and len(remaining) > 1:
            self._limit = max(1, len(remaining) // 2)
        else:
            self._limit = max(1, len(remaining))
        return result

    def delay_after(self, result: PollResult) -> float:
        if result.failed and not result.discarded:
            return min(0.1 * 2**self._attempts, 5.0)  # back off between retries
        return super().delay_after(result)

    def _shard_id(self) -> str | None:
        shards = (
            self.clients("dynamodbstreams")
            .describe_stream(StreamArn=self.reader.stream_arn)["StreamDescription"]
            .get("Shards", [])
        )
        return shards[-1]["ShardId"] if len(shards) == 1 else None

    def _give_up(
        self, records: Sequence[Mapping[str, Any]], condition: str, invocation: Invocation | None
    ) -> None:
        """Send the batch's metadata (not its records) to the on-failure destination."""

        def arrival(record: Mapping[str, Any]) -> str | None:
            created = (record.get("dynamodb") or {}).get("ApproximateCreationDateTime")
            if not isinstance(created, int | float):
                return None
            return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")

        message: dict[str, Any] = {
            "requestContext": {
                "requestId": invocation.request_id if invocation else str(uuid.uuid4()),
                "functionArn": self.function.arn,
                "condition": condition,
                "approximateInvokeCount": self._attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled" if invocation is not None and not invocation.ok else "",
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "DDBStreamBatchInfo": {
                "shardId": self._shard_id(),
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": arrival(records[0]),
                "approximateArrivalOfLastRecord": arrival(records[-1]),
                "batchSize": len(records),
                "streamArn": self.reader.stream_arn,
            },
        }
        self.sent_to_destination.append(message)
        log.error(
            "%s: %d record(s) given up (%s)%s",
            self.name,
            len(records),
            condition,
            "" if self.on_failure else "; no on-failure destination",
        )
        if self.on_failure is None:
            return
        kind, target = self.on_failure
        body = json.dumps(message)
        if kind == "sqs":
            self.clients("sqs").send_message(QueueUrl=target, MessageBody=body)
        else:
            self.clients("sns").publish(TopicArn=target, Message=body)


def scheduled_event(*, rule_arn: str, region: str, account_id: str, when: float) -> dict[str, Any]:
    """The event EventBridge sends a schedule rule's target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class ScheduleRunner(Poller):
    """An EventBridge schedule rule's target, invoked every period."""

    def __init__(
        self,
        schedule: ScheduleSpec,
        target: ScheduleTarget,
        function: LocalFunction,
        invoker: Invoker,
        *,
        rule_arn: str,
        region: str,
        account_id: str = DEFAULT_ACCOUNT_ID,
        period_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        period = period_s if period_s is not None else schedule.period_s
        if period is None or period <= 0:
            raise TemplateError(
                f"{schedule.logical_id}: {schedule.expression} needs an explicit positive period locally"
            )
        self.schedule = schedule
        self.target = target
        self.function = function
        self.invoker = invoker
        self.rule_arn = rule_arn
        self.region = region
        self.account_id = account_id
        self.period_s = float(period)
        self.clock = clock
        self.name = f"schedule:{schedule.logical_id}→{function.name}"
        self.runs = 0

    def event(self) -> Any:
        if self.target.input is not None:
            return self.target.input
        return scheduled_event(
            rule_arn=self.rule_arn, region=self.region, account_id=self.account_id, when=self.clock()
        )

    def poll_once(self) -> PollResult:
        """Fire the schedule now."""
        invocation = self.invoker.invoke(self.function, self.event())
        self.runs += 1
        return PollResult(
            delivered=1,
            succeeded=int(invocation.ok),
            failed=int(not invocation.ok),
            invocation=invocation,
        )

    def run(self, stop: threading.Event) -> None:
        """Fire every period, the first time one period after the start (as EventBridge does)."""
        while not stop.wait(self.period_s):
            try:
                self.poll_once()
            except Exception:
                log.exception("%s: run failed", self.name)


# ---------------------------------------------------------------------------------------------
# Wiring from a deployment


@dataclass
class EventSources:
    """Every poller of a deployment, with what could not be wired."""

    pollers: list[Poller] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        return [poller.start(stop) for poller in self.pollers]


def build_event_sources(
    deployment: Deployment,
    invoker: Invoker,
    *,
    functions: Mapping[str, LocalFunction] | None = None,
    clients: ClientFactory | None = None,
    schedule_period_s: float | None = None,
    sqs_failure_visibility_timeout_s: int | None = None,
) -> EventSources:
    """Pollers for every enabled event-source mapping and ``rate(...)`` schedule target of the
    template (``schedule_period_s`` replaces the rate's period; cron schedules are skipped)."""
    description = deployment.description
    functions = functions if functions is not None else local_functions(deployment)
    region = deployment.resolver.region
    sources = EventSources()
    for mapping in description.event_source_mappings:
        function = functions.get(mapping.function_id)
        if not mapping.enabled or function is None:
            sources.skipped.append(f"{mapping.logical_id}: disabled or no local function")
            continue
        if mapping.source_kind == "sqs":
            sources.pollers.append(
                SqsPoller(
                    mapping,
                    function,
                    invoker,
                    queue_url=deployment.ref(mapping.source_id),
                    queue_arn=deployment.attribute(mapping.source_id, "Arn"),
                    region=region,
                    clients=clients,
                    failure_visibility_timeout_s=sqs_failure_visibility_timeout_s,
                )
            )
        else:
            on_failure = None
            if mapping.on_failure_id is not None:
                kind = (
                    "sqs" if description.resource_type(mapping.on_failure_id) == "AWS::SQS::Queue" else "sns"
                )
                on_failure = (kind, deployment.ref(mapping.on_failure_id))
            sources.pollers.append(
                StreamPoller(
                    mapping,
                    function,
                    invoker,
                    table_name=deployment.ref(mapping.source_id),
                    on_failure=on_failure,
                    clients=clients,
                )
            )
    for schedule in description.schedules.values():
        for target in schedule.targets:
            function = functions.get(target.function_id)
            if not schedule.enabled or function is None:
                sources.skipped.append(
                    f"{schedule.logical_id}/{target.target_id}: disabled or no local function"
                )
                continue
            if schedule.period_s is None:
                # A cron schedule (the data lake's daily stale check) is not run locally: it fires at
                # a time of day, not every ``schedule_period_s`` (that period is the sweeper's).
                sources.skipped.append(
                    f"{schedule.logical_id}: {schedule.expression} (cron) is not run locally; "
                    f"invoke {function.name} by hand with a scheduled event if needed"
                )
                continue
            sources.pollers.append(
                ScheduleRunner(
                    schedule,
                    target,
                    function,
                    invoker,
                    rule_arn=deployment.attribute(schedule.logical_id, "Arn"),
                    region=region,
                    account_id=deployment.resolver.account_id,
                    period_s=schedule_period_s,
                )
            )
    return sources
