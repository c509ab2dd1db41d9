// The quartchat debug console: one panel per joined room, each with its own socket.
// Everything a user or the server wrote is shown with textContent, never as HTML.
"use strict";

const CLOSE_MEANINGS = {
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
  4429: "too many sockets for this user or address",
};
const MAX_RECONNECTS = 10;
const KEEPALIVE_MS = 10000;
const POLL_MS = 3000;
const MAX_FRAMES_SHOWN = 500;
const LIST_PAGE = 100;

// Tokens of the users this page created, for servers with AUTH_SECRET set.
const tokens = new Map();

// With AUTH_SECRET set, reads need a token too: any user's will do.
async function apiResponse(method, path, body, userId) {
  const options = { method, headers: {} };
  const token = tokens.get(userId) || tokens.values().next().value;
  if (token) options.headers.authorization = `Bearer ${token}`;
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const reason = data && data.code ? `${data.code}: ${data.detail}` : response.statusText;
    throw new Error(`${response.status} ${reason}`);
  }
  return { data, response };
}

async function api(method, path, body, userId) {
  return (await apiResponse(method, path, body, userId)).data;
}

// One page of /users or /rooms; `more` when the Link header names a next page.
async function listPage(path, search) {
  const query = new URLSearchParams({ limit: String(LIST_PAGE) });
  if (search) query.set("q", search);
  const { data, response } = await apiResponse("GET", `${path}?${query}`);
  return { items: data, more: /rel="next"/.test(response.headers.get("link") || "") };
}

function clock(date) {
  return date.toLocaleTimeString([], { hour12: false }) + "." +
    String(date.getMilliseconds()).padStart(3, "0");
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function newMessageId() {
  // randomUUID exists only in secure contexts (https, localhost); the server makes one otherwise.
  return window.crypto && crypto.randomUUID ? crypto.randomUUID() : undefined;
}

class Panel {
  constructor(roomId, userId) {
    this.roomId = roomId;
    this.userId = userId;
    this.socket = null;
    this.lastMessage = null;
    this.seen = new Set();
    this.attempts = 0;
    this.leaving = false;
    this.polling = false;
    this.timers = {};
    this.pingSentAt = null;

    const fragment = document.getElementById("panel-template").content.cloneNode(true);
    this.root = fragment.querySelector(".panel");
    this.root.setAttribute("aria-label", `${roomId} as ${userId}`);
    this.root.querySelector(".panel-title").textContent = `${roomId} · ${userId}`;
    this.status = this.root.querySelector(".status");
    this.rtt = this.root.querySelector(".rtt");
    this.messages = this.root.querySelector(".messages");
    this.frames = this.root.querySelector(".frames");
    this.online = this.root.querySelector(".online");
    this.typingIndicator = this.root.querySelector(".typing-indicator");
    this.input = this.root.querySelector(".message-input");
    this.wire();
    document.getElementById("panels").prepend(this.root);
    this.connect();
  }

  wire() {
    this.root.querySelector(".send-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const content = this.input.value;
      if (!content.trim()) return;
      this.sendMessage(content);
      this.input.value = "";
    });
    this.root.querySelector(".typing").addEventListener("click", () => this.sendFrame({ type: "typing" }));
    this.root.querySelector(".ping").addEventListener("click", () => this.ping());
    this.root.querySelector(".leave").addEventListener("click", () => this.leave());
    this.root.querySelector(".polling").addEventListener("change", (event) => this.setPolling(event.target.checked));
  }

  socketUrl() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const path = `/ws/${encodeURIComponent(this.roomId)}/${encodeURIComponent(this.userId)}`;
    const query = new URLSearchParams();
    if (this.lastMessage) query.set("after", this.lastMessage.id);
    if (tokens.has(this.userId)) query.set("token", tokens.get(this.userId));
    const search = query.toString() ? `?${query}` : "";
    return `${scheme}://${location.host}${path}${search}`;
  }

  setStatus(text) {
    this.status.textContent = text;
    this.root.dataset.status = text.split(" ")[0].replace(":", "");
  }

  connect() {
    const url = this.socketUrl();
    this.setStatus("connecting");
    this.logFrame("open", url);
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempts = 0;
      this.setStatus("connected");
      this.loadPresence();
      this.timers.keepalive = setInterval(() => this.ping(), KEEPALIVE_MS);
    });
    socket.addEventListener("message", (event) => {
      this.logFrame("in", event.data);
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.handleFrame(frame);
    });
    socket.addEventListener("close", (event) => this.onClose(socket, event));
  }

  onClose(socket, event) {
    clearInterval(this.timers.keepalive);
    const meaning = CLOSE_MEANINGS[event.code] || "unknown code";
    const reason = event.reason ? ` "${event.reason}"` : "";
    this.logFrame("close", `${event.code} ${meaning}${reason}`);
    if (this.socket !== socket) return;
    this.socket = null;
    if (this.leaving || this.polling) return;
    if (event.code === 4404) {
      this.setStatus(`closed: ${event.reason || meaning}`);
      return;
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (this.attempts >= MAX_RECONNECTS) {
      this.setStatus(`disconnected: gave up after ${MAX_RECONNECTS} tries`);
      return;
    }
    const delay = Math.min(500 * 2 ** this.attempts, 30000);
    this.attempts += 1;
    this.setStatus(`reconnecting in ${(delay / 1000).toFixed(1)} s (try ${this.attempts}/${MAX_RECONNECTS})`);
    this.timers.reconnect = setTimeout(() => this.connect(), delay);
  }

  sendFrame(frame) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
      this.logFrame("note", "not connected: frame not sent");
      return false;
    }
    const text = JSON.stringify(frame);
    this.socket.send(text);
    this.logFrame("out", text);
    return true;
  }

  ping() {
    this.pingSentAt = performance.now();
    this.sendFrame({ type: "ping" });
  }

  async sendMessage(content) {
    const id = newMessageId();
    if (!this.polling) {
      this.sendFrame({ type: "message", content, id });
      return;
    }
    const body = { user_id: this.userId, content, id };
    const path = `/rooms/${encodeURIComponent(this.roomId)}/messages`;
    this.logFrame("out", `POST ${path} ${JSON.stringify(body)}`);
    try {
      const message = await api("POST", path, body, this.userId);
      this.logFrame("in", JSON.stringify(message));
      this.addMessage(message);
    } catch (error) {
      this.logFrame("error", error.message);
    }
  }

  handleFrame(frame) {
    switch (frame.type) {
      case "message":
        this.addMessage(frame);
        break;
      case "pong":
        if (this.pingSentAt !== null) {
          this.rtt.textContent = `RTT ${(performance.now() - this.pingSentAt).toFixed(1)} ms`;
          this.pingSentAt = null;
        }
        break;
      case "user_joined":
        this.showOnline(frame.user_id, frame.username);
        break;
      case "user_left":
        this.hideOnline(frame.user_id);
        break;
      case "typing":
        this.typingIndicator.textContent = `${frame.username} is typing…`;
        clearTimeout(this.timers.typing);
        this.timers.typing = setTimeout(() => { this.typingIndicator.textContent = ""; }, 3000);
        break;
      case "error":
        this.setStatus(`connected (last error: ${frame.code})`);
        break;
      default:
        break;
    }
  }

  addMessage(message) {
    if (this.seen.has(message.id)) return;
    this.seen.add(message.id);
    if (!this.lastMessage || message.seq > this.lastMessage.seq) this.lastMessage = message;
    const item = element("li", "message");
    item.dataset.seq = message.seq;
    item.append(
      element("span", "username", message.username),
      element("time", "time", clock(new Date(message.timestamp))),
      element("span", "content", message.content),
    );
    item.querySelector("time").dateTime = message.timestamp;
    this.messages.append(item);
    item.scrollIntoView({ block: "nearest" });
  }

  async loadPresence() {
    try {
      const present = await api("GET", `/rooms/${encodeURIComponent(this.roomId)}/presence`);
      this.online.replaceChildren();
      for (const user of present) this.showOnline(user.user_id, user.username);
    } catch (error) {
      this.logFrame("error", `presence: ${error.message}`);
    }
  }

  showOnline(userId, username) {
    if (this.online.querySelector(`[data-user-id="${CSS.escape(userId)}"]`)) return;
    const item = element("li", "user", `${username} (${userId})`);
    item.dataset.userId = userId;
    this.online.append(item);
  }

  hideOnline(userId) {
    const item = this.online.querySelector(`[data-user-id="${CSS.escape(userId)}"]`);
    if (item) item.remove();
  }

  setPolling(enabled) {
    this.polling = enabled;
    clearTimeout(this.timers.reconnect);
    clearInterval(this.timers.poll);
    if (enabled) {
      if (this.socket) this.socket.close(1000, "switching to polling");
      this.setStatus(`polling every ${POLL_MS / 1000} s`);
      this.poll();
      this.timers.poll = setInterval(() => this.poll(), POLL_MS);
    } else {
      this.attempts = 0;
      this.connect();
    }
  }

  async poll() {
    const since = this.lastMessage ? `?since=${encodeURIComponent(this.lastMessage.timestamp)}` : "";
    const path = `/rooms/${encodeURIComponent(this.roomId)}/messages${since}`;
    this.logFrame("poll", `GET ${path}`);
    try {
      const messages = await api("GET", path);
      if (messages.length) this.logFrame("in", JSON.stringify(messages));
      for (const message of messages) this.addMessage(message);
    } catch (error) {
      this.logFrame("error", error.message);
    }
    this.loadPresence();
  }

  leave() {
    this.leaving = true;
    for (const timer of Object.values(this.timers)) {
      clearTimeout(timer);
      clearInterval(timer);
    }
    if (this.socket) this.socket.close(1000, "left");
    this.root.remove();
  }

  logFrame(direction, text) {
    const arrows = { in: "←", out: "→", open: "⇢", close: "✕", poll: "⟳", error: "!", note: "·" };
    const item = element("li", `frame frame-${direction}`);
    item.append(
      element("time", "time", clock(new Date())),
      element("span", "direction", `${arrows[direction] || ""} ${direction}`),
      element("code", "text", text),
    );
    this.frames.append(item);
    while (this.frames.childElementCount > MAX_FRAMES_SHOWN) this.frames.firstElementChild.remove();
    item.scrollIntoView({ block: "nearest" });
  }
}

function setupStatus(text) {
  document.getElementById("setup-status").textContent = text;
}

function fillSelect(select, page, label) {
  const current = select.value;
  select.replaceChildren(element("option", "", "(pick one)"));
  select.firstElementChild.value = "";
  for (const item of page.items) {
    const option = element("option", "", `${label(item)} (${item.id})`);
    option.value = item.id;
    select.append(option);
  }
  if (page.more) {
    const more = element("option", "", `only the first ${LIST_PAGE}: search to narrow`);
    more.disabled = true;
    select.append(more);
  }
  select.value = current;
}

async function refreshLists() {
  const search = document.getElementById("list-search").value.trim();
  try {
    const [users, rooms] = await Promise.all([
      listPage("/users", search),
      listPage("/rooms", search),
    ]);
    fillSelect(document.getElementById("existing-users"), users, (user) => user.username);
    fillSelect(document.getElementById("existing-rooms"), rooms, (room) => room.name);
  } catch (error) {
    setupStatus(`Could not load lists: ${error.message}`);
  }
}

function bindSetup() {
  const userIdInput = document.getElementById("user-id");
  const roomIdInput = document.getElementById("room-id");

  document.getElementById("create-user-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("new-username");
    try {
      const user = await api("POST", "/users", { username: input.value });
      if (user.token) tokens.set(user.id, user.token);
      userIdInput.value = user.id;
      input.value = "";
      setupStatus(`Created user ${user.username} (${user.id})`);
      refreshLists();
    } catch (error) {
      setupStatus(`Could not create user: ${error.message}`);
    }
  });

  document.getElementById("create-room-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("new-room-name");
    try {
      const room = await api("POST", "/rooms", { name: input.value });
      roomIdInput.value = room.id;
      input.value = "";
      setupStatus(`Created room ${room.name} (${room.id})`);
      refreshLists();
    } catch (error) {
      setupStatus(`Could not create room: ${error.message}`);
    }
  });

  document.getElementById("existing-users").addEventListener("change", (event) => {
    if (event.target.value) userIdInput.value = event.target.value;
  });
  document.getElementById("existing-rooms").addEventListener("change", (event) => {
    if (event.target.value) roomIdInput.value = event.target.value;
  });
  document.getElementById("refresh-lists").addEventListener("click", refreshLists);
  let searching;
  document.getElementById("list-search").addEventListener("input", () => {
    clearTimeout(searching);
    searching = setTimeout(refreshLists, 300);
  });

  document.getElementById("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const roomId = roomIdInput.value.trim();
    const userId = userIdInput.value.trim();
    if (!roomId || !userId) return;
    new Panel(roomId, userId);
    setupStatus(`Joined ${roomId} as ${userId}`);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  bindSetup();
  refreshLists();
});
