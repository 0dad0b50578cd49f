"""A limited life with a hand-off: after `--lifetime`, start a successor (`--successor "command"`),
wait until it is registered and healthy, then drain and exit — so clients never see an outage.

Free CI runners stop jobs after a fixed time (6 h on GitHub Actions); an instance that hands over
before then keeps its models online around the clock. The successor's instance id is chosen here
and given to the command as `{instance_id}` (and the env var SUCCESSOR_INSTANCE_ID), so this
process can recognise it at the hub (or at `--successor-url`). If it never becomes healthy, this
instance keeps serving, says why in the log, and tries again later.

One lineage only: a failed attempt's process group is stopped before the next attempt, and every
attempt uses the same successor id — a slow attempt that comes up anyway (a dispatched workflow run
this process cannot stop) finds its id taken at the hub and stops itself (fleet/link.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable

import httpx

log = logging.getLogger(__name__)

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> float:
    """'5h30m', '90s', '1.5h', '330' (seconds) -> seconds."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([dhms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r} (use e.g. 5h30m, 90m, 45s)")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def successor_id(instance_id: str) -> str:
    """runner-a -> runner-a.2 -> runner-a.3: the generation shows in /health/details."""
    base, _, generation = instance_id.rpartition(".")
    return f"{base}.{int(generation) + 1}" if base and generation.isdigit() else f"{instance_id}.2"


class Lifetime:
    def __init__(self, *, lifetime: float, successor: str | None, instance_id: str,
                 is_healthy: Callable[[str], Awaitable[str | None]], exit: Callable[[], None],
                 handoff_timeout: float = 900.0, attempts: int = 3):
        self.lifetime = lifetime
        self.successor = successor
        self.instance_id = instance_id
        self.is_healthy = is_healthy  # successor id -> None when healthy, else why not
        self.exit = exit
        self.handoff_timeout = handoff_timeout
        self.attempts = attempts
        self.started = time.monotonic()
        self.state = "serving"  # serving | handing-off | handed-off | successor-failed

    @property
    def remaining(self) -> float:
        return max(0.0, self.lifetime - (time.monotonic() - self.started))

    async def run(self) -> None:
        await asyncio.sleep(self.remaining)
        if not self.successor:
            log.info("lifetime over: draining and exiting")
            self.state = "handed-off"
            self.exit()
            return
        for attempt in range(1, self.attempts + 1):
            if await self._hand_off(attempt):
                return
        log.error("no successor became healthy after %d attempts; serving until stopped", self.attempts)

    async def _hand_off(self, attempt: int) -> bool:
        self.state = "handing-off"
        new_id = successor_id(self.instance_id)
        command = self.successor.replace("{instance_id}", shlex.quote(new_id))
        log.info("lifetime over: starting successor %s (attempt %d): %s", new_id, attempt, command)
        process = subprocess.Popen(command, shell=True, start_new_session=True,  # outlives this process
                                   env={**os.environ, "SUCCESSOR_INSTANCE_ID": new_id,
                                        "PREDECESSOR_INSTANCE_ID": self.instance_id},
                                   stdin=subprocess.DEVNULL)
        log.info("successor %s started as pid %d", new_id, process.pid)
        deadline = time.monotonic() + self.handoff_timeout
        why = "not checked yet"
        while time.monotonic() < deadline:
            why = await self.is_healthy(new_id)
            if why is None:
                log.info("successor %s is healthy: draining and exiting", new_id)
                self.state = "handed-off"
                self.exit()
                return True
            if process.poll() not in (None, 0):
                why = f"its command exited with status {process.returncode}"
                break
            await asyncio.sleep(1.0)
        self.state = "successor-failed"
        log.error("successor %s did not become healthy within %.0f s (%s); still serving", new_id,
                  self.handoff_timeout, why)
        await _stop_group(process)
        return False


async def _stop_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Stops a failed successor and everything its command started: SIGTERM (it drains and leaves the
    hub), then SIGKILL after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)  # started in its own session: its group is the command's
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                process.poll()
                log.info("stopped the failed successor (pid %d)", process.pid)
                return
            process.poll()  # reap the command itself
            await asyncio.sleep(0.2)
    process.poll()


async def _details(url: str, credential: str | None) -> tuple[dict, str | None]:
    """(url's /health/details, None) or ({}, why it could not be read). A server with keys shows its
    instances only to a caller with a key (or, for a hub, with the registration token)."""
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    try:
        async with httpx.AsyncClient(timeout=5, headers=headers) as client:
            return (await client.get(url.rstrip("/") + "/health/details")).json(), None
    except (httpx.HTTPError, ValueError) as exc:
        return {}, f"{url} did not answer: {exc}"


def hub_check(hub_url: str, models: Callable[[], list[str]],
              token: str | None = None) -> Callable[[str], Awaitable[str | None]]:
    """Healthy = registered at the hub and healthy there for every model this instance serves."""

    async def check(instance_id: str) -> str | None:
        details, failed = await _details(hub_url, token)
        if failed:
            return failed
        for model_id in models():
            instances = {i["name"]: i for i in details.get("models", {}).get(model_id, {}).get("instances", [])}
            state = instances.get(instance_id, {}).get("state")
            if state != "healthy":
                return f"not registered at the hub for {model_id}" if state is None else f"{model_id}: {state}"
        return None

    return check


def url_check(url: str, key: str | None = None) -> Callable[[str], Awaitable[str | None]]:
    """Healthy = `url`/health/details answers with the successor's instance id and status ok
    (both runs may share one URL, e.g. a named tunnel; the id tells them apart)."""

    async def check(instance_id: str) -> str | None:
        details, failed = await _details(url, key)
        if failed:
            return failed
        if details.get("instance_id") != instance_id:
            return f"{url} is still answered by {details.get('instance_id')}"
        return None if details.get("status") == "ok" else f"status {details.get('status')}"

    return check
