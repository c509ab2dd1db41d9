"""Rooms in one process: who is where, and getting each message to every socket in order.

`hub` tracks this process's sockets per room and fans frames out; `relay` delivers each
room's stored messages in `seq` order without gaps (from the store and the broker);
`outbox` is what one socket sends; `directory` caches usernames and rooms; `auth` says
who a token names and `limits` how much each user and address may do; `chat.Chat` is
the service that holds them all, shared by the API; `metrics` counts it.

May import: wire, config, internals, storage, broker.
"""
