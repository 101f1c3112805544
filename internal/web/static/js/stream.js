// The live stream for the console. A browser's EventSource sends no Authorization header, so every
// connection first asks POST /api/v1/stream/ticket for a single-use ticket (with the access token, in a
// header) and opens /api/v1/stream?ticket=…. A ticket opens one connection once: EventSource's own
// reconnection would reuse it and be refused, so this class reconnects itself, with a fresh ticket and
// the last check.status id it saw.
import { api } from "./api.js";

const RETRY_MS = 3000;

export class LiveStream {
  /**
   * @param {URLSearchParams} params what to subscribe to (check=, series=, alerts=)
   * @param {Object<string, function(object)>} handlers by event name: samples, check.status, check.result, …
   */
  constructor(params, handlers) {
    this.params = params;
    this.handlers = handlers;
    this.lastEventId = null;
    this.source = null;
    this.timer = null;
    this.stopped = false;
  }

  async start() {
    if (this.stopped) return;
    let ticket;
    try {
      ticket = (await api("/api/v1/stream/ticket", { method: "POST" })).ticket;
    } catch (e) {
      if (e.status === 401) { // the session is over: no ticket will come
        this.stop();
        window.dispatchEvent(new Event("infrawatch:logged-out"));
        return;
      }
      this.retry();
      return;
    }
    if (this.stopped) return;
    const q = new URLSearchParams(this.params);
    q.set("ticket", ticket);
    if (this.lastEventId) q.set("last_event_id", this.lastEventId);
    const es = new EventSource("/api/v1/stream?" + q.toString());
    this.source = es;
    for (const [name, fn] of Object.entries(this.handlers)) {
      es.addEventListener(name, (e) => {
        if (e.lastEventId) this.lastEventId = e.lastEventId;
        fn(JSON.parse(e.data));
      });
    }
    es.addEventListener("closed", () => this.reconnect()); // the access token expired: a new ticket
    es.onerror = () => this.reconnect();
  }

  reconnect() {
    if (this.source) this.source.close();
    this.source = null;
    this.retry();
  }

  retry() {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => { this.timer = null; this.start(); }, RETRY_MS);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.source) this.source.close();
  }
}
