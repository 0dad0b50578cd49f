"""The Gradio playground: one module per tab, assembled here."""

from __future__ import annotations

import gradio as gr

from engines.registry import ModelRegistry
from engines.router import AUTO
from fleet.loader import ModelLoader
from gestures.actions import GestureConfig
from playground import models_tab
from playground.arena_tab import CSS as ARENA_CSS
from playground.arena_tab import DEFAULT_LEAD, ArenaTab
from playground.benchmarks_tab import BenchmarksTab
from playground.chat_tab import ChatTab
from playground.genui_tab import GenUITab
from playground.gesture_bus import gesture_bus
from playground.gestures_tab import GesturesTab

CSS = ARENA_CSS + models_tab.CSS  # Gradio 6 takes page CSS at mount/launch time, not in the Blocks constructor


def model_choices(registry: ModelRegistry) -> tuple[list[str], list[str]]:
    """(every model id and persona, the chat models — or every model when none is a chat model)."""
    return [*registry.ids, *registry.personas], registry.chat_ids


def build_playground(registry: ModelRegistry, gestures: GestureConfig | None = None, *,
                     results_dir: str = "results", loader: ModelLoader | None = None,
                     keys_set: bool = False) -> gr.Blocks:
    """`loader` lets the Models tab load and unload models (who may: see fleet/loader.py `may_manage`;
    `keys_set` says whether the server has API keys)."""
    ids, chat_models = model_choices(registry)
    default = chat_models[0] if chat_models else None
    # Messages made by gestures on the Gestures tab go to the Chat or the Arena, whichever was opened last.
    gesture_messages = gesture_bus()
    # Uploads and annotated frames land in Gradio's cache: every 10 minutes, drop files over an hour old.
    with gr.Blocks(title="Serverless LLM Playground", delete_cache=(600, 3600)) as blocks:
        gr.Markdown("## Serverless LLM Playground\nSmall open models, served by llama.cpp. "
                    "OpenAI-compatible API at `/v1` on this same port.")
        view = gr.State("chat")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat") as chat_tab:
                chat_model = ChatTab(registry).build(ids, default, gesture_messages, view)
            with gr.Tab("Arena", id="arena") as arena_tab:
                lead, members = ArenaTab(registry).build(gesture_messages, view)
            with gr.Tab("Generated UI", id="genui"):
                genui_model = GenUITab(registry).build(chat_models, default)
            with gr.Tab("Gestures", id="gestures"):
                GesturesTab(registry, gestures).build(gesture_messages)
            with gr.Tab("Models", id="models"):
                refresh_fleet, fleet_views, hosted = models_tab.build(registry, loader, keys_set=keys_set)
            with gr.Tab("Benchmarks", id="benchmarks"):
                benchmark_models = BenchmarksTab(registry, results_dir).build(ids, default)

        def refresh_models(chat_value, genui_value, lead_value, member_values, benchmark_values):
            """Models that joined the fleet after start, or were loaded or unloaded, appear in the pickers."""
            ids, chats = model_choices(registry)
            keep = lambda value, choices: value if value in choices else (choices[0] if choices else None)  # noqa: E731
            return (gr.Dropdown(choices=[AUTO, *ids], value=keep(chat_value, [AUTO, *ids])),
                    gr.Dropdown(choices=chats, value=keep(genui_value, chats)),
                    gr.Dropdown(choices=[DEFAULT_LEAD, *ids], value=keep(lead_value, [DEFAULT_LEAD, *ids])),
                    gr.CheckboxGroup(choices=ids, value=[m for m in member_values or [] if m in ids]),
                    gr.Dropdown(choices=ids, value=[m for m in benchmark_values or [] if m in ids]))

        pickers = [chat_model, genui_model, lead, members, benchmark_models]
        blocks.load(refresh_models, pickers, pickers, api_visibility="private", show_progress="hidden")
        # A load or unload (here, by the API or on another page: the Models tab's tick notices) changes them too.
        hosted.change(refresh_models, pickers, pickers, api_visibility="private", show_progress="hidden")
        blocks.load(refresh_fleet, outputs=fleet_views, api_visibility="private", show_progress="hidden")
        chat_tab.select(lambda: "chat", outputs=view, api_visibility="private")
        arena_tab.select(lambda: "arena", outputs=view, api_visibility="private")
    return blocks
