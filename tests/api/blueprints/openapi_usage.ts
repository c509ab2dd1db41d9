// A frontend's typed use of the types openapi-typescript makes from /openapi.json (in
// api.d.ts beside this file); checked by `tsc --noEmit --strict` in test_api_documents.py.
import type { components, operations, paths } from "./api";

type Json<Response> = Response extends { content: { "application/json": infer Body } } ? Body : never;

type RoomPage = Json<operations["listRooms"]["responses"][200]>;
type NextPage = operations["listRooms"]["responses"][200]["headers"]["Link"];
type UserPage = Json<paths["/users"]["get"]["responses"][200]>;
type Created = Json<operations["createMessage"]["responses"][201]>;
type Problem = Json<operations["createMessage"]["responses"][429]>;
type NewRoom = operations["createRoom"]["requestBody"];

export function roomNames(page: RoomPage): string[] {
  return page.map((room) => `${room.id}: ${room.name} (${room.created_at})`);
}

export function nextUrl(link: NextPage): string | null {
  return link === undefined ? null : (/<([^>]*)>/.exec(link)?.[1] ?? null);
}

export function usernames(page: UserPage): string[] {
  return page.map((user) => user.username);
}

export function seqOf(message: Created): number {
  return message.seq;
}

export function explain(problem: Problem): string {
  return `${problem.code}: ${problem.detail}`;
}

export const newRoom: NonNullable<NewRoom>["content"]["application/json"] = { name: "Lobby" };
export const stored: components["schemas"]["MessageOut"]["content"] = "hello";
