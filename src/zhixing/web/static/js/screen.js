// The big screen: map or ranking, trend, counters and the live ticker over SSE.
(function () {
  "use strict";
  var KIND = { registered: "立案", transition: "流转", fact: "节点", asset: "财产", control: "控制措施",
    money: "款项", document: "文书", note: "备注", extension: "延长审限", resumed: "恢复执行",
    requery_due: "复查到期", control_expiring: "控制将到期", assigned: "指定承办人",
    pause: "扣除审限", pause_end: "恢复审限" };
  var STATE = { filed: "立案", notice_served: "送达通知", investigating: "财产调查", controlling: "财产控制",
    disposing: "财产处置", disbursing: "款项发放", suspended: "中止", concluded: "结案" };

  // Chart text scales with the screen, like the page's own (vh-based) type: legible from
  // across the room on a 1080p monitor and on a 4K wall alike.
  function fs(k) { return Math.round(window.innerHeight * (k || 1) / 60); }

  function yuan(fen) { return (fen / 100).toLocaleString("zh-CN", { minimumFractionDigits: 2, maximumFractionDigits: 2 }); }

  function setCounters(counters) {
    Object.keys(counters).forEach(function (key) {
      var el = document.getElementById("c-" + key);
      if (!el) return;
      var text = el.dataset.fen ? yuan(counters[key]) : String(counters[key]);
      if (el.textContent !== text) {
        el.textContent = text;
        el.classList.add("bump");
        setTimeout(function () { el.classList.remove("bump"); }, 800);
      }
    });
  }

  function addEvents(events, fresh) {
    var list = document.getElementById("ticker");
    events.forEach(function (e) {
      var li = document.createElement("li");
      if (fresh) li.className = "new";
      var t = document.createElement("span"); t.className = "t";
      t.textContent = new Date(e.at).toLocaleTimeString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" });
      var k = document.createElement("span"); k.className = "k";
      k.textContent = KIND[e.kind] || e.kind;
      var text = e.court + " " + e.case_number + (e.after ? " → " + (STATE[e.after] || e.after) : "");
      li.appendChild(t); li.appendChild(k); li.appendChild(document.createTextNode(text));
      list.insertBefore(li, list.firstChild);
    });
    while (list.children.length > 40) list.removeChild(list.lastChild);
  }

  function drawMap(chart, shading) {
    fetch("/static/geo/guangxi.json").then(function (r) { return r.json(); }).then(function (geo) {
      echarts.registerMap("guangxi", geo);
      chart.setOption({
        tooltip: { formatter: function (p) { return p.name + "<br>结案率 " + (p.value == null || isNaN(p.value) ? "—" : (p.value * 100).toFixed(2) + "%"); } },
        visualMap: { min: 0, max: 1, left: 10, bottom: 10, text: ["高", "低"], calculable: false,
          inRange: { color: ["#243b6b", "#3b6fb6", "#ffd25a"] }, textStyle: { color: "#e8eefc", fontSize: fs(0.8) },
          itemWidth: fs(0.9), itemHeight: fs(5) },
        series: [{ type: "map", map: "guangxi", roam: false, layoutCenter: ["55%", "52%"], layoutSize: "118%", label: { show: true, color: "#fff", fontSize: fs(0.9) },
          itemStyle: { borderColor: "#8fb3ff", areaColor: "#1b2f57" },
          emphasis: { label: { color: "#06122a" }, itemStyle: { areaColor: "#ffd25a" } },
          data: shading.map(function (s) { return { name: s.name, value: s.value }; }) }]
      });
    });
  }

  function drawRanking(chart, ranking) {
    var ranked = ranking.filter(function (r) { return r.value !== null; }).sort(function (a, b) { return a.value - b.value; });
    chart.setOption({
      grid: { left: fs(6), right: fs(2), top: fs(0.5), bottom: fs(1.5) },
      xAxis: { type: "value", max: 1, axisLabel: { color: "#9fb3d9", fontSize: fs(0.8), formatter: function (v) { return v * 100 + "%"; } } },
      yAxis: { type: "category", data: ranked.map(function (r) { return r.name; }), axisLabel: { color: "#e8eefc", fontSize: fs(0.9) } },
      series: [{ type: "bar", data: ranked.map(function (r) { return r.value; }), itemStyle: { color: "#ffd25a" } }]
    });
  }

  function drawTrend(chart, trend) {
    chart.setOption({
      legend: { data: ["收案", "结案"], textStyle: { color: "#e8eefc", fontSize: fs(0.9) }, itemWidth: fs(1.5), itemHeight: fs(0.8) },
      grid: { left: fs(3), right: fs(1), top: fs(2.5), bottom: fs(2) },
      xAxis: { type: "category", data: trend.map(function (p) { return p.month; }), axisLabel: { color: "#9fb3d9", fontSize: fs(0.75) } },
      yAxis: { type: "value", axisLabel: { color: "#9fb3d9", fontSize: fs(0.75) }, splitLine: { lineStyle: { color: "rgba(255,255,255,.08)" } } },
      series: [
        { name: "收案", type: "line", smooth: true, symbolSize: fs(0.4), lineStyle: { width: fs(0.15) }, data: trend.map(function (p) { return p.received; }) },
        { name: "结案", type: "line", smooth: true, symbolSize: fs(0.4), lineStyle: { width: fs(0.15) }, data: trend.map(function (p) { return p.concluded; }) }
      ]
    });
  }

  function connect(court, after) {
    var live = document.getElementById("live");
    var source = new EventSource("/screen/stream?court=" + encodeURIComponent(court) + "&after=" + after);
    source.addEventListener("hello", function () { live.textContent = "实时"; live.classList.add("on"); });
    source.addEventListener("update", function (msg) {
      var data = JSON.parse(msg.data);
      if (data.events && data.events.length) addEvents(data.events, true);
      if (data.counters) setCounters(data.counters);
    });
    source.onerror = function () { live.textContent = "重连中"; live.classList.remove("on"); };
  }

  function tick() {
    document.getElementById("clock").textContent = new Date().toLocaleString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" });
  }

  function setRates(total) {
    document.querySelectorAll("[data-rate]").forEach(function (el) {
      var v = total[el.dataset.rate];
      el.textContent = v === null || v === undefined ? "—" : (v * 100).toFixed(2) + "%";
    });
    document.querySelectorAll("[data-count]").forEach(function (el) {
      el.textContent = String(total[el.dataset.count]);
    });
  }

  // The shell paints at once; the figures follow from /screen/data, then live over SSE.
  document.addEventListener("DOMContentLoaded", function () {
    tick(); setInterval(tick, 1000);
    var court = document.body.dataset.court;
    fetch("/screen/data?court=" + encodeURIComponent(court), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (initial) {
        setCounters(initial.counters);
        setRates(initial.total);
        var map = echarts.init(document.getElementById("map"));
        if (document.body.dataset.level === "high" && initial.shading.length) drawMap(map, initial.shading);
        else drawRanking(map, initial.ranking);
        var trend = echarts.init(document.getElementById("trend"));
        drawTrend(trend, initial.trend);
        addEvents(initial.ticker, false);
        document.body.dataset.loaded = "1";
        var last = initial.ticker.length ? initial.ticker[initial.ticker.length - 1].id : 0;
        connect(court, last);
        window.addEventListener("resize", function () { map.resize(); trend.resize(); });
      });
  });
})();
