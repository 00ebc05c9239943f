// Draw every .chart element from the JSON figure stored beside it (see analysis/_chart.html).
function drawCharts(root) {
  (root || document).querySelectorAll(".chart[data-figure]").forEach((el) => {
    if (el.dataset.drawn) return;
    const figure = JSON.parse(document.getElementById(el.dataset.figure).textContent);
    const layout = Object.assign({ margin: { t: 40, r: 20, b: 50, l: 60 }, autosize: true }, figure.layout || {});
    Plotly.newPlot(el, figure.data || [], layout, { responsive: true, displaylogo: false });
    el.dataset.drawn = "1";
  });
}
document.addEventListener("DOMContentLoaded", () => drawCharts());
document.addEventListener("htmx:afterSettle", (event) => drawCharts(event.target));
// A select marked data-autosubmit submits its form on change (no inline handlers: CSP).
document.addEventListener("change", (event) => {
  if (event.target.matches("select[data-autosubmit]")) event.target.form.requestSubmit();
});
