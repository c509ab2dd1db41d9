from datetime import UTC, datetime

import pytest

from quartchat.api.errors import status_of
from quartchat.api.replay import parse_since, require_one_point
from quartchat.wire.errors import ChatError


def test_one_starting_point_or_none_is_accepted() -> None:
    require_one_point(since=None, after=None, before=None)
    require_one_point(since="2025-01-01T00:00:00Z", after=None, before=None)


def test_two_starting_points_are_invalid_replay_naming_both() -> None:
    with pytest.raises(ChatError) as error:
        require_one_point(since="2025-01-01T00:00:00Z", after="x", before=None)
    assert (status_of(error.value), error.value.code) == (400, "INVALID_REPLAY")
    assert "since and after" in error.value.detail


def test_since_parses_to_utc_or_is_invalid_since() -> None:
    assert parse_since("2025-01-01T01:00:00+01:00") == datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(ChatError) as error:
        parse_since("yesterday")
    assert error.value.code == "INVALID_SINCE"
