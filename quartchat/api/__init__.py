"""The HTTP and WebSocket API: one blueprint per resource, and how failures render.

`blueprints/` holds the routes (REST, the chat socket, pages, health, metrics);
`errors` maps every `ChatError` code to its HTTP status in one table and renders every
failure as `{"code", "detail"}`; `access` decides who may see a room; `lookups`,
`listing`, `replay` and `schemas` are the request-level helpers the routes share.

May import: wire, config, internals, storage, broker, rooms.
"""
