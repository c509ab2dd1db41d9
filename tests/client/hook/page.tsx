// Renders docs/client.md's app/room/[id]/page.tsx (copied next to this file by
// tests/client/test_hook.py) the way Next.js would: params and searchParams as
// promises, inside <Suspense> (docs/client.md's loading.tsx), in strict mode.
import { StrictMode, Suspense } from "react";
import { createRoot } from "react-dom/client";
import RoomPage from "./app/room/[id]/page";

const query = new URLSearchParams(location.search);
const params = Promise.resolve({ id: query.get("room") ?? "" });
const searchParams = Promise.resolve({ user: query.get("user") ?? undefined });
createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <Suspense fallback={<p>connecting…</p>}>
      <RoomPage params={params} searchParams={searchParams} />
    </Suspense>
  </StrictMode>,
);
