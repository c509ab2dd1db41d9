"""The process: the app factory, the command line, startup order, serving under Hypercorn.

`app.create_app` only wires; `lifecycle` orders startup and shutdown; `startup` waits
for a database that is not ready; `probe` proves the fast paths before listening;
`server` runs Hypercorn; `cli` is the `quartchat` command.

May import: every other layer.
"""
