"""Status badges as shields.io endpoint JSON: https://img.shields.io/endpoint?url=<this>/api/badge/system"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RegistryDep

router = APIRouter()


def _badge(label: str, message: str, color: str, *, error: bool = False) -> dict:
    return {"schemaVersion": 1, "label": label, "message": message, "color": color, "isError": error}


@router.get("/api/badge/system")
async def system_badge(registry: RegistryDep):
    pools = registry.entries()
    if not pools:
        return _badge("API Status", "no models", "lightgrey")
    online = sum(pool.state == "ready" for pool in pools)
    color = "brightgreen" if online == len(pools) else "yellow" if online else "red"
    return _badge("API Status", f"{online}/{len(pools)} online" if online else "offline", color)


@router.get("/api/badge/model/{model_id:path}")
async def model_badge(model_id: str, registry: RegistryDep):
    if model_id not in registry.ids:
        return _badge(model_id, "not configured", "lightgrey", error=True)
    pool = registry.entry(model_id)
    message, color = {"ready": ("online", "brightgreen"), "loading": ("loading", "yellow")}.get(
        pool.state, ("offline", "red"))
    healthy = sum(i.routable for i in pool.instances.values())
    if pool.state == "ready" and len(pool.instances) > 1:
        message = f"online ({healthy}/{len(pool.instances)})"
    return _badge(pool.spec.name, message, color)
