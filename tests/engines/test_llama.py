"""The guard around llama-cpp-python's private API, and the load record engines report."""

from __future__ import annotations

import llama_cpp
import pytest

from engines.contract import Load
from engines.llama import TESTED_VERSION, check_version


def test_the_installed_version_is_the_tested_one():
    assert llama_cpp.__version__ == TESTED_VERSION
    check_version(llama_cpp.__version__)


def test_a_later_patch_release_warns_and_anything_else_stops(caplog):
    check_version("0.3.40")
    assert "tested with" in caplog.text
    for version in ("0.3.1", "0.4.0", "1.0.0", "dev"):
        with pytest.raises(RuntimeError, match="pip install -r requirements.txt"):
            check_version(version)


def test_load_reads_only_what_untrusted_json_gets_right():
    assert Load.read({"active": 1, "queued": 2, "max_concurrent": 4, "extra": "x"}) == Load(1, 2, 4)
    assert Load.read({"active": -1, "queued": True, "max_concurrent": 0}) is None
    assert Load.read({"queued": 3}) == Load(queued=3)
    assert Load.read(["active", 1]) is None and Load.read(None) is None
