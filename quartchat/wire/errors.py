"""The one error type below the HTTP layer: a refusal the client can act on."""

from __future__ import annotations


class ChatError(Exception):
    """A refusal with a stable `code` (e.g. `ROOM_NOT_FOUND`), a human `detail`, and
    for some codes the seconds to wait before retrying.

    A socket client receives it as an `{"type": "error"}` frame; a REST client as
    `{"code", "detail"}` JSON with the HTTP status that `quartchat.api.errors` gives
    the code (the one place codes meet statuses).
    """

    def __init__(self, code: str, detail: str, retry_after: float = 0.0) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.retry_after = retry_after
