// Types of quartchat.js, the browser client of a quartchat server.

/** A stored chat message, the same on the socket and over REST. */
export interface Message {
  type: "message";
  id: string;
  user_id: string;
  username: string;
  content: string;
  /** ISO 8601 UTC with microseconds, e.g. "2025-10-21T12:00:00.123456Z". */
  timestamp: string;
  room_id: string;
  /** 1, 2, 3… per room, without gaps, in the order everyone sees. */
  seq: number;
}

/** A user with a socket open in the room. */
export interface PresentUser {
  user_id: string;
  username: string;
}

/** Who is typing (sent at most every 2 s per user). */
export interface TypingUser {
  user_id: string;
  username: string;
}

export type Status = "connecting" | "open" | "reconnecting" | "polling" | "closed";

/** The detail of an `error` event; `closeCode` when a socket close caused it. */
export interface RoomErrorDetail {
  code: string;
  detail: string;
  closeCode?: number;
}

/** What crossed the wire, for debugging tools such as the console's Frames log:
 * socket frames in and out as their raw text, a socket being opened (its URL) or
 * closed (code and reason), REST requests ("poll" for GET, "out" for POST) and
 * their answers ("in"), and notes ("error"). */
export interface FrameDetail {
  direction: "in" | "out" | "open" | "close" | "poll" | "error";
  text: string;
  code?: number;
  reason?: string;
}

export interface RoomOptions {
  /** The server's http(s) base URL; the socket URL is derived (ws/wss). */
  url: string;
  roomId: string;
  userId: string;
  /** A token (with AUTH_SECRET on the server), or an async function returning one,
   * asked again once after a 4401 close. */
  token?: string | (() => string | Promise<string>);
  /** Milliseconds between keep-alive pings (default 10000). */
  keepAlive?: number;
  /** Failed connection tries in a row before giving up (default 10). */
  maxRetries?: number;
  /** Milliseconds between polls while the socket cannot be opened (default 3000). */
  pollInterval?: number;
  /** How many of the latest messages `open()` loads (default 50, at most 500). */
  history?: number;
  /** After a 1012 (redeploy) or 4008 (too slow) close, the socket reconnects after a
   * random delay of up to this many milliseconds (default 5000), so that the clients
   * of one instance do not all reconnect at once; 4008s in a row back off (up to 60 s). */
  reconnectJitterMs?: number;
  /** How many messages `messages` keeps, the newest (default 5000): older ones are
   * dropped as new ones arrive, and `loadOlder()` reads them again. */
  maxMessages?: number;
}

export interface RoomEventMap {
  message: CustomEvent<Message>;
  presence: CustomEvent<PresentUser[]>;
  typing: CustomEvent<TypingUser>;
  status: CustomEvent<Status>;
  error: CustomEvent<RoomErrorDetail>;
  frame: CustomEvent<FrameDetail>;
}

/** An error that rejects `open()` or `send()`. */
export declare class QuartchatError extends Error {
  code: string;
  detail: string;
  closeCode?: number;
  /** The HTTP status, when a REST request failed. */
  status?: number;
}

/** What each close code means, for people. */
export declare const CLOSE_MEANINGS: Readonly<Record<number, string>>;

/** One user in one room: history, live messages, presence, typing and sending. */
export declare class Room extends EventTarget {
  constructor(options: RoomOptions);
  readonly url: string;
  readonly roomId: string;
  readonly userId: string;
  /** The newest messages known, at most `maxMessages` (plus what `loadOlder()`
   * prepended since the last new message), oldest first, in seq order, without gaps. */
  readonly messages: Message[];
  /** Users with a socket open in the room. */
  readonly presence: PresentUser[];
  /** "closed" before `open()`, after `close()` and after a fatal error. */
  readonly status: Status;
  /** Milliseconds of the last ping's round trip, or null before the first pong. */
  readonly rtt: number | null;

  /** Resolves once the latest `history` messages are loaded and the socket is open or
   * polling has begun; rejects on 4404, on 4403 (a private room the user is not a member
   * of: error code NOT_A_MEMBER, never retried), or on 4401 when no fresh token can be had. */
  open(): Promise<void>;
  /** Resolves with the stored message, exactly once, even across reconnects,
   * restarts and offline periods; rejects only when the server refuses it or the room
   * is closed. */
  send(content: string): Promise<Message>;
  /** Sends a typing frame, at most one per 2 s; false when nothing was sent. */
  typing(): boolean;
  /** Sends a ping now; its pong sets `rtt`. */
  ping(): boolean;
  /** The `n` messages before the oldest known one, oldest first (also prepended to
   * `messages`); `[]` once the first message is known. */
  loadOlder(n?: number): Promise<Message[]>;
  /** true: drop the socket and only poll; false: back to the socket. */
  setPolling(enabled: boolean): void;
  /** Status "closed"; no further network activity; unsent messages reject. */
  close(): void;

  addEventListener<K extends keyof RoomEventMap>(
    type: K,
    listener: (this: Room, event: RoomEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof RoomEventMap>(
    type: K,
    listener: (this: Room, event: RoomEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}
