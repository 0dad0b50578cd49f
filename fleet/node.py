"""This process as a member of the fleet: its identity and the parts built before the API.

`build_node(settings)` decides what runs here — the local models (loaded later, in the background),
the remote instances of the fleet file and the environment, the hub that accepts registrations, the
link to a hub this instance registers with, and the lifetime after which it hands over. The API and
the UI receive the `Node`; they never build any of it.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass, field

from engines.catalog import ModelSpec
from engines.errors import EngineError
from engines.model_files import spec_for
from engines.personas import DEFAULT_PANEL, Persona
from engines.registry import ModelRegistry
from fleet import config as fleet_file
from fleet.hub import Hub
from fleet.lifetime import Lifetime, hub_check, parse_duration, url_check
from fleet.link import HubLink
from fleet.loader import ModelLoader, hosted_spec
from modes import MODES
from settings import Settings


@dataclass
class Node:
    instance_id: str
    registry: ModelRegistry
    hub: Hub
    settings: Settings
    specs: list[ModelSpec] = field(default_factory=list)  # hosted here, loaded by `load_models`
    link: HubLink | None = None  # --hub: registration with another hub
    lifetime: Lifetime | None = None  # --lifetime: hand over to a successor, then leave
    started_at: float = field(default_factory=time.time)
    draining: bool = False  # set on the first SIGTERM/Ctrl-C (fleet/serve.py)
    importing: bool = False  # --hub-import: the predecessor's fleet is not imported yet (fleet/succession.py)
    awaiting: set[str] = field(default_factory=set)  # models the predecessor served that are not ready here yet
    loader: ModelLoader = field(init=False)  # models loaded and unloaded at run time

    def __post_init__(self) -> None:
        self.loader = ModelLoader(self.registry, self.settings)

    def starting(self) -> list[str]:
        """Why this node should not report healthy yet (a successor hub still taking over), else []."""
        if self.importing:
            return ["importing the predecessor's fleet"]
        offered = {model for member in self.hub.members.values() for model in member.models}
        self.awaiting = {m for m in self.awaiting & offered if self.registry.entry(m).state != "ready"}
        return [f"waiting for {m}" for m in sorted(self.awaiting)]

    async def load_models(self) -> None:
        """One at a time: loading in parallel only competes for memory and disk. Failures are recorded
        in the registry (and shown by /health), never raised."""
        for spec in self.specs:
            await self.registry.load(spec, lambda spec=spec: self.loader.build_engine(spec))


def build_node(settings: Settings) -> Node:
    """Raises EngineError (unknown model), FleetError (bad fleet file) or ValueError (bad duration)."""
    config = fleet_config(settings)
    if settings.fleet and "models" not in settings.model_fields_set:  # the fleet file says what runs here
        settings = settings.model_copy(update={"models": config.local_models()})
    registry = ModelRegistry()
    specs = hosted_specs(settings)
    if settings.draft_model:
        spec_for(settings.draft_model)  # an unknown draft model stops the start, as an unknown model does
    for spec in specs:
        registry.add(spec)
    hub = Hub(registry, heartbeat_timeout=settings.heartbeat_timeout, probe_interval=settings.probe_interval)
    hub.add_configured(config, source="fleet")
    add_personas(registry, config.personas)
    node = Node(settings.instance_id or uuid.uuid4().hex[:12], registry, hub, settings, specs,
                importing=bool(settings.hub_import))
    if settings.hub:
        node.link = HubLink(settings.hub, settings.public_url, node.instance_id, registry, token=settings.hub_token,
                            api_key=settings.api_keys[0] if settings.api_keys else None)
        node.link.on_id_taken = stop_this_process
    node.lifetime = limited_life(settings, node.instance_id, registry)
    return node


def add_personas(registry: ModelRegistry, configured: list[Persona]) -> None:
    """The default panel (when a chat model is hosted here), then the fleet file's personas, which may
    replace its members."""
    if registry.chat_ids:
        for persona in DEFAULT_PANEL:
            registry.add_persona(persona, reserved=frozenset(MODES))
    for persona in configured:
        try:
            registry.add_persona(persona, reserved=frozenset(MODES))
        except EngineError as exc:
            raise fleet_file.FleetError(f"fleet file: persona '{persona.id}': {exc.message}") from None


def hosted_specs(settings: Settings) -> list[ModelSpec]:
    """The catalog entries (or local files) to host, with the settings' overrides applied."""
    return [hosted_spec(reference, settings) for reference in settings.models]


def fleet_config(settings: Settings) -> fleet_file.FleetConfig:
    """The fleet file (if any) plus serverless-llm's environment conventions."""
    configs = [fleet_file.from_environment(os.environ)]
    if settings.fleet:
        configs.insert(0, fleet_file.load(settings.fleet))
    return fleet_file.merge(*configs)


def limited_life(settings: Settings, instance_id: str, registry: ModelRegistry) -> Lifetime | None:
    """--lifetime: after it, start --successor, wait until it is healthy, then drain and exit."""
    if not settings.lifetime:
        return None
    if settings.hub:
        def local_models() -> list[str]:
            return [p.model_id for p in registry.entries() if p.local is not None]

        check = hub_check(settings.hub, local_models, token=settings.hub_token)
    else:
        check = url_check(settings.successor_url or "", key=settings.api_keys[0] if settings.api_keys else None)
    return Lifetime(lifetime=parse_duration(settings.lifetime), successor=settings.successor,
                    instance_id=instance_id, is_healthy=check, handoff_timeout=settings.handoff_timeout,
                    exit=stop_this_process)


def stop_this_process() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # the same drain as Ctrl-C
