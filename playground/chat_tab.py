"""The Chat tab: one model, streamed answers with their speed, Stop, Retry, Clear, edit-and-resend,
sampling settings, and conversations kept in the browser (conversation_panel.py).

Handlers call engines directly (the same contract the REST API uses). Streaming events have a
non-streaming twin (`/chat`) because gradio_client scripts want one answer per call.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import gradio as gr

from engines.contract import GenerationRequest, Timings, Usage, collect
from engines.errors import EngineError
from engines.registry import ModelRegistry
from engines.router import AUTO, Router
from genui import generate
from genui.spec import SpecError
from playground.caller import as_caller
from playground.chat_sampling import DEFAULTS, build_controls, read_basics, read_sampling
from playground.conversation_panel import ConversationPanel
from playground.conversations import Message, content_text
from playground.gesture_bus import message_for

THINKING_TITLE = "💭 Thinking"


def to_messages(history: list[Message], system_prompt: str) -> list[dict[str, str]]:
    """Chat history as shown -> messages for the model (thinking bubbles and routing notes, the messages
    with metadata, are not sent back)."""
    messages = [{"role": "system", "content": system_prompt.strip()}] if system_prompt.strip() else []
    for item in history:
        if item.get("metadata"):
            continue
        text = content_text(item.get("content"))
        if item.get("role") in ("user", "assistant") and text:
            messages.append({"role": item["role"], "content": text})
    return messages


def drop_last_answer(history: list[Message]) -> tuple[list[Message], str]:
    """Removes the last exchange's answer; returns the shortened history and the last user text."""
    history = list(history)
    while history and history[-1].get("role") != "user":
        history.pop()
    if not history:
        return [], ""
    return history[:-1], content_text(history[-1].get("content"))


def answer_stats(ttft_ms: float, usage: Usage | None, timings: Timings | None, decode_s: float) -> Message:
    """The line under an answer. TTFT is what the person waited (queue and routing included); the speed is
    the engine's own decode rate where it reports one, else the rate the tokens arrived here."""
    tokens = usage.completion_tokens if usage else (timings.completion_tokens if timings else 0)
    speed = timings.tokens_per_second if timings else 0.0
    if not speed and tokens > 1 and decode_s > 0:
        speed = (tokens - 1) / decode_s
    title = f"TTFT {ttft_ms:.0f} ms · {speed:.1f} tok/s · {tokens} tokens"
    return {"role": "assistant", "content": "", "metadata": {"title": title, "status": "done"}}


def edited_index(evt: gr.EditData, history: list[Message]) -> int:
    """Which message was edited; only a person's own messages can be resent."""
    index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    if not isinstance(index, int) or not 0 <= index < len(history) or history[index].get("role") != "user":
        raise gr.Error("Only your own messages can be edited and sent again.")
    return index


class ChatTab:
    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def _request(self, history, system_prompt, temperature, max_tokens, sampling: dict) -> GenerationRequest:
        return GenerationRequest(messages=to_messages(history, system_prompt or ""),
                                 **read_basics(temperature, max_tokens), **sampling)

    async def stream_reply(self, message: str, history: list[Message], model: str, system_prompt: str,
                           temperature: float, max_tokens: int, quick_actions: bool = False,
                           top_p=DEFAULTS["top_p"], top_k=DEFAULTS["top_k"], min_p=DEFAULTS["min_p"],
                           presence_penalty=DEFAULTS["presence_penalty"],
                           frequency_penalty=DEFAULTS["frequency_penalty"],
                           repeat_penalty=DEFAULTS["repeat_penalty"], seed=None, stop=None,
                           ) -> AsyncIterator[tuple[list[Message], str]]:
        message = (message or "").strip()
        if not message:
            raise gr.Error("Type a message first.")
        sampling = read_sampling(top_p, top_k, min_p, presence_penalty, frequency_penalty, repeat_penalty, seed, stop)
        history = [*(history or []), {"role": "user", "content": message}]
        request = self._request(history, system_prompt, temperature, max_tokens, sampling)
        yield history, ""
        answer = {"role": "assistant", "content": ""}
        thought: Message | None = None
        stats: list[Message] = []
        started = time.perf_counter()
        first_at = None
        try:
            if model == AUTO and AUTO not in self.registry.ids:  # routed: say where the answer comes from
                route = await Router(self.registry).route(request)
                model = route.model
                history = [*history, {"role": "assistant", "content": f"Routed to {route.model}",
                                      "metadata": {"title": f"auto → {route.model} ({route.category})",
                                                   "status": "done"}}]
                yield history, ""
            async for chunk in self.registry.get(model).stream(request):
                now = time.perf_counter()
                if first_at is None and (chunk.text or chunk.reasoning):
                    first_at = now
                if chunk.reasoning:
                    if thought is None:
                        thought = {"role": "assistant", "content": "",
                                   "metadata": {"title": THINKING_TITLE, "status": "pending"}}
                    thought["content"] += chunk.reasoning
                answer["content"] += chunk.text
                if thought is not None and (chunk.text or chunk.finish_reason):
                    thought["metadata"] = {"title": THINKING_TITLE, "status": "done",
                                           "duration": round(now - started, 1)}
                if chunk.finish_reason:
                    stats = [answer_stats(((first_at or now) - started) * 1000, chunk.usage, chunk.timings,
                                          now - (first_at or now))]
                shown = [dict(m) for m in (thought, answer) if m is not None and m["content"]]
                # copies: later tokens must not edit sent updates
                yield [*history, *(shown or [dict(answer)]), *stats], ""
        except EngineError as exc:
            raise gr.Error(exc.message) from None
        if quick_actions and answer["content"].strip():
            conversation = [*to_messages(history, ""), {"role": "assistant", "content": answer["content"]}]
            options = await self._quick_actions(model, conversation)
            if not options:
                return
            shown = [*(dict(m) for m in (thought, answer) if m is not None and m["content"]), *stats]
            # the Chatbot offers the options of the last message only: the stats line when there is one
            shown[-1] = {**shown[-1], "options": [{"label": o["label"], "value": o["value"]} for o in options]}
            yield [*history, *shown], ""

    async def _quick_actions(self, model: str, conversation: list[dict[str, str]]) -> list[dict[str, str]]:
        try:
            return await generate.quick_actions(self.registry.get(model), conversation)
        except (SpecError, EngineError) as exc:
            gr.Warning(f"No quick actions this time: {exc}")
            return []

    async def pick_option(self, history, model, system_prompt, temperature, max_tokens, quick_actions,
                          top_p, top_k, min_p, presence_penalty, frequency_penalty, repeat_penalty, seed, stop,
                          evt: gr.SelectData):
        """A quick action was clicked: its value is the next user message."""
        async for update in self.stream_reply(evt.value, history, model, system_prompt, temperature, max_tokens,
                                              quick_actions, top_p, top_k, min_p, presence_penalty,
                                              frequency_penalty, repeat_penalty, seed, stop):
            yield update

    async def edit_reply(self, history, model, system_prompt, temperature, max_tokens, quick_actions,
                         top_p, top_k, min_p, presence_penalty, frequency_penalty, repeat_penalty, seed, stop,
                         evt: gr.EditData):
        """A message of the person's was edited: the chat goes back to just before it and it is sent again."""
        history = list(history or [])
        index = edited_index(evt, history)
        async for update in self.stream_reply(content_text(evt.value), history[:index], model, system_prompt,
                                              temperature, max_tokens, quick_actions, top_p, top_k, min_p,
                                              presence_penalty, frequency_penalty, repeat_penalty, seed, stop):
            yield update

    async def retry(self, history, model, system_prompt, temperature, max_tokens, quick_actions=False,
                    top_p=DEFAULTS["top_p"], top_k=DEFAULTS["top_k"], min_p=DEFAULTS["min_p"],
                    presence_penalty=DEFAULTS["presence_penalty"], frequency_penalty=DEFAULTS["frequency_penalty"],
                    repeat_penalty=DEFAULTS["repeat_penalty"], seed=None, stop=None):
        history, last_user = drop_last_answer(history or [])
        if not last_user:
            raise gr.Error("Nothing to retry yet.")
        async for update in self.stream_reply(last_user, history, model, system_prompt, temperature, max_tokens,
                                              quick_actions, top_p, top_k, min_p, presence_penalty,
                                              frequency_penalty, repeat_penalty, seed, stop):
            yield update

    async def chat(self, message: str, history: list[Message], model: str, system_prompt: str = "",
                   temperature: float = 0.7, max_tokens: int = 256, top_p: float = DEFAULTS["top_p"],
                   top_k: int = DEFAULTS["top_k"], min_p: float = DEFAULTS["min_p"],
                   presence_penalty: float = DEFAULTS["presence_penalty"],
                   frequency_penalty: float = DEFAULTS["frequency_penalty"],
                   repeat_penalty: float = DEFAULTS["repeat_penalty"], seed: int | None = None,
                   stop: str | list[str] = "") -> str:
        """One whole answer (for gradio_client). `history` is a list of {role, content} messages; `stop` is a
        list of strings, or text with one per line; `seed` None draws at random."""
        message = (message or "").strip()
        if not message:
            raise gr.Error("message is empty.")
        sampling = read_sampling(top_p, top_k, min_p, presence_penalty, frequency_penalty, repeat_penalty, seed, stop)
        history = [*(history or []), {"role": "user", "content": message}]
        try:
            done = await collect(self.registry.get(model).stream(
                self._request(history, system_prompt, temperature, max_tokens, sampling)))
        except EngineError as exc:
            raise gr.Error(exc.message) from None
        return done.text

    async def reply_to_gesture(self, event: dict | None, view: str, history, model, system_prompt, temperature,
                               max_tokens, quick_actions=False, top_p=DEFAULTS["top_p"], top_k=DEFAULTS["top_k"],
                               min_p=DEFAULTS["min_p"], presence_penalty=DEFAULTS["presence_penalty"],
                               frequency_penalty=DEFAULTS["frequency_penalty"],
                               repeat_penalty=DEFAULTS["repeat_penalty"], seed=None, stop=None):
        """Sends the message a gesture produced (see playground/gestures_tab.py) when Chat is in use."""
        text = message_for(event, view, "chat")
        if text is None:
            yield gr.skip(), gr.skip()
            return
        async for update in self.stream_reply(text, history, model, system_prompt, temperature, max_tokens,
                                              quick_actions, top_p, top_k, min_p, presence_penalty,
                                              frequency_penalty, repeat_penalty, seed, stop):
            yield update

    def build(self, model_ids: list[str], default_model: str | None, gesture_messages: gr.JSON | None = None,
              view: gr.State | None = None) -> gr.Dropdown:
        """Lays out the tab; `gesture_messages` (rendered elsewhere) can send messages into this chat
        while `view` (the last of Chat/Arena opened) says "chat"."""
        panel = ConversationPanel()
        with gr.Row():
            with gr.Column(scale=1, min_width=220):
                panel.build()
            with gr.Column(scale=4):
                with gr.Row():
                    model = gr.Dropdown([AUTO, *model_ids], value=default_model, label="Model", scale=2,
                                        allow_custom_value=True)  # models may join the fleet after the page was built
                    temperature = gr.Slider(0, 2, value=0.7, step=0.05, label="Temperature", scale=1)
                    max_tokens = gr.Slider(16, 2048, value=256, step=16, label="Max tokens", scale=1,
                                           elem_id="max-tokens")
                with gr.Row():
                    system_prompt = gr.Textbox(label="System prompt", placeholder="You are a helpful assistant.",
                                               lines=1, scale=4)
                    quick = gr.Checkbox(False, label="Quick actions", info="Suggest follow-ups to click", scale=1,
                                        elem_id="quick-actions")
                sampling = build_controls()
                chatbot = gr.Chatbot(label="Chat", height=420, elem_id="chatbot", buttons=["copy", "copy_all"],
                                     editable="user")
                with gr.Row():
                    text = gr.Textbox(placeholder="Type a message and press Enter", show_label=False, scale=6,
                                      elem_id="chat-input", submit_btn=False)
                    send = gr.Button("Send", variant="primary", scale=1, elem_id="send-btn")
                    stop = gr.Button("Stop", variant="stop", scale=1, elem_id="stop-btn")
                with gr.Row():
                    retry = gr.Button("Retry", size="sm")
                    clear = gr.Button("Clear", size="sm", elem_id="clear-btn")

        settings = [model, system_prompt, temperature, max_tokens, quick, *sampling]
        # Generation is bounded by each model's slots and queue, not by Gradio's per-event limit.
        streaming = dict(outputs=[chatbot, text], concurrency_limit=None)
        reply, retry_answer = as_caller(self.stream_reply), as_caller(self.retry)
        on_send = send.click(reply, [text, chatbot, *settings], api_name="send", **streaming)
        on_enter = text.submit(reply, [text, chatbot, *settings], api_visibility="private", **streaming)
        on_retry = retry.click(retry_answer, [chatbot, *settings], api_name="retry", **streaming)
        on_option = chatbot.option_select(as_caller(self.pick_option), [chatbot, *settings], api_visibility="private",
                                          **streaming)
        on_edit = chatbot.edit(as_caller(self.edit_reply), [chatbot, *settings], api_visibility="private",
                               **streaming)
        replies = [on_send, on_enter, on_retry, on_option, on_edit]
        if gesture_messages is not None and view is not None:
            replies.append(gesture_messages.change(as_caller(self.reply_to_gesture),
                                                   [gesture_messages, view, chatbot, *settings],
                                                   api_visibility="private", **streaming))
        on_stop = stop.click(None, cancels=replies, api_visibility="private")
        on_clear = clear.click(lambda: ([], ""), outputs=[chatbot, text], api_name="clear")
        panel.wire(chatbot, [*replies, on_stop, on_clear])
        gr.api(as_caller(self.chat), api_name="chat", concurrency_limit=None)
        return model
