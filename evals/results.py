"""Result files: one JSON file per benchmark run of one model, in a results folder.

A file holds when it ran, which model, the machine (CPUs, platform, llama-cpp-python), the run's
settings, its figures (flat numbers: what charts plot) and its samples (per prompt or question).
File names start with the UTC time, so sorting names sorts runs.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT = 1
MAX_LISTED = 1000  # newest files read for history: a page load stays quick however many runs pile up


class ResultFileError(ValueError):
    """A result file that cannot be read as one; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Run:
    model: str
    created: str  # ISO 8601, UTC
    source: str  # who ran it: "playground", "benchmarks.models", ...
    settings: dict[str, Any]
    figures: dict[str, float]
    machine: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    file: str = ""  # the file's name, once written or read

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.created)

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **{k: v for k, v in asdict(self).items() if k != "file"}}


def machine_facts() -> dict[str, Any]:
    """What makes speed figures comparable (or not) between runs."""
    try:
        llama_cpp = metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        llama_cpp = None
    return {"cpu_count": os.cpu_count(), "machine": platform.machine(), "platform": platform.platform(),
            "python": platform.python_version(), "llama_cpp_python": llama_cpp}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def file_name(run: Run) -> str:
    """`<UTC time>-<model>-<random>.json`; model ids may hold '/' or '..' (remote models), so only safe
    characters of it are kept."""
    stamp = run.time.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    model = re.sub(r"[^A-Za-z0-9_-]+", "-", run.model).strip("-")[:60] or "model"
    return f"{stamp}-{model}-{secrets.token_hex(3)}.json"


def write(run: Run, folder: str | Path) -> Run:
    """Writes the run as a new file in `folder` (created if needed); returns it with its file name.
    Written to a temporary name first, so a reader never sees half a file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = file_name(run)
    partial = folder / f".{name}.partial"
    partial.write_text(json.dumps(run.as_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(partial, folder / name)
    return Run(**{**asdict(run), "file": name})


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def read(path: str | Path) -> Run:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultFileError(f"{path.name}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ResultFileError(f"{path.name}: not a result file of format {FORMAT}")
    for key, kind in (("model", str), ("created", str), ("source", str), ("settings", dict), ("figures", dict),
                      ("machine", dict), ("samples", list)):
        if not isinstance(data.get(key), kind):
            raise ResultFileError(f"{path.name}: '{key}' is missing or not a {kind.__name__}")
    try:
        datetime.fromisoformat(data["created"])
    except ValueError:
        raise ResultFileError(f"{path.name}: 'created' is not an ISO 8601 time: {data['created']!r}") from None
    wrong = [k for k, v in data["figures"].items() if not _number(v)]
    if wrong:
        raise ResultFileError(f"{path.name}: figures must be numbers; not: {', '.join(wrong)}")
    return Run(**{k: data[k] for k in ("model", "created", "source", "settings", "figures", "machine", "samples")},
               file=path.name)


def list_runs(folder: str | Path) -> list[Run]:
    """Every readable run in `folder`, oldest first (the newest MAX_LISTED files). A file that is not a
    result file is logged and skipped: one bad file must not hide the others."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    runs = []
    for path in sorted(folder.glob("*.json"))[-MAX_LISTED:]:
        try:
            runs.append(read(path))
        except ResultFileError as exc:
            log.warning("skipping result file %s", exc)
    return sorted(runs, key=lambda run: run.time)


def latest(runs: list[Run], figure: str) -> list[Run]:
    """Each model's newest run that has `figure`, in the order models first appear."""
    newest: dict[str, Run] = {}
    for run in sorted(runs, key=lambda r: r.time):
        if figure in run.figures:
            newest[run.model] = run
    return list(newest.values())


def history(runs: list[Run], figure: str) -> list[tuple[datetime, str, float]]:
    """(time, model, value) of every run that has `figure`, oldest first."""
    return [(run.time, run.model, run.figures[figure]) for run in sorted(runs, key=lambda r: r.time)
            if figure in run.figures]
