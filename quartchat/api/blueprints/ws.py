"""The chat socket, `/ws/{room_id}/{user_id}`.

The handler task reads frames; the socket's `Outbox` sends (first the replay asked for
with `?since=`/`?after=`, then live frames, skipping any message the replay already
sent). Anything that must close the socket (a full queue, a server restart) cancels
the handler, which then sends the close frame.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any
from uuid import uuid4

from quart import Blueprint, websocket
from quart_cors import cors_exempt

from quartchat.api.access import is_member
from quartchat.api.lookups import username_of
from quartchat.api.replay import Replay, read_replay
from quartchat.config.closelog import socket_closed
from quartchat.internals.transport import SocketWriter, refuse_compression
from quartchat.rooms.auth import Identity
from quartchat.rooms.chat import Chat, current_chat
from quartchat.rooms.directory import PRIVATE
from quartchat.rooms.hub import Subscriber
from quartchat.rooms.limits import address_key, current_limits
from quartchat.rooms.outbox import Outbox
from quartchat.rooms.relay import REMOVED
from quartchat.storage.faults import describe
from quartchat.storage.store import Draft, Outcome, Stored
from quartchat.wire.budget import FrameBudget
from quartchat.wire.errors import ChatError
from quartchat.wire.frames import CloseCode
from quartchat.wire.framing import Frame
from quartchat.wire.payloads import (
    error_frame,
    event_frame,
    format_timestamp,
    message_frame,
    utc_now,
)
from quartchat.wire.protocol import parse_client_frame, refused_message_id
from quartchat.wire.text import is_resource_id

log = logging.getLogger(__name__)
blueprint = Blueprint("ws", __name__)

SUBPROTOCOL = "quartchat"
TOKEN_PREFIX = "token."
REPLAY_PAGE = 100
# Messages of one socket that may wait for their commit at once; past it the socket
# simply stops being read, which pushes back on a flooding client.
MAX_IN_FLIGHT = 256


@blueprint.websocket("/ws/<room_id>/<user_id>")
@cors_exempt  # quart-cors would reject handshakes without Origin; origins are checked below
async def ws_room(room_id: str, user_id: str) -> None:
    """Join a room as a user; see docs/protocol.md for the frames in both directions."""
    chat = current_chat()
    if not chat.accepting_sockets:
        # Before the accept, so the client learns at once and reconnects elsewhere.
        raise ChatError("UNAVAILABLE", "the server is restarting; connect again", 1.0)
    origin = websocket.headers.get("Origin")
    if origin is not None and not chat.settings.origin_allowed(origin):
        raise ChatError("ORIGIN_NOT_ALLOWED", f"origin {origin!r} may not open sockets")
    limits = current_limits()
    address = address_key(websocket.remote_addr or "")  # an IPv6 client: its /64
    # Charged before anything else costs: every handshake is work, whatever its outcome.
    subprotocol, offered_token = _subprotocol_and_token(websocket.requested_subprotocols)
    refuse = partial(_refuse, chat, subprotocol)
    refusal = limits.address_open_refusal(address)
    if refusal:
        return await refuse(CloseCode.TOO_MANY_SOCKETS, refusal)
    token = offered_token or websocket.args.get("token")
    caller, refusal = await _authenticate(chat, user_id, token)
    if refusal:
        return await refuse(CloseCode.UNAUTHORIZED, refusal)
    invalid = _invalid_id(room_id, user_id)
    if invalid:
        return await refuse(CloseCode.NOT_FOUND, invalid)
    # After the token: with AUTH_SECRET, nobody else can spend a user's budget.
    refusal = limits.user_open_refusal(user_id)
    if refusal:
        return await refuse(CloseCode.TOO_MANY_SOCKETS, refusal)
    privacy = await chat.directory.room_privacy(room_id)
    room_exists = privacy is not None
    try:
        username: str | None = await username_of(chat.directory, user_id, caller)
    except ChatError:
        username = None
    if not room_exists or username is None:
        missing = f"room {room_id!r}" if not room_exists else f"user {user_id!r}"
        return await refuse(CloseCode.NOT_FOUND, _close_reason(f"{missing} not found"))
    if privacy == PRIVATE and not await is_member(room_id, caller):
        return await refuse(CloseCode.NOT_A_MEMBER, "not a member; ask to be added")

    owner = asyncio.current_task()
    assert owner is not None
    subscriber = Subscriber(
        room_id, user_id, username, chat.settings.send_queue_size, owner, address
    )
    replay = await _replay_or_report(chat, subscriber, websocket.args)
    refusal = _socket_limit_reached(chat, user_id, address)
    if refusal:
        return await refuse(CloseCode.TOO_MANY_SOCKETS, refusal)
    if not chat.settings.ws_compression:
        refuse_compression()
    outbox: Outbox | None = None
    writer: SocketWriter | None = None
    try:
        # Joined before the handshake completes: whatever the room says after the
        # client sees its 101 reaches it.
        await chat.join(subscriber)
        if privacy == PRIVATE and not await is_member(room_id, caller):
            # Removed between the check above and the join: the eviction missed it.
            subscriber.request_close(*REMOVED)
        await websocket.accept(subprotocol=subprotocol)
        writer = SocketWriter()
        outbox = Outbox(subscriber, writer, chat.metrics)
        outbox.open(partial(_send_replay, chat, subscriber, replay) if replay else None)
        await _receive_frames(chat, subscriber)
    except asyncio.CancelledError:
        if subscriber.close_code is None:
            raise  # the server is stopping
        owner.uncancel()
        if outbox is not None:
            outbox.close()
        if subscriber.close_code == CloseCode.TOO_SLOW:
            chat.metrics.slow_closes.inc()
        socket_closed(subscriber.close_code, subscriber.close_reason, room_id, user_id)
        # Out of the room (presence, metrics, broadcasts) as soon as it is being closed:
        # the close frame may wait behind a backlog for as long as `close_timeout`.
        chat.leave(subscriber)
        await _close(chat, subscriber, writer)
    finally:
        if outbox is not None:
            outbox.close()
        chat.leave(subscriber)


async def _refuse(chat: Chat, subprotocol: str | None, code: int, reason: str) -> None:
    """Accept, then close with `code` (browsers never see a handshake's HTTP status, only
    a close code), reading and dropping what the client sent until its close reply.

    Returning at once would close the connection with the client's first frames unread
    (quartchat.js pings the moment a socket opens), which makes the kernel reset it; a
    browser that had not yet read the close frame then loses it, reports 1006 and
    retries. A client that does not answer within `close_timeout` is reset.

    Never with compression, whatever WS_COMPRESSION says: the server would inflate
    whatever the client streams until its close reply, and a refused client (no token,
    no such room) may not cost more than reading its bytes."""
    route = websocket.view_args or {}
    socket_closed(code, reason, route.get("room_id", "-"), route.get("user_id", "-"))
    refuse_compression()
    await websocket.accept(subprotocol=subprotocol)
    await websocket.close(code, reason)
    try:
        async with asyncio.timeout(chat.settings.close_timeout):
            while True:
                await websocket.receive()  # ends with the client's reply (ClientDisconnected)
    except TimeoutError:
        SocketWriter().abort()


def _invalid_id(room_id: str, user_id: str) -> str:
    """Why no room or user can have the URL's id (checked before any lookup), or ""."""
    for noun, value in (("room", room_id), ("user", user_id)):
        if not is_resource_id(value):
            return f"{noun} not found: ids are 1-64 characters of A-Z a-z 0-9 _ -"
    return ""


def _subprotocol_and_token(offered: list[str]) -> tuple[str | None, str | None]:
    """The subprotocol to answer with (`quartchat`, if offered) and the token offered as
    a `token.<TOKEN>` subprotocol, if any.

    A browser may set no header on a socket but `Sec-WebSocket-Protocol`, which, unlike
    the URL, edge proxies do not log. It fails the handshake unless the server answers
    with one of the protocols it offered, hence `quartchat` beside the token."""
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered else None
    tokens = [
        entry.removeprefix(TOKEN_PREFIX) for entry in offered if entry.startswith(TOKEN_PREFIX)
    ]
    return subprotocol, tokens[0] if tokens else None


async def _authenticate(chat: Chat, user_id: str, token: str | None) -> tuple[Identity | None, str]:
    """Who the socket's token speaks for, and why it may not act as `user_id` ("" if it
    may); (None, "") while authentication is off."""
    if not chat.tokens.enabled:
        return None, ""
    if not token:
        return None, (
            "authentication required: offer subprotocols quartchat, token.<TOKEN> (or add ?token=)"
        )
    try:
        caller = await chat.tokens.identify(token)
    except ChatError as error:
        return None, error.detail
    if not caller.may_act_as(user_id):
        return None, "the token belongs to another user"
    return caller, ""


def _socket_limit_reached(chat: Chat, user_id: str, address: str) -> str:
    """Why one more socket is refused (MAX_SOCKETS_PER_USER/_PER_IP), or "" if it is not.

    Checked just before the join, with no await in between, so it cannot be raced."""
    settings = chat.settings
    per_user, per_ip = settings.max_sockets_per_user, settings.max_sockets_per_ip
    if per_user and chat.hub.sockets_of_user(user_id) >= per_user:
        return f"too many sockets for this user (limit {per_user})"
    if per_ip and chat.hub.sockets_from(address) >= per_ip:
        return f"too many sockets from this address (limit {per_ip})"
    return ""


def _send_error(chat: Chat, subscriber: Subscriber, code: str, detail: str, **extra: Any) -> None:
    """An `error` frame to this socket only (counted by code in the metrics)."""
    chat.metrics.errors.labels(code).inc()
    subscriber.deliver(Frame(0, error_frame(code, detail, **extra)))


async def _replay_or_report(
    chat: Chat, subscriber: Subscriber, args: Mapping[str, str]
) -> Replay | None:
    """Read `?since=`/`?after=`; a bad value is reported in an error frame, not fatal."""
    try:
        return await read_replay(
            chat.store, subscriber.room_id, args.get("since"), args.get("after")
        )
    except ChatError as error:
        _send_error(chat, subscriber, error.code, error.detail)
    return None


async def _send_replay(
    chat: Chat, subscriber: Subscriber, replay: Replay, writer: SocketWriter
) -> int:
    """Send every stored message after the replay point, in order; return the last seq.

    Pages draw the messages they read from the client address's replay budget
    (REPLAY_MESSAGES_PER_SECOND, REPLAY_BURST) and wait for it once it is spent."""
    since, last_seq = replay.since, replay.after_seq
    replays = current_limits().replays
    history = chat.store.history
    while True:
        read = partial(
            history, subscriber.room_id, since=since, after_seq=last_seq, limit=REPLAY_PAGE
        )
        page = await replays.read(subscriber.address, REPLAY_PAGE, read)
        await writer.send_frames([Frame(m.seq, message_frame(m)) for m in page])
        if page:
            last_seq = page[-1].seq
        if len(page) < REPLAY_PAGE:
            return last_seq
        since = None  # later pages continue from the last seq sent


async def _receive_frames(chat: Chat, subscriber: Subscriber) -> None:
    settings = chat.settings
    max_chars = settings.max_message_chars
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
    loop = asyncio.get_running_loop()
    limits = current_limits()
    budget = FrameBudget(
        settings.rate_limit_per_second,
        settings.rate_limit_burst,
        settings.rate_limit_strikes,
        loop.time(),
    )
    while True:
        raw = await websocket.receive()
        wait = budget.take(loop.time())
        if wait:
            if budget.exhausted:
                subscriber.request_close(CloseCode.POLICY_VIOLATION, "rate limit exceeded")
                continue
            detail = f"over {settings.rate_limit_per_second:g} frames per second; not handled"
            _send_error(
                chat, subscriber, "RATE_LIMITED", detail, retry_after=round(wait, 3), **_named(raw)
            )
            continue
        try:
            frame = parse_client_frame(raw, max_chars)
        except ChatError as error:
            # Naming the message lets a client with several in flight tell which one.
            _send_error(chat, subscriber, error.code, error.detail, **_named(raw))
            continue
        if frame.type == "ping":
            subscriber.deliver(Frame(0, event_frame("pong", timestamp=format_timestamp(utc_now()))))
        elif frame.type == "typing":
            if not limits.typing_allowed(subscriber.user_id, subscriber.room_id):
                # Dropped without an error frame: the room already heard this user is
                # typing, and an error per keystroke would only be more traffic.
                continue
            typing = event_frame(
                "typing",
                user_id=subscriber.user_id,
                username=subscriber.username,
                room_id=subscriber.room_id,
            )
            chat.relay.publish_event(subscriber.room_id, typing, exclude=subscriber)
        else:
            wait, detail = limits.message_refusal(subscriber.user_id)
            if wait:
                if limits.message_flooding(subscriber.user_id):
                    subscriber.request_close(CloseCode.POLICY_VIOLATION, "rate limit exceeded")
                    continue
                extra = {"id": str(frame.message_id)} if frame.message_id else {}
                _send_error(
                    chat, subscriber, "RATE_LIMITED", detail, retry_after=round(wait, 3), **extra
                )
                continue
            await in_flight.acquire()
            draft = Draft(
                id=frame.message_id or uuid4(),
                room_id=subscriber.room_id,
                user_id=subscriber.user_id,
                username=subscriber.username,
                content=frame.content,
                client_id=frame.message_id is not None,
            )
            accepted = chat.store.submit(draft)
            accepted.add_done_callback(partial(_report_failure, chat, subscriber, in_flight, draft))


def _named(raw: str | bytes) -> dict[str, str]:
    """`{"id": …}` of the refused frame's message when it carried a valid id, else {}."""
    refused = refused_message_id(raw)
    return {"id": refused} if refused else {}


def _report_failure(
    chat: Chat,
    subscriber: Subscriber,
    in_flight: asyncio.Semaphore,
    draft: Draft,
    accepted: asyncio.Future[Stored],
) -> None:
    """Tell the sender when its message was not stored (and so was shown to nobody)."""
    in_flight.release()
    if accepted.cancelled():
        return
    error = accepted.exception()
    if isinstance(error, ChatError):  # this message's own fault (DraftRejectedError)
        _send_error(chat, subscriber, error.code, error.detail, id=str(draft.id))
    elif error is not None:
        log.warning(
            "message not stored: %s",
            describe(error),
            extra={"error_code": "UNAVAILABLE", **_about(subscriber)},
        )
        detail = "the message was not stored; send it again with the same id"
        _send_error(chat, subscriber, "UNAVAILABLE", detail, id=str(draft.id))
    elif accepted.result().outcome is Outcome.CONFLICT:
        detail = "that id belongs to another message"
        _send_error(chat, subscriber, "MESSAGE_ID_CONFLICT", detail, id=str(draft.id))


async def _close(chat: Chat, subscriber: Subscriber, writer: SocketWriter | None) -> None:
    """Send the close frame, then keep reading until the client's reply ends the socket.

    Frames the client sent before it saw the close are still handled (its messages are
    stored): they were sent in good faith, and reading them is also what lets the
    server see the client's close reply behind them. A stalled client that cannot take
    even the close frame has its connection aborted after `close_timeout`.
    """
    code = subscriber.close_code or CloseCode.INTERNAL_ERROR
    try:
        async with asyncio.timeout(chat.settings.close_timeout):
            await websocket.close(code, _close_reason(subscriber.close_reason))
            await _receive_frames(chat, subscriber)
    except TimeoutError:
        aborted = writer is not None and writer.abort()
        log.info(
            "socket closed with %d did not answer in time; aborted: %s",
            code,
            aborted,
            extra={"close_code": code, **_about(subscriber)},
        )


def _about(subscriber: Subscriber) -> dict[str, str]:
    """The fields of a log line about this socket."""
    return {"room_id": subscriber.room_id, "user_id": subscriber.user_id}


def _close_reason(text: str) -> str:
    """A close reason trimmed to the 123 bytes RFC 6455 allows."""
    encoded = text.encode()
    if len(encoded) <= 123:
        return text
    return encoded[:120].decode(errors="ignore") + "..."
