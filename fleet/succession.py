"""A hub that replaces another (`--hub-import URL`): it imports the predecessor's fleet — every
instance with its lease — and reports healthy only once it serves every model the predecessor
served, so clients never reach a hub that has not yet heard from its instances.

The predecessor is read at URL, usually the shared public address: the successor's own tunnel or
load-balancer entry opens only once it is healthy, so the address still leads to the predecessor. An
answer from this hub's own instance id is a twin (a second lineage of the same successor): it stops.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from fleet.node import Node, stop_this_process

log = logging.getLogger(__name__)
IMPORT_SECONDS = 60.0  # how long to try reaching the predecessor before starting with an empty fleet


async def import_fleet(node: Node, url: str, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = asyncio.get_running_loop().time() + IMPORT_SECONDS
    async with httpx.AsyncClient(timeout=5, headers=headers) as client:
        while True:
            try:
                response = await client.get(url.rstrip("/") + "/hub/members")
                response.raise_for_status()
                fleet = response.json()
                break
            except (httpx.HTTPError, ValueError) as exc:
                if asyncio.get_running_loop().time() > deadline:
                    log.warning("no predecessor at %s (%s): starting with an empty fleet", url, exc)
                    node.importing = False
                    return
                await asyncio.sleep(1.0)
    if fleet.get("instance_id") == node.instance_id:
        log.error("%s is already served as %s by another process: stopping this one", url, node.instance_id)
        stop_this_process()
        return
    node.hub.import_members(fleet.get("members") or [])
    node.awaiting = {model for member in node.hub.members.values() for model in member.models}
    node.importing = False
    log.info("imported %d instances from %s (%s); healthy once each model is served", len(node.hub.members),
             fleet.get("instance_id"), ", ".join(sorted(node.awaiting)) or "no models")
