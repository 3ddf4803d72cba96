"""A real browser for tests of pages: Debian's Chromium (/usr/bin/chromium, installed by .ci/run),
driven by Playwright for Python through its executable path, so nothing downloads a browser.

Every request to anything but the system under test is aborted and recorded, so a page that
needs the internet (a CDN) fails its test instead of working only online."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.sync_api import Page, Route, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# What the machine's closed network needs (see .ci/run): no background fetches, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class OfflinePage:
    page: Page
    blocked: list[str] = field(default_factory=list)


@contextmanager
def offline_page(base_url: str) -> Iterator[OfflinePage]:
    """A page in headless Chromium that may reach only `base_url`'s host and port."""
    executable = shutil.which(CHROMIUM)
    assert executable, f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    allowed = urlsplit(base_url).netloc
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            result = OfflinePage(page)

            def only_the_system(route: Route) -> None:
                if urlsplit(route.request.url).netloc == allowed:
                    route.continue_()
                else:
                    result.blocked.append(route.request.url)
                    route.abort()

            page.route("**/*", only_the_system)
            yield result
        finally:
            browser.close()
