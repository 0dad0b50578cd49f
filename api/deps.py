"""What routes need from the app, as FastAPI dependencies: the node (identity, registry, hub), the
settings, the metrics and whether the caller showed a key. `create_api` stores them once; only this module reads
them back, so a route states what it uses in its signature."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from api.access import presented_key
from api.metrics import Metrics
from engines.registry import ModelRegistry
from fleet.node import Node
from settings import Settings


def _node(request: Request) -> Node:
    return request.app.state.node


def _registry(request: Request) -> ModelRegistry:
    return request.app.state.node.registry


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def _authenticated(request: Request) -> bool:
    """Whether the caller showed a valid key (always true when the server has none; see api/access.py)
    or this hub's registration token (instances read the fleet's state during a hand-over)."""
    if request.scope.get("state", {}).get("authenticated", True):
        return True
    token = request.app.state.settings.hub_token
    return bool(token) and hmac.compare_digest(presented_key(dict(request.scope["headers"])).encode(), token.encode())


NodeDep = Annotated[Node, Depends(_node)]
RegistryDep = Annotated[ModelRegistry, Depends(_registry)]
SettingsDep = Annotated[Settings, Depends(_settings)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
AuthenticatedDep = Annotated[bool, Depends(_authenticated)]
