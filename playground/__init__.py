"""The Gradio playground: one module per tab, assembled here."""

from __future__ import annotations

import gradio as gr

from engines.registry import ModelRegistry
from playground import models_tab
from playground.chat_tab import ChatTab


def build_playground(registry: ModelRegistry) -> gr.Blocks:
    ids = registry.ids
    chat_models = [e.spec.id for e in registry.entries() if e.spec.chat] or ids
    with gr.Blocks(title="Serverless LLM Playground") as blocks:
        gr.Markdown("## Serverless LLM Playground\nSmall open models, served by llama.cpp. "
                    "OpenAI-compatible API at `/v1` on this same port.")
        with gr.Tab("Chat", id="chat"):
            ChatTab(registry).build(ids, chat_models[0])
        with gr.Tab("Models", id="models"):
            models_tab.build(registry)
    return blocks
