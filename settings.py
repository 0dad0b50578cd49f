"""Server settings: command-line flags override environment variables (PLAYGROUND_*), which
override the defaults below. Per-model runtime values (threads, context, batch, slots) default to
the catalog's tuning for each model; a flag here overrides them for every hosted model."""

from __future__ import annotations

import argparse
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engines.catalog import DEFAULT_MODEL

VERSION = "0.1.0"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLAYGROUND_", extra="forbid")

    host: str = Field("127.0.0.1", description="Interface to listen on (0.0.0.0 for all)")
    port: int = Field(7860, ge=0, le=65535, description="Port for the API and the UI")
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [DEFAULT_MODEL],
        description="Catalog ids or .gguf paths to host (comma-separated in the env var)",
    )
    threads: int | None = Field(
        None, ge=1, description="Threads per model (default: catalog value, at most the CPU count)")
    ctx: int | None = Field(None, ge=128, description="Context length per slot (default: catalog value)")
    batch: int | None = Field(None, ge=1, description="Prompt batch size (default: catalog value)")
    max_concurrent: int | None = Field(None, ge=1, description="Slots per model: generations at once")
    max_queue: int = Field(16, ge=0, description="Requests allowed to wait for a slot; more get 429")
    queue_timeout: float = Field(60.0, gt=0, description="Seconds a request may wait for a slot; then 503")
    api_key: str | None = Field(None, description="If set, /v1 routes need 'Authorization: Bearer <key>'")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level")
    ui: bool = Field(True, description="Mount the Gradio playground at /")
    instance_id: str | None = Field(None, description="Name shown in /health/details (default: random)")
    gesture_config: str | None = Field(
        None, description="JSON file overriding gesture settings, e.g. {\"messages\": {\"Victory\": \"yes\"}}")
    hf_cache: str | None = Field(None, description="huggingface-hub cache folder (default: its own)")

    @field_validator("models", mode="before")
    @classmethod
    def _split_models(cls, value):
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        return [v for v in value if v]


def parse_args(argv: list[str] | None = None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="app.py", description="Serverless LLM Playground: OpenAI-compatible API + Gradio UI."
    )
    parser.add_argument("--list-models", action="store_true", help="print the model catalog and exit")
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = f"{field.description} [env PLAYGROUND_{name.upper()}]"
        if name == "models":
            parser.add_argument("--model", "--models", dest=name, action="append", help=help_text)
        elif name == "ui":
            parser.add_argument("--no-ui", dest="ui", action="store_const", const=False, help="serve the API only")
        else:
            kind = float if name == "queue_timeout" else int if field.annotation in (int, int | None) else str
            parser.add_argument(flag, dest=name, type=kind, help=help_text)
    args = parser.parse_args(argv)
    given = {k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None}
    if "models" in given:  # `--model a,b --model c` both work
        given["models"] = [part.strip() for item in given["models"] for part in item.split(",")]
    return Settings(**given), args
