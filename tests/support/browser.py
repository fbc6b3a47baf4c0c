"""Opens a page in headless Chromium (Debian's package) and tells what it logged, what it fetched and how it looks."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Chromium's own background traffic (updates, sync, safe browsing) would blur what the page itself asks for.
_QUIET_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions", "--hide-scrollbars")


@dataclass(frozen=True)
class PageVisit:
    """What one visit showed: console messages ({level, message}), every URL requested, and a full-page PNG."""

    console: list[dict[str, Any]]
    requested_urls: list[str]
    screenshot_png: bytes

    @property
    def console_errors(self) -> list[dict[str, Any]]:
        return [m for m in self.console if m["level"] in ("SEVERE", "ERROR")]


def visit(url: str, *, width: int = 1100) -> PageVisit:
    """Open `url` (http:// or file://) in headless Chromium, wait for it to load, and return what it did."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*_QUIET_FLAGS, f"--window-size={width},900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.get(url)
        console = [{"level": e["level"], "message": e["message"]} for e in driver.get_log("browser")]
        requested = _requested_urls(driver.get_log("performance"))
        return PageVisit(console, requested, _full_page_png(driver))
    finally:
        driver.quit()


def _requested_urls(performance_log: list[dict[str, Any]]) -> list[str]:
    """Every URL the page asked for, from the DevTools network events in the performance log, in order."""
    urls = []
    for entry in performance_log:
        event = json.loads(entry["message"])["message"]
        if event["method"] == "Network.requestWillBeSent":
            urls.append(event["params"]["request"]["url"])
    return urls


def _full_page_png(driver: Any) -> bytes:
    """The whole page, not just the window: DevTools captures beyond the viewport at the content's size."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    return base64.b64decode(shot["data"])
