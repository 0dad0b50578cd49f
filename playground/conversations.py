"""The Chat tab's saved conversations, as pure functions over one JSON value.

The value lives in the browser (`gr.BrowserState`, localStorage) and is the whole store:
`{"current": id | None, "conversations": [{"id", "title", "named", "messages"}, ...]}`, most recently
used first. The browser sends it with every event that changes it, so it is untrusted input:
`read_store` rebuilds it from what is valid, and the bounds keep it small enough to travel.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import gradio as gr

Message = dict[str, Any]
Store = dict[str, Any]

UNTITLED = "New chat"
MAX_TITLE_CHARS = 80
AUTO_TITLE_CHARS = 40
MAX_CONVERSATIONS = 100
# Every change sends the store to the server and back: it must stay well under --max-body-bytes (4 MB by
# default) and the browser's localStorage quota (about 5 MB per site, and the stored copy is encrypted).
MAX_STORE_BYTES = 1_000_000
ROLES = ("user", "assistant", "system")
METADATA_KEYS = {"title": str, "status": str, "log": str, "duration": (int, float)}


def content_text(content: Any) -> str:
    """Gradio may hand message content back as a string or as a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("value") or "")
    if isinstance(content, list):
        return "".join(content_text(part) for part in content)
    return "" if content is None else str(content)


def clean_message(item: Any) -> Message | None:
    """A message as stored: role, text and display metadata (thinking, routing, stats); None if unusable.
    Quick-action options are dropped: they belong to the moment they were offered."""
    if not isinstance(item, dict) or item.get("role") not in ROLES:
        return None
    message: Message = {"role": item["role"], "content": content_text(item.get("content"))}
    metadata = item.get("metadata")
    if isinstance(metadata, dict):
        kept = {key: value for key, value in metadata.items()
                if key in METADATA_KEYS and isinstance(value, METADATA_KEYS[key]) and not isinstance(value, bool)}
        if kept.get("title"):
            message["metadata"] = kept
    if not message["content"] and "metadata" not in message:
        return None
    return message


def clean_messages(items: Any) -> list[Message]:
    return [m for m in map(clean_message, items if isinstance(items, list) else []) if m is not None]


def auto_title(messages: list[Message]) -> str:
    """The first user message, on one line and cut short; `UNTITLED` before there is one."""
    for message in messages:
        if message["role"] == "user" and "metadata" not in message:
            text = re.sub(r"\s+", " ", message["content"]).strip()
            if text:
                return text if len(text) <= AUTO_TITLE_CHARS else text[:AUTO_TITLE_CHARS].rstrip() + "…"
    return UNTITLED


def empty_store() -> Store:
    return {"current": None, "conversations": []}


def read_store(value: Any) -> Store:
    """Whatever the browser sent (an older shape, a tampered one) as a valid store; nothing valid is dropped."""
    if not isinstance(value, dict):
        return empty_store()
    conversations, seen = [], set()
    for item in value.get("conversations") if isinstance(value.get("conversations"), list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or item["id"] in seen:
            continue
        seen.add(item["id"])
        messages = clean_messages(item.get("messages"))
        title = item.get("title") if isinstance(item.get("title"), str) and item["title"].strip() else ""
        named = bool(item.get("named")) and bool(title)
        conversations.append({"id": item["id"][:64], "title": (title or auto_title(messages))[:MAX_TITLE_CHARS],
                              "named": named, "messages": messages})
    current = value.get("current")
    return {"current": current if current in seen else None, "conversations": conversations}


def find(store: Store, conversation_id: str | None) -> dict | None:
    return next((c for c in store["conversations"] if c["id"] == conversation_id), None)


def choices(store: Store) -> list[tuple[str, str]]:
    """(title, id) for a picker, most recently used first."""
    return [(c["title"], c["id"]) for c in store["conversations"]]


def size_of(store: Store) -> int:
    return len(json.dumps(store, ensure_ascii=False).encode())


def _bounded(store: Store) -> tuple[Store, list[str]]:
    """Drops the least recently used conversations (never the current one) until the store fits;
    returns the titles dropped so the page can say so."""
    conversations, dropped = list(store["conversations"]), []
    store = {**store, "conversations": conversations}
    while len(conversations) > 1 and (len(conversations) > MAX_CONVERSATIONS or size_of(store) > MAX_STORE_BYTES):
        oldest = next(i for i in range(len(conversations) - 1, -1, -1)
                      if conversations[i]["id"] != store["current"])
        dropped.append(conversations.pop(oldest)["title"])
    return store, dropped


def _new(title: str = UNTITLED, messages: list[Message] | None = None, named: bool = False) -> dict:
    return {"id": secrets.token_hex(6), "title": title, "named": named, "messages": messages or []}


def save(value: Any, conversation_id: str | None, history: Any) -> tuple[Store, str | None, list[str]]:
    """The chat as shown, saved under `conversation_id` (a new conversation when there is none yet and
    the chat is not empty); it becomes the current and most recent one. Returns (store, id, dropped titles)."""
    store, messages = read_store(value), clean_messages(history)
    conversation = find(store, conversation_id)
    if conversation is None:
        if not messages:
            return store, None, []
        conversation = _new(auto_title(messages), messages)
    else:
        conversation = {**conversation, "messages": messages}
        if not conversation["named"]:
            conversation["title"] = auto_title(messages)
    others = [c for c in store["conversations"] if c["id"] != conversation["id"]]
    store, dropped = _bounded({"current": conversation["id"], "conversations": [conversation, *others]})
    return store, conversation["id"], dropped


def new_conversation(value: Any, conversation_id: str | None) -> tuple[Store, str]:
    """An empty conversation, made current; the current one when it is still empty (no pile of blanks)."""
    store = read_store(value)
    current = find(store, conversation_id)
    if current is not None and not current["messages"]:
        return {**store, "current": current["id"]}, current["id"]
    conversation = _new()
    store, _ = _bounded({"current": conversation["id"], "conversations": [conversation, *store["conversations"]]})
    return store, conversation["id"]


def rename(value: Any, conversation_id: str | None, title: Any) -> Store:
    store = read_store(value)
    title = re.sub(r"\s+", " ", title if isinstance(title, str) else "").strip()
    if not title:
        raise gr.Error("Type a name for the conversation first.")
    if len(title) > MAX_TITLE_CHARS:
        raise gr.Error(f"A conversation name may have at most {MAX_TITLE_CHARS} characters; this one has {len(title)}.")
    if find(store, conversation_id) is None:
        raise gr.Error("Start or pick a conversation to rename (send a message first).")
    return {**store, "conversations": [{**c, "title": title, "named": True} if c["id"] == conversation_id else c
                                       for c in store["conversations"]]}


def delete(value: Any, conversation_id: str | None) -> tuple[Store, str | None, list[Message]]:
    """Removes the conversation; the most recent remaining one opens (or an empty chat).
    Returns (store, id now open, its messages)."""
    store = read_store(value)
    if find(store, conversation_id) is None:
        raise gr.Error("This chat is not saved yet, so there is nothing to delete.")
    remaining = [c for c in store["conversations"] if c["id"] != conversation_id]
    opened = remaining[0] if remaining else None
    store = {"current": opened and opened["id"], "conversations": remaining}
    return store, opened and opened["id"], opened["messages"] if opened else []


def switch(value: Any, conversation_id: Any) -> tuple[Store, str, list[Message]]:
    """Opens a saved conversation: (store with it current, its id, its messages)."""
    store = read_store(value)
    conversation = find(store, conversation_id)
    if conversation is None:
        raise gr.Error("That conversation is no longer saved in this browser (deleted in another tab?).")
    return {**store, "current": conversation["id"]}, conversation["id"], conversation["messages"]


def add(value: Any, title: str, messages: list[Message]) -> tuple[Store, str]:
    """An imported conversation, added as a new one and opened; refused (nothing dropped) when it does not fit."""
    store = read_store(value)
    conversation = _new(title[:MAX_TITLE_CHARS], messages, named=True)
    grown = {"current": conversation["id"], "conversations": [conversation, *store["conversations"]]}
    if len(grown["conversations"]) > MAX_CONVERSATIONS or size_of(grown) > MAX_STORE_BYTES:
        raise gr.Error(f"This browser keeps at most {MAX_CONVERSATIONS} conversations and {MAX_STORE_BYTES // 1000} kB "
                       "of them; delete (after exporting) some conversations first.")
    return grown, conversation["id"]
