import "../app.js";
