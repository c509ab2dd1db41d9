"""README.md and docs/: every relative link and `#anchor` resolves the way GitHub renders
them, and every docs page can be reached from README or docs/index.md."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.support import PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"
PAGES = [PROJECT_ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+).+?\1", re.DOTALL)
# [text](target) and ![alt](target); a title after the target is allowed.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def prose(markdown: str) -> str:
    """The text a reader sees as prose: fenced blocks and inline code left out, so that
    `[id]` in code or a `#` comment in a shell block is neither a link nor a heading."""
    return INLINE_CODE.sub("", FENCE.sub("", markdown))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text without markup, lower case, with
    punctuation other than `-` and `_` dropped and each space made a `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor GitHub makes for the page's headings, repeats numbered `-1`, `-2`…"""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(prose(page.read_text(encoding="utf-8")))


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        if EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and unquote(anchor) not in anchors(linked):
            broken.append(f"{target}: no heading with that anchor in {linked.name}")
    return broken


def test_slugs_follow_github() -> None:
    assert slug("Frontend (quartchat.js)") == "frontend-quartchatjs"
    assert slug("Real client addresses (proxies)") == "real-client-addresses-proxies"
    assert slug("Scale-out with Redis and PostgreSQL") == "scale-out-with-redis-and-postgresql"
    assert slug("`hypercorn.toml`") == "hypercorntoml"
    assert slug("One message's path") == "one-messages-path"


def test_the_checker_sees_a_broken_link_and_a_broken_anchor(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## A section\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[fine](other.md#a-section) [gone](missing.md) [bad](other.md#nowhere)\n"
        "[here](#page) `[not a link](nowhere.md)` [web](https://example.com/x.md)\n"
        "```sh\n# not a heading\n[not a link](nowhere.md)\n```\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#nowhere: no heading with that anchor in other.md",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(PROJECT_ROOT).as_posix())
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_every_docs_page_is_linked_from_readme_or_the_index() -> None:
    linked = {
        (source.parent / unquote(target.partition("#")[0])).resolve()
        for source in (PROJECT_ROOT / "README.md", DOCS / "index.md")
        for target in links(source)
        if not EXTERNAL.match(target) and target.partition("#")[0]
    }
    assert DOCS / "index.md" in linked
    assert [page.name for page in DOCS.glob("*.md") if page.resolve() not in linked] == []
