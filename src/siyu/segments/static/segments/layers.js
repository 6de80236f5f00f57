/* The layer pages' charts: RFM heatmap, lifecycle funnel, Pareto curve (data from json_script).
   A click on a heatmap cell or a funnel stage opens the customer list of its members. */
(function () {
  "use strict";

  function readData(el) {
    return JSON.parse(document.getElementById(el.dataset.source).textContent);
  }

  function heatmap(el, data) {
    var scores = ["1", "2", "3", "4", "5"];
    var max = Math.max.apply(null, data.cells.map(function (c) { return c[2]; }).concat([1]));
    return {
      option: {
        tooltip: {
          formatter: function (p) {
            return "R" + (p.value[1] + 1) + " F" + (p.value[0] + 1) + "<br>" +
              el.dataset.seriesName + ": " + p.value[2] + "<br>" +
              el.dataset.averageLabel + ": ¥" + p.value[3];
          }
        },
        grid: { left: 56, right: 16, top: 16, bottom: 72 },
        xAxis: { type: "category", data: scores, name: el.dataset.xName, nameLocation: "middle", nameGap: 28 },
        yAxis: { type: "category", data: scores, name: el.dataset.yName, nameLocation: "middle", nameGap: 36 },
        visualMap: {
          min: 0, max: max, calculable: false, orient: "horizontal", left: "center", bottom: 0,
          inRange: { color: ["#f0faf6", "#0e7a5f"] }, itemHeight: 120
        },
        series: [{
          name: el.dataset.seriesName,
          type: "heatmap",
          data: data.cells,
          label: {
            show: true,
            lineHeight: 18,
            // Empty cells stay blank, so the filled ones stand out.
            formatter: function (p) { return p.value[2] ? p.value[2] + "\n¥" + p.value[3] : ""; }
          },
          emphasis: { itemStyle: { borderColor: "#333", borderWidth: 1 } }
        }]
      },
      link: function (p) {
        return data.members + "?rfm_r=" + (p.value[1] + 1) + "&rfm_f=" + (p.value[0] + 1);
      }
    };
  }

  function funnel(el, data) {
    return {
      option: {
        color: ["#0e7a5f", "#14b8a6", "#3b82f6", "#8b5cf6", "#f59e0b", "#ec4899"],
        tooltip: { trigger: "item", formatter: "{b}: {c}" },
        series: [{
          name: el.dataset.seriesName,
          type: "funnel",
          sort: "none",  // the stages in their order, not by size
          left: "10%", width: "80%", minSize: "8%",
          label: { show: true, position: "inside", formatter: "{b}  {c}" },
          data: data.stages
        }]
      },
      link: function (p) { return p.data.url; }
    };
  }

  function pareto(el, data) {
    var share = Number(el.dataset.share);
    return {
      option: {
        color: ["#0e7a5f"],
        tooltip: { trigger: "axis", valueFormatter: function (v) { return v + "%"; } },
        grid: { left: 56, right: 24, top: 16, bottom: 48 },
        xAxis: { type: "value", min: 0, max: 100, name: el.dataset.xName, nameLocation: "middle", nameGap: 28 },
        yAxis: { type: "value", min: 0, max: 100, name: el.dataset.yName, nameLocation: "middle", nameGap: 36 },
        series: [{
          name: el.dataset.seriesName,
          type: "line",
          showSymbol: false,
          areaStyle: { opacity: 0.12 },
          data: data.curve,
          markLine: { silent: true, symbol: "none", data: [{ yAxis: share }] }
        }]
      },
      link: null
    };
  }

  var KINDS = { heatmap: heatmap, funnel: funnel, pareto: pareto };

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof window.echarts === "undefined") { return; }
    document.querySelectorAll("[data-layer-chart]").forEach(function (el) {
      var spec = KINDS[el.dataset.layerChart](el, readData(el));
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      chart.setOption(spec.option);
      if (spec.link) {
        chart.on("click", function (p) { window.location.href = spec.link(p); });
      }
      window.addEventListener("resize", function () { chart.resize(); });
    });
  });
})();
