"""UI events run on behalf of whoever the front door let in.

api/access.py names the caller of every request (`request.state.caller`); Gradio runs an event's
handler in its own task, away from that request, so `as_caller` hands the name on: the token budget
(engines/metering.py) then counts what the UI generates exactly like the API.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import gradio as gr

from engines.metering import CALLER


def caller_of(request: gr.Request | None) -> str | None:
    origin = getattr(request, "request", None)
    return getattr(getattr(origin, "state", None), "caller", None)


def as_caller(handler: Callable) -> Callable:
    """The same handler with a `gr.Request` parameter (Gradio fills it in and hides it from the API)."""
    signature = inspect.signature(handler)
    kind = (inspect.Parameter.KEYWORD_ONLY if any(p.kind == p.VAR_POSITIONAL for p in signature.parameters.values())
            else inspect.Parameter.POSITIONAL_OR_KEYWORD)
    request_param = inspect.Parameter("gradio_request", kind, default=None, annotation=gr.Request)

    def own(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """The handler's own arguments; the caller named from the request Gradio added."""
        request = kwargs.pop("gradio_request", None)
        if request is None and args and isinstance(args[-1], gr.Request):
            request, args = args[-1], args[:-1]
        CALLER.set(caller_of(request))  # this event's own task: nothing to reset
        return args, kwargs

    if inspect.isasyncgenfunction(handler):
        @functools.wraps(handler)
        async def wrapper(*args, **kwargs):
            args, kwargs = own(args, kwargs)
            async for update in handler(*args, **kwargs):
                yield update
    elif inspect.iscoroutinefunction(handler):
        @functools.wraps(handler)
        async def wrapper(*args, **kwargs):
            args, kwargs = own(args, kwargs)
            return await handler(*args, **kwargs)
    else:
        raise TypeError(f"{handler.__name__}: only async handlers generate")
    wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), request_param])
    wrapper.__annotations__ = {**handler.__annotations__, "gradio_request": gr.Request}
    return wrapper
