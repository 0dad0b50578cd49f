"""Session-wide fixtures: the shared servers, the tiers (`slow`) and the system pieces some tests need."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import tiers
from tests.support.servers import BASE_MODEL, CHAT_MODEL, Server, start_server, stop_server

pytest_configure = tiers.configure


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tiers.mark(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    tiers.check_system_pieces(session.items)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    tiers.current = item  # setup included: module and session fixtures start inside some test's setup
    yield
    tiers.current = None


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[Server]:
    """Both embedded models, two slots each, the UI mounted: the default way to run the app."""
    srv = start_server(tmp_path_factory.mktemp("main"), "--model", CHAT_MODEL, "--model", BASE_MODEL)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def tight_server(tmp_path_factory) -> Iterator[Server]:
    """One slot and a one-place queue, so queueing, 429 and slot release are easy to observe."""
    srv = start_server(tmp_path_factory.mktemp("tight"), "--model", CHAT_MODEL, "--max-concurrent", "1",
                       "--max-queue", "1", "--queue-timeout", "2", "--no-ui")
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def chat_model_path() -> Path:
    from engines.catalog import find
    from engines.model_files import resolve_path

    return resolve_path(find(CHAT_MODEL))
