"""Every refusal code the package raises has its one HTTP status (api/errors.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from quartchat.api.errors import HTTP_STATUS, status_of
from quartchat.wire.errors import ChatError
from quartchat.wire.frames import ERROR_CODES

PACKAGE = Path(__file__).resolve().parents[2] / "quartchat"
# Calls whose first argument is a refusal code (the helpers build a ChatError from it).
# (`__init__`: a ChatError subclass naming its code, e.g. the store's DraftRejectedError.)
RAISERS = {"ChatError", "not_found", "create_or_409", "_row_or_404", "__init__"}
CODE = re.compile(r"^[A-Z][A-Z_]+[A-Z]$")


def raised_codes() -> set[str]:
    """Every code literal handed to a ChatError, directly or through a helper."""
    codes: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name not in RAISERS:
                continue
            for argument in node.args:
                value = argument.value if isinstance(argument, ast.Constant) else None
                if isinstance(value, str) and CODE.match(value):
                    codes.add(value)
    return codes


def test_every_raised_code_has_a_status() -> None:
    codes = raised_codes()
    # replay.seq_of builds INVALID_AFTER / INVALID_BEFORE from its parameter's name.
    codes |= {"INVALID_AFTER", "INVALID_BEFORE"}
    assert {"ROOM_NOT_FOUND", "USER_EXISTS", "RATE_LIMITED", "MESSAGE_REJECTED"} <= codes
    assert sorted(codes - set(HTTP_STATUS)) == []


def test_every_socket_error_code_has_a_status() -> None:
    assert sorted(set(ERROR_CODES) - set(HTTP_STATUS)) == []


def test_statuses_are_client_errors_or_unavailable() -> None:
    assert all(400 <= status < 500 or status == 503 for status in HTTP_STATUS.values())
    assert status_of(ChatError("ROOM_NOT_FOUND", "no room")) == 404
