"""The wire format: what travels between clients and the server, and nothing else.

Frames of the chat socket and their codes (`frames`), server frames encoded once as
bytes (`framing`), the JSON shapes of messages (`payloads`), what clients may send
(`protocol`, `text`), the socket's frame budget (`budget`), the refusals a client can
act on (`errors.ChatError`: a stable code, never an HTTP status) and the AsyncAPI
document generated from all of it. Pure data and rules: no I/O, no database, no server.

May import: nothing of quartchat.
"""
