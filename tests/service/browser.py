"""A real headless Chromium for the page and /docs tests, cut off from every network but loopback.

Debian's `chromium` and `chromium-driver` packages (no browser download): Selenium drives the
system chromedriver. Every request the browser makes is recorded from its DevTools log, so a
test can show that nothing left the machine.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)")
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900",
         # No name resolves except loopback: a page that needs a CDN stays blank, as it would offline.
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


@contextmanager
def chromium():
    """A Selenium Chrome session on a fresh profile; quit and removed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="recsys-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def requested_urls(driver) -> list[str]:
    """URLs of every request the browser sent since the last call (the log is drained)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


# Schemes the browser answers itself (its own new-tab page, inline data): no network.
LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "chrome-untrusted", "chrome-extension", "devtools"}


def off_loopback(urls: list[str]) -> list[str]:
    """The URLs that would go to a host other than this machine's loopback."""
    return [u for u in urls if urlsplit(u).scheme not in LOCAL_SCHEMES and urlsplit(u).hostname not in LOOPBACK]


def screenshot(driver, path: Path, copy_to: str | None = None) -> Path:
    """A PNG of the whole page (beyond the window) at `path`, also copied to `copy_to` for a person."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000), "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))
    if copy_to is not None:
        shutil.copyfile(path, copy_to)
    return path
