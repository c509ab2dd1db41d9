"""Chromium, and pages on another origin than the server's that import quartchat.js."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.async_api import Browser, Page
from playwright.async_api import Error as PlaywrightError

PAGE_SCRIPT = """
import * as quartchat from "%(module)s";
window.quartchat = quartchat;
window.join = async (options, tokens) => {
  const log = {
    messages: [], statuses: [], errors: [], sent: [], sendErrors: [], tokenCalls: 0, frames: [],
    typing: [], frameTimes: [], errorTimes: [],
  };
  if (tokens) {
    options.token = async () => {
      log.tokenCalls += 1;
      return tokens[Math.min(log.tokenCalls, tokens.length) - 1];
    };
  }
  const room = new quartchat.Room(options);
  room.addEventListener("message", (e) => log.messages.push(e.detail));
  room.addEventListener("status", (e) => log.statuses.push(e.detail));
  room.addEventListener("error", (e) => {
    log.errors.push(e.detail);
    log.errorTimes.push(performance.now());
  });
  room.addEventListener("typing", (e) => log.typing.push(e.detail));
  room.addEventListener("frame", (e) => {
    log.frames.push(`${e.detail.direction} ${e.detail.text}`);
    log.frameTimes.push(performance.now());
  });
  window.room = room;
  window.log = log;
  try {
    await room.open();
    return "opened";
  } catch (error) {
    return `${error.code} ${error.closeCode}`;
  }
};
// Returns at once (not the promise): the test watches log.sent and log.sendErrors.
window.send = (content) => {
  room.send(content).then(
    (message) => log.sent.push(message),
    (error) => log.sendErrors.push(String(error)),
  );
};
window.ready = true;
"""

OpenPage = Callable[[str], Awaitable[Page]]
# What each page printed to its console (network errors among it), for failure reports.
CONSOLE: dict[Page, list[str]] = {}


class _AppPage(BaseHTTPRequestHandler):
    """`GET /?module=URL`: a page that imports quartchat.js from URL."""

    def do_GET(self) -> None:
        module = parse_qs(urlsplit(self.path).query)["module"][0]
        script = PAGE_SCRIPT % {"module": module}
        body = (
            '<!doctype html><meta charset="utf-8"><title>app</title><link rel="icon" href="data:,">'
            f'<script type="module">{script}</script>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session", name="app_origin")
def _app_origin() -> Iterator[str]:
    """The pages' own origin, a second HTTP server on a port of its own, for the whole
    session: every request the library makes to the quartchat server is a real
    cross-origin one."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AppPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(name="open_page")
async def _open_page(browser: Browser, app_origin: str) -> AsyncIterator[OpenPage]:
    """`await open_page(server_url)`: a fresh page on `app_origin` that has imported
    `server_url/static/quartchat.js`, with `join(options, tokens?)` and `send(content)`."""
    contexts = []

    async def open_page(server_url: str) -> Page:
        context = await browser.new_context()
        contexts.append(context)
        page = await context.new_page()
        problems = CONSOLE[page] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda message: problems.append(message.text))
        module = quote(f"{server_url}/static/quartchat.js", safe="")
        await page.goto(f"{app_origin}/room?module={module}")
        try:
            await page.wait_for_function("window.ready === true", timeout=30000)
        except PlaywrightError:
            raise AssertionError(f"the page did not load quartchat.js: {problems}") from None
        return page

    yield open_page
    for context in contexts:
        await context.close()
