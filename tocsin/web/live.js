// WS /v1/live with reconnection: exponential backoff with jitter, resuming from the last ids seen.

export class LiveFeed {
  constructor({ onHello, onMessage, onStatus }) {
    this.onHello = onHello;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.cursor = { obs: null, evt: null };
    this.attempt = 0;
    this.ws = null;
    this.stopped = false;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "signed out");
    this.status("offline");
  }

  status(state) {
    this.state = state;
    this.onStatus(state);
  }

  url() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const q = new URLSearchParams();
    if (this.cursor.obs !== null) q.set("since_obs", this.cursor.obs);
    if (this.cursor.evt !== null) q.set("since_evt", this.cursor.evt);
    const qs = q.toString();
    return `${proto}//${location.host}/v1/live${qs ? "?" + qs : ""}`;
  }

  connect() {
    this.status(this.attempt ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url());  // the HttpOnly session cookie authenticates it
    this.ws = ws;
    ws.onmessage = (ev) => {
      const data = JSON.parse(ev.data);  // one message, or an array of them when we fell behind
      for (const message of Array.isArray(data) ? data : [data]) this.receive(message);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws || this.stopped) return;
      if (ev.code === 4401) {  // signed out, expired or revoked: reconnecting would not help
        this.status("signed-out");
        return;
      }
      if (ev.code === 4403) {  // this page's origin may not use the session (TOCSIN_ALLOWED_ORIGINS)
        this.status("refused");
        return;
      }
      this.attempt += 1;
      const delay = Math.min(10000, 500 * 2 ** Math.min(this.attempt - 1, 5)) * (0.5 + Math.random() / 2);
      this.status("reconnecting");
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  receive(message) {
    if (message.type === "hello") {
      this.attempt = 0;
      const fresh = this.cursor.obs === null && this.cursor.evt === null;
      if (this.cursor.obs === null) this.cursor.obs = message.cursor.obs;
      if (this.cursor.evt === null) this.cursor.evt = message.cursor.evt;
      this.status("connected");
      this.onHello(message, fresh);
      return;
    }
    const [kind, raw] = message.id.split(":");
    const id = Number(raw);
    if (this.cursor[kind] === null || id > this.cursor[kind]) this.cursor[kind] = id;
    this.lastEventId = message.id;
    this.onMessage(message);
  }
}
