"""The chat service the blueprints share: settings, the room hub and the message store."""

from __future__ import annotations

from quart import Quart, current_app

from .config import Settings
from .hub import Frame, Hub
from .store import MessageStore
from .wire import ChatMessage, message_frame

EXTENSION_KEY = "quartchat"
CLOSE_SERVICE_RESTART = 1012


class Chat:
    """Wires the store to the hub: every newly stored message is fanned out to its room."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.hub = Hub()
        self.store = MessageStore(publish=self.publish_message)

    def publish_message(self, message: ChatMessage) -> None:
        self.hub.broadcast(message.room_id, Frame(message.seq, message_frame(message)))

    def close_all_sockets(self) -> None:
        """Tell every socket the server is restarting (1012), so clients reconnect at once."""
        self.hub.close_all(CLOSE_SERVICE_RESTART, "server restart")

    async def shutdown(self) -> None:
        self.close_all_sockets()
        await self.store.drain()


def init_app(app: Quart, settings: Settings) -> Chat:
    chat = Chat(settings)
    app.extensions[EXTENSION_KEY] = chat

    @app.after_serving
    async def finish_writes() -> None:
        await chat.shutdown()

    return chat


def current_chat() -> Chat:
    chat: Chat = current_app.extensions[EXTENSION_KEY]
    return chat
