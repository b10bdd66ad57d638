"""The command-centre dashboard (指挥中心大屏): its page and the JSON state it polls.

    server = DashboardServer(state_provider, port=8080).start()
    print(server.url)            # http://127.0.0.1:8080/dashboard/
    ...
    server.stop()

Routes (GET only):

| path                          | answers                                                     |
|-------------------------------|-------------------------------------------------------------|
| ``/`` , ``/dashboard``        | 302 to ``/dashboard/``                                       |
| ``/dashboard/``               | ``dashboard/index.html``                                     |
| ``/dashboard/dashboard.js``   | the script (plain JS, no build step)                         |
| ``/dashboard/dashboard.css``  | the style sheet                                              |
| ``/dashboard/state.json``     | ``state_provider()`` as JSON (``Cache-Control: no-store``)   |

The page polls ``state.json`` every 2 s. A provider that raises answers 503 with
``{"error": ...}``; the page keeps showing its last state and says the connection is down.

``state_provider()`` returns a JSON-ready dict (see :func:`dashboard_state`, which builds one):

    {
      "generated_at": "2026-11-29T06:05:00.000Z",         # UTC; the page shows Asia/Shanghai
      "district": {"name": "示范高新区", "bbox": [lon0, lat0, lon1, lat1]},
      "grids":   [{"grid_id", "name", "community", "boundary": GeoJSON Polygon}],
      "lines":   [{"name", "kind": "road" | "river", "coordinates": [[lon, lat], ...]}],
      "devices": [{"device_id", "name", "lon", "lat", "grid_id", "state"}],
      "cameras": [{"camera_id", "name", "lon", "lat", "grid_id", "state"}],
      "counters": {
        "open_orders_by_category": {"manhole_tilt": 2, ...},
        "alarms_today": 3,                                  # orders created today (Beijing day)
        "median_alarm_to_clearance_s": 3840 | null,
        "covers_repaired": 36, "illegal_fishing_stopped": 5, "straw_burning_handled": 2
      },
      "orders":  [{"order_id", "category", "status", "grid_id", "subject", "title",
                   "created_at", "closed_at"?}],             # newest first, at most 20
      "labels":  {"category": {code: 中文}, "status": {code: 中文}, "state": {code: 中文}}
    }

``state`` is one of ``normal``, ``alarm``, ``offline``, ``maintenance``. The server holds no data
of its own: the local platform passes a provider reading the API or the table; tests use
:class:`SeedStateProvider` (the seed file plus an in-memory list of orders).
"""

from __future__ import annotations

import json
import logging
import statistics
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from smartzone.domain.timeutil import SHANGHAI, from_iso, now_ms, to_iso
from smartzone.domain.workorders import CATEGORY_LABEL_ZH, FINAL_STATUSES, STATUS_LABEL_ZH, OrderStatus

logger = logging.getLogger(__name__)

StateProvider = Callable[[], Mapping[str, Any]]

STATIC_DIR = Path(__file__).resolve().parent / "dashboard"
STATIC_FILES: Mapping[str, tuple[str, str]] = {
    "/dashboard/": ("index.html", "text/html; charset=utf-8"),
    "/dashboard/index.html": ("index.html", "text/html; charset=utf-8"),
    "/dashboard/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}
STATE_PATH = "/dashboard/state.json"
DEFAULT_SEED_FILE = Path(__file__).resolve().parents[2] / "events" / "seed" / "district.json"
LATEST_ORDERS = 20

DEVICE_STATES = ("normal", "alarm", "offline", "maintenance")
STATE_LABEL_ZH = {"normal": "正常", "alarm": "告警", "offline": "离线", "maintenance": "维护"}
EXTRA_CATEGORY_LABEL_ZH = {
    # camera and drone detections (their categories are counted by the statistics headline)
    "illegal_fishing": "非法捕捞",
    "straw_burning": "秸秆焚烧",
    "illegal_dumping": "违规倾倒",
    "bank_loitering": "江岸逗留",
    "pollution_equipment": "治污设施异常",
}
HEADLINE_CATEGORIES = {
    "covers_repaired": "manhole_tilt",
    "illegal_fishing_stopped": "illegal_fishing",
    "straw_burning_handled": "straw_burning",
}
ALARM_STATE_OF_CATEGORY = {
    "manhole_tilt": "alarm",
    "device_battery_low": "alarm",
    "device_offline": "offline",
}


def labels() -> dict[str, dict[str, str]]:
    """The Chinese labels the page shows (the domain's, plus detection categories)."""
    return {
        "category": {**EXTRA_CATEGORY_LABEL_ZH, **{str(k): v for k, v in CATEGORY_LABEL_ZH.items()}},
        "status": {str(k): v for k, v in STATUS_LABEL_ZH.items()},
        "state": dict(STATE_LABEL_ZH),
    }


# -- building a state ------------------------------------------------------------------------------


def _is_open(order: Mapping[str, Any]) -> bool:
    return order.get("status") not in {str(s) for s in FINAL_STATUSES}


def _beijing_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=SHANGHAI).date().isoformat()


def order_counters(
    orders: Iterable[Mapping[str, Any]], now: int, headline_base: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """The counters of the page from a list of orders (``headline_base`` adds earlier history)."""
    open_by_category: dict[str, int] = {}
    durations: list[float] = []
    today = _beijing_day(now)
    alarms_today = 0
    headline = {name: int((headline_base or {}).get(name, 0)) for name in HEADLINE_CATEGORIES}
    for order in orders:
        category = str(order.get("category", ""))
        if _is_open(order):
            open_by_category[category] = open_by_category.get(category, 0) + 1
        created = order.get("created_at")
        if created and _beijing_day(from_iso(str(created))) == today:
            alarms_today += 1
        if order.get("status") == OrderStatus.CLOSED:
            for name, headline_category in HEADLINE_CATEGORIES.items():
                if category == headline_category:
                    headline[name] += 1
            if created and order.get("closed_at"):
                durations.append((from_iso(str(order["closed_at"])) - from_iso(str(created))) / 1000)
    return {
        "open_orders_by_category": open_by_category,
        "alarms_today": alarms_today,
        "median_alarm_to_clearance_s": statistics.median(durations) if durations else None,
        **headline,
    }


def dashboard_state(
    district: Mapping[str, Any],
    orders: Sequence[Mapping[str, Any]],
    *,
    device_states: Mapping[str, str] | None = None,
    camera_states: Mapping[str, str] | None = None,
    counters: Mapping[str, Any] | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """A ``state.json`` document from the district's static part (:func:`district_static`),
    the orders, and explicit device/camera states (those not given are derived from open orders:
    an open tilt or battery order → ``alarm``, an open offline order → ``offline``).
    ``counters`` overrides :func:`order_counters` (e.g. the platform's ``/v1/stats``)."""
    now = now_ms() if now is None else now
    derived: dict[str, str] = {}
    for order in orders:
        state = ALARM_STATE_OF_CATEGORY.get(str(order.get("category")))
        subject = order.get("subject") or order.get("device_id")
        if state and subject and _is_open(order) and derived.get(str(subject)) != "alarm":
            derived[str(subject)] = state
    derived.update(device_states or {})
    cams = dict(camera_states or {})
    latest = sorted(orders, key=lambda o: str(o.get("created_at", "")), reverse=True)[:LATEST_ORDERS]
    return {
        "generated_at": to_iso(now),
        "district": district.get("district", {}),
        "grids": district.get("grids", []),
        "lines": district.get("lines", []),
        "devices": [
            {**device, "state": derived.get(device["device_id"], "normal")}
            for device in district.get("devices", [])
        ],
        "cameras": [
            {**camera, "state": cams.get(camera["camera_id"], "normal")}
            for camera in district.get("cameras", [])
        ],
        "counters": dict(counters) if counters is not None else order_counters(orders, now),
        "orders": [dict(order) for order in latest],
        "labels": labels(),
    }


def district_static(path: str | Path = DEFAULT_SEED_FILE) -> dict[str, Any]:
    """The map's static part from a seed file: district, grids with boundaries, roads and river,
    covers and cameras (covers and grids validated by :func:`tools.seed.read_district`)."""
    from tools.seed import read_district

    district = read_district(path)
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    lines = [
        {"name": road.get("name", ""), "kind": "road", "coordinates": road["line"]["coordinates"]}
        for road in raw.get("roads") or []
        if isinstance(road, dict) and isinstance(road.get("line"), dict)
    ]
    river = raw.get("river")
    if isinstance(river, dict) and isinstance(river.get("bank"), dict):
        lines.append(
            {"name": river.get("name", ""), "kind": "river", "coordinates": river["bank"]["coordinates"]}
        )
    info = raw.get("district") if isinstance(raw.get("district"), dict) else {}
    return {
        "district": {"name": info.get("name", ""), "bbox": info.get("bbox")},
        "grids": [
            {
                "grid_id": grid.grid_id,
                "name": grid.name,
                "community": grid.community,
                "boundary": district.boundaries.get(grid.grid_id),
            }
            for grid in district.grids
        ],
        "lines": lines,
        "devices": [
            {"device_id": d.device_id, "name": d.name, "lon": d.lon, "lat": d.lat, "grid_id": d.grid_id}
            for d in district.devices
        ],
        "cameras": [
            {
                "camera_id": c["camera_id"],
                "name": c.get("name", c["camera_id"]),
                "lon": c["lon"],
                "lat": c["lat"],
                "grid_id": c.get("grid_id"),
            }
            for c in raw.get("cameras") or []
            if isinstance(c, dict) and "camera_id" in c and "lon" in c and "lat" in c
        ],
    }


class SeedStateProvider:
    """A provider for tests and previews: the seed file's map plus in-memory orders and states."""

    def __init__(self, path: str | Path = DEFAULT_SEED_FILE, *, clock: Callable[[], int] = now_ms) -> None:
        self.static = district_static(path)
        self.orders: list[dict[str, Any]] = []
        self.device_states: dict[str, str] = {}
        self.camera_states: dict[str, str] = {}
        self.clock = clock
        self._lock = threading.Lock()

    def add_order(self, order: Mapping[str, Any]) -> None:
        with self._lock:
            self.orders.append(dict(order))

    def update_order(self, order_id: str, **changes: Any) -> None:
        with self._lock:
            for order in self.orders:
                if order.get("order_id") == order_id:
                    order.update(changes)
                    return
        raise KeyError(order_id)

    def __call__(self) -> dict[str, Any]:
        with self._lock:
            orders = [dict(order) for order in self.orders]
            devices, cameras = dict(self.device_states), dict(self.camera_states)
        return dashboard_state(
            self.static, orders, device_states=devices, camera_states=cameras, now=self.clock()
        )


# -- serving ---------------------------------------------------------------------------------------


Response = tuple[int, dict[str, str], bytes]


class DashboardRoutes:
    """The dashboard's routes, independent of the HTTP server (see :meth:`respond`)."""

    def __init__(self, state_provider: StateProvider, static_dir: Path = STATIC_DIR) -> None:
        self.state_provider = state_provider
        self.static_dir = static_dir

    def respond(self, path: str) -> Response | None:
        """The response to ``GET path`` (query string ignored), or ``None`` if not ours."""
        path = path.split("?", 1)[0]
        if path in ("/", "/dashboard"):
            return HTTPStatus.FOUND, {"Location": "/dashboard/"}, b""
        if path == STATE_PATH:
            return self._state()
        entry = STATIC_FILES.get(path)
        if entry is None:
            return None
        name, content_type = entry
        body = (self.static_dir / name).read_bytes()
        return HTTPStatus.OK, {"Content-Type": content_type, "Cache-Control": "no-cache"}, body

    def _state(self) -> Response:
        headers = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
        try:
            state = self.state_provider()
            body = json.dumps(state, ensure_ascii=False, separators=(",", ":"), default=str).encode()
        except Exception as error:
            logger.exception("dashboard state provider failed")
            message = {"error": "state_unavailable", "message": f"{type(error).__name__}: {error}"}
            return HTTPStatus.SERVICE_UNAVAILABLE, headers, json.dumps(message, ensure_ascii=False).encode()
        return HTTPStatus.OK, headers, body


class _Handler(BaseHTTPRequestHandler):
    routes: DashboardRoutes
    server_version = "SmartZoneDashboard/1"

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        response = self.routes.respond(self.path)
        if response is None:
            response = (
                HTTPStatus.NOT_FOUND,
                {"Content-Type": "application/json; charset=utf-8"},
                b'{"error":"not_found","message":"no such page"}',
            )
        status, headers, body = response
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the platform prints what matters
        logger.debug("dashboard: " + format, *args)


class DashboardServer:
    """Serves :class:`DashboardRoutes` with ``ThreadingHTTPServer`` on a background thread."""

    def __init__(self, state_provider: StateProvider, host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes = DashboardRoutes(state_provider)
        self.host = host
        self.requested_port = port
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/dashboard/"

    def start(self) -> DashboardServer:
        handler = type("DashboardHandler", (_Handler,), {"routes": self.routes})
        try:
            self._server = ThreadingHTTPServer((self.host, self.requested_port), handler)
        except OSError as error:
            raise OSError(
                f"port {self.requested_port} is in use or unavailable for the dashboard ({error.strerror}): "
                "stop the other program or choose another port"
            ) from error
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="dashboard-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def demo_orders(now: int | None = None) -> list[dict[str, Any]]:
    """A few orders in every stage, for the preview (``python -m infra.local.dashboard_server``)."""
    now = now_ms() if now is None else now
    minute = 60_000
    rows = [
        ("WO-DEMO-1", "manhole_tilt", "dispatched", "G07", "MH-0178", "高新大道178号井倾斜 25.3°", 3, None),
        ("WO-DEMO-2", "manhole_tilt", "handling", "G01", "MH-0231", "长江路231号井倾斜 31.0°", 42, None),
        (
            "WO-DEMO-3",
            "device_battery_low",
            "acknowledged",
            "G12",
            "MH-0455",
            "银湖路455号井传感器电量低",
            95,
            None,
        ),
        ("WO-DEMO-4", "illegal_fishing", "verifying", "G02", "CAM-09", "江滩公园段疑似非法捕捞", 18, None),
        ("WO-DEMO-5", "manhole_tilt", "closed", "G09", "MH-0012", "科技路12号井倾斜 22.8°", 180, 64),
        ("WO-DEMO-6", "straw_burning", "closed", "G04", "CAM-17", "东河口段秸秆焚烧", 300, 52),
    ]
    return [
        {
            "order_id": order_id,
            "category": category,
            "status": status,
            "grid_id": grid_id,
            "subject": subject,
            "title": title,
            "created_at": to_iso(now - age * minute),
            **({"closed_at": to_iso(now - age * minute + took * minute)} if took else {}),
        }
        for order_id, category, status, grid_id, subject, title, age, took in rows
    ]


if __name__ == "__main__":  # preview: python -m infra.local.dashboard_server [port]
    import sys
    import time

    provider = SeedStateProvider()
    for demo in demo_orders():
        provider.add_order(demo)
    provider.device_states.update({"MH-0300": "offline", "MH-0301": "maintenance"})
    preview = DashboardServer(provider, port=int(sys.argv[1]) if len(sys.argv) > 1 else 8080).start()
    print(f"dashboard preview (seed map, demo orders) at {preview.url}; Ctrl-C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        preview.stop()
