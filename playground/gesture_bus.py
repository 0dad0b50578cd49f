"""The hidden bus between the Gestures tab and the tabs that act on gestures (Chat, Arena).

The Gestures tab publishes each frame's actions on a hidden `gr.JSON`; a listening tab takes the
messages meant for it. Kept apart from gestures_tab.py so that listening costs no MediaPipe import.
"""

from __future__ import annotations

import gradio as gr


def gesture_bus() -> gr.JSON:
    """The bus component, rendered by whoever lays out the page."""
    return gr.JSON(visible="hidden", render=False, elem_id="gesture-messages")


def message_for(event: dict | None, view: str, target: str) -> str | None:
    """The text a gesture asked to send, if `target` ("chat" or "arena") is the view in use."""
    if view != target:
        return None
    texts = [a["text"] for a in (event or {}).get("actions", []) if a.get("kind") == "send"]
    return texts[0] if texts else None
