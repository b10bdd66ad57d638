"""The local platform: the whole system on one machine, with no AWS account (``make run``).

Wiring comes from the synthesized CloudFormation template (:mod:`infra.local.template`), never
from a second list: the template's table, queues, topic, buckets, secret and delivery stream are
created in moto (served on a local port), the template's functions are our real handlers invoked
in-process (:mod:`infra.local.event_sources`) by its event-source mappings and schedule, MQTT
messages on the local broker go through the template's IoT rule (:mod:`infra.local.iot_sql`) to
its actions, and HTTP requests reach the API function through an emulated API Gateway whose
authorizer verifies the local Cognito user pool's ID tokens (:mod:`infra.local.gateway`).
Whatever the template holds that cannot be emulated is listed at start.

    python -m infra.local.platform [--no-sim] [--reset] [--api-port 8000] [--mqtt-port 1883] …

``.local/session.json`` is written once everything is ready (API URL, MQTT, users and fresh ID
tokens); the table is snapshotted to ``.local/snapshot.json`` periodically and on shutdown and
restored on start (``--reset`` starts from the seed data again).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED_FILE = REPO_ROOT / "events" / "seed" / "district.json"
REGION = "ap-southeast-1"
"""A global region: the template then has the Cognito user pool that the local pool stands for."""
SNAPSHOT_FILE = "snapshot.json"
SESSION_FILE = "session.json"


class PlatformError(RuntimeError):
    """Something that stops the platform from starting, with what to do about it."""


@dataclass
class PlatformConfig:
    state_dir: Path = REPO_ROOT / ".local"
    api_port: int = 8000
    mqtt_port: int = 1883
    dashboard_port: int = 8080
    moto_port: int = 0
    simulator: bool = True
    simulator_rate: float = 10.0
    reset: bool = False
    sweep_period_s: float = 60.0
    snapshot_period_s: float = 60.0
    quiet: bool = False
    seed_file: Path = SEED_FILE
    host: str = "127.0.0.1"


@dataclass
class _Activity:
    """When the pollers last did something (for :meth:`Platform.wait_idle`)."""

    last_busy: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def touch(self) -> None:
        with self.lock:
            self.last_busy = time.monotonic()


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def _port_free(host: str, port: int) -> bool:
    if port == 0:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


LOCAL_PERSONAL_DATA_KEY = base64.b64encode(hashlib.sha256(b"smartzone-local-personal-data").digest()).decode()
"""Wraps residents' data keys in the local platform (fixed, so a kept local table stays readable)."""


def _environment(region: str, endpoint: str) -> None:
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            # No KMS locally: residents' data keys are wrapped with this key instead (synthetic data only).
            "PERSONAL_DATA_LOCAL_KEY": os.environ.get("PERSONAL_DATA_LOCAL_KEY", LOCAL_PERSONAL_DATA_KEY),
        }
    )
    os.environ.pop("AWS_PROFILE", None)


class Platform:
    """``with Platform(PlatformConfig(...)) as platform: platform.session``."""

    def __init__(
        self, config: PlatformConfig | None = None, say: Callable[[str], None] | None = None
    ) -> None:
        self.config = config or PlatformConfig()
        self._say = say or (lambda line: print(line, flush=True))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._closers: list[Callable[[], None]] = []
        self._activity = _Activity()
        self._saved_environment = dict(os.environ)
        self.session: dict[str, Any] = {}
        self.deployment: Any = None
        self.table_name = ""
        self._device_states: dict[str, str] = {}
        self._started = False
        self._stop_aws: Callable[[], None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> Platform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def say(self, line: str) -> None:
        if not self.config.quiet:
            self._say(line)

    def start(self) -> Platform:
        started = time.monotonic()
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self._preflight()
        try:
            self._start_aws()
            description = self._synthesize()
            self._provision(description)
            self._start_event_sources(description)
            self._start_broker(description)
            self._start_api(description)
            self._start_dashboard()
            self._start_console()
            if cfg.simulator:
                self._start_simulator()
            self._start_snapshots()
            self._write_session()
            self._started = True
        except BaseException:
            self.stop()
            raise
        self.say(f"\n就绪 ready in {time.monotonic() - started:.1f} s")
        self._banner()
        return self

    def stop(self) -> None:
        """Stop producers first, then the pollers, then snapshot a quiet table, then emulated AWS.

        The snapshot is taken only by a platform that finished starting: an interrupted start
        never overwrites the last good snapshot with a partial table."""
        if self._stop.is_set():
            return
        self._stop.set()
        for close in reversed(self._closers):
            try:
                close()
            except Exception as exc:
                self.say(f"while stopping: {exc}")
        for thread in self._threads:
            thread.join(timeout=10)
        if self._started:
            try:
                count = self._snapshot()
                self.say(f"快照 snapshot: {count} items → {self.config.state_dir / SNAPSHOT_FILE}")
            except Exception as exc:  # never lose the shutdown over a snapshot
                self.say(f"snapshot on shutdown failed: {exc}")
        if self._stop_aws is not None:
            self._stop_aws()
        os.environ.clear()  # the process leaves the platform as it found it (endpoint, region, keys)
        os.environ.update(self._saved_environment)
        from smartzone.repositories.clients import reset_clients
        from smartzone.settings import get_settings

        reset_clients()
        get_settings.cache_clear()

    def wait_idle(self, timeout_s: float = 10.0, quiet_s: float = 1.0) -> bool:
        """Wait until no poller has had work for ``quiet_s`` (best effort); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._activity.lock:
                calm = time.monotonic() - self._activity.last_busy
            if calm >= quiet_s:
                return True
            time.sleep(0.1)
        return False

    # -- steps ---------------------------------------------------------------------------------
    def _preflight(self) -> None:
        cfg = self.config
        if shutil.which("node") is None:
            raise PlatformError(
                "Node.js is needed to synthesize the CDK app (jsii runs on it): install Node 20+ "
                "(e.g. `apt-get install nodejs`), then run `make run` again"
            )
        for name, port, variable in (
            ("HTTP API", cfg.api_port, "API_PORT"),
            ("dashboard", cfg.dashboard_port, "DASHBOARD_PORT"),
            ("MQTT broker", cfg.mqtt_port, "MQTT_PORT"),
            ("emulated AWS", cfg.moto_port, "MOTO_PORT"),
        ):
            if not _port_free(cfg.host, port):
                raise PlatformError(
                    f"port {port} ({name}) is in use: stop the other process or run `make run {variable}=<port>`"
                )

    def _start_aws(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per AWS call otherwise
        port = self.config.moto_port or _free_port(self.config.host)
        server = ThreadedMotoServer(ip_address=self.config.host, port=port, verbose=False)
        server.start()
        self._stop_aws = server.stop
        endpoint = f"http://{self.config.host}:{port}"
        # moto keeps its backends in this process: a platform started after another one in the same
        # process (one per e2e test module) would find the earlier one's tables, queues and items.
        # Emulated AWS starts empty; what persists between runs is the snapshot.
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # localhost: no proxy
        with direct.open(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30):
            pass
        _environment(REGION, endpoint)
        from smartzone.repositories.clients import reset_clients
        from smartzone.settings import get_settings

        reset_clients()
        get_settings.cache_clear()
        self.moto_endpoint = endpoint
        self.say(f"模拟 AWS (moto)       {endpoint}")

    def _synthesize(self) -> Any:
        """Synthesize in a child process (jsii's Node process stays out of the platform's)."""
        from infra.local.template import read_template

        outdir = self.config.state_dir / "cdk.out"
        self.say("合成 CDK 模板 synthesizing the stack (the wiring comes from its template)…")
        t = time.monotonic()
        script = (
            "import sys; from infra.app import build_app; "
            "app = build_app({'aws:cdk:bundling-stacks': [], 'region': sys.argv[1]}, outdir=sys.argv[2]); "
            "print(app.synth().stacks[0].stack_name)"
        )
        done = subprocess.run(
            [sys.executable, "-c", script, REGION, str(outdir)],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": f"{REPO_ROOT / 'layers/shared/python'}:{REPO_ROOT}"},
            start_new_session=True,
            check=False,
        )
        if done.returncode != 0:
            raise PlatformError(f"synthesizing the CDK app failed:\n{done.stderr[-2000:]}")
        stack_name = done.stdout.strip().splitlines()[-1]
        description = read_template(outdir / f"{stack_name}.template.json")
        self.say(
            f"    {len(description.functions)} functions, {len(description.event_source_mappings)} event sources, "
            f"{len(description.topic_rules)} IoT rule(s), {len(description.schedules)} schedule(s) "
            f"({time.monotonic() - t:.1f} s)"
        )
        unsupported = description.unsupported_report()
        if unsupported:
            self.say("    not emulated locally (reported, not skipped silently):")
            for line in unsupported:
                self.say(f"      - {line}")
        return description

    def _provision(self, description: Any) -> None:
        from infra.local.provision import deploy
        from infra.local.template import Physical
        from infra.local.userpool import LocalUserPool

        self.pool = LocalUserPool.create(region=REGION)
        extra: dict[str, Physical] = {}
        for logical_id, spec in description.user_pools.items():
            extra[logical_id] = Physical(ref=self.pool.pool_id, attributes={"ProviderURL": self.pool.issuer})
            for client_id in spec.client_ids:
                extra[client_id] = Physical(ref=self.pool.client_id)
        self.deployment = deploy(description, extra=extra)
        (table_id,) = description.tables
        self.table_name = self.deployment.ref(table_id)
        # The notifications topic is the one the functions' NOTIFICATIONS_TOPIC_ARN names; the others
        # (the operators' alarm topic) are provisioned, but nothing publishes to them locally.
        topic_id = description.notifications_topic()
        self.topic_arn = self.deployment.ref(topic_id)
        for other in description.topics:
            if other != topic_id:
                self.say(
                    f"    topic {other}: provisioned, no local publisher or subscriber "
                    "(CloudWatch alarms are not evaluated locally)"
                )
        restored = 0
        snapshot = self.config.state_dir / SNAPSHOT_FILE
        if snapshot.exists() and not self.config.reset:
            restored = self._restore(snapshot)
            self.say(f"恢复快照 restored {restored} items from {snapshot}")
        self._seed(restored == 0)
        self._users()

    def _seed(self, fresh: bool) -> None:
        from tools.seed import load_district

        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done >= total or now - last[0] > 0.5:
                last[0] = now
                self.say(f"    写入设备 seeding devices {done}/{total}")

        self.say(
            "载入种子数据 seeding the demo district…" if fresh else "核对种子数据 checking the registry…"
        )
        report = load_district(self.config.seed_file, self.table_name, self.topic_arn, progress=progress)
        self.say(f"    {report.summary()}")

    def _users(self) -> None:
        from smartzone.repositories.clients import client
        from smartzone.repositories.codec import from_item, to_item
        from smartzone.repositories.keys import GSI2

        items = client("dynamodb").query(
            TableName=self.table_name,
            IndexName=GSI2,
            KeyConditionExpression="gsi2pk = :p",
            ExpressionAttributeValues=to_item({":p": "USERS"}),
        )["Items"]
        self.users: list[dict[str, Any]] = []
        for item in items:
            user = from_item(item)
            roles = [str(r) for r in user.get("roles", [])]
            grids = [str(g) for g in user.get("grid_ids", [])]
            self.pool.add_user(str(user["username"]), roles, grid_id=grids[0] if grids else None)
            self.users.append(
                {"username": user["username"], "groups": roles, "grid_id": grids[0] if grids else None}
            )

    def _start_event_sources(self, description: Any) -> None:
        from infra.local.event_sources import Invoker, StreamPoller, build_event_sources, local_functions

        # No Athena locally: data-lake queries run on DuckDB over the bucket's Parquet files.
        self.invoker = Invoker(
            region=REGION, overrides={"POWERTOOLS_METRICS_DISABLED": "true", "QUERY_ENGINE": "duckdb"}
        )
        self.functions = local_functions(self.deployment)
        sources = build_event_sources(
            self.deployment,
            self.invoker,
            functions=self.functions,
            schedule_period_s=self.config.sweep_period_s,
            sqs_failure_visibility_timeout_s=5,
        )
        for poller in sources.pollers:
            if isinstance(poller, StreamPoller):
                poller.reader.poll()  # what is already in the table (seed, snapshot) is history, not news
            original = poller.poll_once

            def watched(original: Callable[[], Any] = original) -> Any:
                result = original()
                if not result.idle:
                    self._activity.touch()
                return result

            poller.poll_once = watched  # type: ignore[method-assign]
            self._threads.append(poller.start(self._stop))
            self.say(f"事件源 event source   {poller.name}")
        for skipped in sources.skipped:
            self.say(f"    not wired: {skipped}")

    def _start_broker(self, description: Any) -> None:
        from infra.local.broker import LocalBroker
        from infra.local.firehose import FirehoseToS3
        from infra.local.iot_sql import compile_rule
        from smartzone.domain.timeutil import now_ms
        from smartzone.repositories.clients import client

        rules = [(spec, compile_rule(spec.sql)) for spec in description.topic_rules.values() if spec.enabled]
        self.archives = {
            logical_id: FirehoseToS3(
                stream, self.deployment.ref(logical_id), self.deployment.ref(stream.bucket_id), client("s3")
            )
            for logical_id, stream in description.delivery_streams.items()
        }

        def deliver_archives() -> None:
            while not self._stop.wait(5.0):
                for archive in self.archives.values():
                    archive.flush_if_due()

        flusher = threading.Thread(target=deliver_archives, name="firehose", daemon=True)
        flusher.start()
        self._threads.append(flusher)

        def flush_archives() -> None:
            for archive in self.archives.values():
                archive.flush()

        self._closers.append(flush_archives)

        def apply_rules(topic: str, payload: bytes) -> None:
            self._activity.touch()
            for spec, rule in rules:
                if not rule.matches(topic):
                    continue
                try:
                    output = rule.evaluate(topic, payload, now_ms())
                except Exception as exc:
                    self._rule_error(spec, topic, str(exc))
                    continue
                if output is None:
                    continue
                body = json.dumps(output, ensure_ascii=False)
                for action in spec.actions:
                    try:
                        if action.kind == "sqs" and action.target_id:
                            client("sqs").send_message(
                                QueueUrl=self.deployment.ref(action.target_id), MessageBody=body
                            )
                        elif action.kind == "firehose" and action.target_id in self.archives:
                            self.archives[action.target_id].put_record((body + "\n").encode())
                    except Exception as exc:
                        self._rule_error(spec, topic, f"{action.kind} action failed: {exc}")

        for spec, _ in rules:
            self.say(f"IoT 规则 rule          {spec.rule_name or spec.logical_id}: {spec.sql}")
        broker = LocalBroker(port=self.config.mqtt_port, host=self.config.host)
        broker.on_message(apply_rules)
        broker.start()
        self.broker = broker
        self._closers.append(broker.stop)
        self.say(f"MQTT broker           mqtt://{self.config.host}:{broker.port}")

    def _rule_error(self, spec: Any, topic: str, error: str) -> None:
        """The rule's error action: the failure goes to its errors queue, as IoT Core does."""
        from smartzone.repositories.clients import client

        target = spec.error_action.target_id if spec.error_action else None
        if target is None:
            self.say(f"IoT rule error on {topic}: {error}")
            return
        client("sqs").send_message(
            QueueUrl=self.deployment.ref(target),
            MessageBody=json.dumps(
                {"ruleName": spec.rule_name, "topic": topic, "failures": [{"errorMessage": error}]}
            ),
        )

    def _start_api(self, description: Any) -> None:
        from infra.local.gateway import CognitoAuthorizer, LocalGateway

        api_function = next(f for f in self.functions.values() if f.spec.package == "api")

        def handler(event: Mapping[str, Any], context: Any) -> Any:
            invocation = self.invoker.invoke(api_function, event)
            if invocation.error is not None:
                raise invocation.error
            return invocation.result

        authorizer = CognitoAuthorizer(
            issuer=self.pool.issuer, client_ids=[self.pool.client_id], jwks=self.pool.jwks
        )
        self.gateway = LocalGateway(authorizer, handler, open_routes=self._open_routes(description))
        server = make_server(
            self.config.host,
            self.config.api_port,
            self.gateway.wsgi,
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self.api_url = f"http://{self.config.host}:{server.server_port}"
        thread = threading.Thread(target=server.serve_forever, name="http-api", daemon=True)
        thread.start()
        self._closers.append(server.shutdown)
        self.say(f"HTTP API              {self.api_url}/v1  (OpenAPI: {self.api_url}/v1/openapi.json)")
        keyed = sorted(
            {
                f"{m.http_method} {m.path}"
                for api in description.rest_apis.values()
                for m in api.methods
                if m.api_key_required
            }
        )
        if keyed:
            # The function sees no requestContext.identity.apiKeyId locally, so the data routes'
            # key-ownership check (functions/api/data_access.py check_api_key) does not apply:
            # departments reach /v1/data with their ID token alone, as the cloud would let them
            # with their own key.
            self.say(
                f"    API keys not checked locally (no x-api-key needed; usage plans not enforced): {', '.join(keyed)}"
            )

    def _open_routes(self, description: Any) -> dict[tuple[str, str], Any]:
        """Methods without an authorizer served by another function than the API's (the signed
        detections webhook), read from the template: ``(METHOD, path)`` → that function."""
        routes: dict[tuple[str, str], Any] = {}
        for api in description.rest_apis.values():
            for method in api.methods:
                target = self.functions.get(method.function_id) if method.function_id else None
                if method.authorization_type != "NONE" or target is None or target.spec.package == "api":
                    continue

                def invoke(event: Mapping[str, Any], context: Any, function: Any = target) -> Any:
                    invocation = self.invoker.invoke(function, event)
                    if invocation.error is not None:
                        raise invocation.error
                    return invocation.result

                routes[(method.http_method, method.path)] = invoke
        return routes

    def _start_dashboard(self) -> None:
        """The page's state is computed in the background (orders every second, device states every
        few seconds) so that ``state.json`` answers at once."""
        from infra.local.dashboard_server import DashboardServer, district_static

        static = district_static(self.config.seed_file)
        latest: dict[str, Any] = {"state": self._dashboard_state(static, refresh_devices=True)}

        def refresh() -> None:
            rounds = 0
            while not self._stop.wait(1.0):
                rounds += 1
                try:
                    latest["state"] = self._dashboard_state(static, refresh_devices=rounds % 5 == 0)
                except Exception as exc:
                    self.say(f"dashboard refresh failed: {exc}")

        thread = threading.Thread(target=refresh, name="dashboard-state", daemon=True)
        thread.start()
        self._threads.append(thread)
        server = DashboardServer(
            lambda: latest["state"], host=self.config.host, port=self.config.dashboard_port
        ).start()
        self.dashboard_url = server.url
        self._closers.append(server.stop)
        self.say(f"指挥中心大屏 dashboard  {server.url}")

    def _dashboard_state(self, static: Mapping[str, Any], *, refresh_devices: bool) -> dict[str, Any]:
        from infra.local.dashboard_server import dashboard_state
        from smartzone.domain.device_status import live_status
        from smartzone.domain.timeutil import now_ms
        from smartzone.domain.workorders import OrderStatus
        from smartzone.repositories.clients import client
        from smartzone.repositories.codec import from_item, to_item
        from smartzone.repositories.devices import device_from_item
        from smartzone.repositories.keys import GSI2

        ddb = client("dynamodb")

        def query(partition: str, limit: int | None = None) -> list[dict[str, Any]]:
            request: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": GSI2,
                "KeyConditionExpression": "gsi2pk = :p",
                "ExpressionAttributeValues": to_item({":p": partition}),
                "ScanIndexForward": False,
            }
            if limit:
                request["Limit"] = limit
            items: list[dict[str, Any]] = []
            while True:
                page = ddb.query(**request)
                items += page.get("Items", [])
                if limit or "LastEvaluatedKey" not in page:
                    return items
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

        now = now_ms()
        orders = []
        for status in OrderStatus:
            for raw in query(f"ORDERSTATUS#{status.value}", limit=100):
                order = from_item(raw)
                order["subject"] = order.get("device_id")
                orders.append({k: v for k, v in order.items() if not k.startswith(("gsi", "pk", "sk"))})
        if refresh_devices or not self._device_states:
            states = {}
            for raw in query("DEVICES"):
                record = device_from_item(raw)
                states[record.device.device_id] = str(live_status(record.device, record.state, now))
            self._device_states = states
        alarmed = {str(o.get("device_id")) for o in orders if o.get("status") not in ("closed", "cancelled")}
        # open orders say "alarm" at once; the slower device scan adds offline and maintenance
        explicit = {d: st for d, st in self._device_states.items() if st != "normal" and d not in alarmed}
        return dashboard_state(static, orders, device_states=explicit, now=now)

    def _start_console(self) -> None:
        """One line per alarm, order and notification: a console subscriber of the SNS topic."""
        from smartzone.domain.timeutil import now_ms, to_local_display
        from smartzone.repositories.clients import client

        sqs = client("sqs")
        url = sqs.create_queue(QueueName="local-console")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        client("sns").subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=arn)

        def run() -> None:
            while not self._stop.is_set():
                try:
                    messages = sqs.receive_message(
                        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                    ).get("Messages", [])
                except Exception:
                    self._stop.wait(1)
                    continue
                for message in messages:
                    try:
                        envelope = json.loads(message["Body"])
                        event = json.loads(envelope["Message"])
                        attrs = envelope.get("MessageAttributes", {})
                        grid = attrs.get("grid_id", {}).get("Value", "")
                        kind = attrs.get("event_type", {}).get("Value", event.get("event_type", ""))
                        self.say(
                            f"[{to_local_display(now_ms())}] {kind:<20} 网格 {grid:<4} {event.get('text', '')}"
                        )
                    except (KeyError, ValueError):
                        pass
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

        thread = threading.Thread(target=run, name="console", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_simulator(self) -> None:
        from infra.local.simulator import DeviceSimulator, MqttPublisher, SimulatorConfig, district_device_ids

        simulator = DeviceSimulator(
            district_device_ids(self.config.seed_file),
            SimulatorConfig(rate=self.config.simulator_rate),
            MqttPublisher(self.config.host, self.broker.port),
        ).start()
        self._closers.append(lambda: self.say(f"simulator sent {simulator.stop()}"))
        self.say(
            f"设备模拟器 simulator   {len(simulator.device_ids)} covers, {self.config.simulator_rate:g} readings/s"
        )

    def _start_snapshots(self) -> None:
        def run() -> None:
            while not self._stop.wait(self.config.snapshot_period_s):
                try:
                    self._snapshot()
                except Exception as exc:
                    self.say(f"snapshot failed: {exc}")

        thread = threading.Thread(target=run, name="snapshots", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _snapshot(self) -> int:
        """The table's items to ``snapshot.json`` (local tooling: a Scan is fine here)."""
        from smartzone.repositories.clients import client

        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"TableName": self.table_name}
        while True:
            page = client("dynamodb").scan(**request)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        target = self.config.state_dir / SNAPSHOT_FILE
        partial = target.with_suffix(".tmp")
        partial.write_text(json.dumps({"table_items": items}, ensure_ascii=False), encoding="utf-8")
        partial.replace(target)
        return len(items)

    def _restore(self, path: Path) -> int:
        from smartzone.repositories.clients import client

        items = json.loads(path.read_text(encoding="utf-8")).get("table_items", [])
        for start in range(0, len(items), 25):
            request = {
                self.table_name: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            }
            while request:
                request = (
                    client("dynamodb").batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
                )
        return len(items)

    def _write_session(self) -> None:
        users = [{**user, "id_token": self.pool.id_token(str(user["username"]))} for user in self.users]
        self.session = {
            "api_url": self.api_url,
            "dashboard_url": self.dashboard_url,
            "mqtt": {"host": self.config.host, "port": self.broker.port},
            "aws_endpoint_url": self.moto_endpoint,
            "users": users,
        }
        path = self.config.state_dir / SESSION_FILE
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(self.session, ensure_ascii=False, indent=2), encoding="utf-8")
        partial.replace(path)

    def _banner(self) -> None:
        path = self.config.state_dir / SESSION_FILE
        self.say(f"会话 session           {path} ({len(self.users)} users with fresh ID tokens)")
        by_role: dict[str, list[str]] = {}
        for user in self.users:
            for group in user["groups"] or ["(none)"]:
                by_role.setdefault(group, []).append(str(user["username"]))
        for role, names in sorted(by_role.items()):
            shown = ", ".join(sorted(names)[:6]) + (f" … (+{len(names) - 6})" if len(names) > 6 else "")
            self.say(f"    {role:<12} {shown}")
        example = next(
            (u for u in self.users if u["username"] == "G07-W1"), self.users[0] if self.users else None
        )
        if example:
            self.say(
                "试一试 try:\n"
                f"  mosquitto_pub -h {self.config.host} -p {self.broker.port} -q 1 -t smartzone/manhole/MH-0178/telemetry "
                '-m \'{"ts": "now-ish ISO-8601", "tilt_deg": 25.3}\'   (or: python -m tools.device_client MH-0178 --tilt 25.3)\n'
                f"  TOKEN=$(jq -r '.users[] | select(.username==\"{example['username']}\") | .id_token' {path})\n"
                f'  curl -H "Authorization: Bearer $TOKEN" {self.api_url}/v1/workorders\n'
                "Ctrl-C 停止 to stop."
            )


class _ConsoleWithoutMetrics:
    """stdout for ``make run``: the functions' EMF metric lines (meant for CloudWatch) are dropped."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._dropped = False

    def write(self, text: str) -> int:
        dropped, self._dropped = self._dropped, text.startswith('{"_aws"')
        if self._dropped or (dropped and text == "\n"):
            return len(text)
        return int(self.stream.write(text))

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local.platform", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--no-sim", action="store_true", help="start without the device simulator (make run SIM=0)"
    )
    parser.add_argument("--reset", action="store_true", help="start from fresh seed data (make run RESET=1)")
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("API_PORT", 8000)))
    parser.add_argument("--mqtt-port", type=int, default=int(os.environ.get("MQTT_PORT", 1883)))
    parser.add_argument("--dashboard-port", type=int, default=int(os.environ.get("DASHBOARD_PORT", 8080)))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", 0)))
    parser.add_argument(
        "--rate", type=float, default=10.0, help="simulated readings per second (whole fleet)"
    )
    parser.add_argument(
        "--sweep-seconds", type=float, default=60.0, help="sweeper period (the cloud uses 5 min)"
    )
    args = parser.parse_args(argv)
    config = PlatformConfig(
        api_port=args.api_port,
        mqtt_port=args.mqtt_port,
        dashboard_port=args.dashboard_port,
        moto_port=args.moto_port,
        simulator=not args.no_sim,
        simulator_rate=args.rate,
        reset=args.reset,
        sweep_period_s=args.sweep_seconds,
    )
    sys.stdout = _ConsoleWithoutMetrics(sys.stdout)
    platform = Platform(config)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        platform.start()
        while not stopping.wait(0.5):
            pass
    except PlatformError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        print("\n正在停止 stopping (snapshot to .local/snapshot.json)…", flush=True)
        platform.stop()
        print("已停止 stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
