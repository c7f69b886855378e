// What the dashboard's charts import from ui/static/vendor/uplot.js.
export { default as uPlot } from "uplot";
