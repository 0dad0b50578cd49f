"""The Gradio playground: one module per tab, assembled here."""

from __future__ import annotations

import gradio as gr

from engines.registry import ModelRegistry
from gestures.actions import GestureConfig
from playground import models_tab
from playground.arena_tab import CSS as ARENA_CSS
from playground.arena_tab import ArenaTab
from playground.chat_tab import ChatTab
from playground.genui_tab import GenUITab
from playground.gestures_tab import GesturesTab

CSS = ARENA_CSS  # Gradio 6 takes page CSS at mount/launch time, not in the Blocks constructor


def build_playground(registry: ModelRegistry, gestures: GestureConfig | None = None) -> gr.Blocks:
    ids = registry.ids
    chat_models = [e.spec.id for e in registry.entries() if e.spec.chat] or ids
    # Messages made by gestures on the Gestures tab go to the Chat or the Arena, whichever was opened last.
    gesture_messages = gr.JSON(visible="hidden", render=False, elem_id="gesture-messages")
    with gr.Blocks(title="Serverless LLM Playground") as blocks:
        gr.Markdown("## Serverless LLM Playground\nSmall open models, served by llama.cpp. "
                    "OpenAI-compatible API at `/v1` on this same port.")
        view = gr.State("chat")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat") as chat_tab:
                ChatTab(registry).build(ids, chat_models[0], gesture_messages, view)
            with gr.Tab("Arena", id="arena") as arena_tab:
                ArenaTab(registry).build(gesture_messages, view)
            with gr.Tab("Generated UI", id="genui"):
                GenUITab(registry).build(chat_models, chat_models[0])
            with gr.Tab("Gestures", id="gestures"):
                GesturesTab(registry, gestures).build(gesture_messages)
            with gr.Tab("Models", id="models"):
                models_tab.build(registry)
        chat_tab.select(lambda: "chat", outputs=view, api_visibility="private")
        arena_tab.select(lambda: "arena", outputs=view, api_visibility="private")
    return blocks
