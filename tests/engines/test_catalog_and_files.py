"""The catalog, and finding model files offline: packages, the hub cache layout, local paths."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from openai import OpenAI

from engines import catalog
from engines.errors import ModelFileMissing, UnknownModel
from engines.model_files import resolve_path, spec_for
from tests.support.servers import ROOT, start_server, stop_server

SERVERLESS_LLM_MODELS = [
    "qwen3-4b", "phi-4-mini", "functiongemma-270m-it", "smollm3-3b", "lfm2.5-1.2b-instruct", "dasd-4b-thinking",
    "agentcpm-explore-4b", "gemma-3-12b-it", "llama-3.2-3b", "mistral-7b-instruct-v0.3", "rnj-1-instruct",
    "deepseek-r1-distill-qwen-1.5b", "nanbeige4-3b-thinking", "gpt-oss-20b",
]


def test_catalog_has_every_served_model_with_runtime_defaults():
    for model_id in [*SERVERLESS_LLM_MODELS, "smollm2-135m-instruct", "gemma3-270m"]:
        spec = catalog.find(model_id)
        assert spec is not None, model_id
        assert spec.package or (spec.hf_repo and spec.hf_file.endswith(".gguf")), model_id
        assert spec.n_ctx >= 2048 and spec.n_threads and spec.n_batch and spec.max_concurrent >= 1
    assert len({s.id for s in catalog.CATALOG}) == len(catalog.CATALOG)


def test_list_models_prints_the_table():
    out = subprocess.run([sys.executable, "app.py", "--list-models"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert out.splitlines()[0].split()[:3] == ["id", "name", "cat"]
    for spec in catalog.CATALOG:
        assert spec.id in out


def test_embedded_models_resolve_from_their_packages():
    for model_id in ("smollm2-135m-instruct", "gemma3-270m"):
        path = resolve_path(catalog.find(model_id))
        assert path.is_file() and path.read_bytes()[:4] == b"GGUF"


@pytest.fixture
def offline_cache(tmp_path, chat_model_path, monkeypatch):
    """A huggingface-hub cache holding qwen3-4b's file (with SmolLM2's bytes, to stay small)."""
    spec = catalog.find("qwen3-4b")
    repo_dir = tmp_path / ("models--" + spec.hf_repo.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text("0123abcd")
    snapshot = repo_dir / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / spec.hf_file).symlink_to(chat_model_path)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    return tmp_path


def test_hub_model_comes_from_the_cache_offline(offline_cache):
    path = resolve_path(catalog.find("qwen3-4b"), cache_dir=str(offline_cache))
    assert path.name == "Qwen3-4B-Instruct-2507-Q4_K_M.gguf" and path.read_bytes()[:4] == b"GGUF"


def test_hub_model_missing_offline_says_what_to_do(offline_cache):
    with pytest.raises(ModelFileMissing) as caught:
        resolve_path(catalog.find("phi-4-mini"), cache_dir=str(offline_cache))
    message = caught.value.message
    assert "not in the Hugging Face cache" in message and "--model /path/to/file.gguf" in message


@pytest.mark.slow
def test_server_hosts_a_cached_hub_model_offline(offline_cache, tmp_path):
    srv = start_server(tmp_path, "--model", "qwen3-4b", "--hf-cache", str(offline_cache), "--no-ui",
                       "--max-concurrent", "1", "--ctx", "1024", env={"HF_HUB_OFFLINE": "1"})
    try:
        reply = OpenAI(base_url=srv.v1, api_key="x").chat.completions.create(
            model="qwen3-4b", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
        assert reply.usage.completion_tokens >= 1
        assert httpx.get(srv.url + "/health/details").json()["models"]["qwen3-4b"]["n_ctx"] == 1024
    finally:
        stop_server(srv)


@pytest.mark.slow
def test_missing_hub_model_fails_health_with_the_reason(tmp_path):
    srv = start_server(tmp_path, "--model", "phi-4-mini", "--hf-cache", str(tmp_path), "--no-ui",
                       env={"HF_HUB_OFFLINE": "1"}, wait_ready=False)
    try:
        for _ in range(100):
            health = httpx.get(srv.url + "/health")
            if health.json()["status"] != "loading":
                break
            time.sleep(0.2)
        assert health.status_code == 503 and health.json()["status"] == "failed"
        error = httpx.post(srv.v1 + "/chat/completions", json={
            "model": "phi-4-mini", "messages": [{"role": "user", "content": "hi"}]})
        assert error.status_code == 503 and "not in the Hugging Face cache" in error.json()["error"]["message"]
    finally:
        stop_server(srv)


@pytest.mark.slow
def test_local_gguf_path_is_served(tmp_path, chat_model_path):
    local = tmp_path / "My-Model.gguf"
    local.symlink_to(chat_model_path)
    assert spec_for(str(local)).id == "my-model"
    srv = start_server(tmp_path, "--model", str(local), "--no-ui", "--max-concurrent", "1")
    try:
        assert [m.id for m in OpenAI(base_url=srv.v1, api_key="x").models.list()][0] == "my-model"
    finally:
        stop_server(srv)


def test_unknown_reference_is_a_clear_startup_error():
    with pytest.raises(UnknownModel, match="--list-models"):
        spec_for("not-a-model")
    run = subprocess.run([sys.executable, "app.py", "--model", "nope.gguf"], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ}, timeout=60)
    assert run.returncode == 2 and "does not exist" in run.stderr
