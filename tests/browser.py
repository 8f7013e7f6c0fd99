"""What the browser tests share: Debian's Chromium for Playwright, the app served in a thread,
and pages that fail their test on any JavaScript error."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("MAZEWB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # this machine's closed network refuses them, many at a time
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium binary (apt-get install chromium)")

PLOTLY_UNMOUNT_RACES = ("reading '_rangeSliderData'",)
"""plotly.js errors when a graph is removed (tab switched) while it still draws: its layout is
already gone. Seen once in ~3 runs of the every-tab test, nothing shows on the page; any other
JavaScript error still fails the test."""


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """The Dash ``app`` on a free loopback port in a background thread; yields its URL."""
    from werkzeug.serving import make_server

    srv = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        app.workbench.jobs.shutdown()


@contextlib.contextmanager
def launched() -> Iterator[Any]:
    """Headless Debian Chromium under Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def checked_page(browser: Any, timeout_ms: int) -> Iterator[Any]:
    """A fresh 1500x1000 page; on leaving, any JavaScript error it raised fails the test."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(timeout_ms)
    yield pg
    context.close()
    errors = [e for e in errors if not any(k in e for k in PLOTLY_UNMOUNT_RACES)]
    assert not errors, f"JavaScript errors in the page: {errors}"
