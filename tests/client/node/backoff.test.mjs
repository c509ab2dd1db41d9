// quartchat.js's reconnect policy after 1012 and 4008, in Node with a scripted socket in
// place of the global WebSocket (no server closes a socket with 4008 on demand), and
// REST from the real server (QUARTCHAT_URL). Each socket answers the first ping, which
// opens it, then is closed by "the server" with the code under test.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Room } from "../../../static/quartchat.js";
import { createRoom, createUser, eventually } from "./server.mjs";

const url = process.env.QUARTCHAT_URL;

class ScriptedSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static closeWith = 1012;
  static log = []; // {createdAt, closedAt}

  constructor() {
    this.readyState = ScriptedSocket.CONNECTING;
    this.entry = { createdAt: performance.now(), closedAt: null };
    ScriptedSocket.log.push(this.entry);
    setTimeout(() => {
      this.readyState = ScriptedSocket.OPEN;
      this.onopen?.();
    }, 1);
  }

  send(text) {
    if (JSON.parse(text).type !== "ping") return;
    setTimeout(() => {
      this.onmessage?.({ data: JSON.stringify({ type: "pong" }) });
      setTimeout(() => this._serverClose(ScriptedSocket.closeWith), 1);
    }, 1);
  }

  close(code = 1000, reason = "") {
    this._serverClose(code, reason);
  }

  _serverClose(code, reason = "") {
    if (this.readyState === ScriptedSocket.CLOSED) return;
    this.readyState = ScriptedSocket.CLOSED;
    this.entry.closedAt = performance.now();
    this.onclose?.({ code, reason });
  }
}

/** Milliseconds from each scripted close to the next socket, for `closes` closes. */
async function delaysAfter(code, closes, jitter) {
  ScriptedSocket.closeWith = code;
  ScriptedSocket.log = [];
  const roomId = (await createRoom(url)).id;
  const user = await createUser(url, "Scripted");
  const room = new Room({ url, roomId, userId: user.id, reconnectJitterMs: jitter });
  const statuses = [];
  room.addEventListener("status", (e) => statuses.push(e.detail));
  const errors = [];
  room.addEventListener("error", (e) => errors.push(e.detail));
  try {
    await room.open();
    await eventually(() => ScriptedSocket.log.length > closes, 60000);
  } finally {
    room.close();
  }
  assert.deepEqual(errors, [], "1012 and 4008 are not errors");
  assert.deepEqual(statuses.slice(0, 4), ["connecting", "open", "reconnecting", "open"]);
  const log = ScriptedSocket.log;
  return log.slice(1, closes + 1).map((entry, i) => entry.createdAt - log[i].closedAt);
}

globalThis.WebSocket = ScriptedSocket;

test("every 1012 waits a random delay of up to reconnectJitterMs, never more each time", async () => {
  const delays = await delaysAfter(1012, 4, 400);
  // Timers may fire late on a loaded machine, never early.
  for (const delay of delays) assert.ok(delay >= 0 && delay < 400 + 1500, `${delays}`);
});

test("4008s in a row back off: twice as long each time, from max(reconnectJitterMs, 500 ms)", async () => {
  const delays = await delaysAfter(4008, 4, 100);
  // 1st: [0, 100) ms; then [500, 1000), [1000, 2000), [2000, 4000) ms.
  assert.ok(delays[0] < 100 + 1500, `${delays}`);
  assert.ok(delays[1] >= 500, `${delays}`);
  assert.ok(delays[2] >= 1000, `${delays}`);
  assert.ok(delays[3] >= 2000, `${delays}`);
  assert.ok(delays[3] > delays[1], `${delays}`);
});
