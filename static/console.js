// The quartchat debug console: one panel per joined room, each a quartchat.js Room (the
// one implementation of the protocol in this repository) with its frames made visible.
// Everything a user or the server wrote is shown with textContent, never as HTML.
import { CLOSE_MEANINGS, Room } from "./quartchat.js";

const POLL_MS = 3000;
const MAX_FRAMES_SHOWN = 500;
const LIST_PAGE = 100;
const ARROWS = { in: "←", out: "→", open: "⇢", close: "✕", poll: "⟳", error: "!", note: "·" };

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

class Panel {
  constructor(roomId, userId) {
    const fragment = document.getElementById("panel-template").content.cloneNode(true);
    this.root = fragment.querySelector(".panel");
    this.root.setAttribute("aria-label", `${roomId} as ${userId}`);
    this.title = this.root.querySelector(".panel-title");
    this.title.textContent = `${roomId} · ${userId}`;
    this.title.title = `room id ${roomId} · user id ${userId}`;
    this.status = this.root.querySelector(".status");
    this.rtt = this.root.querySelector(".rtt");
    this.messages = this.root.querySelector(".messages");
    this.frames = this.root.querySelector(".frames");
    this.online = this.root.querySelector(".online");
    this.typingIndicator = this.root.querySelector(".typing-indicator");
    this.input = this.root.querySelector(".message-input");
    this.olderButton = this.root.querySelector(".load-older");
    this.lastError = "";
    this.room = new Room({
      url: location.origin,
      roomId,
      userId,
      token: async () => tokens.get(userId),
      pollInterval: POLL_MS,
    });
    this.listen();
    this.wire();
    document.getElementById("panels").prepend(this.root);
    this.nameTitle(roomId, userId);
    this.room.open().catch(() => {}); // the failure shows in the status and Frames
  }

  async nameTitle(roomId, userId) {
    const [room, user] = await Promise.all([
      api("GET", `/rooms/${encodeURIComponent(roomId)}`).catch(() => null),
      api("GET", `/users/${encodeURIComponent(userId)}`).catch(() => null),
    ]);
    this.title.textContent = `${room ? room.name : roomId} · ${user ? user.username : userId}`;
  }

  listen() {
    const room = this.room;
    room.addEventListener("frame", (event) => {
      const { direction, text } = event.detail;
      this.logFrame(direction, text);
      if (direction === "in" && room.rtt !== null) this.rtt.textContent = `RTT ${room.rtt.toFixed(1)} ms`;
    });
    room.addEventListener("status", () => {
      this.lastError = "";
      this.showStatus();
    });
    room.addEventListener("message", (event) => this.addMessage(event.detail));
    room.addEventListener("presence", (event) => this.showOnline(event.detail));
    room.addEventListener("typing", (event) => {
      this.typingIndicator.textContent = `${event.detail.username} is typing…`;
      clearTimeout(this.typingTimer);
      this.typingTimer = setTimeout(() => { this.typingIndicator.textContent = ""; }, 3000);
    });
    room.addEventListener("error", (event) => {
      const { code, detail, closeCode } = event.detail;
      this.lastError = closeCode ? detail || CLOSE_MEANINGS[closeCode] : code;
      if (closeCode) this.logFrame("error", `${code}: ${detail}`);
      this.showStatus();
    });
  }

  showStatus() {
    const texts = {
      connecting: "connecting",
      open: this.lastError ? `connected (last error: ${this.lastError})` : "connected",
      reconnecting: "reconnecting",
      polling: `polling every ${POLL_MS / 1000} s`,
      closed: this.lastError ? `closed: ${this.lastError}` : "closed",
    };
    this.status.textContent = texts[this.room.status];
    this.root.dataset.status = this.room.status === "open" ? "connected" : this.room.status;
  }

  wire() {
    this.root.querySelector(".send-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const content = this.input.value;
      if (!content.trim()) return;
      this.input.value = "";
      this.room.send(content).catch((error) => this.logFrame("error", `not sent: ${error.message}`));
    });
    this.root.querySelector(".typing").addEventListener("click", () => {
      if (!this.room.typing()) this.logFrame("note", "typing not sent (no socket, or sent less than 2 s ago)");
    });
    this.root.querySelector(".ping").addEventListener("click", () => {
      if (!this.room.ping()) this.logFrame("note", "not connected: ping not sent");
    });
    this.root.querySelector(".leave").addEventListener("click", () => this.leave());
    this.root.querySelector(".polling").addEventListener("change", (event) => this.room.setPolling(event.target.checked));
    this.olderButton.addEventListener("click", () => this.loadOlder());
  }

  async loadOlder() {
    this.olderButton.disabled = true;
    try {
      const older = await this.room.loadOlder();
      if (!older.length) {
        this.olderButton.textContent = "No older messages";
        return;
      }
      const items = older.map((message) => this.messageItem(message));
      this.messages.prepend(...items);
      items[0].scrollIntoView({ block: "nearest" });
    } catch (error) {
      this.logFrame("error", `load older: ${error.message}`);
    }
    this.olderButton.disabled = false;
  }

  messageItem(message) {
    const item = element("li", "message");
    item.dataset.seq = message.seq;
    const name = element("span", "username", message.username);
    name.title = message.user_id;
    const time = element("time", "time", clock(new Date(message.timestamp)));
    time.dateTime = message.timestamp;
    item.append(name, time, element("span", "content", message.content));
    return item;
  }

  addMessage(message) {
    const item = this.messageItem(message);
    this.messages.append(item);
    item.scrollIntoView({ block: "nearest" });
  }

  showOnline(users) {
    this.online.replaceChildren(...users.map((user) => {
      const item = element("li", "user", user.username);
      item.title = user.user_id;
      item.dataset.userId = user.user_id;
      return item;
    }));
  }

  leave() {
    clearTimeout(this.typingTimer);
    this.room.close();
    this.root.remove();
  }

  logFrame(direction, text) {
    const item = element("li", `frame frame-${direction}`);
    item.append(
      element("time", "time", clock(new Date())),
      element("span", "direction", `${ARROWS[direction] || ""} ${direction}`),
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
    const privacy = document.getElementById("new-room-private");
    try {
      // A private room's creator is its first member: the user of the "User id" field.
      const body = { name: input.value, private: privacy.checked };
      const room = await api("POST", "/rooms", body, userIdInput.value.trim());
      roomIdInput.value = room.id;
      input.value = "";
      const kind = room.private ? "private room" : "room";
      setupStatus(`Created ${kind} ${room.name} (${room.id})`);
      refreshLists();
    } catch (error) {
      setupStatus(`Could not create room: ${error.message}`);
    }
  });

  document.getElementById("add-member-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const memberInput = document.getElementById("member-id");
    const roomId = roomIdInput.value.trim();
    const memberId = memberInput.value.trim();
    const path = `/rooms/${encodeURIComponent(roomId)}/members/${encodeURIComponent(memberId)}`;
    try {
      await api("PUT", path, undefined, userIdInput.value.trim());
      memberInput.value = "";
      setupStatus(`Added ${memberId} to ${roomId}`);
    } catch (error) {
      setupStatus(`Could not add member: ${error.message}`);
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

// Module scripts run after the document is parsed.
bindSetup();
refreshLists();
