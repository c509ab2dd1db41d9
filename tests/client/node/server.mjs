// REST helpers for the Node tests: what a test needs from the real server it is given.
import assert from "node:assert/strict";

async function post(url, path, body) {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 201, await response.clone().text());
  return response.json();
}

export const createRoom = (url) => post(url, "/rooms", { name: "node" });
export const createUser = (url, username) => post(url, "/users", { username });
export const postMessage = (url, roomId, userId, content) =>
  post(url, `/rooms/${roomId}/messages`, { user_id: userId, content });

/** Resolves once `condition()` holds, checking every 20 ms; fails after `ms`. */
export async function eventually(condition, ms = 30000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`still false after ${ms} ms: ${condition}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
