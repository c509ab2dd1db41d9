// Types of quartchat/react (react.js): the useRoom hook.
import type { Message, PresentUser, QuartchatError, RoomErrorDetail, RoomOptions, Status } from "./quartchat.js";

/** What `send` resolves with: it never rejects. */
export type SendResult = { ok: true; message: Message } | { ok: false; error: QuartchatError };

export interface UseRoom {
  /** `room.messages`: the newest (at most `maxMessages`), oldest first, each once. */
  messages: Message[];
  /** Users with a socket open in the room. */
  presence: PresentUser[];
  /** The username of whoever typed in the last 3 s, or null. */
  typingUser: string | null;
  /** "connecting" until the Room says otherwise. */
  status: Status;
  /** The last `error` event (a 4404 is `{code: "NOT_FOUND", closeCode: 4404, …}`, with
   * status "closed"), or a `loadOlder` failure; null again once the Room is back on a
   * socket or polling. */
  error: RoomErrorDetail | null;
  /** Sends one message; resolves with it as stored, or with why it was refused. */
  send(content: string): Promise<SendResult>;
  /** A typing frame, at most one per 2 s; false when nothing was sent. */
  typing(): boolean;
  /** Reads up to `n` older messages into `messages` (default `history`); resolves with
   * how many came (0 at the first message or on failure, which sets `error`). */
  loadOlder(n?: number): Promise<number>;
}

/** One Room for as long as the component is mounted and `url`, `roomId`, `userId` and
 * the numeric options stay the same; `token` may change on every render (an inline
 * `async () => token` is fine): the latest is asked when a token is needed. */
export declare function useRoom(options: RoomOptions): UseRoom;
