// Charts of the value dashboard, drawn with the vendored Chart.js from the JSON the page embeds
// (the same numbers as the CSV exports). Each <canvas data-chart="name"> gets its chart.
(function () {
  "use strict";
  const COLORS = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#64748b"];

  function bar(data, series, opts) {
    return {
      type: "bar",
      data: { labels: data.labels, datasets: series.map((s, i) => ({ label: s.label, data: s.data, backgroundColor: s.color || COLORS[i], yAxisID: s.axis || "y" })) },
      options: Object.assign({ responsive: true, maintainAspectRatio: false, plugins: { legend: { display: series.length > 1 } } }, opts || {}),
    };
  }

  const builders = {
    segments: (d) => bar(d, [
      { label: d.series[0], data: d.customers, axis: "y" },
      { label: d.series[1], data: d.margin_share, axis: "share", color: COLORS[1] },
    ], { scales: { y: { position: "left", beginAtZero: true }, share: { position: "right", beginAtZero: true, max: 100, grid: { drawOnChartArea: false } } } }),
    quadrants: (d) => ({
      type: "doughnut",
      data: { labels: d.labels, datasets: [{ label: d.series[0], data: d.customers, backgroundColor: COLORS.slice(0, 4) }] },
      options: { responsive: true, maintainAspectRatio: false },
    }),
    trend: (d) => ({
      type: "line",
      data: { labels: d.labels, datasets: [
        { label: d.series[0], data: d.revenue, borderColor: COLORS[0], backgroundColor: COLORS[0], tension: 0.2 },
        { label: d.series[1], data: d.margin, borderColor: COLORS[1], backgroundColor: COLORS[1], tension: 0.2 },
      ] },
      options: { responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } },
    }),
    funnel: (d) => bar(d, [{ label: d.series[0], data: d.reached }], { indexAxis: "y" }),
    campaigns: (d) => bar(d, [{ label: d.series[0], data: d.send_rate }, { label: d.series[1], data: d.control_rate, color: COLORS[6] }]),
    service: (d) => bar(d, [{ label: d.series[0], data: d.attainment }], { scales: { y: { beginAtZero: true, max: 100 } } }),
  };

  function draw() {
    const source = document.getElementById("value-charts");
    if (!source || typeof Chart === "undefined") return;
    const charts = JSON.parse(source.textContent);
    for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
      const name = canvas.dataset.chart;
      if (builders[name] && charts[name]) {
        canvas.chart = new Chart(canvas, builders[name](charts[name]));
        canvas.dataset.drawn = "1";
      }
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
