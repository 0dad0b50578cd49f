"""OpenAI wire schemas for requests, and their translation into engine requests.

Unknown fields are ignored (as OpenAI does); known fields are strictly typed, so a wrong type is a
400 rather than a silent coercion.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engines.contract import MAX_STOP_CHARS, MAX_STOPS, GenerationRequest, Tool
from engines.schema_budget import SCHEMA_PARAM, check_schema

_STRICT = ConfigDict(extra="ignore", strict=True, populate_by_name=True)
MAX_TOP_LOGPROBS = 20  # as OpenAI's chat API


class TextPart(BaseModel):
    model_config = _STRICT
    type: Literal["text"] = Field(description="Only text parts are supported by these models")
    text: str


class FunctionCall(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=64)
    arguments: str = Field(description="JSON text, as the model produced it")


class ToolCall(BaseModel):
    model_config = _STRICT
    id: str = Field(max_length=200)
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    model_config = _STRICT
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = Field(None, max_length=200)

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""

    def engine_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "system" if self.role == "developer" else self.role, "content": self.text()}
        if self.tool_calls:
            message["tool_calls"] = [call.model_dump() for call in self.tool_calls]
        if self.tool_call_id is not None:
            message["tool_call_id"] = self.tool_call_id
        return message


class FunctionSpec(BaseModel):
    model_config = _STRICT
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


class ToolSpec(BaseModel):
    model_config = _STRICT
    type: Literal["function"]
    function: FunctionSpec


class NamedFunction(BaseModel):
    model_config = _STRICT
    name: str


class NamedToolChoice(BaseModel):
    model_config = _STRICT
    type: Literal["function"]
    function: NamedFunction


class JSONSchemaFormat(BaseModel):
    model_config = _STRICT
    name: str = "response"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = _STRICT
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self):
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format.json_schema is required when type is 'json_schema'")
        return self


class StreamOptions(BaseModel):
    model_config = _STRICT
    include_usage: bool = False


def valid_unicode(data: Any) -> Any:
    """Refuses text that cannot be UTF-8 (a lone surrogate such as "\\ud800", which JSON allows)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("the request contains text that is not valid Unicode (a lone surrogate "
                                 "such as \\ud800)") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return data


class _Sampling(BaseModel):
    """Fields shared by chat and plain completions."""

    model_config = _STRICT
    model: str
    logit_bias: dict[str, float] | None = Field(
        None, description="Token id -> bias from -100 to 100, added to the token's logit (-100 bans it, 100 all "
        "but forces it)")

    @model_validator(mode="before")
    @classmethod
    def _unicode(cls, data: Any) -> Any:
        return valid_unicode(data)

    @field_validator("logit_bias")
    @classmethod
    def _token_ids(cls, biases: dict[str, float] | None) -> dict[str, float] | None:
        for token, bias in (biases or {}).items():
            if not token.isdigit():
                raise ValueError(f"keys must be token ids (integers as strings), not {token[:40]!r}")
            if not -100 <= bias <= 100:
                raise ValueError(f"the bias of token {token} is {bias:g}; biases go from -100 to 100")
        return biases
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    presence_penalty: float = Field(0.0, ge=-2, le=2)
    frequency_penalty: float = Field(0.0, ge=-2, le=2)
    top_k: int | None = Field(None, ge=0, description="Extension (as llama-server): keep the k likeliest tokens; 0 "
                              "keeps all (default 40)")
    min_p: float | None = Field(None, ge=0, le=1, description="Extension (as llama-server): drop tokens less "
                                "likely than min_p times the likeliest (default 0.05)")
    repeat_penalty: float | None = Field(None, gt=0, le=10, description="Extension (as llama-server): divide "
                                         "the logits of tokens already in the answer (1: off)")
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(None, description="Only 1 is supported")
    stream: bool = False
    stream_options: StreamOptions | None = None
    include_perf: bool = Field(False, description="Extension: add queue/TTFT/generation timings")
    ignore_eos: bool = Field(False, description="Extension (as llama-server): generate until max_tokens")
    resume: bool = Field(True, description="Extension: if the instance serving this answer fails mid-stream, "
                         "a hub continues it on another instance (false: end the stream with the error)")
    answer_prefix: str = Field("", description="Extension: the start of the answer, generated earlier; it is "
                               "continued as if generated here (counted in completion tokens and max_tokens, "
                               "seed and response_format carried on). How a hub resumes an answer")
    answer_prefix_tokens: list[int] = Field(
        default_factory=list, max_length=1_000_000,
        description="Extension: the token ids answer_prefix was generated as (same model), continued token for "
        "token as far as they spell it")
    return_tokens: bool = Field(False, description="Extension: each streamed choice carries `tokens`, the ids "
                                "generated since the previous chunk")

    @field_validator("n")
    @classmethod
    def _only_one(cls, n: int | None) -> int | None:
        if n is not None and n != 1:
            raise ValueError("only n=1 is supported")
        return n

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, stop):
        stops = [stop] if isinstance(stop, str) else stop or []
        if len(stops) > MAX_STOPS:
            raise ValueError(f"at most {MAX_STOPS} stop sequences")
        if any(len(s) > MAX_STOP_CHARS for s in stops):
            raise ValueError(f"each stop sequence may have at most {MAX_STOP_CHARS} characters")
        return stop

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def _common(self) -> dict[str, Any]:
        stops = [self.stop] if isinstance(self.stop, str) else (self.stop or [])
        common: dict[str, Any] = {"stop": tuple(s for s in stops if s), "seed": self.seed,
                                  "presence_penalty": self.presence_penalty,
                                  "frequency_penalty": self.frequency_penalty,
                                  "logit_bias": tuple((int(t), b) for t, b in (self.logit_bias or {}).items()),
                                  "ignore_eos": self.ignore_eos, "prefix": self.answer_prefix,
                                  "prefix_tokens": tuple(self.answer_prefix_tokens), "resume": self.resume}
        if self.temperature is not None:
            common["temperature"] = self.temperature
        for name in ("top_p", "top_k", "min_p", "repeat_penalty"):
            if getattr(self, name) is not None:
                common[name] = getattr(self, name)
        return common


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    response_format: ResponseFormat | None = None
    tools: list[ToolSpec] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool = True
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    mode_options: dict[str, Any] | None = Field(
        None, description="Extension, with model set to a mode name: members, lead, rounds, turn_timeout, ...")

    @model_validator(mode="after")
    def _tool_choice_needs_tools(self):
        if self.tool_choice is not None and self.tool_choice != "none" and not self.tools:
            raise ValueError("tool_choice is only allowed when tools are given")
        if isinstance(self.tool_choice, NamedToolChoice) and \
                self.tool_choice.function.name not in {t.function.name for t in self.tools or ()}:
            raise ValueError(f"tool_choice names '{self.tool_choice.function.name}', which is not among the tools")
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs: true")
        return self

    def to_generation(self) -> GenerationRequest:
        fmt = self.response_format
        if fmt and fmt.type == "json_schema" and fmt.json_schema:
            check_schema(fmt.json_schema.schema_, SCHEMA_PARAM)  # before a hub forwards it or a grammar is built
        tools = tuple(Tool(t.function.name, t.function.description, t.function.parameters) for t in self.tools or ())
        for index, tool in enumerate(tools):
            check_schema(tool.parameters, f"tools[{index}].function.parameters")
        choice = self.tool_choice if isinstance(self.tool_choice, str) else "required" if self.tool_choice else "auto"
        if isinstance(self.tool_choice, NamedToolChoice):  # a named tool: that one is required
            tools = tuple(t for t in tools if t.name == self.tool_choice.function.name)
        return GenerationRequest(
            messages=[m.engine_message() for m in self.messages],
            tools=tools, tool_choice=choice, parallel_tool_calls=self.parallel_tool_calls,
            max_tokens=self.max_completion_tokens or self.max_tokens,
            json_object=bool(fmt and fmt.type == "json_object"),
            json_schema=fmt.json_schema.schema_ if fmt and fmt.json_schema and fmt.type == "json_schema" else None,
            logprobs=(self.top_logprobs or 0) if self.logprobs else None,
            **self._common(),
        )


class CompletionRequest(_Sampling):
    prompt: str | list[str] | list[int] | list[list[int]] = Field(
        description="Text or token ids (one prompt per request: a list holds exactly one)")
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for legacy completions
    logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS,
                                 description="Each token's log-probability and this many likeliest alternatives")
    echo: bool = Field(False, description="The prompt comes first in the answer, with its tokens' log-probabilities")

    @field_validator("prompt")
    @classmethod
    def _single_prompt(cls, prompt):
        if isinstance(prompt, list) and prompt and not all(isinstance(t, int) for t in prompt):
            if len(prompt) != 1:
                raise ValueError("exactly one prompt is supported per request")
            prompt = prompt[0]
        if isinstance(prompt, list):
            if not prompt:
                raise ValueError("the prompt holds no token")
            return tuple(prompt)
        return prompt

    def to_generation(self) -> GenerationRequest:
        return GenerationRequest(prompt=self.prompt, max_tokens=self.max_tokens, logprobs=self.logprobs,
                                 echo=self.echo, **self._common())
