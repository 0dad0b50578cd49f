"""The model's own tokenizer over HTTP, in the shapes clients probe for: POST /tokenize and POST
/detokenize (llama-server's `content` and vLLM's `prompt` both taken, both answered) and GET
/tokenizer_info (vLLM's), which lm-evaluation-harness's `local-completions` uses instead of
downloading a tokenizer. A hub without the model in process asks an instance of this app."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import RegistryDep
from api.schemas import valid_unicode
from engines.errors import Unavailable
from engines.registry import ModelRegistry
from engines.remote import RemoteEngine

router = APIRouter()
_STRICT = ConfigDict(extra="ignore", strict=True)


class TokenizeRequest(BaseModel):
    model_config = _STRICT
    model: str | None = None
    content: str | None = Field(None, description="The text (llama-server's name)")
    prompt: str | None = Field(None, description="The text (vLLM's name)")
    add_special: bool | None = None
    add_special_tokens: bool | None = None
    with_pieces: bool = False

    @model_validator(mode="before")
    @classmethod
    def _unicode(cls, data: Any) -> Any:
        return valid_unicode(data)

    @model_validator(mode="after")
    def _text_given(self):
        if (self.content is None) == (self.prompt is None):
            raise ValueError("give the text as either 'content' or 'prompt'")
        return self


class DetokenizeRequest(BaseModel):
    model_config = _STRICT
    model: str | None = None
    tokens: list[int] = Field(max_length=1_000_000)


def _tokenizer(registry: ModelRegistry, model: str | None):
    """The engine that tokenizes for `model` (default: the first chat model): its local instance, else a
    routable instance of this app, which is asked over HTTP."""
    if model is None:
        if not registry.chat_ids:
            raise Unavailable("No model is served here.")
        model = registry.chat_ids[0]
    if model in registry.personas:  # a persona reads text as its model does
        model = registry.personas[model].model
    pool = registry.get(model)
    if pool.local is not None and pool.local.routable:
        return pool.local.engine
    remote = pool.pick(continuing=True)
    if remote is None:
        raise Unavailable(f"No instance of '{model}' can tokenize right now (only this app's instances can).")
    return remote.engine


@router.post("/tokenize")
async def tokenize(body: TokenizeRequest, registry: RegistryDep):
    engine = _tokenizer(registry, body.model)
    text = body.content if body.content is not None else body.prompt
    add_special = body.add_special if body.add_special is not None else bool(body.add_special_tokens)
    if isinstance(engine, RemoteEngine):
        return await engine.forward("POST", "/tokenize", {**body.model_dump(exclude_none=True),
                                                          "model": engine.upstream_model})
    tokens = await asyncio.to_thread(engine.tokenize, text, add_special=add_special)
    listed = [{"id": t, "piece": engine.detokenize([t])} for t in tokens] if body.with_pieces else tokens
    return {"tokens": listed, "count": len(tokens), "max_model_len": engine.n_ctx}


@router.post("/detokenize")
async def detokenize(body: DetokenizeRequest, registry: RegistryDep):
    engine = _tokenizer(registry, body.model)
    if isinstance(engine, RemoteEngine):
        return await engine.forward("POST", "/detokenize", {"model": engine.upstream_model, "tokens": body.tokens})
    text = await asyncio.to_thread(engine.detokenize, body.tokens)
    return {"content": text, "prompt": text}


@router.get("/tokenizer_info")
async def tokenizer_info(registry: RegistryDep, model: str | None = None):
    engine = _tokenizer(registry, model)
    if isinstance(engine, RemoteEngine):
        return await engine.forward("GET", "/tokenizer_info", None, params={"model": engine.upstream_model})
    return {"model": engine.model_id, **engine.tokenizer_info()}
