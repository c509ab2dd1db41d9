"use client";
// quartchat/react: `useRoom`, one quartchat Room kept in React state. Types: react.d.ts.
// The Room lives in an effect (never on the server), is closed on unmount, and is made
// again only when a value that names it changes: the token function is read through a
// ref, so an inline `async () => token` does not reopen the socket on every render.
import { useCallback, useEffect, useRef, useState } from "react";
import { QuartchatError, Room } from "./quartchat.js";

const TYPING_SHOWN_MS = 3000;

/** One user in one room, as React state: messages, presence, who is typing, status and
 * the last error, with `send`, `typing` and `loadOlder` that never throw. */
export function useRoom({ url, roomId, userId, token, keepAlive, maxRetries, pollInterval, history,
  reconnectJitterMs, maxMessages }) {
  const roomRef = useRef(null);
  const tokenRef = useRef(token);
  tokenRef.current = token;
  const [messages, setMessages] = useState([]);
  const [presence, setPresence] = useState([]);
  const [typingUser, setTypingUser] = useState(null);
  const [status, setStatus] = useState("connecting");
  const [error, setError] = useState(null);
  const hasToken = token !== undefined;

  useEffect(() => {
    const options = { url, roomId, userId, keepAlive, maxRetries, pollInterval, history, reconnectJitterMs,
      maxMessages };
    for (const key of Object.keys(options)) if (options[key] === undefined) delete options[key];
    if (hasToken) {
      // Whatever the latest render passed, a string or a function.
      options.token = async () => {
        const current = tokenRef.current;
        return typeof current === "function" ? current() : current;
      };
    }
    const room = new Room(options);
    roomRef.current = room;
    setMessages([]);
    setPresence([]);
    setTypingUser(null);
    setStatus("connecting");
    setError(null);
    let typingTimer;
    room.addEventListener("message", () => setMessages(room.messages.slice()));
    room.addEventListener("presence", (e) => setPresence(e.detail));
    room.addEventListener("status", (e) => {
      setStatus(e.detail);
      // Back on a transport: what went wrong before is over (a fatal error is "closed").
      if (e.detail === "open" || e.detail === "polling") setError(null);
    });
    room.addEventListener("error", (e) => setError(e.detail));
    room.addEventListener("typing", (e) => {
      setTypingUser(e.detail.username);
      clearTimeout(typingTimer);
      typingTimer = setTimeout(() => setTypingUser(null), TYPING_SHOWN_MS);
    });
    // A failure is also an `error` event (and status "closed"), which sets `error`.
    room.open().then(() => setMessages(room.messages.slice()), () => {});
    return () => {
      clearTimeout(typingTimer);
      room.close(); // strict mode runs effects twice: each run has a Room of its own
      if (roomRef.current === room) roomRef.current = null;
    };
  }, [url, roomId, userId, hasToken, keepAlive, maxRetries, pollInterval, history, reconnectJitterMs,
    maxMessages]);

  const send = useCallback(async (content) => {
    const room = roomRef.current;
    if (!room) return { ok: false, error: new QuartchatError("CLOSED", "the room is not open") };
    try {
      return { ok: true, message: await room.send(content) };
    } catch (error) {
      return { ok: false, error };
    }
  }, []);

  const typing = useCallback(() => roomRef.current?.typing() ?? false, []);

  const loadOlder = useCallback(async (n) => {
    const room = roomRef.current;
    if (!room) return 0;
    try {
      const older = await room.loadOlder(n);
      if (roomRef.current === room) setMessages(room.messages.slice());
      return older.length;
    } catch (error) {
      if (roomRef.current === room) setError({ code: error.code || "LOAD_FAILED", detail: error.detail || String(error) });
      return 0;
    }
  }, []);

  return { messages, presence, typingUser, status, error, send, typing, loadOlder };
}
