// Charts of the indicator report. Data comes from a JSON block on the page (no inline script).
(function () {
  "use strict";
  function init() {
    var el = document.getElementById("chart-data");
    if (!el || !window.echarts) return;
    var data = JSON.parse(el.textContent);
    var trend = echarts.init(document.getElementById("trend-chart"));
    trend.setOption({
      tooltip: { trigger: "axis" },
      legend: { data: ["收案", "结案"] },
      grid: { left: 40, right: 20, top: 40, bottom: 30 },
      xAxis: { type: "category", data: data.trend.map(function (p) { return p.month; }) },
      yAxis: { type: "value" },
      series: [
        { name: "收案", type: "line", smooth: true, data: data.trend.map(function (p) { return p.received; }) },
        { name: "结案", type: "line", smooth: true, data: data.trend.map(function (p) { return p.concluded; }) }
      ]
    });
    var charts = [trend];
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
    var rankEl = document.getElementById("ranking-chart");
    if (!rankEl) return;  // a basic court has no courts below it to rank
    var ranked = data.ranking.filter(function (r) { return r.value !== null; })
      .sort(function (a, b) { return a.value - b.value; });
    var rank = echarts.init(rankEl);
    charts.push(rank);
    rank.setOption({
      tooltip: { valueFormatter: function (v) { return (v * 100).toFixed(2) + "%"; } },
      grid: { left: 90, right: 30, top: 20, bottom: 20 },
      xAxis: { type: "value", max: 1, axisLabel: { formatter: function (v) { return v * 100 + "%"; } } },
      yAxis: { type: "category", data: ranked.map(function (r) { return r.name; }) },
      series: [{ type: "bar", data: ranked.map(function (r) { return r.value; }), itemStyle: { color: "#a8161b" } }]
    });
  }
  document.addEventListener("DOMContentLoaded", init);
})();
