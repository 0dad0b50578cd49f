"""The architecture, checked: dependencies point one way, app state has one reader, llama-cpp-python's
private API has one user, and the Chat tab does not pay for MediaPipe."""

from __future__ import annotations

import ast

import pytest

from tests.support import ROOT


def imports_of(folder: str) -> dict[str, set[str]]:
    """file -> every module it imports (absolute names)."""
    found = {}
    for file in (ROOT / folder).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        found[str(file.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(("folder", "forbidden"), [
    ("engines", ("fastapi", "gradio", "starlette", "api", "playground", "modes", "fleet")),
    ("modes", ("fastapi", "gradio", "starlette", "api", "playground")),
    ("genui", ("fastapi", "gradio", "starlette", "api", "playground")),
    ("evals", ("fastapi", "gradio", "starlette", "api", "playground", "fleet", "modes", "benchmarks")),
    ("fleet", ("fastapi", "gradio", "api", "playground")),
    ("gestures", ("engines", "modes", "gradio", "api", "playground")),
])
def test_dependencies_point_one_way(folder, forbidden):
    wrong = {file: sorted(n for n in names if n.split(".")[0] in forbidden)
             for file, names in imports_of(folder).items()}
    assert {file: names for file, names in wrong.items() if names} == {}


def test_app_state_is_written_once_and_read_only_by_the_dependencies():
    files = [ROOT / "app.py", *(p for folder in ("api", "fleet", "playground") for p in (ROOT / folder).rglob("*.py"))]
    touching = sorted(str(p.relative_to(ROOT)) for p in files if "app.state" in p.read_text())
    assert touching == ["api/__init__.py", "api/deps.py"]  # create_api stores, deps.py reads


def test_llama_cpp_private_api_has_one_user():
    users = [file for folder in ("engines", "api", "fleet", "modes", "genui", "playground", "benchmarks")
             for file, names in imports_of(folder).items() if any("_internals" in n for n in names)]
    assert users == ["engines/llama.py"]


def test_app_py_only_composes():
    assert len((ROOT / "app.py").read_text().splitlines()) <= 100


def test_only_the_gestures_tab_imports_the_hand_tracker():
    """Chat and Arena listen to gestures through playground/gesture_bus.py, which needs no MediaPipe."""
    users = sorted(file for file, names in imports_of("playground").items()
                   if any(n.split(".")[0] in ("gestures", "mediapipe", "cv2") or n.startswith("playground.gestures_tab")
                          for n in names))
    assert users == ["playground/__init__.py", "playground/gestures_tab.py"]
