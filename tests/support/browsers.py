"""A real browser: Debian's /usr/bin/chromium driven by Python playwright's own driver (nothing is
downloaded), and ASGI apps served by uvicorn on loopback ports, in the tests' own event loop (so on
the test database, whichever backend the suite runs on)."""

from __future__ import annotations

import asyncio
import socket
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import pytest
import uvicorn
from playwright.async_api import Browser, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
# The machine notes' flags: no background connections to Google, no first-run work, no GPU.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
MISSING = "Debian's chromium is not installed at /usr/bin/chromium (.ci/run installs it)"

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """One headless Chromium (skips the test where it is missing)."""
    if not CHROMIUM.exists():
        pytest.skip(MISSING)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def loopback_socket() -> socket.socket:
    """A socket bound to a free loopback port, so its origin is known before anything serves it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def origin_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@asynccontextmanager
async def served(app, *sockets: socket.socket) -> AsyncIterator[list[str]]:
    """The app served by uvicorn on these sockets (a new one when none is given): their origins."""
    sockets = sockets or (loopback_socket(),)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=list(sockets)))
    try:
        while not server.started:
            assert not serving.done(), serving
            await asyncio.sleep(0.01)
        yield [origin_of(sock) for sock in sockets]
    finally:
        server.should_exit = True
        await serving
        for sock in sockets:
            sock.close()
