"""Which characters clients may send: in message content, in names, and in ids.

What no database can store (U+0000, lone surrogates) is refused everywhere, so a
client's text never reaches a commit that would fail for it. Beyond that, content keeps
the writer's formatting (`\\n`, `\\t`, right-to-left text), while the names that label
messages and rooms refuse anything that could disguise them: controls, bidi formatting
and text that shows nothing at all.
"""

from __future__ import annotations

import re

# Ids of users and rooms: what a URL path segment carries without escaping.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_ID = re.compile(ID_PATTERN.removeprefix("^").removesuffix("$"))

# C0 controls but tab and newline, DEL, C1 controls, and the lone surrogates that
# a JSON `\ud800` escape can produce.
REFUSED_IN_CONTENT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# Every control, the surrogates, line and paragraph separators, and the bidi
# formatting characters (marks, embeddings, overrides, isolates).
_REFUSED_IN_NAMES = re.compile(
    r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
# A character that shows something: not white space, and not one of Unicode's
# default-ignorable code points (zero-width spaces and joiners, variation selectors,
# invisible fillers, tags...) nor the blank braille pattern.
VISIBLE = re.compile(
    r"[^\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    r"\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    r"\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


def is_resource_id(value: str) -> bool:
    """Whether `value` can be a user's or a room's id (1-64 of A-Z a-z 0-9 _ -)."""
    return _ID.fullmatch(value) is not None


def shows_something(text: str) -> bool:
    return VISIBLE.search(text) is not None


def _describe(character: str) -> str:
    if "\ud800" <= character <= "\udfff":
        return f"a lone surrogate (U+{ord(character):04X}), which is not a character"
    return f"the control or formatting character U+{ord(character):04X}"


def content_problem(text: str) -> str | None:
    """Why message content is refused, or None: it holds a character other than
    `\\n`/`\\t` that is a control or a surrogate, or shows nothing."""
    refused = REFUSED_IN_CONTENT.search(text)
    if refused is not None:
        found = _describe(refused.group())
        return f"content contains {found}; of the controls only \\n and \\t are allowed"
    if not shows_something(text):
        return "content must not be blank"
    return None


def name_problem(text: str) -> str | None:
    """Why a username or room name is refused, or None: it holds a control, a
    surrogate, a line separator or a bidi formatting character, or shows nothing."""
    refused = _REFUSED_IN_NAMES.search(text)
    if refused is not None:
        return f"contains {_describe(refused.group())}"
    if not shows_something(text):
        return "shows no visible character"
    return None
