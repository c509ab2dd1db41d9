// quartchat.js imported in Node against a real quartchat server (QUARTCHAT_URL): Node
// 20 has no global WebSocket, so the Room polls over REST; with one (Node 22, or Node 20
// with --experimental-websocket) it opens the socket. EXPECT_STATUS says which.
// Run by tests/client/test_node.py with Node's own test runner (`node --test`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { QuartchatError, Room } from "../../../static/quartchat.js";
import { createRoom, createUser, eventually, postMessage } from "./server.mjs";

const url = process.env.QUARTCHAT_URL;
const expected = process.env.EXPECT_STATUS;

test(`open() ${expected === "polling" ? "polls without" : "opens a socket with"} a global WebSocket`, async () => {
  assert.equal(typeof globalThis.WebSocket === "function", expected === "open");
  const roomId = (await createRoom(url)).id;
  const [me, other] = [await createUser(url, "Node"), await createUser(url, "Other")];
  await postMessage(url, roomId, other.id, "before");
  const room = new Room({ url, roomId, userId: me.id, pollInterval: 200 });
  const seen = [];
  room.addEventListener("message", (e) => seen.push(e.detail.content));
  try {
    await room.open();
    assert.equal(room.status, expected);
    assert.deepEqual(seen, ["before"]);
    const stored = await room.send("from node");
    assert.equal(stored.content, "from node");
    await postMessage(url, roomId, other.id, "after");
    await eventually(() => seen.length === 3);
    assert.deepEqual(seen, ["before", "from node", "after"]);
    assert.deepEqual(room.messages.map((m) => m.seq), [1, 2, 3]);
  } finally {
    room.close();
  }
  assert.equal(room.status, "closed");
});

test("an unknown room rejects open() with a QuartchatError, whatever the transport", async () => {
  const user = await createUser(url, "Lost");
  const room = new Room({ url, roomId: "no-such-room", userId: user.id, pollInterval: 200 });
  const errors = [];
  room.addEventListener("error", (e) => errors.push(e.detail.code));
  try {
    const failed = await room.open().then(() => null, (error) => error);
    assert.ok(failed instanceof QuartchatError, String(failed));
    assert.equal(failed.code, "NOT_FOUND");
    assert.equal(room.status, "closed");
    assert.deepEqual(errors, ["NOT_FOUND"]);
  } finally {
    room.close();
  }
});
