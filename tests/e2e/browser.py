"""Headless Chromium for the browser tests: Debian's build, driven by Playwright.

Playwright's own browser download does not work here, so every test launches
``/usr/bin/chromium`` with these flags, and skips with a reason when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"Debian chromium not found at {CHROMIUM}"),
]
