"""A conversation as a file: JSON (which imports back) and Markdown (to read or paste elsewhere).

Imports are untrusted files: `read_import` checks everything and names what is wrong, so a bad file is
a clear error and never half a conversation.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gradio as gr

from playground.conversations import MAX_TITLE_CHARS, ROLES, UNTITLED, Message, auto_title, clean_message

FORMAT, VERSION = "serverless-llm-playground.chat", 1
MAX_IMPORT_BYTES = 1_000_000  # the most the browser keeps of all conversations together
MAX_IMPORT_MESSAGES = 2000
EXPORT_FILES_KEPT_SECONDS = 3600  # Gradio serves its own copy; ours only needs to outlive that copy being made


def export_json(title: str, messages: list[Message]) -> str:
    return json.dumps({"format": FORMAT, "version": VERSION, "title": title,
                       "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
                       "messages": messages}, ensure_ascii=False, indent=2) + "\n"


def export_markdown(title: str, messages: list[Message]) -> str:
    """Speakers as headings; thinking as a collapsed <details>; routing notes and stats as small italics."""
    parts = [f"# {title}"]
    for message in messages:
        metadata = message.get("metadata")
        if metadata and message["content"]:
            parts.append(f"<details><summary>{metadata['title']}</summary>\n\n{message['content']}\n\n</details>")
        elif metadata:
            parts.append(f"*{metadata['title']}*")
        else:
            parts.append(f"**{message['role'].capitalize()}:**\n\n{message['content']}")
    return "\n\n".join(parts) + "\n"


def file_stem(title: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:40]
    return f"chat-{stem}" if stem else "chat"


class ExportFolder:
    """Where export files are written before Gradio copies them into its cache (which it cleans itself).
    Files older than an hour are removed whenever new ones are written."""

    def __init__(self, root: Path | None = None):
        self.root = root or Path(tempfile.mkdtemp(prefix="playground-chat-exports-"))

    def write(self, title: str, messages: list[Message]) -> tuple[str, str]:
        self._prune()
        folder = Path(tempfile.mkdtemp(dir=self.root))
        stem = file_stem(title)
        json_path, markdown_path = folder / f"{stem}.json", folder / f"{stem}.md"
        json_path.write_text(export_json(title, messages), encoding="utf-8")
        markdown_path.write_text(export_markdown(title, messages), encoding="utf-8")
        return str(json_path), str(markdown_path)

    def _prune(self) -> None:
        cutoff = time.time() - EXPORT_FILES_KEPT_SECONDS
        for folder in list(self.root.iterdir()):
            try:
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except FileNotFoundError:  # another session pruned it first
                pass


def _import_error(reason: str) -> gr.Error:
    return gr.Error(f"Cannot import this file: {reason} Nothing was changed.")


def _message(index: int, item: Any) -> Message | None:
    where = f"messages[{index}]"
    if not isinstance(item, dict):
        raise _import_error(f"{where} is not an object with a role and a content.")
    if item.get("role") not in ROLES:
        raise _import_error(f"{where} has role {str(item.get('role'))[:20]!r}; roles are {', '.join(ROLES)}.")
    content = item.get("content")
    parts_ok = isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content)
    if not (isinstance(content, str) or content is None or parts_ok):
        raise _import_error(f"{where} has a content that is neither text nor a list of text parts.")
    if "metadata" in item and item["metadata"] is not None and not isinstance(item["metadata"], dict):
        raise _import_error(f"{where} has a metadata that is not an object.")
    return clean_message(item)


def read_import(data: bytes) -> tuple[str, list[Message]]:
    """(title, messages) of a JSON export, or of a bare list of {role, content} messages; gr.Error otherwise."""
    if len(data) > MAX_IMPORT_BYTES:
        raise _import_error(f"it is {len(data)} bytes; an import may have at most {MAX_IMPORT_BYTES}.")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise _import_error("it is not UTF-8 text (export a chat as JSON to get the right kind of file).") from None
    except json.JSONDecodeError as exc:
        raise _import_error(f"it is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).") from None
    title = ""
    if isinstance(document, dict):
        if document.get("format", FORMAT) != FORMAT:
            raise _import_error(f"it is a {str(document['format'])[:40]!r} file, not a chat exported here.")
        version = document.get("version", VERSION)
        if not isinstance(version, int) or isinstance(version, bool) or version > VERSION:
            raise _import_error(f"it is version {str(version)[:20]} of the chat format; this playground reads "
                                f"version {VERSION} (a newer playground wrote it?).")
        if not isinstance(document.get("title", ""), str):
            raise _import_error("its title is not text.")
        title, items = re.sub(r"\s+", " ", document.get("title", "")).strip(), document.get("messages")
    else:
        items = document
    if not isinstance(items, list):
        raise _import_error('it holds no "messages" list (expected a chat exported here, or a list of messages).')
    if len(items) > MAX_IMPORT_MESSAGES:
        raise _import_error(f"it has {len(items)} messages; an import may have at most {MAX_IMPORT_MESSAGES}.")
    messages = [m for m in (_message(i, item) for i, item in enumerate(items)) if m is not None]
    if not messages:
        raise _import_error("it has no messages with text.")
    title = title[:MAX_TITLE_CHARS] or auto_title(messages)
    return (title if title != UNTITLED else "Imported chat"), messages
