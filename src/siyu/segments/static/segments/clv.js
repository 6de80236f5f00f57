/* The lifetime value page's charts (data from json_script): predicted against actual holdout
   purchases by calibration frequency, and two histograms. */
(function () {
  "use strict";

  function readData(el) {
    return JSON.parse(document.getElementById(el.dataset.source).textContent);
  }

  function holdout(el, data) {
    return {
      color: ["#0e7a5f", "#f59e0b"],
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 56, right: 16, top: 36, bottom: 48 },
      xAxis: { type: "category", data: data.labels, name: el.dataset.xName, nameLocation: "middle", nameGap: 28 },
      yAxis: { type: "value", name: el.dataset.yName, nameLocation: "middle", nameGap: 40 },
      series: [
        { name: el.dataset.actualName, type: "bar", barMaxWidth: 28, data: data.actual },
        { name: el.dataset.predictedName, type: "line", symbolSize: 8, data: data.predicted }
      ]
    };
  }

  function histogram(el, rows) {
    return {
      color: ["#3b82f6"],
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: 56, right: 16, top: 16, bottom: 56 },
      xAxis: {
        type: "category", data: rows.map(function (r) { return r[0]; }),
        name: el.dataset.xName, nameLocation: "middle", nameGap: 40, axisLabel: { interval: 0, rotate: 30 }
      },
      yAxis: { type: "value", minInterval: 1 },
      series: [{
        name: el.dataset.seriesName, type: "bar", barCategoryGap: "8%",
        data: rows.map(function (r) { return r[1]; })
      }]
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof window.echarts === "undefined") { return; }
    document.querySelectorAll("[data-clv-chart]").forEach(function (el) {
      var data = readData(el)[el.dataset.clvChart];
      var option = el.dataset.clvChart === "holdout" ? holdout(el, data) : histogram(el, data);
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      chart.setOption(option);
      window.addEventListener("resize", function () { chart.resize(); });
    });
  });
})();
