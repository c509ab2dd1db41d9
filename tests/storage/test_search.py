"""The prefix range a name search walks: every string that starts with the prefix lies
in it, and no other (code point order, the byte order of UTF-8)."""

from __future__ import annotations

import pytest

from quartchat.storage.search import _after_prefix


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        ("abc", "abd"),
        ("a\uffff", "a\U00010000"),
        ("a\ud7ff", "a\ue000"),  # no surrogate in between: none is a character
        ("a\U0010ffff", "b"),
        ("\U0010ffff\U0010ffff", None),
    ],
)
def test_the_range_ends_just_after_every_extension(prefix: str, end: str | None) -> None:
    assert _after_prefix(prefix) == end


def test_strings_in_the_range_are_exactly_those_with_the_prefix() -> None:
    prefix = "se\u00e9"
    end = _after_prefix(prefix)
    assert end is not None
    samples = ["se", "see", "se\u00e9", "se\u00e9z", "se\u00e9\U0010ffff!", "se\u00ea", "sf"]
    inside = [text for text in samples if prefix <= text < end]
    assert inside == [text for text in samples if text.startswith(prefix)]
    encoded = sorted(text.encode() for text in samples)
    assert encoded == [text.encode() for text in sorted(samples)]  # the same order
