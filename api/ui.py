"""Generated UI over REST: POST /v1/ui/generate (kind spec | html | actions) and POST /v1/ui/event."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import RegistryDep
from api.errors import APIError
from api.schemas import valid_unicode
from genui import generate
from genui.spec import UI_SPEC_SCHEMA, SpecError, validate

router = APIRouter()


class _UIRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _unicode(cls, data: Any) -> Any:
        return valid_unicode(data)


class GenerateUIRequest(_UIRequest):
    model: str
    kind: Literal["spec", "html", "actions"] = "spec"
    prompt: str | None = Field(None, description="What to build (spec, html)")
    messages: list[dict[str, str]] | None = Field(None, description="The conversation to suggest actions for")
    max_tokens: int | None = Field(None, ge=16, le=4096)
    seed: int | None = None


class UIEventRequest(_UIRequest):
    model: str
    spec: dict[str, Any]
    event: str = Field(min_length=1, max_length=64, description="The id of the button pressed")
    values: dict[str, Any] = Field(default_factory=dict, description="Current input values by id")


def _invalid_output(exc: SpecError) -> APIError:
    return APIError(502, f"The model did not produce a usable result: {exc}", type="server_error",
                    code="invalid_model_output")


@router.get("/v1/ui/schema")
async def ui_schema():
    """The published UI-spec JSON schema."""
    return UI_SPEC_SCHEMA


@router.post("/v1/ui/generate")
async def generate_ui(body: GenerateUIRequest, registry: RegistryDep):
    engine = registry.get(body.model)
    limits = {"max_tokens": body.max_tokens} if body.max_tokens else {}
    try:
        if body.kind == "actions":
            if not body.messages:
                raise APIError(400, "kind 'actions' needs the conversation in 'messages'.", param="messages")
            return {"kind": "actions", "actions": await generate.quick_actions(
                engine, body.messages, seed=body.seed, **limits)}
        if not (body.prompt or "").strip():
            raise APIError(400, f"kind '{body.kind}' needs a 'prompt'.", param="prompt")
        if body.kind == "html":
            return {"kind": "html", "html": await generate.html_artifact(engine, body.prompt, **limits)}
        return {"kind": "spec", "spec": await generate.ui_spec(engine, body.prompt, seed=body.seed, **limits)}
    except SpecError as exc:
        raise _invalid_output(exc) from None


@router.post("/v1/ui/event")
async def ui_event(body: UIEventRequest, registry: RegistryDep):
    try:
        spec = validate(body.spec)
    except SpecError as exc:
        raise APIError(400, str(exc), param="spec") from None
    try:
        reply, updated = await generate.ui_event(registry.get(body.model), spec, body.event,
                                                 body.values)
    except SpecError as exc:
        raise _invalid_output(exc) from None
    return {"reply": reply, "spec": updated}
