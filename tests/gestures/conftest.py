"""The recorded landmarks of the real gesture photos, as a fixture."""

from __future__ import annotations

import pytest

from tests.support import gesture_photos


@pytest.fixture(scope="session")
def recorded() -> dict[str, dict]:
    return gesture_photos.recorded()
