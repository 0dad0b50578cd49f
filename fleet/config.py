"""Which instances serve which models: a fleet file (YAML or TOML) and serverless-llm's environment
conventions. A bad file stops the app at start with the file, line and field at fault.

```yaml
models:
  smollm2-135m-instruct:
    instances:
      - local: true                          # hosted in this process
      - url: http://10.0.0.7:7860/v1         # any OpenAI-compatible base URL
        api_key_env: RUNNER_KEY              # name of the env var holding its key
        max_concurrent: 2
  openai/gpt-4.1-mini:
    instances:
      - url: https://models.github.ai/inference
        api_key_env: GH_MODELS_TOKEN
        probe: none                          # do not poll a metered API
personas:                                    # members for the modes, besides the default panel
  - id: lawyer
    name: The Lawyer
    model: smollm2-135m-instruct             # default: the first hosted chat model
    system: You are a careful lawyer. Point out risks and obligations.
    temperature: 0.4
```
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engines.catalog import CATALOG, SERVICE_NAMES
from engines.personas import Persona

GITHUB_MODELS_URL = "https://models.github.ai/inference"
GITHUB_MODELS = ("openai/gpt-4.1", "openai/gpt-4.1-mini", "openai/gpt-4o", "openai/gpt-4o-mini",
                 "openai/gpt-5-mini", "deepseek/DeepSeek-V3-0324", "meta/Llama-3.3-70B-Instruct")


class FleetError(ValueError):
    """A fleet file that cannot be used; the message names the place to fix."""


class InstanceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    local: bool = Field(False, description="Host the model in this process")
    url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. http://host:7860/v1")
    api_key_env: str | None = Field(None, description="Environment variable holding the key for this URL")
    model: str | None = Field(None, description="The model name upstream, if it differs from the id")
    name: str | None = Field(None, description="Shown in /health/details (default: host:port)")
    max_concurrent: int = Field(2, ge=1, description="Requests it serves at once (balancing weight)")
    probe: Literal["auto", "health", "models", "none"] = Field("auto", description="How health is checked")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers")
    connect_timeout: float = Field(5.0, gt=0)
    first_token_timeout: float = Field(120.0, gt=0)
    idle_timeout: float = Field(60.0, gt=0)
    continues: bool = Field(False, description="The upstream is this app: it continues answers another instance "
                            "began, so a stream cut short elsewhere resumes there")

    @model_validator(mode="after")
    def _one_place(self):
        if self.local == bool(self.url):
            raise ValueError("give either `local: true` or a `url`, not both or neither")
        if self.url and not re.match(r"https?://[^/\s]+", self.url):
            raise ValueError(f"url must start with http:// or https:// and name a host, got {self.url!r}")
        return self

    def display_name(self) -> str:
        return self.name or ("local" if self.local else re.sub(r"^https?://", "", self.url).split("/")[0])


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instances: list[InstanceConfig] = Field(min_length=1)


class FleetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, ModelConfig] = Field(default_factory=dict)
    personas: list[Persona] = Field(default_factory=list, max_length=32)

    def local_models(self) -> list[str]:
        return [mid for mid, m in self.models.items() if any(i.local for i in m.instances)]

    def remote_instances(self) -> list[tuple[str, InstanceConfig]]:
        return [(mid, i) for mid, m in self.models.items() for i in m.instances if not i.local]


def load(path: str | Path) -> FleetConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise FleetError(f"cannot read fleet file {path}: {exc.strerror or exc}") from None
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise FleetError(f"{path}: not valid TOML: {exc}") from None
        return _validate(data, path, lambda loc: None)
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FleetError(f"{path}: not valid YAML: {exc}") from None
    return _validate(data, path, lambda loc: _yaml_line(root, loc))


def _validate(data: Any, path: Path, line_of) -> FleetConfig:
    if not isinstance(data, Mapping):
        raise FleetError(f"{path}: expected a mapping with a `models` key at the top")
    try:
        return FleetConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [part for part in first["loc"]]
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(top)"
        line = line_of(loc)
        where = f"{path}:{line}" if line else str(path)
        message = str(first["msg"]).removeprefix("Value error, ")
        raise FleetError(f"{where}: {field}: {message}") from None


def _yaml_line(node, loc: list) -> int | None:
    """The 1-based line of the deepest YAML node on the error's path."""
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
    return node.start_mark.line + 1 if node is not None else line


def from_environment(env: Mapping[str, str]) -> FleetConfig:
    """serverless-llm's conventions: `{MODEL}_API_URL` (comma-separated for several instances),
    `BASE_DOMAIN` (https://{model}.{domain}), and `GH_MODELS_TOKEN` for GitHub Models."""
    models: dict[str, list[InstanceConfig]] = {}
    domain = env.get("BASE_DOMAIN", "").strip().rstrip("/")
    for spec in CATALOG:
        service = SERVICE_NAMES.get(spec.id, spec.id)
        names = {_env_name(service), _env_name(spec.id)}
        urls = next((env[n] for n in sorted(names) if env.get(n, "").strip()), "")
        found = [u.strip() for u in urls.split(",") if u.strip()]
        if not found and domain and spec.category != "embedded":
            scheme, _, host = domain.rpartition("://")
            found = [f"{scheme or 'https'}://{service}.{host}"]
        if found:
            models[spec.id] = [InstanceConfig(url=_openai_base(u)) for u in found]
    token = env.get("GH_MODELS_TOKEN", "").strip()
    if token:
        ids = [m.strip() for m in env.get("GH_MODELS", ",".join(GITHUB_MODELS)).split(",") if m.strip()]
        for model_id in ids:
            models[model_id] = [InstanceConfig(url=GITHUB_MODELS_URL, api_key_env="GH_MODELS_TOKEN", probe="none",
                                               name="github-models",
                                               headers={"X-GitHub-Api-Version": "2022-11-28"})]
    try:
        return FleetConfig(models={mid: ModelConfig(instances=inst) for mid, inst in models.items()})
    except ValidationError as exc:
        raise FleetError(f"environment: {exc.errors()[0]['msg']}") from None


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()) + "_API_URL"


def _openai_base(url: str) -> str:
    """serverless-llm's variables hold the server root; the OpenAI routes live under /v1."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def merge(*configs: FleetConfig) -> FleetConfig:
    merged: dict[str, list[InstanceConfig]] = {}
    for config in configs:
        for model_id, model in config.models.items():
            merged.setdefault(model_id, []).extend(model.instances)
    personas = [persona for config in configs for persona in config.personas]
    return FleetConfig(models={mid: ModelConfig(instances=inst) for mid, inst in merged.items()}, personas=personas)
