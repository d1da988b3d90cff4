// Draws the dashboard's charts from the figures the server embedded in the page.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  // One colour per workflow status, the same in every land-class stack.
  const colours = {
    surveyed: "#c7ced8", declared: "#9fb3c8", verified: "#6d8fb3",
    signed: "#e0a84f", cleared: "#4f9d69", banked: "#1f6b3a",
  };
  Chart.defaults.animation = false; // figures, not a show: draw at once
  new Chart(document.getElementById("by-project"), {
    type: "bar",
    data: {
      labels: data.projects,
      datasets: data.stacks.map((s) => ({
        label: s.label, data: s.data, stack: s.stack,
        backgroundColor: colours[s.status],
      })),
    },
    options: {
      responsive: true,
      plugins: { legend: { display: false } },
      scales: { x: { stacked: true }, y: { stacked: true } },
    },
  });
  new Chart(document.getElementById("banked-over-time"), {
    type: "line",
    data: {
      labels: data.months,
      datasets: [{ data: data.cumulative_km2, borderColor: "#1f6b3a", fill: false }],
    },
    options: { responsive: true, plugins: { legend: { display: false } } },
  });
  document.body.dataset.chartsDrawn = "yes";
})();
