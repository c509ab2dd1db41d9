// useRoom in a component that renders every 20 ms with a new inline token function
// each time: the hook must keep one Room (one socket) through all of it.
import { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { useRoom } from "quartchat/react";

const query = new URLSearchParams(location.search);
const token = query.get("token") ?? "";
declare global {
  interface Window { renders: number; tokenCalls: number; chat: ReturnType<typeof useRoom> }
}
window.renders = 0;
window.tokenCalls = 0;

function Ticking() {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setTick((n) => n + 1), 20);
    return () => clearInterval(timer);
  }, []);
  const chat = useRoom({
    url: process.env.NEXT_PUBLIC_CHAT_URL!,
    roomId: query.get("room") ?? "",
    userId: query.get("user") ?? "",
    token: async () => {
      window.tokenCalls += 1;
      return token;
    },
  });
  window.renders += 1;
  window.chat = chat;
  return <p>{chat.status} {tick}</p>;
}

createRoot(document.getElementById("root")!).render(<Ticking />);
