// quartchat.js: the browser client of a quartchat server, a dependency-free ES module.
// Import it from the server (`/static/quartchat.js`) or copy it; types: quartchat.d.ts.
// Every message reaches listeners exactly once and in `seq` order, whatever the
// transport did meanwhile: reconnects replay with ?after=, gaps are read over REST, the
// polling fallback and the outbox's retries reuse the server's idempotent message ids.

/** What each close code means, for people (the console shows them). */
export const CLOSE_MEANINGS = Object.freeze({
  1000: "normal closure",
  1001: "going away",
  1006: "connection lost without a close frame",
  1008: "policy violation (rate limit exceeded)",
  1009: "frame too big (over 64 KiB)",
  1011: "server error",
  1012: "server restart",
  4008: "too slow: the server closed the socket, reconnecting replays what was missed",
  4401: "authentication required or token not valid for this user",
  4404: "unknown room or user",
  4429: "too many sockets for this user or address, or opened too fast",
});

const EPOCH = "1970-01-01T00:00:00.000000Z";
// What a subprotocol may hold (an RFC 7230 token); server tokens are URL-safe base64 and dots.
const SUBPROTOCOL_TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const PAGE = 500;
const TYPING_EVERY_MS = 2000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30000;
// 4429 and 1008 mean "you are too many or too fast": retrying soon only makes it worse.
const SLOW_DOWN_BASE_MS = 5000;
const SLOW_DOWN_CAP_MS = 60000;
const REPLAY_AT_ONCE = new Set([1012, 4008]);
const SLOW_DOWN = new Set([1008, 4429]);
// Under the server's default socket budget (10 frames/s, bursts of 20), so that an
// outbox flushed after a reconnect is not refused; RATE_LIMITED still pauses it.
const OUTBOX_PER_SECOND = 8;
const OUTBOX_BURST = 10;
// A message sent on a socket that is not echoed by then is confirmed over REST.
const ACK_TIMEOUT_MS = 10000;
// A request on a dead connection would otherwise wait forever; a POST that timed out is
// sent again with the same id, which the server stores once.
const REQUEST_TIMEOUT_MS = 20000;

class QuartchatError extends Error {
  constructor(code, detail, closeCode) {
    super(`${code}: ${detail}`);
    this.code = code;
    this.detail = detail;
    if (closeCode !== undefined) this.closeCode = closeCode;
  }
}

function newMessageId() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  // randomUUID exists only in secure contexts; getRandomValues everywhere.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function jittered(base, cap, attempt) {
  return Math.min(cap, base * 2 ** attempt) * (0.5 + Math.random() / 2);
}

/** One user in one room: history, live messages, presence, typing and sending. */
export class Room extends EventTarget {
  constructor({ url, roomId, userId, token, keepAlive = 10000, maxRetries = 10,
    pollInterval = 3000, history = 50 }) {
    super();
    const base = new URL(url);
    this.url = base.origin + base.pathname.replace(/\/$/, "");
    this.roomId = roomId;
    this.userId = userId;
    this.options = { keepAlive, maxRetries, pollInterval, history: Math.min(Math.max(history, 1), PAGE) };
    this.messages = [];
    this.presence = [];
    this.status = "closed";
    this.rtt = null;
    this._token = token;
    this._tokenValue = typeof token === "function" ? undefined : token;
    this._tokenRenewed = false;
    this._pending = new Map(); // seq -> message received ahead of a gap
    this._lastSeq = 0;
    this._last = null;
    this._outbox = []; // {id, content, resolve, reject, state: "queued" | "sent", sentAt, viaRest}
    this._budget = OUTBOX_BURST;
    this._budgetAt = Date.now();
    this._pausedUntil = 0;
    this._timers = {};
    this._socket = null;
    this._attempts = 0;
    this._forcedPolling = false;
    this._started = false;
    this._closed = false;
    this._historyLoaded = false;
    this._lastTypingAt = 0;
    this._generation = 0;
  }

  /** Load the latest `history` messages, then open the socket (or begin polling). */
  open() {
    if (this._opening) return this._opening;
    this._opening = new Promise((resolve, reject) => {
      this._settleOpen = { resolve, reject };
    });
    this._opening.catch(() => {}); // also reported by the `error` event
    if (this._closed) {
      this._failOpen(new QuartchatError("CLOSED", "the room was closed"));
    } else {
      this._started = true;
      this._setStatus("connecting");
      this._connect();
    }
    return this._opening;
  }

  /** Send a message; resolves with it as stored (id, seq, timestamp), exactly once. */
  send(content) {
    if (typeof content !== "string" || !content.trim()) {
      return Promise.reject(new QuartchatError("INVALID_CONTENT", "content must be a non-blank string"));
    }
    if (this._closed) return Promise.reject(new QuartchatError("CLOSED", "the room was closed"));
    return new Promise((resolve, reject) => {
      this._outbox.push({ id: newMessageId(), content, resolve, reject, state: "queued", viaRest: false });
      this._pump();
    });
  }

  /** Tell the others this user is typing; at most one frame per 2 s, only on a socket. */
  typing() {
    const now = Date.now();
    if (now - this._lastTypingAt < TYPING_EVERY_MS || !this._socketOpen()) return false;
    this._lastTypingAt = now;
    return this._sendFrame({ type: "typing" });
  }

  /** Measure the round-trip time now (the keep-alive does it every `keepAlive` ms). */
  ping() {
    if (!this._socketWritable()) return false;
    this._pingSentAt = performance.now();
    return this._sendFrame({ type: "ping" });
  }

  /** The `n` messages before the oldest known one, oldest first, also prepended to
   * `messages` (not emitted as `message` events); `[]` once the first is reached. */
  loadOlder(n = this.options.history) {
    // One page at a time: each starts before the oldest message the last one found.
    const page = (this._older || Promise.resolve()).catch(() => {}).then(() => this._loadOlderNow(n));
    this._older = page;
    return page;
  }

  async _loadOlderNow(n) {
    const oldest = this.messages[0];
    if (!oldest) return [];
    const limit = Math.min(Math.max(n, 1), PAGE);
    const older = await this._get(`messages?before=${encodeURIComponent(oldest.id)}&limit=${limit}`);
    const fresh = older.filter((m) => m.seq < this.messages[0].seq);
    this.messages.unshift(...fresh);
    return fresh;
  }

  /** Drop the socket and only poll (true), or go back to the socket (false). */
  setPolling(enabled) {
    if (this._closed || enabled === this._forcedPolling) return;
    this._forcedPolling = enabled;
    this._stopTransport();
    if (this._started) this._connect();
  }

  /** Close for good: status "closed", no further network activity; unsent messages reject. */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._stopTransport();
    this._setStatus("closed");
    this._failOpen(new QuartchatError("CLOSED", "the room was closed"));
    this._rejectOutbox(new QuartchatError("CLOSED", "the room was closed before the message was sent"));
  }

  // ---- connecting --------------------------------------------------------------

  async _connect() {
    if (this._closed) return;
    // Anything that stops the transport meanwhile makes this try stale.
    const generation = ++this._generation;
    const stale = () => this._closed || generation !== this._generation;
    if (!this._historyLoaded) {
      try {
        await this._loadHistory();
      } catch (error) {
        // A 404 or 401 is reported by the socket's 4404 or 4401 (with the reason);
        // anything else is an unreachable server: try again later.
        if (stale()) return;
        const refused = error instanceof QuartchatError && [401, 404].includes(error.status);
        if (!refused) return this._retry(false);
      }
    }
    if (stale()) return;
    if (this._forcedPolling) return this._startPolling(true);
    let url, protocols;
    try {
      ({ url, protocols } = await this._socketTarget());
    } catch (error) {
      if (stale()) return;
      return this._fatal(new QuartchatError("INVALID_TOKEN", `the token function failed: ${error}`, 4401));
    }
    if (stale()) return;
    this._frame("open", url);
    const socket = new WebSocket(url, protocols);
    this._socket = socket;
    // The server accepts a socket before it refuses it with 4404/4401/4429 (browsers
    // see only close codes), so the socket counts as open once it answers a ping.
    let opened = false;
    socket.onopen = () => this.ping();
    socket.onmessage = (event) => {
      if (this._socket !== socket) return;
      this._frame("in", event.data);
      this._lastHeardAt = Date.now();
      if (!opened) {
        opened = true;
        this._onSocketOpen();
      }
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this._handleFrame(frame);
    };
    socket.onclose = (event) => {
      const meaning = CLOSE_MEANINGS[event.code] || "unknown code";
      this._frame("close", `${event.code} ${meaning}${event.reason ? ` "${event.reason}"` : ""}`,
        { code: event.code, reason: event.reason });
      if (this._socket !== socket) return;
      this._socket = null;
      this._onSocketClose(event.code, event.reason, opened);
    };
  }

  async _loadHistory() {
    const latest = await this._get(`messages?limit=${this.options.history}`);
    if (this._historyLoaded) return;
    this._historyLoaded = true;
    for (const message of latest) this._accept(message, true);
  }

  // The token goes in the Sec-WebSocket-Protocol header, not the URL: proxies log URLs.
  // The server answers with "quartchat", which a browser requires to be one it offered.
  // A string no server token can be (one a subprotocol cannot carry: new WebSocket
  // would throw) goes in the query instead, to be refused with 4401 like any bad token.
  async _socketTarget() {
    const query = new URLSearchParams();
    if (this._last) query.set("after", this._last.id);
    else query.set("since", EPOCH);
    const token = await this._currentToken(false);
    let protocols;
    if (token && SUBPROTOCOL_TOKEN.test(token)) protocols = ["quartchat", `token.${token}`];
    else if (token) query.set("token", token);
    const path = `/ws/${encodeURIComponent(this.roomId)}/${encodeURIComponent(this.userId)}`;
    return { url: `${this.url.replace(/^http/, "ws")}${path}?${query}`, protocols };
  }

  async _currentToken(renew) {
    if (typeof this._token === "function" && (renew || this._tokenValue === undefined)) {
      this._tokenValue = await this._token();
    }
    return this._tokenValue;
  }

  _onSocketOpen() {
    this._live = true;
    this._attempts = 0;
    this._probes = 0;
    this._tokenRenewed = false;
    this._stopPolling();
    clearTimeout(this._timers.retry);
    this._setStatus("open");
    this._resolveOpen();
    this._loadPresence();
    this._lastHeardAt = Date.now();
    this._timers.keepAlive = setInterval(() => this._keepAlive(), this.options.keepAlive);
    for (const entry of this._outbox) if (entry.state === "sent") entry.state = "queued";
    this._pump();
  }

  _keepAlive() {
    // Any frame proves the socket alive; two intervals of silence after a ping do not.
    if (Date.now() - this._lastHeardAt > 2 * this.options.keepAlive) {
      const socket = this._socket;
      this._frame("error", "no pong for two keep-alive intervals: the socket is dead");
      this._socket = null;
      clearInterval(this._timers.keepAlive);
      if (socket) socket.close(4000, "keep-alive timed out");
      this._onSocketClose(1006, "keep-alive timed out", true);
      return;
    }
    this.ping();
  }

  _onSocketClose(code, reason, opened) {
    this._live = false;
    clearInterval(this._timers.keepAlive);
    for (const entry of this._outbox) if (entry.state === "sent") entry.state = "queued";
    if (this._closed || this._forcedPolling) return;
    if (code === 4404) {
      return this._fatal(new QuartchatError("NOT_FOUND", reason || CLOSE_MEANINGS[4404], 4404));
    }
    if (code === 4401) {
      if (typeof this._token === "function" && !this._tokenRenewed) {
        this._tokenRenewed = true;
        this._tokenValue = undefined;
        return this._connect();
      }
      return this._fatal(new QuartchatError("UNAUTHORIZED", reason || CLOSE_MEANINGS[4401], 4401));
    }
    if (REPLAY_AT_ONCE.has(code)) {
      this._setStatus("reconnecting");
      return this._connect();
    }
    // A socket that never opened (1006) says nothing new while the server is away.
    if (opened || code !== 1006) {
      this._emit("error", { code: "DISCONNECTED", detail: reason || CLOSE_MEANINGS[code] || "closed", closeCode: code });
    }
    // Only a socket that never opened (1006) may be a proxy refusing upgrades.
    this._retry(!opened && code === 1006, SLOW_DOWN.has(code));
  }

  // One more try later; a socket that could not even open may be refused by a proxy
  // that still passes REST, so REST is tried before counting the try as failed.
  async _retry(handshakeFailed, slowDown = false) {
    if (this._closed) return;
    if (handshakeFailed && (await this._tryPolling())) return;
    if (this._closed) return;
    this._attempts += 1;
    if (this._attempts > this.options.maxRetries) {
      return this._fatal(new QuartchatError("UNREACHABLE", `gave up after ${this.options.maxRetries} tries`));
    }
    const delay = slowDown
      ? jittered(SLOW_DOWN_BASE_MS, SLOW_DOWN_CAP_MS, this._attempts - 1)
      : jittered(BACKOFF_BASE_MS, BACKOFF_CAP_MS, this._attempts - 1);
    this._setStatus("reconnecting");
    clearTimeout(this._timers.retry);
    this._timers.retry = setTimeout(() => this._connect(), delay);
  }

  async _tryPolling() {
    try {
      await this._pollOnce();
    } catch {
      return false;
    }
    if (this._closed || this._socket) return true;
    this._attempts = 0;
    this._startPolling();
    this._scheduleProbe();
    return true;
  }

  _scheduleProbe() {
    this._probes = (this._probes || 0) + 1;
    const cap = Math.max(5 * this.options.pollInterval, 15000);
    clearTimeout(this._timers.retry);
    this._timers.retry = setTimeout(() => this._connect(), jittered(BACKOFF_BASE_MS * 4, cap, this._probes));
  }

  _fatal(error) {
    this._closed = true;
    this._stopTransport();
    this._setStatus("closed");
    this._emit("error", { code: error.code, detail: error.detail, ...(error.closeCode ? { closeCode: error.closeCode } : {}) });
    this._failOpen(error);
    this._rejectOutbox(error);
  }

  _stopTransport() {
    for (const timer of Object.values(this._timers)) {
      clearTimeout(timer);
      clearInterval(timer);
    }
    this._timers = {};
    this._generation += 1;
    this._live = false;
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = null;
      if (socket.readyState <= WebSocket.OPEN) socket.close(1000, this._closed ? "closed" : "switching to polling");
    }
    this._polling = false;
  }

  // ---- polling -------------------------------------------------------------------

  _startPolling(pollNow = false) {
    if (this._polling) return;
    this._polling = true;
    this._setStatus("polling");
    this._resolveOpen();
    this._pump();
    if (pollNow) this._pollLoop();
    else this._timers.poll = setTimeout(() => this._pollLoop(), this.options.pollInterval);
  }

  _stopPolling() {
    this._polling = false;
    clearTimeout(this._timers.poll);
  }

  async _pollLoop() {
    if (!this._polling || this._closed) return;
    try {
      await this._pollOnce();
    } catch {
      if (!this._polling || this._closed) return;
      if (this._forcedPolling) this._setStatus("reconnecting");
      else {
        this._stopPolling();
        return this._retry(false);
      }
    }
    if (this._polling && !this._closed) {
      this._setStatus("polling");
      this._timers.poll = setTimeout(() => this._pollLoop(), this.options.pollInterval);
    }
  }

  // Everything after the last message, page by page (asking again at once while a
  // page comes back full), then the presence snapshot.
  async _pollOnce() {
    for (;;) {
      const since = this._last ? this._last.timestamp : EPOCH;
      const page = await this._get(`messages?since=${encodeURIComponent(since)}&limit=${PAGE}`);
      for (const message of page) this._accept(message);
      if (page.length < PAGE || this._closed) break;
    }
    await this._loadPresence();
  }

  // ---- incoming ----------------------------------------------------------------

  _handleFrame(frame) {
    switch (frame.type) {
      case "message":
        return this._accept(frame);
      case "pong":
        if (this._pingSentAt !== undefined) {
          this.rtt = performance.now() - this._pingSentAt;
          this._pingSentAt = undefined;
        }
        return;
      case "user_joined":
      case "user_left":
        return this._presenceDelta(frame);
      case "typing":
        return this._emit("typing", { user_id: frame.user_id, username: frame.username });
      case "error":
        return this._onErrorFrame(frame);
      default:
        return;
    }
  }

  // Emit in seq order: a message ahead of a gap waits while the gap is read over REST.
  _accept(message, fromHistory = false) {
    if (message.seq <= this._lastSeq || this._pending.has(message.seq)) return;
    if (fromHistory && this._lastSeq === 0) this._lastSeq = message.seq - 1;
    this._pending.set(message.seq, message);
    while (this._pending.has(this._lastSeq + 1)) {
      const next = this._pending.get(this._lastSeq + 1);
      this._pending.delete(next.seq);
      this._lastSeq = next.seq;
      this._last = next;
      this.messages.push(next);
      this._settle(next);
      this._emit("message", next);
    }
    if (this._pending.size) this._fillGap();
  }

  async _fillGap() {
    if (this._filling) return;
    this._filling = true;
    try {
      while (this._pending.size && !this._closed) {
        const from = this._last ? `after=${encodeURIComponent(this._last.id)}` : `since=${EPOCH}`;
        const page = await this._get(`messages?${from}&limit=${PAGE}`);
        const before = this._lastSeq;
        for (const message of page) this._accept(message);
        if (this._lastSeq === before) break;
      }
    } catch {
      if (!this._closed) this._timers.gap = setTimeout(() => this._fillGap(), 1000);
    } finally {
      this._filling = false;
    }
  }

  async _loadPresence() {
    this._presenceDeltas = [];
    try {
      const snapshot = await this._get("presence");
      const present = new Map(snapshot.map((u) => [u.user_id, { user_id: u.user_id, username: u.username }]));
      for (const frame of this._presenceDeltas) this._applyDelta(present, frame);
      this._setPresence(present);
    } catch (error) {
      this._frame("error", `presence: ${error.message}`);
    } finally {
      this._presenceDeltas = null;
    }
  }

  _presenceDelta(frame) {
    // Deltas that arrive while a snapshot is on its way apply on top of it.
    if (this._presenceDeltas) this._presenceDeltas.push(frame);
    const present = new Map(this.presence.map((u) => [u.user_id, u]));
    this._applyDelta(present, frame);
    this._setPresence(present);
  }

  _applyDelta(present, frame) {
    if (frame.type === "user_joined") present.set(frame.user_id, { user_id: frame.user_id, username: frame.username });
    else present.delete(frame.user_id);
  }

  _setPresence(present) {
    this.presence = [...present.values()];
    this._emit("presence", this.presence);
  }

  _onErrorFrame(frame) {
    const entry = frame.id && this._outbox.find((e) => e.id === frame.id);
    if (frame.code === "RATE_LIMITED") {
      this._pausedUntil = Date.now() + (frame.retry_after || 1) * 1000;
      if (entry) entry.state = "queued";
      this._pump();
    } else if (frame.code === "UNAVAILABLE" && entry) {
      entry.state = "queued";
      this._pausedUntil = Date.now() + 1000;
      this._pump();
    } else if (entry) {
      this._unqueue(entry).reject(new QuartchatError(frame.code, frame.detail));
    } else if (["INVALID_CONTENT", "INVALID_ID", "INVALID_JSON"].includes(frame.code)) {
      // A refusal the server could not name (the frame's id was unreadable): REST tells
      // which of those in flight it was.
      for (const e of this._outbox) if (e.state === "sent") Object.assign(e, { state: "queued", viaRest: true });
      this._pump();
    }
    this._emit("error", { code: frame.code, detail: frame.detail });
  }

  // ---- the outbox ----------------------------------------------------------------

  _pump() {
    clearTimeout(this._timers.pump);
    if (this._closed || !(this._socketOpen() || this._polling)) return;
    const now = Date.now();
    this._budget = Math.min(OUTBOX_BURST, this._budget + ((now - this._budgetAt) / 1000) * OUTBOX_PER_SECOND);
    this._budgetAt = now;
    for (const entry of this._outbox) {
      if (entry.state === "sent" && now - entry.sentAt > ACK_TIMEOUT_MS) Object.assign(entry, { state: "queued", viaRest: true });
      if (entry.state !== "queued") continue;
      if (now < this._pausedUntil || this._budget < 1) break;
      this._budget -= 1;
      entry.state = "sent";
      entry.sentAt = now;
      if (this._socketOpen() && !entry.viaRest) this._sendFrame({ type: "message", content: entry.content, id: entry.id });
      else this._post(entry);
    }
    const waiting = this._outbox.some((e) => e.state === "queued");
    const unacked = this._outbox.some((e) => e.state === "sent");
    if (waiting || unacked) {
      const wait = waiting ? Math.max(this._pausedUntil - now, (1 - this._budget) * (1000 / OUTBOX_PER_SECOND), 20) : ACK_TIMEOUT_MS;
      this._timers.pump = setTimeout(() => this._pump(), wait);
    }
  }

  async _post(entry) {
    const body = { user_id: this.userId, content: entry.content, id: entry.id };
    try {
      const message = await this._request("POST", "messages", body);
      entry.viaRest = false;
      return this._accept(message);
    } catch (error) {
      if (this._closed || !this._outbox.includes(entry)) return;
      const status = error instanceof QuartchatError ? error.status : 0;
      if (status >= 400 && status < 500 && status !== 429 && status !== 408) {
        return this._unqueue(entry).reject(error);
      }
      // Not stored, or not known to be: the same id goes again later.
      entry.state = "queued";
      this._pausedUntil = Date.now() + (status === 429 ? 2000 : 1000);
      return this._pump();
    }
  }

  _settle(message) {
    const entry = this._outbox.find((e) => e.id === message.id);
    if (entry) this._unqueue(entry).resolve(message);
  }

  _unqueue(entry) {
    this._outbox.splice(this._outbox.indexOf(entry), 1);
    return entry;
  }

  _rejectOutbox(error) {
    const entries = this._outbox.splice(0);
    for (const entry of entries) entry.reject(error);
  }

  // ---- plumbing --------------------------------------------------------------------

  // Open and confirmed by an answer to the first ping.
  _socketOpen() {
    return this._live && this._socketWritable();
  }

  _socketWritable() {
    return this._socket !== null && this._socket.readyState === WebSocket.OPEN;
  }

  _sendFrame(frame) {
    if (!this._socketWritable()) return false;
    const text = JSON.stringify(frame);
    this._socket.send(text);
    this._frame("out", text);
    return true;
  }

  _get(path) {
    return this._request("GET", path);
  }

  // With AUTH_SECRET set, reads need a token as well as writes; a 401 asks the token
  // function once for a fresh one.
  async _request(method, path, body, renewed = false) {
    const url = `${this.url}/rooms/${encodeURIComponent(this.roomId)}/${path}`;
    const options = { method, headers: {}, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) };
    const token = await this._currentToken(renewed);
    if (token) options.headers.authorization = `Bearer ${token}`;
    if (body !== undefined) {
      options.headers["content-type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    this._frame(method === "GET" ? "poll" : "out", `${method} ${url.slice(this.url.length)}${body ? ` ${options.body}` : ""}`);
    const response = await fetch(url, options);
    if (response.status === 401 && !renewed && typeof this._token === "function" && !this._closed) {
      this._tokenRenewed = true; // the socket's 4401 will not ask again
      return this._request(method, path, body, true);
    }
    const data = await response.json().catch(() => null);
    if (this._closed) throw new QuartchatError("CLOSED", "the room was closed");
    if (!response.ok) {
      const error = new QuartchatError(data?.code || `HTTP_${response.status}`, data?.detail || response.statusText);
      error.status = response.status;
      throw error;
    }
    if (Array.isArray(data) ? data.length : method !== "GET") this._frame("in", JSON.stringify(data));
    return data;
  }

  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this._emit("status", status);
  }

  _resolveOpen() {
    if (this._settleOpen) this._settleOpen.resolve();
    this._settleOpen = null;
  }

  _failOpen(error) {
    if (this._settleOpen) this._settleOpen.reject(error);
    this._settleOpen = null;
  }

  _frame(direction, text, extra = {}) {
    this._emit("frame", { direction, text, ...extra });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

export { QuartchatError };
