// Keeps what the student types safe: every edit is copied to this browser at once and saved to
// the server a moment later (so a reload, a lost connection or a server restart loses nothing).
// Saves name the server revision they started from; if another tab or computer saved different
// text since, the server refuses (409) and the page asks which version to keep instead of
// overwriting it. Identical text is never a conflict, and neither is text this page sent itself
// (a save sent as the page was left, answered after the reload): each local copy remembers
// fingerprints of what it sent since its base revision, so a reload can tell its own save from
// someone else's.
import { api } from "./api.js";

const PREFIX = "labrunner:draft:";
const SAVE_DELAY_MS = 1000;
const MAX_RETRY_MS = 15000;
const REQUEST_TIMEOUT_MS = 15000;
const MAX_SENT = 20; // fingerprints kept per draft: more saves than this never wait unanswered
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

/** A short fingerprint of a draft's fields (cyrb53): enough to recognise text sent before. */
function fingerprint(fields) {
  const text = JSON.stringify([fields.language, fields.code, fields.stdin || ""]);
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

const same = (a, b) =>
  Boolean(a && b) && a.language === b.language && a.code === b.code && (a.stdin || "") === (b.stdin || "");

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
    this.sent = []; // fingerprints of fields sent since `revision` was confirmed
    this.stored = null; // the fields of `revision`, shown by a later load if the server is unreachable
    this.pending = null;
    this.timer = null;
    this.saving = null;
    this.inFlight = null;
    this.again = false;
    this.blocked = false;
    this.overwrite = false;
    this.failures = 0;
    keepers.add(this);
    window.addEventListener("online", () => this.saveSoon(0));
    // Leaving the page (reload, close, another app on a tablet): send what is unsaved now, with
    // keepalive so the request outlives the page.
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") this.leave();
    });
    window.addEventListener("pagehide", () => this.leave());
  }

  remember() {
    const dirty = Boolean(this.pending);
    writeLocal(this.key, { fields: dirty ? this.pending : this.stored, base: this.revision, dirty, sent: this.sent });
  }

  leave() {
    if (!this.pending || this.blocked) return;
    if (!this.saving) {
      this.flush({ keepalive: true });
    } else if (this.inFlight !== this.pending) {
      // A save is on its way and newer edits wait behind it; the page may be gone before it is
      // answered, so send them too (if the earlier save lands first, this one is refused, and the
      // copy in this browser still holds the edits for the next load).
      this.sent = [...this.sent, fingerprint(this.pending)].slice(-MAX_SENT);
      this.remember();
      const body = { ...this.pending, base_revision: this.revision };
      api("PUT", this.url, body, { keepalive: true }).catch(() => {});
    }
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
    if (local && local.dirty && !(server && same(pick(server), local.fields))) {
      // Edits made here never reached the server (as far as this browser knows): keep them and
      // send them now. A save of this page that did land is recognised by its fingerprint.
      this.revision = local.base;
      this.sent = local.sent || [];
      if (server && server.revision !== local.base && this.sent.includes(fingerprint(pick(server)))) {
        this.rebase(server.revision, pick(server));
      }
      this.pending = local.fields;
      this.remember();
      this.onStatus("unsaved");
      this.saveSoon(0);
      return local.fields;
    }
    if (server) {
      this.rebase(server.revision, pick(server));
      this.remember();
      this.onStatus("saved");
      return pick(server);
    }
    if (!reachable) this.onStatus("offline");
    return local ? local.fields : null;
  }

  /** The server's `revision` holds `fields` (text this page sent or showed): later edits build on it. */
  rebase(revision, fields) {
    this.revision = revision;
    this.stored = fields;
    this.sent = [];
  }

  /** Call after every edit with all the draft's fields. */
  update(fields) {
    this.pending = fields;
    this.remember();
    if (this.blocked) return;
    this.onStatus("unsaved");
    this.saveSoon(SAVE_DELAY_MS);
  }

  saveSoon(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), delay);
  }

  async flush({ keepalive = false } = {}) {
    if (!this.pending || this.blocked) return;
    if (this.saving) {
      this.again = true;
      return this.saving;
    }
    this.saving = this.save(this.pending, keepalive);
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

  async save(fields, keepalive) {
    this.onStatus("saving");
    this.inFlight = fields;
    this.sent = [...this.sent, fingerprint(fields)].slice(-MAX_SENT);
    this.remember();
    try {
      const body = { ...fields, base_revision: this.overwrite ? null : this.revision };
      const { draft } = await api("PUT", this.url, body, { keepalive, timeoutMs: REQUEST_TIMEOUT_MS });
      this.saved(fields, draft.revision);
    } catch (error) {
      if (error.code === "draft_conflict") {
        await this.settleConflict(fields, error);
      } else if (error.offline || error.status >= 500 || error.status === 429) {
        this.failures += 1;
        this.onStatus("offline", error);
        this.saveSoon(Math.min(MAX_RETRY_MS, 2000 * 2 ** this.failures));
      } else {
        this.onStatus("error", error);
      }
    } finally {
      this.inFlight = null;
    }
  }

  /** `fields` are on the server as `revision`. */
  saved(fields, revision) {
    this.rebase(revision, fields);
    this.failures = 0;
    this.blocked = false;
    this.overwrite = false;
    if (same(this.pending, fields)) {
      this.pending = null;
      this.onStatus("saved");
    }
    // Otherwise typed on while saving: those edits now build on the revision just saved.
    this.remember();
  }

  /**
   * Refused as stale: a conflict only if the server holds someone else's different text. Text
   * this page sent itself (a save sent while leaving, say) is the base of what is typed now.
   */
  async settleConflict(fields, error) {
    let server = null;
    try {
      server = (await api("GET", this.url)).draft;
    } catch {
      server = null;
    }
    if (server && same(pick(server), fields)) {
      this.saved(fields, server.revision);
    } else if (server && this.sent.includes(fingerprint(pick(server)))) {
      this.rebase(server.revision, pick(server));
      this.remember();
      this.saveSoon(0);
    } else {
      this.blocked = true;
      this.onStatus("conflict", error);
    }
  }

  /** Conflict resolved by taking the newer server version (returned for the editor). */
  async takeServer() {
    const { draft } = await api("GET", this.url);
    this.rebase(draft ? draft.revision : null, draft ? pick(draft) : null);
    this.pending = null;
    this.blocked = false;
    this.remember();
    this.onStatus("saved");
    return draft ? pick(draft) : null;
  }

  /** Conflict resolved by keeping this version: overwrite the server's. */
  async keepMine() {
    this.blocked = false;
    this.overwrite = true; // until a save lands, so a retry after a lost connection overwrites too
    await this.flush();
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
  conflict: "Changed elsewhere — choose a version to keep typing",
};
