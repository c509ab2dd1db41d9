"""One log line for every socket close the server decides, with its code, reason, room
and user (`close_code`, `close_reason`, `room_id`, `user_id` in JSON).

The level says whose move it is: a client's mistake or a refusal it can fix (4404,
4401, 4429, 1009, 1007, 1002) is INFO, a client held back for its behaviour (4008
too slow, 1008 flooding) WARNING, the server's own failure (1011) ERROR. Restarts
(1012) are counted in the one shutdown line (`closing N sockets with 1012`), and each
only at DEBUG: a redeploy closes every socket at once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from quartchat.config.logs import SCOPE_KEY
from quartchat.wire.frames import CloseCode

log = logging.getLogger("quartchat.closes")

LEVELS: dict[int, int] = {
    CloseCode.TOO_SLOW: logging.WARNING,
    CloseCode.POLICY_VIOLATION: logging.WARNING,
    CloseCode.INTERNAL_ERROR: logging.ERROR,
    CloseCode.SERVICE_RESTART: logging.DEBUG,
}
_SOCKET_PATH = re.compile(r"^/ws/([^/]+)/([^/]+)$")


def socket_closed(
    code: int, reason: str, room_id: str, user_id: str, request_id: str | None = None
) -> None:
    """Log that the server closes (or refuses) a socket with `code`."""
    fields: dict[str, Any] = {
        "close_code": code,
        "close_reason": reason,
        "room_id": room_id,
        "user_id": user_id,
    }
    if request_id is not None:
        fields["request_id"] = request_id
    log.log(
        LEVELS.get(code, logging.INFO),
        "socket closed with %d (%s): room %s, user %s",
        code,
        reason or "no reason",
        room_id,
        user_id,
        extra=fields,
    )


def socket_closed_in(scope: Mapping[str, Any], code: int, reason: str) -> None:
    """`socket_closed` for a close decided below the app (frame guard), from its scope."""
    found = _SOCKET_PATH.match(str(scope.get("path", "")))
    room_id, user_id = found.groups() if found else ("-", "-")
    socket_closed(code, reason, room_id, user_id, str(scope.get(SCOPE_KEY, "-")))
