"""What routes need from the app, as FastAPI dependencies: the node (identity, registry, hub), the
settings, the metrics and the rate limiter. `create_api` stores them once; only this module reads
them back, so a route states what it uses in its signature."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.metrics import Metrics
from api.rate_limit import RateLimiter
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


def _rate_limiter(request: Request) -> RateLimiter | None:
    return request.app.state.rate_limiter


NodeDep = Annotated[Node, Depends(_node)]
RegistryDep = Annotated[ModelRegistry, Depends(_registry)]
SettingsDep = Annotated[Settings, Depends(_settings)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
RateLimiterDep = Annotated[RateLimiter | None, Depends(_rate_limiter)]
