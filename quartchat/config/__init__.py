"""What an operator configures: settings from the environment, trusted proxies, logs.

`settings.Settings` is every environment variable the server reads (the configuration
reference, docs/configuration.md, is tested against it); `proxies` which client
addresses to trust behind a reverse proxy; `logs`, `logbudget` and `closelog` how the
process writes its lines.

May import: wire.
"""
