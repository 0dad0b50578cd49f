"""The hub's registration routes: instances join (`/hub/register`), heartbeat, drain and leave.

They need the shared registration token (`--hub-token`) as `Authorization: Bearer <token>`; a hub
started without one accepts no registrations. Registration returns a lease: heartbeat, drain and
deregister show it, so no instance can drain or remove another. The URL an instance gives is
checked before the hub ever calls it (fleet/membership.py).
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.access import presented_key
from api.deps import NodeDep, SettingsDep
from api.errors import APIError
from api.schemas import valid_unicode
from engines.contract import Load
from fleet.hub import LeaseMismatch, MembershipConflict
from fleet.membership import BadInstanceURL, check_url

_FORBID = ConfigDict(extra="forbid")


async def require_hub_token(request: Request, settings: SettingsDep) -> None:
    expected = settings.hub_token
    if not expected:
        raise APIError(403, "This server accepts no registrations: start it with --hub-token <token>.",
                       type="permission_error", code="registration_disabled")
    if not hmac.compare_digest(presented_key(dict(request.scope["headers"])).encode(), expected.encode()):
        raise APIError(401, "Wrong registration token: pass the hub's --hub-token as 'Authorization: Bearer <token>'.",
                       type="authentication_error", code="invalid_hub_token")


router = APIRouter(prefix="/hub", dependencies=[Depends(require_hub_token)])


class ModelOffer(BaseModel):
    model_config = _FORBID
    id: str = Field(min_length=1, max_length=200)  # shown on public surfaces (/status, /v1/models)
    name: str | None = Field(None, max_length=200)
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

    @model_validator(mode="before")
    @classmethod
    def _unicode(cls, data: Any) -> Any:
        return valid_unicode(data)


class Leased(Membership):
    lease: str = Field(min_length=1, max_length=200, description="The secret /hub/register returned")


class Heartbeat(Leased):
    load: dict[str, LoadReport] = Field(default_factory=dict)
    draining: bool = Field(False, description="The instance is shutting down: no new requests")

    def loads(self) -> dict[str, Load]:
        return {model_id: report.load() for model_id, report in self.load.items()}


class Registration(Membership):
    url: str = Field(max_length=2000, description="Where the hub reaches the instance (its root or /v1 URL)")
    models: list[ModelOffer] = Field(min_length=1, max_length=64)
    api_key: str | None = Field(None, max_length=500)
    load: dict[str, LoadReport] = Field(default_factory=dict)
    lease: str | None = Field(None, description="Its current lease, when an instance registers again")

    def loads(self) -> dict[str, Load]:
        return {model_id: report.load() for model_id, report in self.load.items()}


def _unknown(instance_id: str) -> APIError:
    return APIError(404, f"Instance '{instance_id}' is not registered here; register again.",
                    code="instance_not_found")


def _membership_errors(call):
    """A wrong lease is a 403 and a taken instance id a 409, whatever the route."""
    try:
        return call()
    except LeaseMismatch as exc:
        raise APIError(403, exc.message, type="permission_error", code=exc.code) from None
    except MembershipConflict as exc:
        raise APIError(409, exc.message, code=exc.code, param="instance_id") from None


@router.post("/register")
async def register(body: Registration, node: NodeDep, settings: SettingsDep):
    try:  # resolving the host may block: off the event loop
        await asyncio.to_thread(check_url, body.url, allow_private=settings.hub_allow_private)
    except BadInstanceURL as exc:
        raise APIError(400, f"Invalid value for 'url': {exc}", param="url", code="invalid_value") from None
    hub = node.hub
    lease = _membership_errors(lambda: hub.register(
        body.instance_id, body.url, [m.model_dump() for m in body.models], api_key=body.api_key, load=body.loads(),
        lease=body.lease))
    return {"registered": body.instance_id, "lease": lease, "heartbeat_interval": hub.heartbeat_interval,
            "heartbeat_timeout": hub.heartbeat_timeout}


@router.post("/heartbeat")
async def heartbeat(body: Heartbeat, node: NodeDep):
    if not _membership_errors(lambda: node.hub.heartbeat(body.instance_id, body.lease, body.loads(),
                                                         draining=body.draining)):
        raise _unknown(body.instance_id)
    return {"ok": True}


@router.post("/drain")
async def drain(body: Leased, node: NodeDep):
    if not _membership_errors(lambda: node.hub.drain(body.instance_id, body.lease)):
        raise _unknown(body.instance_id)
    return {"draining": body.instance_id}


@router.post("/deregister")
async def deregister(body: Leased, node: NodeDep):
    if not _membership_errors(lambda: node.hub.deregister(body.instance_id, body.lease)):
        raise _unknown(body.instance_id)
    return {"deregistered": body.instance_id}


@router.get("/members")
async def members(node: NodeDep):
    """The fleet, leases included, for a successor hub to import (`--hub-import`)."""
    return {"instance_id": node.instance_id, "members": node.hub.export()}
