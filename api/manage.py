"""Models at run time: POST /models/load (catalog id, hf://owner/repo/file.gguf or a .gguf path; progress
as SSE with `stream`) and POST /models/unload — llama-server's router paths. Keys are required when set;
without keys only a caller on this machine may use them (fleet/loader.py `may_manage`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api import sse
from api.deps import NodeDep, SettingsDep
from api.errors import APIError
from fleet.loader import LoadJob, ModelLoader, may_manage

router = APIRouter()
FORWARDING = (b"x-forwarded-for", b"forwarded", b"cf-connecting-ip", b"x-real-ip")


class LoadRequest(BaseModel):
    model: str = Field(min_length=1, max_length=1000,
                       description="Catalog id, hf://owner/repo/file.gguf, or a path to a .gguf file")
    stream: bool = Field(False, description="Progress as server-sent events, else one JSON answer when done")


class UnloadRequest(BaseModel):
    model: str = Field(min_length=1, max_length=1000)
    drain_timeout: float = Field(60.0, ge=0, le=600,
                                 description="Seconds the requests already admitted get to finish")


def check_allowed(request: Request, settings) -> None:
    headers = dict(request.scope["headers"])
    client = request.client.host if request.client else None
    if not may_manage(keys_set=bool(settings.api_keys), client_host=client,
                      forwarded=any(name in headers for name in FORWARDING)):
        raise APIError(403, "Loading and unloading models needs an API key: start the server with --api-key, "
                            "or call from this machine.", type="permission_error", code="forbidden")


@router.post("/models/load")
async def load_model(body: LoadRequest, request: Request, node: NodeDep, settings: SettingsDep):
    check_allowed(request, settings)
    job = await node.loader.start(body.model)
    if body.stream:
        return sse.response(_progress(node.loader, job))
    await sse.unless_disconnected(request, _finished(node.loader, job))  # the load goes on if the caller leaves
    if job.error is not None:
        raise job.error
    if job.last.status == "error":  # it is hosted here already, but not serving
        raise APIError(409, job.last.message, code="model_not_ready", param="model")
    return {"object": "model.load", **job.last.as_dict()}


async def _finished(loader: ModelLoader, job: LoadJob) -> None:
    async for _ in loader.watch(job):
        pass


async def _progress(loader: ModelLoader, job: LoadJob) -> AsyncIterator[bytes]:
    async for event in loader.watch(job):
        yield sse.encode({"object": "model.load", **event.as_dict()})
    yield sse.DONE


@router.post("/models/unload")
async def unload_model(body: UnloadRequest, request: Request, node: NodeDep, settings: SettingsDep):
    check_allowed(request, settings)
    await node.loader.unload(body.model, drain_timeout=body.drain_timeout)
    return {"object": "model.unload", "model": body.model, "status": "unloaded"}
