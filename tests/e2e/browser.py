"""Headless Chromium for the browser tests: Debian's build, driven by Playwright.

Playwright's own browser download does not work here, so every test launches
``/usr/bin/chromium`` with these flags, and skips with a reason when it is absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    pytest.mark.skipif(
        not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM}: `apt-get install chromium` (the CI script does)"
    ),
]


def playwright_sync_api() -> Any:
    """Playwright's sync API; skips the caller (a test or, at import, its module) when it is not installed."""
    return pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed: `pip install -e '.[test]'`"
    )
