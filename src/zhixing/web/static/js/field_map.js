// The command map: Guangxi's prefectures (vendored GeoJSON, no tiles) with command centers,
// resources, dispatches, tips and incidents; a snapshot, then live changes over SSE.
(function () {
  "use strict";
  var zh = document.documentElement.lang === "zh-CN";
  function t(zhText, enText) { return zh ? zhText : enText; }
  var LAYERS = ["centers", "resources", "dispatches", "tips", "incidents"];
  var state = { centers: {}, resources: {}, dispatches: {}, tips: {}, incidents: {} };
  var shown = { centers: true, resources: true, dispatches: true, tips: true, incidents: true };
  var STATUS = { available: t("可用", "available"), on_task: t("任务中", "on task"), off_duty: t("休息", "off duty"),
    dispatched: t("已派", "dispatched"), en_route: t("在途", "en route"), on_scene: t("到场", "on scene"),
    done: t("完成", "done"), cancelled: t("取消", "cancelled"), open: t("待处置", "open"),
    acknowledged: t("已响应", "acknowledged"), resolved: t("已处置", "resolved"),
    received: t("待分流", "received"), triaged: t("核查中", "being checked"), checked: t("已核查", "checked"), merged: t("已合并", "merged") };
  var KIND = { bailiff: t("法警", "bailiff"), vehicle: t("指挥车", "vehicle"), field_device: t("单兵", "field device"),
    vehicle_system: t("车载系统", "vehicle system") };
  var live = document.getElementById("live");
  var list = document.getElementById("incident-list");
  var csrf = list.dataset.csrf;
  var chart = null, dirty = false, updates = 0;
  window.fieldMap = { state: state, updates: function () { return updates; } };

  function closed(item) {
    return (item.layer === "dispatches" && (item.status === "done" || item.status === "cancelled")) ||
      (item.layer === "incidents" && item.status === "resolved") ||
      (item.layer === "tips" && (item.status === "checked" || item.status === "merged"));
  }

  function apply(items) {
    items.forEach(function (item) {
      var layer = state[item.layer];
      if (!layer) return;
      var old = layer[item.id];
      if (old && old.v > item.v) return;  // the snapshot may be newer than a late message
      // A move carries only where and when; keep what is known of the resource.
      if (closed(item)) delete layer[item.id]; else layer[item.id] = old ? Object.assign(old, item) : item;
    });
    dirty = true;
  }

  function points(layer) {
    return Object.keys(state[layer]).map(function (k) { return state[layer][k]; })
      .filter(function (i) { return i.lon != null && i.lat != null; });
  }

  function series() {
    var res = points("resources");
    var colour = { available: "#22c55e", on_task: "#f59e0b", off_duty: "#94a3b8" };
    return [
      { id: "centers", name: "centers", type: "scatter", coordinateSystem: "geo", symbol: "diamond", symbolSize: 7,
        itemStyle: { color: "#93c5fd" }, data: shown.centers ? points("centers").map(function (c) {
          return { name: c.name, value: [c.lon, c.lat], info: c.name }; }) : [] },
      { id: "resources", name: "resources", type: "scatter", coordinateSystem: "geo", symbolSize: 4,
        data: shown.resources ? res.map(function (r) { return { value: [r.lon, r.lat],
          itemStyle: { color: colour[r.status] || "#22c55e" },
          info: (KIND[r.kind] || r.kind) + " " + r.label + " · " + (STATUS[r.status] || r.status) }; }) : [] },
      { id: "tips", name: "tips", type: "scatter", coordinateSystem: "geo", symbol: "triangle", symbolSize: 10,
        data: shown.tips ? points("tips").map(function (x) { return { value: [x.lon, x.lat],
          itemStyle: { color: x.overdue ? "#ef4444" : (x.urgent ? "#fb923c" : "#facc15") },
          info: t("线索", "Tip") + " #" + x.id + " · " + (STATUS[x.status] || x.status) + (x.overdue ? t(" · 超期", " · overdue") : "") }; }) : [] },
      { id: "dispatches", name: "dispatches", type: "effectScatter", coordinateSystem: "geo", symbolSize: 11,
        rippleEffect: { scale: 2.5 }, itemStyle: { color: "#38bdf8" },
        data: shown.dispatches ? points("dispatches").map(function (d) { return { value: [d.lon, d.lat],
          info: t("派警", "Dispatch") + " #" + d.id + " " + d.task + " · " + d.team + " · " + (STATUS[d.status] || d.status) }; }) : [] },
      { id: "incidents", name: "incidents", type: "effectScatter", coordinateSystem: "geo", symbol: "pin", symbolSize: 26,
        rippleEffect: { scale: 4 }, itemStyle: { color: "#dc2626" },
        data: shown.incidents ? points("incidents").map(function (i) { return { value: [i.lon, i.lat],
          info: "SOS #" + i.id + " · " + (STATUS[i.status] || i.status) }; }) : [] }
    ];
  }

  function acknowledge(id, button) {
    button.disabled = true;
    fetch("/api/v1/field/incidents/" + id + "/acknowledge", { method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" } }).then(function (r) {
      return r.json().then(function (d) {
        if (!r.ok) { button.disabled = false; return; }
        var old = state.incidents[d.id] || { layer: "incidents", id: d.id, lon: d.lon, lat: d.lat };
        apply([Object.assign({}, old, { status: d.status, v: Date.now() })]);
      });
    });
  }

  function sidebars() {
    list.textContent = "";
    points("incidents").concat(Object.keys(state.incidents).map(function (k) { return state.incidents[k]; })
      .filter(function (i) { return i.lon == null; }))
      .sort(function (a, b) { return b.id - a.id; }).forEach(function (i) {
        var li = document.createElement("li");
        li.className = "inc-" + i.status;
        li.dataset.id = i.id;
        li.textContent = "SOS #" + i.id + " · " + (i.at ? new Date(i.at).toLocaleTimeString("zh-CN", { hour12: false }) : "") +
          " · " + (STATUS[i.status] || i.status);
        if (i.status === "open") {
          var b = document.createElement("button");
          b.type = "button"; b.textContent = t("响应", "Acknowledge");
          b.addEventListener("click", function () { acknowledge(i.id, b); });
          li.appendChild(b);
        }
        list.appendChild(li);
      });
    var dl = document.getElementById("dispatch-list");
    dl.textContent = "";
    points("dispatches").sort(function (a, b) { return b.id - a.id; }).slice(0, 30).forEach(function (d) {
      var li = document.createElement("li");
      li.textContent = "#" + d.id + " " + d.task + " · " + d.team + " · " + (STATUS[d.status] || d.status);
      dl.appendChild(li);
    });
    LAYERS.forEach(function (l) { document.getElementById("n-" + l).textContent = Object.keys(state[l]).length; });
  }

  function draw() {
    if (!dirty || !chart) return;
    dirty = false;
    chart.setOption({ series: series() });
    sidebars();
  }

  function connect() {
    var source = new EventSource("/field/map/stream");
    source.addEventListener("hello", function () { live.textContent = t("实时", "live"); live.classList.add("on"); });
    source.addEventListener("update", function (ev) {
      var data = JSON.parse(ev.data);
      if (data.reload) { load(); return; }
      updates += 1;
      document.body.dataset.mapUpdates = String(updates);
      apply(data.items);
    });
    source.onerror = function () { live.textContent = t("重连中", "reconnecting"); live.classList.remove("on"); };
  }

  function load() {
    return fetch("/field/map/data", { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (data) {
        data.centers.forEach(function (c) { state.centers[c.id] = c; });
        ["resources", "dispatches", "tips", "incidents"].forEach(function (l) {
          state[l] = {};
          data[l].forEach(function (i) { i.layer = l; });
          apply(data[l]);
        });
      });
  }

  document.querySelectorAll("input[name=layer]").forEach(function (box) {
    box.addEventListener("change", function () { shown[box.value] = box.checked; dirty = true; });
  });

  Promise.all([fetch("/static/geo/guangxi.json").then(function (r) { return r.json(); }), load()])
    .then(function (res) {
      echarts.registerMap("guangxi", res[0]);
      chart = echarts.init(document.getElementById("fieldmap"));
      chart.setOption({
        // ECharts puts a formatter's string in the tooltip as HTML; a dispatch's task or a
        // resource's label is what someone typed: escaped, it stays text.
        tooltip: { trigger: "item", formatter: function (p) {
          return echarts.format.encodeHTML((p.data && p.data.info) || p.name); } },
        geo: { map: "guangxi", roam: true, layoutCenter: ["50%", "50%"], layoutSize: "95%",
          label: { show: true, color: "#9fb3d9", fontSize: 11 },
          itemStyle: { areaColor: "#1b2f57", borderColor: "#5b7fc4" },
          emphasis: { itemStyle: { areaColor: "#24407a" }, label: { color: "#fff" } } },
        series: series()
      });
      dirty = true;
      draw();
      window.addEventListener("resize", function () { chart.resize(); });
      setInterval(draw, 250);
      connect();
    });
})();
