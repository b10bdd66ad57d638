/* 指挥中心大屏 — polls state.json every 2 s and draws the map, counters and latest orders.
 *
 * Plain JavaScript, no build step, no external resources. Times are shown in Asia/Shanghai
 * (UTC+8, no daylight saving) computed by hand, so the page does not depend on the browser's
 * time-zone data. Elapsed times use the server's clock (state.generated_at), not the screen's.
 * The state document is described in infra/local/dashboard_server.py.
 */
(function () {
  "use strict";

  var POLL_MS = 2000;
  var SVG_NS = "http://www.w3.org/2000/svg";
  var MAP_W = 1000;
  var SHANGHAI_OFFSET_MS = 8 * 3600 * 1000;
  var STATES = ["normal", "alarm", "offline", "maintenance"];
  var STATE_ZH = { normal: "正常", alarm: "告警", offline: "离线", maintenance: "维护" };

  var view = {
    state: null,
    clockOffsetMs: 0, // server time - screen time
    geometryKey: null,
    project: null,
    deviceEls: {},
    cameraEls: {},
    pulseEls: {},
    seenOrders: {},
    polls: 0,
    failures: 0
  };
  window.__dashboard = view; // for tests and debugging

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    for (var k in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, k)) node.setAttribute(k, attrs[k]); }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function h(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  /* Asia/Shanghai wall-clock parts of an epoch-ms instant. */
  function shanghai(ms) {
    var d = new Date(ms + SHANGHAI_OFFSET_MS);
    return { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds() };
  }
  function fmtClock(ms) {
    var t = shanghai(ms);
    return t.y + "-" + pad(t.mo) + "-" + pad(t.d) + " " + pad(t.h) + ":" + pad(t.mi) + ":" + pad(t.s);
  }
  function fmtShort(ms) {
    var t = shanghai(ms), now = shanghai(serverNow());
    var hm = pad(t.h) + ":" + pad(t.mi);
    return (t.y === now.y && t.mo === now.mo && t.d === now.d) ? hm : pad(t.mo) + "-" + pad(t.d) + " " + hm;
  }
  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "—";
    var s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + "秒";
    var m = Math.floor(s / 60);
    if (m < 60) return m + "分" + (s % 60 ? pad(s % 60) + "秒" : "");
    var hr = Math.floor(m / 60);
    if (hr < 24) return hr + "小时" + (m % 60 ? (m % 60) + "分" : "");
    return Math.floor(hr / 24) + "天" + (hr % 24 ? (hr % 24) + "小时" : "");
  }
  function serverNow() { return Date.now() + view.clockOffsetMs; }
  function parseTime(text) { var ms = Date.parse(text); return isNaN(ms) ? null : ms; }

  function label(kind, code) {
    var labels = (view.state && view.state.labels && view.state.labels[kind]) || {};
    if (kind === "state" && !labels[code]) return STATE_ZH[code] || code;
    return labels[code] || code || "—";
  }

  /* -- map ------------------------------------------------------------------------------------ */

  function boundsOf(state) {
    var b = state.district && state.district.bbox;
    if (b && b.length === 4) return b;
    var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    function add(p) { minX = Math.min(minX, p[0]); maxX = Math.max(maxX, p[0]); minY = Math.min(minY, p[1]); maxY = Math.max(maxY, p[1]); }
    (state.grids || []).forEach(function (g) { ringsOf(g.boundary).forEach(function (r) { r.forEach(add); }); });
    (state.devices || []).forEach(function (d) { add([d.lon, d.lat]); });
    (state.cameras || []).forEach(function (c) { add([c.lon, c.lat]); });
    if (!isFinite(minX)) return [0, 0, 1, 1];
    return [minX, minY, maxX, maxY];
  }

  function ringsOf(geometry) {
    if (!geometry || !geometry.coordinates) return [];
    if (geometry.type === "Polygon") return geometry.coordinates.slice(0, 1);
    if (geometry.type === "MultiPolygon") return geometry.coordinates.map(function (p) { return p[0]; });
    return [];
  }

  /* Equirectangular projection scaled by cos(latitude): good enough for a district. */
  function makeProjection(bbox) {
    var pad = 0.03;
    var kx = Math.cos(((bbox[1] + bbox[3]) / 2) * Math.PI / 180);
    var w = (bbox[2] - bbox[0]) * kx || 1, hgt = (bbox[3] - bbox[1]) || 1;
    var scale = MAP_W * (1 - 2 * pad) / w;
    var mapH = Math.round(hgt * scale + MAP_W * 2 * pad);
    return {
      height: mapH,
      xy: function (lon, lat) {
        return [MAP_W * pad + (lon - bbox[0]) * kx * scale, mapH - MAP_W * pad - (lat - bbox[1]) * scale];
      }
    };
  }

  function pathOf(coords, project, close) {
    return coords.map(function (p, i) {
      var xy = project.xy(p[0], p[1]);
      return (i ? "L" : "M") + xy[0].toFixed(1) + "," + xy[1].toFixed(1);
    }).join("") + (close ? "Z" : "");
  }

  function centroid(ring) {
    var sx = 0, sy = 0, n = 0;
    ring.forEach(function (p, i) { if (i < ring.length - 1 || ring.length === 1) { sx += p[0]; sy += p[1]; n++; } });
    return n ? [sx / n, sy / n] : [0, 0];
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function geometryKey(state) {
    return JSON.stringify([
      (state.grids || []).map(function (g) { return g.grid_id; }),
      (state.devices || []).map(function (d) { return d.device_id; }).join(","),
      (state.cameras || []).map(function (c) { return c.camera_id; }).join(","),
      state.district && state.district.bbox
    ]);
  }

  function drawGeometry(state) {
    var project = makeProjection(boundsOf(state));
    view.project = project;
    var svg = $("map");
    svg.setAttribute("viewBox", "0 0 " + MAP_W + " " + project.height);
    var gGrids = $("layer-grids"), gLines = $("layer-lines"), gLabels = $("layer-labels");
    var gDevices = $("layer-devices"), gCameras = $("layer-cameras");
    [gGrids, gLines, gLabels, gDevices, gCameras].forEach(clear);
    view.deviceEls = {}; view.cameraEls = {}; view.pulseEls = {};

    (state.grids || []).forEach(function (g) {
      var rings = ringsOf(g.boundary);
      if (!rings.length) return;
      var d = rings.map(function (r) { return pathOf(r, project, true); }).join("");
      var area = el("path", { d: d, "class": "grid-area", "data-grid-id": g.grid_id });
      area.appendChild(el("title", {}, g.grid_id + " " + (g.name || "") + (g.community ? "（" + g.community + "）" : "")));
      gGrids.appendChild(area);
      var c = project.xy.apply(null, centroid(rings[0]));
      var text = el("text", { x: c[0].toFixed(1), y: c[1].toFixed(1), "class": "grid-label" });
      text.appendChild(el("tspan", { "class": "gid" }, g.grid_id));
      text.appendChild(el("tspan", { x: c[0].toFixed(1), dy: "16" }, shortGridName(g.name)));
      gLabels.appendChild(text);
    });

    (state.lines || []).forEach(function (line) {
      if (!line.coordinates || line.coordinates.length < 2) return;
      var path = el("path", { d: pathOf(line.coordinates, project, false), "class": line.kind === "river" ? "line-river" : "line-road" });
      path.appendChild(el("title", {}, line.name || ""));
      gLines.appendChild(path);
    });

    (state.devices || []).forEach(function (dev) {
      var xy = project.xy(dev.lon, dev.lat);
      var dot = el("circle", { cx: xy[0].toFixed(1), cy: xy[1].toFixed(1), r: "3.6", "class": "cover normal", "data-device-id": dev.device_id });
      gDevices.appendChild(dot);
      view.deviceEls[dev.device_id] = dot;
    });

    (state.cameras || []).forEach(function (cam) {
      var xy = project.xy(cam.lon, cam.lat), s = 6;
      var mark = el("rect", {
        x: (xy[0] - s / 2).toFixed(1), y: (xy[1] - s / 2).toFixed(1), width: s, height: s,
        transform: "rotate(45 " + xy[0].toFixed(1) + " " + xy[1].toFixed(1) + ")",
        "class": "camera normal", "data-camera-id": cam.camera_id
      });
      gCameras.appendChild(mark);
      view.cameraEls[cam.camera_id] = mark;
    });

    svg.setAttribute("data-covers", String((state.devices || []).length));
    svg.setAttribute("data-grids", String(svg.querySelectorAll(".grid-area").length));
    svg.setAttribute("data-cameras", String((state.cameras || []).length));
    $("n-covers").textContent = String((state.devices || []).length);
    $("n-grids").textContent = String((state.grids || []).length);
    $("n-cameras").textContent = String((state.cameras || []).length);
  }

  function shortGridName(name) {
    if (!name) return "";
    return name.replace(/社区/, "·").replace(/网格$/, "");
  }

  function updateStates(state) {
    var counts = { normal: 0, alarm: 0, offline: 0, maintenance: 0 };
    var gPulse = $("layer-devices");
    var stillAlarm = {};
    (state.devices || []).forEach(function (dev) {
      var node = view.deviceEls[dev.device_id];
      var st = STATES.indexOf(dev.state) >= 0 ? dev.state : "normal";
      counts[st] += 1;
      if (!node) return;
      if (node.getAttribute("data-state") !== st) {
        node.setAttribute("class", "cover " + st);
        node.setAttribute("data-state", st);
        clear(node);
        node.appendChild(el("title", {}, (dev.name || dev.device_id) + "（" + dev.device_id + "）· " + dev.grid_id + " · " + label("state", st)));
      } else if (!node.firstChild) {
        node.appendChild(el("title", {}, (dev.name || dev.device_id) + "（" + dev.device_id + "）· " + dev.grid_id + " · " + label("state", st)));
      }
      if (st === "alarm") {
        stillAlarm[dev.device_id] = true;
        if (!view.pulseEls[dev.device_id]) {
          var ring = el("circle", { cx: node.getAttribute("cx"), cy: node.getAttribute("cy"), r: "4", "class": "pulse" });
          gPulse.insertBefore(ring, gPulse.firstChild);
          view.pulseEls[dev.device_id] = ring;
        }
      }
    });
    Object.keys(view.pulseEls).forEach(function (id) {
      if (!stillAlarm[id]) { view.pulseEls[id].remove(); delete view.pulseEls[id]; }
    });
    (state.cameras || []).forEach(function (cam) {
      var node = view.cameraEls[cam.camera_id];
      if (!node) return;
      var st = STATES.indexOf(cam.state) >= 0 ? cam.state : "normal";
      if (node.getAttribute("data-state") !== st) {
        node.setAttribute("class", "camera " + st);
        node.setAttribute("data-state", st);
        clear(node);
        node.appendChild(el("title", {}, (cam.name || cam.camera_id) + " · " + label("state", st)));
      }
    });
    STATES.forEach(function (s) { $("n-" + s).textContent = String(counts[s]); });
  }

  /* -- counters and orders --------------------------------------------------------------------- */

  function setNumber(id, value, unit) {
    var node = $(id);
    clear(node);
    node.appendChild(document.createTextNode(value === null || value === undefined ? "—" : String(value)));
    if (unit && value !== null && value !== undefined) node.appendChild(h("small", null, unit));
  }

  function updateCounters(state) {
    var c = state.counters || {};
    setNumber("k-alarms-today", c.alarms_today, "起");
    $("k-median").textContent = fmtDuration(c.median_alarm_to_clearance_s);
    setNumber("k-covers-repaired", c.covers_repaired, "个");
    setNumber("k-fishing", c.illegal_fishing_stopped, "起");
    setNumber("k-straw", c.straw_burning_handled, "起");
    var byCat = c.open_orders_by_category || {};
    var cats = Object.keys(byCat).filter(function (k) { return byCat[k] > 0; });
    cats.sort(function (a, b) { return byCat[b] - byCat[a]; });
    var total = cats.reduce(function (s, k) { return s + byCat[k]; }, 0);
    setNumber("k-open-total", total, "件");
    var list = $("open-by-category");
    clear(list);
    if (!cats.length) { list.appendChild(h("li", "muted", "暂无在办工单")); return; }
    var max = byCat[cats[0]];
    cats.forEach(function (k) {
      var li = h("li");
      li.setAttribute("data-category", k);
      li.appendChild(h("span", "name", label("category", k)));
      var bar = h("div", "bar"), fill = h("span");
      fill.style.width = Math.max(4, Math.round(100 * byCat[k] / max)) + "%";
      bar.appendChild(fill);
      li.appendChild(bar);
      li.appendChild(h("span", "n", String(byCat[k])));
      list.appendChild(li);
    });
  }

  function elapsedOf(order) {
    var created = parseTime(order.created_at);
    if (created === null) return null;
    var end = order.closed_at ? parseTime(order.closed_at) : (order.status === "cancelled" ? parseTime(order.updated_at) : null);
    return ((end === null ? serverNow() : end) - created) / 1000;
  }

  function updateOrders(state) {
    var body = $("orders");
    var orders = state.orders || [];
    clear(body);
    if (!orders.length) {
      var tr0 = h("tr", "empty"), td0 = h("td", "muted", "暂无工单");
      td0.colSpan = 7; tr0.appendChild(td0); body.appendChild(tr0);
      return;
    }
    var first = view.polls <= 1;
    orders.forEach(function (o) {
      var tr = h("tr");
      tr.setAttribute("data-order-id", o.order_id);
      tr.setAttribute("data-status", o.status);
      if (!first && !view.seenOrders[o.order_id]) tr.className = "fresh";
      view.seenOrders[o.order_id] = true;
      var idCell = h("td", "order-id", o.order_id);
      if (o.title) { idCell.appendChild(h("span", "sub", o.title)); idCell.title = o.title; }
      tr.appendChild(idCell);
      tr.appendChild(h("td", null, label("category", o.category)));
      tr.appendChild(h("td", null, o.subject || o.device_id || "—"));
      tr.appendChild(h("td", null, o.grid_id || "—"));
      var stage = h("td"), chip = h("span", "stage " + (o.status || ""), label("status", o.status));
      stage.appendChild(chip);
      tr.appendChild(stage);
      var el2 = h("td", "elapsed", fmtDuration(elapsedOf(o)));
      tr.appendChild(el2);
      var created = parseTime(o.created_at);
      tr.appendChild(h("td", null, created === null ? "—" : fmtShort(created)));
      body.appendChild(tr);
    });
  }

  function tickElapsed() {
    if (!view.state) return;
    var rows = $("orders").querySelectorAll("tr[data-order-id]");
    var byId = {};
    (view.state.orders || []).forEach(function (o) { byId[o.order_id] = o; });
    rows.forEach(function (tr) {
      var o = byId[tr.getAttribute("data-order-id")];
      if (o) tr.querySelector(".elapsed").textContent = fmtDuration(elapsedOf(o));
    });
  }

  /* -- polling --------------------------------------------------------------------------------- */

  function setConn(stateName, text) {
    var node = $("conn");
    node.setAttribute("data-state", stateName);
    node.textContent = text;
  }

  function render(state) {
    view.state = state;
    var generated = parseTime(state.generated_at);
    if (generated !== null) view.clockOffsetMs = generated - Date.now();
    if (state.district && state.district.name) $("district-name").textContent = state.district.name;
    var key = geometryKey(state);
    if (key !== view.geometryKey) { drawGeometry(state); view.geometryKey = key; }
    updateStates(state);
    updateCounters(state);
    updateOrders(state);
    setConn("ok", "已连接 · " + fmtClock(serverNow()).slice(11) + " 更新");
  }

  function poll() {
    fetch("state.json", { cache: "no-store" })
      .then(function (resp) {
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.json();
      })
      .then(function (state) { view.polls += 1; view.failures = 0; render(state); })
      .catch(function (err) {
        view.failures += 1;
        setConn("down", "数据中断（" + (err && err.message ? err.message : "网络错误") + "），重试中…");
      })
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }

  function tick() {
    $("clock").textContent = fmtClock(serverNow());
    tickElapsed();
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    window.setInterval(tick, 1000);
    poll();
  });
})();
