import "../app.js";
import { api } from "../api.js";
import { $, pageId } from "../dom.js";

const data = await api("GET", `/api/classes/${pageId()}`);
$("#class-name").textContent = `Join ${data.name}`;
// Spaced in groups of four so it reads aloud and copies off a projector without mistakes.
$("#join-code").textContent = data.join_code.replace(/(.{4})(?=.)/g, "$1 ");
$("#print-button").addEventListener("click", () => window.print());
