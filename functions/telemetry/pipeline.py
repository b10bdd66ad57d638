"""The telemetry batch pipeline: parse → group per device → load state → evaluate → write changes.

One BatchGetItem per 100 devices; writes only on an alarm transition, a clear-window change or a
due heartbeat. A device's maintenance windows silence new alarms for readings inside them; any
applied reading clears an active ``offline`` alarm (raised by the sweeper). Bad records are rejected (acknowledged + copied to the rejects queue); transient
failures mark only the affected device's messages for retry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from smartzone.domain.alarms import AlarmTransition, TransitionKind, count_stale, dedupe_sorted, evaluate
from smartzone.domain.offline import maintenance_silencer
from smartzone.domain.readings import Reading, Rejection, RejectReason, parse_reading
from smartzone.domain.timeutil import now_ms, to_iso
from smartzone.observability import logger
from smartzone.repositories.alarm_store import AlarmStore, DeviceConflict
from smartzone.repositories.devices import DeviceRecord, DeviceRepository, TransientStoreError
from smartzone.repositories.rejects import RejectedMessage, RejectSink
from smartzone.settings import Settings
from smartzone.sqs_batch import BatchOutcome as SqsBatchOutcome
from smartzone.sqs_batch import Message, send_rejects

MAX_CONFLICT_RETRIES = 4


@dataclass
class BatchOutcome(SqsBatchOutcome):
    transitions: list[AlarmTransition] = field(default_factory=list)


def _is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class TelemetryPipeline:
    def __init__(
        self,
        settings: Settings,
        devices: DeviceRepository,
        alarms: AlarmStore,
        rejects: RejectSink,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.settings = settings
        self.devices = devices
        self.alarms = alarms
        self.rejects = rejects
        self.clock = clock

    def process(self, messages: Sequence[Message]) -> BatchOutcome:
        outcome = BatchOutcome()
        now = self.clock()
        outcome.counts["received"] = len(messages)
        by_device: dict[str, list[tuple[str, Reading]]] = defaultdict(list)
        bodies = {m.message_id: m.body for m in messages}
        for message in messages:
            parsed = parse_reading(
                message.body,
                now_ms=now,
                max_future_skew_s=self.settings.max_future_skew_s,
                max_age_s=self.settings.max_reading_age_s,
            )
            if isinstance(parsed, Rejection):
                outcome.rejected.append(
                    RejectedMessage(message.message_id, message.body, parsed, to_iso(now))
                )
            else:
                by_device[parsed.device_id].append((message.message_id, parsed))

        try:
            records = self.devices.batch_get(list(by_device))
        except (TransientStoreError, ClientError, BotoCoreError) as exc:
            logger.warning("device state could not be read; batch retried", extra={"error": str(exc)})
            outcome.failed.update(mid for items in by_device.values() for mid, _ in items)
            records = {}
            by_device = defaultdict(list)

        for device_id, items in by_device.items():
            record = records.get(device_id)
            if record is None:
                rejection = Rejection(RejectReason.UNKNOWN_DEVICE, "device is not registered", device_id)
                outcome.rejected.extend(
                    RejectedMessage(mid, bodies[mid], rejection, to_iso(now)) for mid, _ in items
                )
                continue
            self._process_device(record, [r for _, r in items], now, outcome, [mid for mid, _ in items])

        self._send_rejects(outcome)
        return outcome

    def _process_device(
        self,
        record: DeviceRecord,
        raw: list[Reading],
        now: int,
        outcome: BatchOutcome,
        message_ids: list[str],
    ) -> None:
        readings = dedupe_sorted(raw)
        outcome.counts["duplicates"] += len(raw) - len(readings)
        stale = count_stale(record.state, readings)
        outcome.counts["stale"] += stale
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                self._apply(record, readings, now, outcome)
                outcome.counts["applied"] += len(readings) - stale
                return
            except DeviceConflict:
                outcome.counts["conflicts"] += 1
            except (TransientStoreError, ClientError, BotoCoreError) as exc:
                self._retry_later(record, exc)
                break
            try:  # the reload is outside the except clause: its own failure fails only this device
                reloaded = self.devices.get(record.device.device_id, consistent=True)
            except (ClientError, BotoCoreError) as exc:
                self._retry_later(record, exc)
                break
            if reloaded is None:
                break
            record = reloaded
        outcome.failed.update(message_ids)

    @staticmethod
    def _retry_later(record: DeviceRecord, exc: Exception) -> None:
        logger.warning(
            "device update failed; its messages will be retried",
            extra={"device_id": record.device.device_id, "error": str(exc)},
        )

    def _apply(self, record: DeviceRecord, readings: list[Reading], now: int, outcome: BatchOutcome) -> None:
        hb_ms = self.settings.heartbeat_interval_s * 1000
        state, version = record.state, record.version
        silenced_at = maintenance_silencer(record.device.maintenance)
        while True:
            current = DeviceRecord(record.device, state, version)
            evaluation = evaluate(
                state, record.device.profile, readings, heartbeat_interval_ms=hb_ms, silenced_at=silenced_at
            )
            if evaluation.transitions:
                result = self.alarms.persist(current, evaluation.state, evaluation.transitions, now)
                state, version = result.state, result.version
                outcome.counts["writes"] += 1
                for t in evaluation.transitions:
                    outcome.transitions.append(t)
                    outcome.counts[f"alarms_{t.kind.value}"] += 1
                    _log_transition(t)
                continue
            if evaluation.write_needed:
                try:
                    self.devices.save_state(current, evaluation.state)
                except ClientError as exc:
                    if _is_conditional_failure(exc):
                        raise DeviceConflict(record.device.device_id) from exc
                    raise
                outcome.counts["writes"] += 1
            return

    def _send_rejects(self, outcome: BatchOutcome) -> None:
        for rejected in outcome.rejected:
            outcome.counts[f"rejected_{rejected.rejection.reason.value}"] += 1
        send_rejects(outcome, self.rejects, log_message="reading rejected", source_key="device_id")


def _log_transition(t: AlarmTransition) -> None:
    logger.info(
        "alarm raised" if t.kind is TransitionKind.RAISED else "alarm cleared",
        extra={
            "device_id": t.device_id,
            "alarm_type": t.alarm_type.value,
            "alarm_id": t.alarm_id,
            "order_id": t.order_id,
            "value": t.value,
            "device_time": to_iso(t.at),
        },
    )
