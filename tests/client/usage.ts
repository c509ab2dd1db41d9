// A typed use of quartchat.js, the way a Next.js page would write it; checked by
// `tsc --noEmit --strict` in tests/client/test_types.py.
import { CLOSE_MEANINGS, type Message, type PresentUser, QuartchatError, Room, type Status } from "../../static/quartchat.js";

async function main(): Promise<void> {
  const room = new Room({
    url: "https://chat.example.com",
    roomId: "test-room",
    userId: "test-user",
    token: async () => "a-token",
    keepAlive: 10000,
    maxRetries: 10,
    pollInterval: 3000,
    history: 50,
    reconnectJitterMs: 5000,
    maxMessages: 5000,
  });
  const shown: Message[] = [];
  room.addEventListener("message", (event) => {
    const message: Message = event.detail;
    shown.push(message);
    const seq: number = message.seq;
    void seq;
  });
  room.addEventListener("presence", (event) => {
    const users: PresentUser[] = event.detail;
    void users.map((user) => user.username.toUpperCase());
  });
  room.addEventListener("typing", (event) => void event.detail.username);
  room.addEventListener("status", (event) => {
    const status: Status = event.detail;
    if (status === "polling") console.log("polling");
  });
  room.addEventListener("error", (event) => {
    const closeCode: number | undefined = event.detail.closeCode;
    console.log(event.detail.code, event.detail.detail, closeCode && CLOSE_MEANINGS[closeCode]);
  });
  room.addEventListener("frame", (event) => console.log(event.detail.direction, event.detail.text));
  try {
    await room.open();
  } catch (error) {
    if (error instanceof QuartchatError) console.log(error.code, error.closeCode);
  }
  const stored: Message = await room.send("Hello!");
  const typed: boolean = room.typing();
  const older: Message[] = await room.loadOlder(50);
  const everything: Message[] = room.messages;
  const rtt: number | null = room.rtt;
  const status: Status = room.status;
  room.setPolling(false);
  room.close();
  void [stored, typed, older, everything, rtt, status];
  new Room({ url: "http://localhost:8000", roomId: "r", userId: "u", token: "plain" });
}

void main();
