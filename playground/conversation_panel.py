"""The Chat tab's conversation list: saved in the browser, so a reload reopens where the person was.

The store is a `gr.BrowserState` (localStorage); the pure operations are in `conversations.py`, the
file formats in `chat_files.py`. This module lays out the panel and wires it to the chat's Chatbot.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.context import Context

from playground import conversations
from playground.chat_files import ExportFolder, read_import

# Fixed, not Gradio's per-process random default: a random key or secret would forget every
# conversation whenever the server restarts. The secret is no protection from the page's owner (Gradio
# sends it to the page to decrypt with); localStorage is per site already.
STORAGE_KEY = "serverless-llm-playground.chat.conversations"
STORAGE_SECRET = "serverless-llm-playground.chat"
# Bookkeeping, not generation: no progress shown, no wait behind other events. Queued all the same: only
# queued events show a gr.Error's message to the person (an unqueued one is a bare HTTP 500).
LIGHT = dict(api_visibility="private", show_progress="hidden", concurrency_limit=None)


class ConversationPanel:
    def __init__(self, exports: ExportFolder | None = None):
        self.exports = exports or ExportFolder()

    def build(self) -> None:
        """Lays out the panel (call inside a column); `wire` connects it once the Chatbot exists."""
        self.store = gr.BrowserState(conversations.empty_store(), storage_key=STORAGE_KEY, secret=STORAGE_SECRET)
        self.current = gr.State(None)  # the conversation this page shows; None until restored or started
        self.new = gr.Button("+ New chat", size="sm", elem_id="new-chat")
        self.picker = gr.Radio([], label="Conversations", elem_id="conversations")
        with gr.Accordion("Manage", open=False, elem_id="manage-chat"):
            self.name = gr.Textbox(label="Name", placeholder="Rename this chat", max_lines=1, elem_id="chat-name")
            with gr.Row():
                self.rename = gr.Button("Rename", size="sm", elem_id="rename-chat")
                self.delete = gr.Button("Delete", size="sm", variant="stop", elem_id="delete-chat")
            with gr.Row():
                self.json_file = gr.DownloadButton("Export JSON", size="sm", interactive=False, elem_id="export-json")
                self.markdown_file = gr.DownloadButton("Export Markdown", size="sm", interactive=False,
                                                       elem_id="export-markdown")
            self.upload = gr.UploadButton("Import JSON", size="sm", file_types=[".json"], type="binary",
                                          elem_id="import-chat")

    def _files(self, store: dict, conversation_id: str | None) -> tuple:
        """Export buttons hold the current conversation's files, ready for a one-click download."""
        conversation = conversations.find(store, conversation_id)
        if conversation is None or not conversation["messages"]:
            return gr.DownloadButton(value=None, interactive=False), gr.DownloadButton(value=None, interactive=False)
        json_path, markdown_path = self.exports.write(conversation["title"], conversation["messages"])
        return gr.DownloadButton(value=json_path, interactive=True), gr.DownloadButton(value=markdown_path,
                                                                                        interactive=True)

    def _shown(self, store: dict, conversation_id: str | None) -> tuple:
        return (store, conversation_id, gr.Radio(choices=conversations.choices(store), value=conversation_id),
                *self._files(store, conversation_id))

    def _opened(self, store: dict, conversation_id: str | None, messages: list) -> tuple:
        return (*self._shown(store, conversation_id), messages)

    def restore(self, value: Any, current: str | None):
        """Once per page: reopen the conversation that was current when the page was last used. (Not an
        output of its own trigger, the store: each new value would trigger it again.)"""
        store = conversations.read_store(value)
        opened = conversations.find(store, store["current"]) or next(iter(store["conversations"]), None)
        if current is not None or opened is None:
            return tuple(gr.skip() for _ in range(5))
        return (opened["id"], gr.Radio(choices=conversations.choices(store), value=opened["id"]),
                *self._files(store, opened["id"]), opened["messages"])

    def save(self, history: Any, value: Any, current: str | None):
        store, conversation_id, dropped = conversations.save(value, current, history)
        if dropped:
            gr.Warning(f"The browser's room for chats is full: dropped the oldest ({', '.join(dropped[:3])}"
                       f"{', …' if len(dropped) > 3 else ''}). Export chats you want to keep.")
        return self._shown(store, conversation_id)

    def start_new(self, value: Any, current: str | None):
        store, conversation_id = conversations.new_conversation(value, current)
        return self._opened(store, conversation_id, [])

    def open(self, picked: Any, value: Any):
        return self._opened(*conversations.switch(value, picked))

    def rename_current(self, name: str, value: Any, current: str | None):
        return (*self._shown(conversations.rename(value, current, name), current), "")

    def delete_current(self, value: Any, current: str | None):
        return self._opened(*conversations.delete(value, current))

    def import_file(self, data: bytes | None, value: Any):
        if not data:
            raise gr.Error("Cannot import: the file is empty. Nothing was changed.")
        title, messages = read_import(data)
        store, conversation_id = conversations.add(value, title, messages)
        return self._opened(store, conversation_id, messages)

    def wire(self, chatbot: gr.Chatbot, changes: list) -> None:
        """`changes`: the events after which the chat shown is saved (replies, clear, stop, edits)."""
        shown = [self.store, self.current, self.picker, self.json_file, self.markdown_file]
        opened = [*shown, chatbot]
        # The store reads localStorage when it mounts and reports a change; the page's load is a second
        # chance should that come first. `restore` acts once per page either way.
        gr.on([self.store.change, Context.root_block.load], self.restore, [self.store, self.current], opened[1:],
              **LIGHT)
        for event in changes:
            event.then(self.save, [chatbot, self.store, self.current], shown, **LIGHT)
        chatbot.clear(self.save, [chatbot, self.store, self.current], shown, **LIGHT)  # its own trash button
        self.new.click(self.start_new, [self.store, self.current], opened, **LIGHT)
        self.picker.input(self.open, [self.picker, self.store], opened, **LIGHT)
        self.rename.click(self.rename_current, [self.name, self.store, self.current], [*shown, self.name], **LIGHT)
        self.name.submit(self.rename_current, [self.name, self.store, self.current], [*shown, self.name], **LIGHT)
        self.delete.click(self.delete_current, [self.store, self.current], opened, **LIGHT)
        self.upload.upload(self.import_file, [self.upload, self.store], opened, **LIGHT)
