"""The database: models, connections and migrations, the message store and its commits.

`store.MessageStore` is the only writer of messages (group commit, idempotent ids,
history reads); `commit` is its transaction; `search` reads rooms and users by name;
`faults` tells a database outage from a refused row. It knows nothing of HTTP: what it
refuses is a `wire.errors.ChatError`, and the API layer picks the status.

May import: wire, config, internals.
"""
