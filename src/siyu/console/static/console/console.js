/* Siyu console: small behaviours on top of htmx. Charts read their data from json_script. */
(function () {
  "use strict";

  var PALETTE = ["#0e7a5f", "#3b82f6", "#f59e0b", "#8b5cf6", "#ef4444", "#14b8a6",
                 "#64748b", "#ec4899", "#84cc16", "#f97316"];

  function readData(el) {
    var source = document.getElementById(el.dataset.source);
    return source ? JSON.parse(source.textContent) : [];
  }

  function barOption(el, rows) {
    return {
      color: PALETTE,
      grid: { left: 8, right: 24, top: 16, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: {
        type: "category",
        inverse: true,
        data: rows.map(function (r) { return r.name; }),
        axisLabel: { width: 120, overflow: "truncate" }
      },
      series: [{
        name: el.dataset.seriesName || "",
        type: "bar",
        barMaxWidth: 22,
        data: rows.map(function (r) { return r.value; }),
        label: { show: true, position: "right" },
        itemStyle: { borderRadius: [0, 4, 4, 0] }
      }]
    };
  }

  function pieOption(el, rows) {
    return {
      color: PALETTE,
      tooltip: { trigger: "item" },
      series: [{ name: el.dataset.seriesName || "", type: "pie", radius: ["40%", "70%"], data: rows }]
    };
  }

  function initCharts(root) {
    if (typeof window.echarts === "undefined") { return; }
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.chartReady) { return; }
      el.dataset.chartReady = "1";
      var rows = readData(el);
      // Fit the bar chart to the number of channels, so long lists stay readable.
      if (el.dataset.chart === "bar") {
        el.style.height = Math.max(160, rows.length * 34 + 40) + "px";
      }
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      chart.setOption(el.dataset.chart === "pie" ? pieOption(el, rows) : barOption(el, rows));
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    initCharts(document);
    if (window.htmx) {
      window.htmx.onLoad(function (elt) { initCharts(elt); });
    }
  });
})();
