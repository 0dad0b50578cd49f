"""The one module that uses llama-cpp-python's private API (`llama_cpp._internals.LlamaModel`), and
where contexts are created.

`LlamaModel` wraps a loaded GGUF (tokenizer, metadata, vocabulary) without the high-level `Llama`
object, whose context and sampling this app replaces (engines/batch.py). Being private, it may change
in any release, so it is used only from here and only with the versions this code was tested on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import llama_cpp

log = logging.getLogger(__name__)

TESTED_VERSION = "0.3.36"  # the version requirements.txt pins


def _parts(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


def check_version(version: str) -> None:
    """Refuses llama-cpp-python versions whose private API may differ: another 0.3 release from the
    tested one on is allowed with a warning; anything else stops with how to fix it."""
    if version == TESTED_VERSION:
        return
    parts, tested = _parts(version), _parts(TESTED_VERSION)
    if len(parts) == 3 and parts[:2] == tested[:2] and parts >= tested:
        log.warning("llama-cpp-python %s: this app was tested with %s (it uses the private LlamaModel)",
                    version, TESTED_VERSION)
        return
    raise RuntimeError(f"llama-cpp-python {version} is not supported: this app uses its private LlamaModel, "
                       f"tested with {TESTED_VERSION}. Install it with `pip install -r requirements.txt`.")


def load_model(path: Path, progress: Callable[[float], None] | None = None) -> llama_cpp._internals.LlamaModel:
    """The GGUF's weights, memory-mapped (shared between processes that load the same file);
    `progress` sees llama.cpp's loading fraction (0..1)."""
    check_version(llama_cpp.__version__)
    from llama_cpp._internals import LlamaModel

    params = llama_cpp.llama_model_default_params()
    params.use_mmap = True
    if progress is not None:
        def report(fraction: float, _user_data) -> bool:
            progress(fraction)
            return True  # go on loading

        callback = llama_cpp.llama_progress_callback(report)  # referenced until the load returns
        params.progress_callback = callback
    return LlamaModel(path_model=str(path), params=params, verbose=False)


def create_context(model: llama_cpp.llama_model_p, *, n_seq: int, n_ctx: int, n_batch: int, n_threads: int,
                   flash_attn: bool, label: str, cache_type: int = llama_cpp.GGML_TYPE_F16):
    """One llama.cpp context with `n_seq` sequences of `n_ctx` cells each (not unified: no sequence can
    starve another); a pass may hold one token of every sequence."""
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = n_ctx * n_seq
    params.n_seq_max = n_seq
    params.kv_unified = False
    params.n_batch = max(n_batch, n_seq)
    params.n_ubatch = n_batch
    params.n_threads = params.n_threads_batch = n_threads
    params.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO if flash_attn
                              else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
    params.type_k = params.type_v = cache_type
    params.no_perf = True
    ctx = llama_cpp.llama_init_from_model(model, params)
    if not ctx:
        raise RuntimeError(f"llama.cpp could not create a context for '{label}' ({n_seq} x {n_ctx} tokens)")
    return ctx
