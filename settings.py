"""Server settings: command-line flags override environment variables (PLAYGROUND_*), which
override the defaults below. Per-model runtime values (threads, context, batch, slots) default to
the catalog's tuning for each model; a flag here overrides them for every hosted model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engines.catalog import DEFAULT_MODEL

VERSION = "0.1.0"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLAYGROUND_", extra="forbid")

    host: str = Field("127.0.0.1", description="Interface to listen on (0.0.0.0 for all)")
    port: int = Field(7860, ge=0, le=65535, description="Port for the API and the UI")
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [DEFAULT_MODEL],
        description="Catalog ids or .gguf paths to host (comma-separated in the env var; 'none' for a pure hub)",
    )
    threads: int | None = Field(
        None, ge=1, description="Threads per model (default: catalog value, at most the CPU count)")
    ctx: int | None = Field(None, ge=128, description="Context length per slot (default: catalog value)")
    batch: int | None = Field(None, ge=1, description="Prompt batch size (default: catalog value)")
    max_concurrent: int | None = Field(None, ge=1, description="Slots per model: generations at once")
    flash_attn: Literal["on", "off"] = Field(
        "on", description="Flash attention (llama-server's default): faster decoding on CPU, and a sequence's "
        "arithmetic does not depend on what else is in the batch (speculation and batching keep greedy text "
        "exact); 'off' keeps llama-cpp-python's arithmetic, so a seed gives the same text as there")
    speculative: Literal["ngram", "off"] = Field(
        "ngram", description="Speculative decoding: 'ngram' drafts the next tokens from earlier text of the same "
        "conversation (fast copying, rewriting, extraction; adapts and pauses when drafts miss); 'off' decodes one "
        "token per pass. The text is the same either way")
    draft_model: str | None = Field(
        None, description="Catalog id or .gguf path of a smaller model with the same vocabulary that drafts for the "
        "hosted models instead of n-gram lookup (as llama-server's --model-draft)")
    draft_max: int = Field(64, ge=1, le=128, description="Tokens drafted at most per step and stream")
    cache_type: Literal["f16", "q8_0", "q4_0"] = Field(
        "f16", description="KV-cache type (serverless-llm's KV_CACHE_QUANT): q8_0 halves the memory per slot, q4_0 "
        "quarters it (both need flash attention)")
    chat_template_file: str | None = Field(
        None, description="Jinja chat template used instead of each hosted model's own (as llama-server's "
        "--chat-template-file)")
    tool_format: Literal["auto", "envelope", "hermes", "mistral", "llama3", "functiongemma"] = Field(
        "auto", description="How models call tools: 'auto' uses the format the chat template teaches (Hermes/Qwen "
        "<tool_call>, Mistral [TOOL_CALLS], Llama 3 JSON, FunctionGemma) and a JSON envelope when it teaches none; "
        "'envelope' always uses the envelope")
    max_queue: int = Field(16, ge=0, description="Requests allowed to wait for a slot; more get 429")
    queue_timeout: float = Field(60.0, gt=0, description="Seconds a request may wait for a slot; then 503")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Client keys: if any, every surface (API, Gradio API, UI) needs one, "
        "as 'Authorization: Bearer <key>' or through the login page (repeat the flag or comma-separate)")
    rate_limit: int = Field(
        0, ge=0, description="Requests that start work, per minute per client key (per address without keys); "
        "0: off")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024,
                                description="Largest request body accepted on /v1, /hub and the Gradio API")
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest file uploaded to the UI")
    token_budget: int = Field(
        0, ge=0, description="Tokens per minute per key (per client address without keys), on every surface: "
        "prompt tokens decoded plus tokens generated; 0 for none")
    fleet: str | None = Field(None, description="Fleet file (YAML or TOML) listing models and their instances")
    hub_allow_private: bool = Field(
        False, description="Hub: accept instances on loopback and private networks (a LAN fleet); link-local "
        "and cloud metadata addresses stay refused")
    hub_token: str | None = Field(
        None, description="Shared registration token: a hub accepts instances that send it; an instance sends it")
    hub: str | None = Field(None, description="Hub URL to register this instance with (needs --public-url)")
    public_url: str | None = Field(None, description="URL at which the hub reaches this instance")
    heartbeat_timeout: float = Field(
        15.0, gt=0, description="Hub: seconds without a heartbeat or a passing probe before an instance is gone")
    probe_interval: float = Field(5.0, gt=0, description="Hub: seconds between health probes of remote instances")
    lifetime: str | None = Field(
        None, description="Serve this long (e.g. 5h30m), then hand over to --successor and exit")
    successor: str | None = Field(
        None, description="Command that starts the successor; {instance_id} is replaced by its id")
    successor_url: str | None = Field(
        None, description="Where to see the successor healthy when there is no --hub (its /health/details)")
    handoff_timeout: float = Field(900.0, gt=0, description="Seconds to wait for the successor to be healthy")
    drain_grace: float = Field(
        0.0, ge=0, description="On shutdown, seconds to keep answering (/health: 503 draining) before closing the "
        "listener, so a load balancer or tunnel health check can take this server out first")
    hub_import: str | None = Field(
        None, description="Hub: URL of the hub this one succeeds; its fleet (instances and their leases) is "
        "imported before this hub reports healthy")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level")
    ui: bool = Field(True, description="Mount the Gradio playground at /")
    instance_id: str | None = Field(None, description="Name shown in /health/details (default: random)")
    gesture_config: str | None = Field(
        None, description="JSON file overriding gesture settings, e.g. {\"messages\": {\"Victory\": \"yes\"}}")
    hf_cache: str | None = Field(None, description="huggingface-hub cache folder (default: its own)")
    results_dir: str = Field(
        "results", description="Folder for benchmark result files (one JSON file per run: the Benchmarks tab and "
        "python -m benchmarks.models write there, the tab's charts read it)")
    memory_limit: float = Field(
        0, ge=0, description="GB that the models hosted here may take together; a model loaded at run time "
        "(POST /models/load, Models tab) that would go past it, or past the memory the machine has free, is "
        "refused; 0: only the machine's free memory counts")

    @model_validator(mode="after")
    def _reachable_for_the_hub(self):
        if self.hub and not self.public_url:
            if self.host in ("0.0.0.0", "::"):
                raise ValueError("--hub needs --public-url: the address at which the hub can reach this instance")
            self.public_url = f"http://{self.host}:{self.port}"
        if self.lifetime:
            from fleet.lifetime import parse_duration

            parse_duration(self.lifetime)  # raises with an example of the format
        if self.successor and not (self.hub or self.successor_url):
            raise ValueError("--successor needs --hub or --successor-url to see the successor become healthy")
        self.hub_import = self.hub_import or None  # an empty workflow input: not a successor
        for name in ("hub", "public_url", "successor_url", "hub_import"):
            value = getattr(self, name)
            if value and not value.startswith(("http://", "https://")):
                raise ValueError(f"--{name.replace('_', '-')} must start with http:// or https://, got {value!r}")
        return self

    @model_validator(mode="after")
    def _quantized_cache_needs_flash_attention(self):
        if self.cache_type != "f16" and self.flash_attn == "off":
            raise ValueError(f"--cache-type {self.cache_type} needs flash attention (llama.cpp quantizes the V cache "
                             "only with it): drop --flash-attn off")
        return self

    @model_validator(mode="after")
    def _chat_template_readable(self):
        if self.chat_template_file:
            import jinja2

            try:
                jinja2.Environment().parse(self.chat_template)
            except jinja2.TemplateSyntaxError as exc:
                raise ValueError(f"--chat-template-file {self.chat_template_file}: line {exc.lineno}: {exc}") from None
        return self

    @property
    def chat_template(self) -> str | None:
        if not self.chat_template_file:
            return None
        try:
            return Path(self.chat_template_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--chat-template-file: cannot read {self.chat_template_file}: {exc}") from None

    @field_validator("models", "api_keys", mode="before")
    @classmethod
    def _split_list(cls, value):
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        return [v for v in value if v and v.lower() != "none"]  # `--model none`: host nothing (a pure hub)


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
        elif name == "api_keys":
            parser.add_argument("--api-key", "--api-keys", dest=name, action="append", help=help_text)
        elif name == "ui":
            parser.add_argument("--no-ui", dest="ui", action="store_const", const=False, help="serve the API only")
        elif field.annotation is bool:
            parser.add_argument(flag, dest=name, action="store_const", const=True, help=help_text)
        else:
            kind = float if field.annotation is float else int if field.annotation in (int, int | None) else str
            parser.add_argument(flag, dest=name, type=kind, help=help_text)
    args = parser.parse_args(argv)
    given = {k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None}
    for name in ("models", "api_keys"):  # `--model a,b --model c` both work
        if name in given:
            given[name] = [part.strip() for item in given[name] for part in item.split(",")]
    try:
        return Settings(**given), args
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        parser.error((f"--{field.replace('_', '-')}: " if field else "") + first["msg"].removeprefix("Value error, "))
