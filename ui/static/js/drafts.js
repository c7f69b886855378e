// Keeps what the student types safe: every edit is copied to this browser at once and saved to
// the server a moment later (so a reload, a lost connection or a server restart loses nothing).
// Saves name the server revision they started from; if another tab or computer saved since,
// the server refuses (409) and the page asks which version to keep instead of overwriting it.
import { api } from "./api.js";

const PREFIX = "labrunner:draft:";
const SAVE_DELAY_MS = 1000;
const MAX_RETRY_MS = 15000;
const REQUEST_TIMEOUT_MS = 15000;
const keepers = new Set();

function readLocal(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

function writeLocal(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or disabled (private mode): the server copy still protects the work.
  }
}

export class DraftKeeper {
  /**
   * url: the draft's API path; key: a name for the local copy (per user);
   * onStatus(state, error): "saved" | "saving" | "unsaved" | "offline" | "error" | "conflict".
   */
  constructor({ url, key, onStatus = () => {} }) {
    this.url = url;
    this.key = `${PREFIX}${document.body.dataset.userId}:${key}`;
    this.onStatus = onStatus;
    this.revision = null;
    this.pending = null;
    this.timer = null;
    this.saving = null;
    this.again = false;
    this.blocked = false;
    this.failures = 0;
    keepers.add(this);
    window.addEventListener("online", () => this.saveSoon(0));
    // Leaving the page (reload, close): send what is unsaved with keepalive so it outlives the page.
    window.addEventListener("pagehide", () => {
      if (this.pending && !this.blocked) this.flush({ keepalive: true });
    });
  }

  /** The fields to show: unsaved local edits first, else the server's draft, else null. */
  async load() {
    const local = readLocal(this.key);
    let server = null;
    let reachable = true;
    try {
      server = (await api("GET", this.url)).draft;
    } catch (error) {
      if (!(error.offline || error.status >= 500)) throw error;
      reachable = false;
    }
    if (local && local.dirty) {
      // Edits made here never reached the server: keep them and send them now.
      this.revision = local.base;
      this.pending = local.fields;
      this.onStatus("unsaved");
      this.saveSoon(0);
      return local.fields;
    }
    if (server) {
      this.revision = server.revision;
      writeLocal(this.key, { fields: pick(server), base: server.revision, dirty: false });
      this.onStatus("saved");
      return pick(server);
    }
    if (!reachable) this.onStatus("offline");
    return local ? local.fields : null;
  }

  /** Call after every edit with all the draft's fields. */
  update(fields) {
    this.pending = fields;
    writeLocal(this.key, { fields, base: this.revision, dirty: true });
    if (this.blocked) return;
    this.onStatus("unsaved");
    this.saveSoon(SAVE_DELAY_MS);
  }

  saveSoon(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), delay);
  }

  async flush({ keepalive = false, force = false } = {}) {
    if (!this.pending || (this.blocked && !force)) return;
    if (this.saving) {
      this.again = true;
      return this.saving;
    }
    this.saving = this.save(this.pending, keepalive, force);
    try {
      await this.saving;
    } finally {
      this.saving = null;
      if (this.again) {
        this.again = false;
        this.saveSoon(0);
      }
    }
  }

  async save(fields, keepalive, force) {
    this.onStatus("saving");
    try {
      const body = { ...fields, base_revision: force ? null : this.revision };
      const { draft } = await api("PUT", this.url, body, { keepalive, timeoutMs: REQUEST_TIMEOUT_MS });
      this.revision = draft.revision;
      this.failures = 0;
      this.blocked = false;
      if (this.pending === fields) {
        this.pending = null;
        writeLocal(this.key, { fields, base: draft.revision, dirty: false });
        this.onStatus("saved");
      } else {
        // Typed on while saving: those edits now build on the revision just saved.
        writeLocal(this.key, { fields: this.pending, base: draft.revision, dirty: true });
      }
    } catch (error) {
      if (error.code === "draft_conflict") {
        this.blocked = true;
        this.onStatus("conflict", error);
      } else if (error.offline || error.status >= 500 || error.status === 429) {
        this.failures += 1;
        this.onStatus("offline", error);
        this.saveSoon(Math.min(MAX_RETRY_MS, 2000 * 2 ** this.failures));
      } else {
        this.onStatus("error", error);
      }
    }
  }

  /** Conflict resolved by taking the newer server version (returned for the editor). */
  async takeServer() {
    const { draft } = await api("GET", this.url);
    this.revision = draft ? draft.revision : null;
    this.pending = null;
    this.blocked = false;
    if (draft) writeLocal(this.key, { fields: pick(draft), base: draft.revision, dirty: false });
    this.onStatus("saved");
    return draft ? pick(draft) : null;
  }

  /** Conflict resolved by keeping this version: overwrite the server's. */
  async keepMine() {
    await this.flush({ force: true });
  }
}

function pick(draft) {
  return { language: draft.language, code: draft.code, stdin: draft.stdin };
}

/** Save everything unsaved (before logging out). */
export async function flushAll() {
  await Promise.all([...keepers].map((keeper) => keeper.flush()));
}

/** Forget this browser's copies that the server already has (a shared classroom computer). */
export function forgetLocalDrafts() {
  try {
    for (const key of Object.keys(localStorage)) {
      if (!key.startsWith(PREFIX)) continue;
      const entry = readLocal(key);
      if (!entry || !entry.dirty) localStorage.removeItem(key);
    }
  } catch {
    // Storage disabled: nothing was kept.
  }
}

export const SAVE_STATES = {
  saved: "All changes saved",
  saving: "Saving…",
  unsaved: "Saving soon…",
  offline: "Not saved to the server yet — kept in this browser, retrying",
  error: "Not saved",
  conflict: "Changed elsewhere — choose a version",
};
