"""A model served by any OpenAI-compatible server: another instance of this app, llama-server, vLLM,
Ollama, GitHub Models.

Upstream failures become this project's typed errors, so a remote 429 is our `Overloaded`, a remote
5xx, refused connection or timeout is our `Unavailable` (`Unreachable` when nothing answered at all),
never a 500 of our own. Three separate limits: connecting, the first token, and the gap between two
tokens. One aiohttp session per engine keeps connections alive between requests (aiohttp rather
than httpx here: relaying a token costs the hub less than half the CPU, measured in
benchmarks/hub_vs_direct.py's setting).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import aiohttp

from engines.contract import (
    Chunk,
    GenerationRequest,
    Load,
    ProbeResult,
    Timings,
    TokenLogprob,
    ToolCallDelta,
    Usage,
)
from engines.errors import (
    ContextOverflow,
    EngineError,
    InvalidRequest,
    Overloaded,
    Unavailable,
    Unreachable,
)

log = logging.getLogger(__name__)
HOPS: ContextVar[int] = ContextVar("hops", default=0)  # how many servers this request already went through
HOP_HEADER = "X-Playground-Hops"
MAX_HOPS = 3  # hub -> instance is 1; a request arriving after 3 is going round in a loop

# Sampling settings sent upstream only when they differ from these (the same defaults as here).
_SAMPLING_DEFAULTS = {"presence_penalty": 0.0, "frequency_penalty": 0.0, "top_k": 40, "min_p": 0.05,
                      "repeat_penalty": 1.0}
# Reasoning models on OpenAI-style APIs take max_completion_tokens and refuse a temperature.
_RESTRICTED = ("o1", "o3", "o4", "gpt-5")


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0  # TCP + TLS handshake
    first_token: float = 120.0  # request sent -> first token (covers the upstream's queue and prompt)
    idle: float = 60.0  # longest silence between two tokens


def upstream_error(status: int, body: bytes, headers, where: str) -> EngineError:
    """The typed error for an upstream HTTP error: its status and its own error message (an OpenAI-shaped
    body's `error.message`, shortened), never the raw body, which may say anything about the upstream."""
    try:
        error = json.loads(body).get("error") or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError):
        error, message = {}, None
    message = f"{where} answered {status}: {str(message)[:300] if message else 'no error message'}"
    code = error.get("code") if isinstance(error, dict) else None
    try:
        retry_after = min(max(float(headers.get("retry-after") or 1), 1.0), 60.0)
    except ValueError:
        retry_after = 1.0
    if status == 429:
        return Overloaded(message, retry_after=retry_after)
    if status == 400 and (code == "context_length_exceeded" or error.get("type") == "exceed_context_size_error"):
        return ContextOverflow(message, param=error.get("param"))
    if status in (400, 413, 422):
        return InvalidRequest(message, param=error.get("param") if isinstance(error, dict) else None)
    return Unavailable(message, retry_after=retry_after)  # 401/403/404 (misconfigured) and 5xx: another may do


class RemoteEngine:
    def __init__(self, model_id: str, base_url: str, *, api_key: str | None = None,
                 upstream_model: str | None = None, timeouts: Timeouts = Timeouts(),
                 headers: dict[str, str] | None = None, probe: str = "auto", label: str = "the instance",
                 continues: bool = False):
        self.model_id = model_id
        self.continues = continues  # this app's instances take `answer_prefix`; other servers do not
        self.base_url = base_url.rstrip("/")
        self.label = label  # how errors name it: an instance id, never its URL
        self.upstream_model = upstream_model or model_id
        self.timeouts = timeouts
        self.probe_mode = probe  # auto | health | models | none
        self._headers = {**(headers or {}), **({"Authorization": f"Bearer {api_key}"} if api_key else {})}
        self._session: aiohttp.ClientSession | None = None  # made on first use, inside the event loop

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No read timeout here: the first-token and idle limits are enforced per stream, in `stream`.
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None, connect=self.timeouts.connect),
                connector=aiohttp.TCPConnector(limit=256),
            )
        return self._session

    @property
    def root_url(self) -> str:
        """Where /health lives: the base URL without its trailing /v1."""
        return self.base_url.removesuffix("/v1")

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.upstream_model, "stream": True,
                                "stream_options": {"include_usage": True}}
        if request.messages is not None:
            body["messages"] = request.messages
        if request.tools:
            body["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                               "parameters": t.parameters}} for t in request.tools]
            body["tool_choice"] = request.tool_choice
            if not request.parallel_tool_calls:
                body["parallel_tool_calls"] = False
        else:
            body["prompt"] = list(request.prompt) if isinstance(request.prompt, tuple) else request.prompt
        restricted = any(part in self.upstream_model.lower() for part in _RESTRICTED)
        if request.max_tokens is not None:
            body["max_completion_tokens" if restricted else "max_tokens"] = request.max_tokens
        if not restricted:
            body["temperature"] = request.temperature
            body["top_p"] = request.top_p
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if request.json_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "output", "schema": request.json_schema}}
        elif request.json_object:
            body["response_format"] = {"type": "json_object"}
        for name, default in _SAMPLING_DEFAULTS.items():  # only what differs: strict servers refuse the rest
            if getattr(request, name) != default:
                body[name] = getattr(request, name)
        if request.logit_bias:
            body["logit_bias"] = {str(token): bias for token, bias in request.logit_bias}
        if request.logprobs is not None:
            if request.messages is not None:
                body["logprobs"], body["top_logprobs"] = True, request.logprobs
            else:
                body["logprobs"] = request.logprobs
        if request.echo:
            body["echo"] = True
        if request.ignore_eos:  # an extension (llama-server, this app): only sent when asked for
            body["ignore_eos"] = True
        if self.continues:  # this app's extensions: only sent to instances of it
            body["return_tokens"] = True  # so an answer cut short here can resume token for token
        if request.prefix:
            body["answer_prefix"] = request.prefix
        if request.prefix_tokens:
            body["answer_prefix_tokens"] = list(request.prefix_tokens)
        if not request.resume:
            body["resume"] = False
        return body

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        chat = request.messages is not None
        url = self.base_url + ("/chat/completions" if chat else "/completions")
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        deadline = Deadline(loop.time() + self.timeouts.first_token)  # after each token: now + idle
        first_at, pieces, finish, usage = 0.0, 0, None, None
        response = None
        try:
            async with asyncio.timeout_at(deadline.at):
                response = await self.session.post(url, json=self.payload(request), allow_redirects=False,
                                                   headers={HOP_HEADER: str(HOPS.get() + 1)})
                if response.status != 200:
                    raise upstream_error(response.status, await response.read(), response.headers, self.label)
            async for data in _sse_data(response, deadline):
                event = json.loads(data)
                if "error" in event:
                    raise _stream_error(event["error"], self.label)
                if event.get("usage"):
                    usage = event["usage"]
                for choice in event.get("choices") or ():
                    text, reasoning = _piece(choice, chat)
                    finish = choice.get("finish_reason") or finish
                    calls = _tool_calls((choice.get("delta") or {}).get("tool_calls")) if chat else ()
                    if calls:
                        deadline.at = loop.time() + self.timeouts.idle
                        yield Chunk(tool_calls=calls)
                    if text or reasoning:
                        first_at = first_at or time.perf_counter()
                        pieces += 1
                        deadline.at = loop.time() + self.timeouts.idle
                        yield Chunk(text=text, reasoning=reasoning, tokens=_token_ids(choice.get("tokens")),
                                    logprobs=_logprobs(choice.get("logprobs")))
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            log.warning("%s (%s) cannot be reached: %s", self.label, self.base_url, exc)
            raise Unreachable(f"{self.label} cannot be reached ({type(exc).__name__}).") from None
        except TimeoutError:
            phase, limit_s = ("next", self.timeouts.idle) if first_at else ("first", self.timeouts.first_token)
            raise Unavailable(f"{self.label} sent no {phase} token within {limit_s:g} s.") from None
        except (aiohttp.ClientError, json.JSONDecodeError) as exc:
            log.warning("the connection to %s (%s) broke: %s", self.label, self.base_url, exc)
            raise Unavailable(f"The connection to {self.label} broke ({type(exc).__name__}).") from None
        finally:
            if response is not None:
                if response.content.at_eof():
                    response.release()  # read to the end: the connection goes back to the pool
                else:
                    response.close()  # cut short: drop the connection, so the upstream stops generating
        if finish is None:
            raise Unavailable(f"{self.label} ended the stream without finishing the answer.")
        ended = time.perf_counter()
        usage = usage or {}
        completion_tokens = int(usage.get("completion_tokens") or pieces)
        yield Chunk(
            finish_reason=finish if finish in ("length", "tool_calls") else "stop",
            usage=Usage(int(usage.get("prompt_tokens") or 0), completion_tokens,
                        int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)),
            timings=Timings(ttft_ms=((first_at or ended) - started) * 1000, generation_ms=(ended - started) * 1000,
                            completion_tokens=completion_tokens),
        )

    async def probe(self) -> ProbeResult:
        """A check that spends no tokens: this app's /health/details (load and context length), else
        /health (with llama-server's /props for the context length), else /models."""
        if self.probe_mode == "none":
            return ProbeResult(True, "not probed")
        try:
            async with asyncio.timeout(5):
                if self.probe_mode in ("auto", "health"):
                    status, body = await self._get(self.root_url + "/health/details")
                    if status != 404:
                        return _health_result(status, body, self.upstream_model)
                    status, _ = await self._get(self.root_url + "/health")
                    if status != 404 or self.probe_mode == "health":
                        return ProbeResult(status == 200, f"/health {status}", n_ctx=await self._props_n_ctx())
                status, _ = await self._get(self.base_url + "/models")
                return ProbeResult(status == 200, f"/models {status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.debug("probe of %s (%s) failed: %s", self.label, self.base_url, exc)
            return ProbeResult(False, f"no answer ({type(exc).__name__})")

    async def forward(self, method: str, path: str, body: dict[str, Any] | None,
                      params: dict[str, str] | None = None) -> Any:
        """A JSON call to another route of the instance (its tokenizer), errors typed as for answers."""
        try:
            async with asyncio.timeout(30):
                async with self.session.request(method, self.root_url + path, json=body, params=params,
                                                allow_redirects=False,
                                                headers={HOP_HEADER: str(HOPS.get() + 1)}) as response:
                    data = await response.read()
                    if response.status != 200:
                        raise upstream_error(response.status, data, response.headers, self.label)
                    return json.loads(data)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unavailable(f"{self.label} did not answer {path} ({type(exc).__name__}).") from None

    async def _props_n_ctx(self) -> int | None:
        """llama-server's context length per slot, from /props (None where there is no such route)."""
        status, body = await self._get(self.root_url + "/props")
        try:
            props = json.loads(body) if status == 200 else {}
            n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx") or props.get("n_ctx")
        except (ValueError, AttributeError):
            return None
        return n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None

    async def _get(self, url: str) -> tuple[int, bytes]:
        async with self.session.get(url, allow_redirects=False) as response:
            return response.status, await response.read()

    def load(self) -> None:
        return None  # known only from probes and heartbeats (the pool keeps what they report)

    def details(self) -> dict[str, Any]:
        return {"url": self.base_url, "upstream_model": self.upstream_model}

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


@dataclass
class Deadline:
    at: float  # event-loop time


async def _sse_data(response: aiohttp.ClientResponse, deadline: Deadline) -> AsyncIterator[bytes]:
    """The `data:` payloads of an SSE body, up to [DONE]. Each network read is bounded by `deadline`;
    the timeout wraps that one await and never a `yield`, since the consumer may resume this
    generator from another task than the one that started it."""
    pending = b""
    while True:
        async with asyncio.timeout_at(deadline.at):
            block = await response.content.readany()
        if not block:
            return
        *lines, pending = (pending + block).split(b"\n")
        for line in lines:
            if line.startswith(b"data:"):
                data = line[5:].strip()
                if data == b"[DONE]":
                    async with asyncio.timeout_at(deadline.at):
                        await response.content.read()  # the body's end, so the connection can be reused
                    return
                yield data


def _piece(choice: dict[str, Any], chat: bool) -> tuple[str, str]:
    if not chat:
        return choice.get("text") or "", ""
    delta = choice.get("delta") or {}
    return delta.get("content") or "", delta.get("reasoning_content") or delta.get("reasoning") or ""


def _logprobs(data: Any) -> tuple[TokenLogprob, ...]:
    """A chunk's log-probabilities in either OpenAI shape (chat's `content`, completions' lists); ()
    when absent or malformed. Token ids are unknown (-1): only text and bytes travel."""
    try:
        if isinstance(data, dict) and isinstance(data.get("content"), list):
            def entry(item: dict) -> TokenLogprob:
                piece = bytes(item["bytes"]) if item.get("bytes") is not None else str(item["token"]).encode()
                alternatives = tuple(entry(a) for a in item.get("top_logprobs") or ())
                return TokenLogprob(-1, piece, item.get("logprob"), alternatives)

            return tuple(entry(item) for item in data["content"])
        if isinstance(data, dict) and isinstance(data.get("tokens"), list):
            tops = data.get("top_logprobs") or [None] * len(data["tokens"])
            return tuple(TokenLogprob(-1, str(token).encode(), logprob,
                                      tuple(TokenLogprob(-1, str(t).encode(), lp) for t, lp in (top or {}).items()))
                         for token, logprob, top in zip(data["tokens"], data["token_logprobs"], tops, strict=True))
    except (KeyError, TypeError, ValueError):
        pass
    return ()


def _tool_calls(deltas: Any) -> tuple[ToolCallDelta, ...]:
    """A delta's tool-call pieces as OpenAI streams them; malformed ones are dropped."""
    out = []
    for delta in deltas if isinstance(deltas, list) else ():
        function = delta.get("function") if isinstance(delta, dict) else None
        if isinstance(delta, dict) and isinstance(delta.get("index"), int) and isinstance(function, dict):
            out.append(ToolCallDelta(delta["index"], str(delta.get("id") or ""), str(function.get("name") or ""),
                                     str(function.get("arguments") or "")))
    return tuple(out)


def _token_ids(tokens: Any) -> tuple[int, ...]:
    """A chunk's token ids as this app streams them; () for anything else."""
    if isinstance(tokens, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
        return tuple(tokens)
    return ()


def _stream_error(error: Any, where: str) -> EngineError:
    message = error.get("message") if isinstance(error, dict) else str(error)
    return Unavailable(f"{where} failed during the answer: {str(message)[:300]}")


def _health_result(status: int, body: bytes, model: str) -> ProbeResult:
    """Reads this app's /health/details: the model must be listed and ready; its load comes along."""
    if status != 200:
        return ProbeResult(False, f"/health/details {status}")
    try:
        details = json.loads(body)
    except ValueError:
        return ProbeResult(False, "/health/details is not JSON")
    if details.get("status") == "draining":
        return ProbeResult(False, "draining")
    models = details.get("models")
    if not isinstance(models, dict) or model not in models:  # another server's /health/details
        return ProbeResult(True, "/health/details 200")
    entry = models[model]
    if entry.get("state") not in ("ready", None):
        return ProbeResult(False, f"model {entry.get('state')}")
    n_ctx = entry.get("n_ctx")
    return ProbeResult(True, "ready", Load.read(entry), n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None)
