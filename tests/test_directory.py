"""The handshake's cache of usernames and rooms."""

from __future__ import annotations

from quartchat.directory import Directory


async def test_users_and_rooms_created_here_are_known_without_asking_the_database() -> None:
    directory = Directory()
    # Neither exists in any database the suite uses: a lookup that asked would miss.
    directory.add_user("never-stored-user", "Ghost")
    directory.add_room("never-stored-room")
    assert await directory.username("never-stored-user") == "Ghost"
    assert await directory.room_exists("never-stored-room") is True


async def test_the_cache_keeps_only_the_most_recent_entries() -> None:
    directory = Directory(capacity=2)
    for index in range(3):
        directory.add_user(f"cached-{index}", f"User {index}")
    assert await directory.username("cached-2") == "User 2"
    assert await directory.username("cached-1") == "User 1"
