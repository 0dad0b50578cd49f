"""Every import is declared: the runtime's in requirements.txt, the tests' and benchmarks' in
requirements-dev.txt — so a fresh `pip install -r requirements.txt` runs the app."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.support.servers import ROOT

RUNTIME = ["app.py", "settings.py", "api", "engines", "evals", "fleet", "genui", "gestures", "modes", "playground"]
DEV = ["tests", "benchmarks"]
LOCAL = {"app", "settings", "api", "engines", "evals", "fleet", "genui", "gestures", "modes", "playground", "tests",
         "benchmarks"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            names |= declared(path.parent / line[3:].strip())
        elif line:
            names.add(normalized(re.split(r"[\s;<>=!~\[]", line, maxsplit=1)[0]))
    return names


def imported(paths: list[str]) -> dict[str, str]:
    """Top-level third-party module -> the first file importing it."""
    modules: dict[str, str] = {}
    files = [p for name in paths for p in ([ROOT / name] if name.endswith(".py") else (ROOT / name).rglob("*.py"))]
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in LOCAL and top != "__future__":
                    modules.setdefault(top, str(file.relative_to(ROOT)))
    return modules


def undeclared(sources: list[str], requirements: Path) -> dict[str, str]:
    wanted = declared(requirements)
    providers = packages_distributions()
    return {module: where for module, where in imported(sources).items()
            if not {normalized(d) for d in providers.get(module, [])} & wanted}


@pytest.mark.parametrize(("sources", "requirements"), [(RUNTIME, "requirements.txt"),
                                                        (RUNTIME + DEV, "requirements-dev.txt")])
def test_every_import_is_declared(sources, requirements):
    missing = undeclared(sources, ROOT / requirements)
    assert missing == {}, f"imported but not in {requirements}: {missing}"


def test_the_check_reports_what_is_missing(tmp_path):
    only_fastapi = tmp_path / "requirements.txt"
    only_fastapi.write_text("# a comment\nfastapi>=0.115 ; python_version > '3'  # the web framework\n")
    assert declared(only_fastapi) == {"fastapi"}
    missing = undeclared(RUNTIME, only_fastapi)
    assert {"cv2", "llama_cpp", "yaml", "jsonschema", "gradio"} <= set(missing) and "fastapi" not in missing
