"""The hub's registration routes: instances join (`/hub/register`), heartbeat, drain and leave.

They need the shared registration token (`--hub-token`) as `Authorization: Bearer <token>`; a hub
started without one accepts no registrations.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth import presented_key
from api.deps import NodeDep, SettingsDep
from api.errors import APIError
from engines.contract import Load

_FORBID = ConfigDict(extra="forbid")


async def require_hub_token(request: Request, settings: SettingsDep) -> None:
    expected = settings.hub_token
    if not expected:
        raise APIError(403, "This server accepts no registrations: start it with --hub-token <token>.",
                       type="permission_error", code="registration_disabled")
    if not hmac.compare_digest(presented_key(request).encode(), expected.encode()):
        raise APIError(401, "Wrong registration token: pass the hub's --hub-token as 'Authorization: Bearer <token>'.",
                       type="authentication_error", code="invalid_hub_token")


router = APIRouter(prefix="/hub", dependencies=[Depends(require_hub_token)])


class ModelOffer(BaseModel):
    model_config = _FORBID
    id: str = Field(min_length=1)
    name: str | None = None
    chat: bool = True
    n_ctx: int = Field(0, ge=0)
    max_concurrent: int = Field(2, ge=1)


class LoadReport(BaseModel):
    model_config = ConfigDict(extra="ignore")
    active: int = Field(0, ge=0)
    queued: int = Field(0, ge=0)
    max_concurrent: int = Field(1, ge=1)

    def load(self) -> Load:
        return Load(self.active, self.queued, self.max_concurrent)


class Membership(BaseModel):
    model_config = _FORBID
    instance_id: str = Field(min_length=1, max_length=200)


class Heartbeat(Membership):
    load: dict[str, LoadReport] = Field(default_factory=dict)

    def loads(self) -> dict[str, Load]:
        return {model_id: report.load() for model_id, report in self.load.items()}


class Registration(Heartbeat):
    url: str = Field(description="Where the hub reaches the instance (its root or /v1 URL)")
    models: list[ModelOffer] = Field(min_length=1)
    api_key: str | None = None

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


def _unknown(instance_id: str) -> APIError:
    return APIError(404, f"Instance '{instance_id}' is not registered here; register again.",
                    code="instance_not_found")


@router.post("/register")
async def register(body: Registration, node: NodeDep):
    hub = node.hub
    hub.register(body.instance_id, body.url, [m.model_dump() for m in body.models], api_key=body.api_key,
                 load=body.loads())
    return {"registered": body.instance_id, "heartbeat_interval": hub.heartbeat_interval,
            "heartbeat_timeout": hub.heartbeat_timeout}


@router.post("/heartbeat")
async def heartbeat(body: Heartbeat, node: NodeDep):
    if not node.hub.heartbeat(body.instance_id, body.loads()):
        raise _unknown(body.instance_id)
    return {"ok": True}


@router.post("/drain")
async def drain(body: Membership, node: NodeDep):
    if not node.hub.drain(body.instance_id):
        raise _unknown(body.instance_id)
    return {"draining": body.instance_id}


@router.post("/deregister")
async def deregister(body: Membership, node: NodeDep):
    if not node.hub.deregister(body.instance_id):
        raise _unknown(body.instance_id)
    return {"deregistered": body.instance_id}
